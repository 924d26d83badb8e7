package clients

import (
	"regexp"
	"slices"
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
// format (sk-…, ghp_…, github_pat_…, hf_…) and the password of every URL
// (https://user:password@host) anywhere in the text. It keeps
// quotes, commas and comments, so a diff stays readable. A value on the
// lines after its key is replaced too: a YAML block scalar (key: | or
// key: >, every line indented deeper than the key), a plain YAML scalar
// on the lines below (key: alone), and a JSON value after a line break
// ("key": alone). A diff's "+", "-" or " " in front of each line is read
// as part of the indentation.
func Redact(text string) string {
	if text == "" {
		return text
	}
	lines := strings.SplitAfter(text, "\n")
	var follow valueFollows
	named := -1 // the column of a secret's name (name: OPENAI_API_KEY) whose value: may follow
	for i, l := range lines {
		if follow.kind != followNone {
			var done bool
			if lines[i], done = follow.redact(l); !done {
				continue
			}
			follow = valueFollows{}
		}
		col := indentOf(strings.TrimRight(l, "\r\n"))
		var name nameSeen
		lines[i], follow, name = redactLine(l, named == col)
		switch {
		case name == secretNamed:
			named = col
		case name == otherNamed:
			named = -1 // the next entry names something else
		case strings.TrimSpace(strings.TrimLeft(l, "+-")) != "" && col < named:
			named = -1 // the mapping that held the name ended
		}
	}
	return strings.Join(lines, "")
}

// nameKeys are the keys of an entry that names a variable or header whose
// value stands under a valueKeys key beside it (name: OPENAI_API_KEY,
// value: sk-…): when the name is a secret's, so is the value.
var (
	nameKeys  = []string{"name", "key", "env", "var", "variable", "header"}
	valueKeys = []string{"value", "val"}
)

// nameSeen says what name key a line held last (see nameKeys).
type nameSeen int

const (
	noName      nameSeen = iota
	otherNamed           // a name, not a secret's
	secretNamed          // a secret's name: the value beside it is secret
)

// secretName reports whether the scalar v at the start of s, the value of
// a name key, names a secret.
func secretName(s string) bool {
	n := valueLen(s)
	if n == 0 {
		return false
	}
	return secretKey(strings.Trim(s[:n], `"'`))
}

// A valueFollows is a secret key whose value starts on the next line.
type valueFollows struct {
	kind   int
	indent int  // the key line's indentation
	json   bool // a quoted key: the value is the next line's, whatever its indentation
	seen   bool // a line of the value was redacted
}

const (
	followNone  = iota
	followBlock // a YAML block scalar: every deeper line
	followValue // a scalar on the next line (YAML: and its deeper continuations)
	followList  // the rest of a flow list ([ …) left open on the key's line
)

// redact replaces line's part of the value, or reports done when line is
// no longer part of it (it is then redacted as any other line).
func (f *valueFollows) redact(line string) (out string, done bool) {
	body := strings.TrimRight(line, "\r\n")
	if strings.TrimLeft(body, " \t+-") == "" {
		return line, false // blank lines belong to a block scalar
	}
	ind := indentOf(body)
	content := body[ind:]
	switch {
	case f.kind == followList:
		if content[0] == ']' || content[0] == '{' || content[0] == '[' {
			return "", true // the end, or a nested collection: redacted as usual
		}
		if loc := redactKey.FindStringIndex(content); loc != nil && loc[0] == 0 {
			return "", true // a key: the list ended without its bracket (a diff)
		}
		red, n, open := redactFlowList(content, 0)
		if open {
			return body[:ind] + red + line[len(body):], false
		}
		rest, _, _ := redactLine(content[n:]+line[len(body):], false)
		return body[:ind] + red + rest, false
	case f.kind == followBlock:
		if ind <= f.indent {
			return "", true
		}
	case f.json:
		if f.seen {
			return "", true
		}
		n := valueLen(content)
		if n == 0 {
			return "", true // an object or a list: its keys are redacted as usual
		}
		f.seen = true
		return body[:ind] + redactValue(content[:n]) + content[n:] + line[len(body):], false
	default:
		// A plain scalar: deeper than its key, and neither a key nor
		// a list item nor a flow collection of its own.
		if ind <= f.indent || strings.HasPrefix(content, "- ") || content[0] == '{' || content[0] == '[' ||
			!f.seen && redactKey.MatchString(" "+content) {
			return "", true
		}
		f.seen = true
	}
	return body[:ind] + Redacted + line[len(body):], false
}

// indentOf returns the column where line's content starts: after a diff's
// leading "+" or "-", the indentation, and YAML list markers ("- "), so
// that a key in a list item is as deep as its siblings below it.
func indentOf(line string) int {
	i := 0
	if i < len(line) && (line[i] == '+' || line[i] == '-') && (len(line) == 1 || line[1] == ' ' || line[1] == '\t') {
		i++
	}
	for {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
		if i+1 < len(line) && line[i] == '-' && (line[i+1] == ' ' || line[i+1] == '\t') {
			i++
			continue
		}
		return i
	}
}

// redactValue returns the scalar v redacted, keeping its quotes.
func redactValue(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		return v[:1] + Redacted + v[:1]
	}
	return Redacted
}

// redactKey matches a key and its separator: a quoted key and a colon, or a
// bare key at the start of a line, after "- ", "{", "," or a space, then ":"
// plus space (YAML) or "=".
var redactKey = regexp.MustCompile(`"((?:[^"\\]|\\.)*)"\s*:\s*|'([^']*)'\s*:\s*|(?:^|[\s{,])(?:-\s+)?([A-Za-z0-9_.-]+)(?::[ \t]+|:(?:\r?\n)?$|\s*=\s*)`)

// redactToken matches secrets recognisable by their form alone.
var redactToken = regexp.MustCompile(`(?i)\b(bearer|token|basic)(\s+)[A-Za-z0-9._~+/=-]{8,}|\b(?:sk-[A-Za-z0-9_-]{12,}|ghp_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|hf_[A-Za-z0-9]{20,})`)

// redactURLPassword matches the password in a URL's user information:
// scheme://user:password@ (an apiBase such as https://me:pw@proxy/).
// redactHeaderString matches a header written as one string ("Authorization:
// xyz", as lists of headers hold them) whose name names a secret: group 1
// is the name and its colon, group 2 the value up to the string's end.
var redactHeaderString = regexp.MustCompile(`(?i)(["']\s*[A-Za-z0-9_-]+\s*:\s*)([^"'\r\n]+)`)

var redactURLPassword = regexp.MustCompile(`\b([A-Za-z][A-Za-z0-9+.-]*://[^/\s:@"'<>]*:)[^/\s@"'<>]+@`)

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

// redactLine redacts one line, and says whether a secret key on it has
// its value on the lines that follow, and what it names last (see
// nameKeys): a secret's name makes the value keys beside it, on this line
// or the next ones, secret. valueSecret says a line before named one.
func redactLine(line string, valueSecret bool) (string, valueFollows, nameSeen) {
	var b strings.Builder
	var follow valueFollows
	name := noName
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
		lk := strings.ToLower(key)
		if slices.Contains(nameKeys, lk) {
			name, valueSecret = otherNamed, secretName(rest)
			if valueSecret {
				name = secretNamed
			}
		}
		if !secretKey(key) && !(valueSecret && slices.Contains(valueKeys, lk)) {
			continue
		}
		n := valueLen(rest)
		if n == 0 && strings.HasPrefix(rest, "[") {
			red, n, open := redactFlowList(rest, 1)
			b.WriteString(red)
			rest = rest[n:]
			if open {
				follow = valueFollows{kind: followList}
			}
			continue
		}
		if n == 0 {
			follow = followsFrom(line, rest, m[2] >= 0)
			continue
		}
		b.WriteString(redactValue(rest[:n]))
		rest = rest[n:]
	}
	out := redactToken.ReplaceAllStringFunc(b.String(), func(s string) string {
		if m := redactToken.FindStringSubmatch(s); m[1] != "" {
			return m[1] + m[2] + Redacted
		}
		return Redacted
	})
	out = redactHeaderString.ReplaceAllStringFunc(out, func(h string) string {
		m := redactHeaderString.FindStringSubmatch(h)
		name := strings.TrimSpace(strings.TrimRight(strings.TrimLeft(m[1], `"' `), ": \t"))
		if !secretKey(name) || strings.Contains(m[2], Redacted) {
			return h
		}
		return m[1] + Redacted
	})
	return redactURLPassword.ReplaceAllString(out, "${1}"+Redacted+"@"), follow, name
}

// followsFrom returns what follows a secret key on line whose value, rest,
// did not start on the line: a block scalar's indicator (| or >, with its
// chomping and indentation marks, and a comment), or nothing at all.
// quoted says the key was in double quotes (JSON).
func followsFrom(line, rest string, quoted bool) valueFollows {
	v := strings.TrimRight(rest, " \t\r\n")
	if i := strings.Index(v, " #"); i >= 0 {
		v = strings.TrimRight(v[:i], " \t")
	}
	f := valueFollows{indent: indentOf(line), json: quoted}
	switch {
	case v == "":
		f.kind = followValue
	case (v[0] == '|' || v[0] == '>') && strings.Trim(v[1:], "+-0123456789") == "":
		f.kind, f.json = followBlock, false
	}
	return f
}

// redactFlowList redacts the scalars of a flow list ([a, "b"]) that is the
// value of a secret key: s from its opening bracket (start 1) or from a line
// that continues it (start 0). It returns the redacted text, how much of s
// it covers, and whether the list goes on past the end of the line. It stops
// at a nested list or object, whose keys are redacted as any other.
func redactFlowList(s string, start int) (out string, n int, open bool) {
	var b strings.Builder
	b.WriteString(s[:start])
	i := start
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == ',') {
			b.WriteByte(s[i])
			i++
		}
		switch {
		case i >= len(s) || s[i] == '\r' || s[i] == '\n' || s[i] == '#':
			b.WriteString(s[i:])
			return b.String(), len(s), true
		case s[i] == ']':
			b.WriteByte(']')
			return b.String(), i + 1, false
		case s[i] == '{' || s[i] == '[':
			return b.String(), i, false
		}
		v := valueLen(s[i:])
		if v == 0 {
			return b.String(), i, false
		}
		b.WriteString(redactValue(s[i : i+v]))
		i += v
	}
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
