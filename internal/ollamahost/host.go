// Package ollamahost parses and compares Ollama server addresses the way
// Ollama itself does, so that --host, OLLAMA_HOST and a client's apiBase all
// name the same server when Ollama would treat them as the same.
package ollamahost

import (
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

	s = strings.TrimSpace(s)
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

// Resolve picks the server address the way every ctxfit command does: the
// --host flag when given, else the OLLAMA_HOST environment value, else
// Default.
func Resolve(flag, env string) *url.URL {
	if strings.TrimSpace(flag) != "" {
		return Parse(flag)
	}
	return Parse(env)
}

// Key returns a canonical string for the server at u, used to key persistent
// state per host: loopback names (localhost, 127.0.0.1, ::1, 0.0.0.0) all map
// to 127.0.0.1, and the scheme and path are kept.
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
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && (ip.IsLoopback() || ip.IsUnspecified())
}
