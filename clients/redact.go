package clients

import (
	"regexp"
	"strings"
)

// Redacted replaces a secret in what ctxfit shows.
const Redacted = "<redacted>"

// Redact is ctxfit's one rule for secrets in what it shows of a config: every
// client's dry-run diff, --json output and log line goes through it. It
// replaces the value of every key that names a secret (apiKey, api_key,
// openai-api-key, token, accessToken, secret, password, authorization,
// credentials, private keys; not maxTokens), in JSON ("k": "v"), YAML
// (k: v, - k: v) and k=v form, wherever it stands on a line and however
// many there are, and every bearer string (Bearer xxx) and well-known key
// format (sk-…, ghp_…, github_pat_…, hf_…) anywhere in the text. It keeps
// quotes, commas and comments, so a diff stays readable. A secret written
// as a YAML block scalar (key: | on its own line) is not recognised on the
// lines that follow.
func Redact(text string) string {
	if text == "" {
		return text
	}
	lines := strings.SplitAfter(text, "\n")
	for i, l := range lines {
		lines[i] = redactLine(l)
	}
	return strings.Join(lines, "")
}

// redactKey matches a key and its separator: a quoted key and a colon, or a
// bare key at the start of a line, after "- ", "{", "," or a space, then ":"
// plus space (YAML) or "=".
var redactKey = regexp.MustCompile(`"((?:[^"\\]|\\.)*)"\s*:\s*|'([^']*)'\s*:\s*|(?:^|[\s{,])(?:-\s+)?([A-Za-z0-9_.-]+)(?::[ \t]+|:$|\s*=\s*)`)

// redactToken matches secrets recognisable by their form alone.
var redactToken = regexp.MustCompile(`(?i)\b(bearer|token|basic)(\s+)[A-Za-z0-9._~+/=-]{8,}|\b(?:sk-[A-Za-z0-9_-]{12,}|ghp_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|hf_[A-Za-z0-9]{20,})`)

// secretKey reports whether a config key names a secret.
func secretKey(key string) bool {
	var b strings.Builder
	for _, r := range strings.ToLower(key) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	k := b.String()
	for _, s := range []string{"apikey", "secret", "password", "passwd", "passphrase", "authorization", "credential", "privatekey", "accesskey", "bearer", "cookie"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return strings.HasSuffix(k, "token") || k == "auth" || k == "key"
}

func redactLine(line string) string {
	var b strings.Builder
	rest := line
	for {
		m := redactKey.FindStringSubmatchIndex(rest)
		if m == nil {
			b.WriteString(rest)
			break
		}
		key := ""
		for g := 1; g <= 3; g++ {
			if m[2*g] >= 0 {
				key = rest[m[2*g]:m[2*g+1]]
			}
		}
		b.WriteString(rest[:m[1]])
		rest = rest[m[1]:]
		if !secretKey(key) {
			continue
		}
		n := valueLen(rest)
		if n == 0 {
			continue
		}
		v := rest[:n]
		switch {
		case len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0]:
			b.WriteString(v[:1] + Redacted + v[:1])
		default:
			b.WriteString(Redacted)
		}
		rest = rest[n:]
	}
	return redactToken.ReplaceAllStringFunc(b.String(), func(s string) string {
		if m := redactToken.FindStringSubmatch(s); m[1] != "" {
			return m[1] + m[2] + Redacted
		}
		return Redacted
	})
}

// valueLen returns the length of the scalar value at the start of s: a
// quoted string, or everything up to a comma, a closing bracket, a comment
// or the end of the line. It is 0 for a nested object or list, a YAML block
// scalar indicator, and an empty value.
func valueLen(s string) int {
	if s == "" {
		return 0
	}
	switch q := s[0]; q {
	case '"', '\'':
		for i := 1; i < len(s); i++ {
			switch {
			case s[i] == '\\' && q == '"':
				i++
			case s[i] == q:
				return i + 1
			}
		}
		return len(strings.TrimRight(s, "\r\n"))
	case '{', '[', '|', '>', '&', '*', '\r', '\n':
		return 0
	}
	end := len(s)
	for i := 0; i < len(s); i++ {
		if s[i] == ',' || s[i] == '}' || s[i] == ']' || s[i] == '\r' || s[i] == '\n' ||
			s[i] == '#' && i > 0 && (s[i-1] == ' ' || s[i-1] == '\t') {
			end = i
			break
		}
	}
	return len(strings.TrimRight(s[:end], " \t"))
}
