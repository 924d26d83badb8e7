package logfile

import (
	"bytes"
	"encoding/json"
	"io"
	"strconv"
	"strings"
)

// JSONRecord returns one line of the log as a JSON object, for `ctxfit
// logs --json`. A line written under --log-format json is one already and
// comes back compacted; a line of log/slog's text format (key=value pairs,
// values quoted as Go quotes them where needed) becomes an object with the
// same keys in the same order, every value a string; anything else becomes
// {"msg": line}. The line has no trailing newline.
func JSONRecord(line []byte) []byte {
	line = bytes.TrimRight(line, "\r\n")
	if bytes.HasPrefix(bytes.TrimSpace(line), []byte("{")) {
		var b bytes.Buffer
		if json.Compact(&b, line) == nil {
			return b.Bytes()
		}
	}
	keys, values, ok := parseText(string(line))
	if !ok {
		keys, values = []string{"msg"}, []string{string(line)}
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		vb, _ := json.Marshal(values[i])
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// parseText reads a line of slog's text format: key=value pairs separated
// by spaces, a key or value that needs it in Go's double quotes. ok is
// false for a line that is not such pairs.
func parseText(s string) (keys, values []string, ok bool) {
	for {
		s = strings.TrimLeft(s, " ")
		if s == "" {
			return keys, values, len(keys) > 0
		}
		k, rest, ok := token(s, true)
		if !ok || !strings.HasPrefix(rest, "=") {
			return nil, nil, false
		}
		v, rest, ok := token(rest[1:], false)
		if !ok {
			return nil, nil, false
		}
		keys, values, s = append(keys, k), append(values, v), rest
	}
}

// token reads a key (up to '=') or a value (up to a space) at the start of
// s, quoted or bare, and returns it with the rest of s.
func token(s string, key bool) (string, string, bool) {
	if strings.HasPrefix(s, `"`) {
		q, err := strconv.QuotedPrefix(s)
		if err != nil {
			return "", "", false
		}
		v, err := strconv.Unquote(q)
		return v, s[len(q):], err == nil
	}
	stop := " "
	if key {
		stop = "= "
	}
	i := strings.IndexAny(s, stop)
	if i < 0 {
		i = len(s)
	}
	if key && i == 0 {
		return "", "", false
	}
	return s[:i], s[i:], true
}

// JSONLines is an io.Writer that writes each complete line written to it
// to W as JSONRecord and a newline, keeping a partial line until the rest
// comes.
type JSONLines struct {
	W       io.Writer
	partial []byte
}

// Write converts the complete lines of p; it reports len(p) unless W fails.
func (j *JSONLines) Write(p []byte) (int, error) {
	j.partial = append(j.partial, p...)
	for {
		i := bytes.IndexByte(j.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := j.partial[:i]
		j.partial = j.partial[i+1:]
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if _, err := j.W.Write(append(JSONRecord(line), '\n')); err != nil {
			return 0, err
		}
	}
}

// Flush writes a last line that has no newline.
func (j *JSONLines) Flush() error {
	if len(bytes.TrimSpace(j.partial)) == 0 {
		return nil
	}
	_, err := j.W.Write(append(JSONRecord(j.partial), '\n'))
	j.partial = nil
	return err
}
