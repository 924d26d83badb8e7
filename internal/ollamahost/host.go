// Package ollamahost parses and compares Ollama server addresses the way
// Ollama itself does, so that --host, OLLAMA_HOST and a client's apiBase all
// name the same server when Ollama would treat them as the same.
package ollamahost

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Default is the address Ollama listens on when OLLAMA_HOST is unset.
const Default = "http://127.0.0.1:11434"

// Parse turns s into the base URL of an Ollama server, accepting everything
// OLLAMA_HOST accepts: "host", "host:port", ":port", "[::1]:port" or a full
// URL. It mirrors envconfig.Host in github.com/ollama/ollama (v0.17.4); an
// empty s gives Default. An invalid port falls back to the scheme's default,
// as Ollama does.
func Parse(s string) *url.URL {
	defaultPort := "11434"

	s = trim(s)
	scheme, hostport, ok := strings.Cut(s, "://")
	switch {
	case !ok:
		scheme, hostport = "http", s
		if s == "ollama.com" {
			scheme, hostport = "https", "ollama.com:443"
		}
	case scheme == "http":
		defaultPort = "80"
	case scheme == "https":
		defaultPort = "443"
	}

	hostport, path, _ := strings.Cut(hostport, "/")
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = "127.0.0.1", defaultPort
		if ip := net.ParseIP(strings.Trim(hostport, "[]")); ip != nil {
			host = ip.String()
		} else if hostport != "" {
			host = hostport
		}
	}

	if n, err := strconv.ParseInt(port, 10, 32); err != nil || n > 65535 || n < 0 {
		port = defaultPort
	}

	return &url.URL{
		Scheme: scheme,
		Host:   net.JoinHostPort(host, port),
		Path:   path,
	}
}

// trim strips blanks and quotes around s, as envconfig.Var and then
// envconfig.Host do.
func trim(s string) string { return strings.TrimSpace(strings.Trim(strings.TrimSpace(s), "\"'")) }

// Resolve picks the server address the way every ctxfit command does: the
// --host flag when given, else the OLLAMA_HOST environment value, else
// Default. It is Parse, except that an empty host (":port", which Ollama's
// server reads as "every interface") becomes 127.0.0.1, the address Go's
// dialer and Ollama's own CLI reach it at, so that ctxfit shows and stores
// one address for one server. It fails, saying what to write instead, for
// a value Ollama would silently misread (see Check).
func Resolve(flag, env string) (*url.URL, error) {
	what, s := "OLLAMA_HOST", env
	if trim(flag) != "" {
		what, s = "--host", flag
	}
	if err := Check(s); err != nil {
		return nil, fmt.Errorf("%s %q: %w", what, s, err)
	}
	u := Parse(s)
	if host, port, err := net.SplitHostPort(u.Host); err == nil && host == "" {
		u.Host = net.JoinHostPort("127.0.0.1", port)
	}
	return u, nil
}

// Check reports why s is no usable Ollama address, or nil: a scheme other
// than http or https, a port that is not a number from 0 to 65535 (Ollama
// would quietly use its default instead), or a host that is no IP address
// or DNS name (a typo such as "not a url").
func Check(s string) error {
	s = trim(s)
	if s == "" {
		return nil
	}
	scheme, hostport, ok := strings.Cut(s, "://")
	if ok && scheme != "http" && scheme != "https" {
		return fmt.Errorf("the scheme %q is not http or https; write http://HOST:PORT, HOST:PORT or :PORT", scheme)
	}
	if !ok {
		hostport = s
	}
	hostport, _, _ = strings.Cut(hostport, "/")
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = strings.Trim(hostport, "[]"), ""
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			return fmt.Errorf("the port %q is not a number from 0 to 65535; write HOST:PORT, such as localhost:11434", port)
		}
	}
	if host == "" {
		if port == "" {
			return fmt.Errorf("no host or port; write HOST, HOST:PORT or :PORT")
		}
		return nil
	}
	if net.ParseIP(host) != nil || validDNSName(host) {
		return nil
	}
	return fmt.Errorf("%q is not a host name or IP address; write HOST, HOST:PORT, :PORT or http://HOST:PORT", host)
}

// validDNSName reports whether s is made of dot-separated labels of
// letters, digits, '-' and '_' (the underscore appears in Docker service
// names), none empty or longer than 63 bytes.
func validDNSName(s string) bool {
	if len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, r := range label {
			ok := r == '-' || r == '_' || '0' <= r && r <= '9' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z'
			if !ok {
				return false
			}
		}
	}
	return true
}

// Key returns a canonical string for the server at u, used to key persistent
// state per host: loopback names (localhost, 127.0.0.1, ::1, 0.0.0.0, and
// the empty host of ":port") all map to 127.0.0.1, and the scheme and path
// are kept. Key(Parse(Key(u))) == Key(u), so a stored key can be
// canonicalised again (see CanonicalKey).
func Key(u *url.URL) string {
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		host, port = u.Host, ""
	}
	if isLoopbackName(host) {
		host = "127.0.0.1"
	}
	k := u.Scheme + "://" + net.JoinHostPort(host, port)
	if p := strings.Trim(u.Path, "/"); p != "" {
		k += "/" + p
	}
	return k
}

// CanonicalKey returns the canonical key for a key stored by any version of
// ctxfit, such as "http://:18434" (which older versions stored for
// OLLAMA_HOST=:18434) → "http://127.0.0.1:18434".
func CanonicalKey(key string) string { return Key(Parse(key)) }

// Same reports whether a and b name the same Ollama server.
func Same(a, b *url.URL) bool { return Key(a) == Key(b) }

// IsLocal reports whether u points at this machine (a loopback name or
// address, or the unspecified address that Ollama may listen on).
func IsLocal(u *url.URL) bool {
	host, _, err := net.SplitHostPort(u.Host)
	if err != nil {
		host = u.Host
	}
	return isLoopbackName(host)
}

func isLoopbackName(host string) bool {
	host = strings.Trim(host, "[]")
	if host == "" || strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && (ip.IsLoopback() || ip.IsUnspecified())
}
