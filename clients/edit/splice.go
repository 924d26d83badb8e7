// Package edit changes values in config files without re-encoding them:
// each editor (JSON with comments, YAML, TOML) finds where a value or a new
// key goes with its parser's own positions and splices new text into the
// original bytes, then re-parses the result and checks that it differs from
// the input by exactly the values set. Everything outside the spans stays
// byte for byte: comments, commas, key order, indentation, line endings and
// a byte order mark.
//
// Client files use the editors through ParseJSON, ParseYAML and ParseTOML,
// their Set, Settable and Finish methods, and the lookup helpers beside
// them; they never touch an editor's fields.
package edit

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"sort"
	"strconv"

	"github.com/pelletier/go-toml/v2"
)

// Span replaces src[Start:End] with Text; Start == End inserts.
type Span struct {
	Start, End int
	Text       string
}

// Splice applies spans, which must not overlap, to src. Insertions at the
// same offset keep their order.
func Splice(src []byte, spans []Span) ([]byte, error) {
	s := append([]Span(nil), spans...)
	sort.SliceStable(s, func(i, j int) bool { return s[i].Start < s[j].Start })
	var out bytes.Buffer
	out.Grow(len(src) + 256)
	at := 0
	for _, sp := range s {
		if sp.Start < at || sp.End < sp.Start || sp.End > len(src) {
			return nil, fmt.Errorf("internal error: overlapping edits at byte %d", sp.Start)
		}
		out.Write(src[at:sp.Start])
		out.WriteString(sp.Text)
		at = sp.End
	}
	out.Write(src[at:])
	return out.Bytes(), nil
}

// utf8BOM is the byte order mark some editors put at the start of a file.
var utf8BOM = []byte("\xef\xbb\xbf")

// CutBOM returns src without a leading UTF-8 byte order mark, and its length.
func CutBOM(src []byte) ([]byte, int) { return cutBOM(src) }

func cutBOM(src []byte) ([]byte, int) {
	if bytes.HasPrefix(src, utf8BOM) {
		return src[len(utf8BOM):], len(utf8BOM)
	}
	return src, 0
}

// shift moves spans computed on a body that follows n bytes of prefix.
func shift(spans []Span, n int) []Span {
	for i := range spans {
		spans[i].Start += n
		spans[i].End += n
	}
	return spans
}

// newline returns the line ending the file uses, judged by its first line:
// CRLF, a lone CR (old Mac files), or LF.
func newline(src []byte) string {
	i := bytes.IndexAny(src, "\r\n")
	switch {
	case i < 0 || src[i] == '\n':
		return "\n"
	case i+1 < len(src) && src[i+1] == '\n':
		return "\r\n"
	}
	return "\r"
}

// indentUnit guesses one level of indentation from the file's lines: a tab
// when an indented line starts with one, else the smallest run of spaces
// that starts an indented line, else two spaces.
func indentUnit(src []byte) string {
	unit := 0
	for _, line := range bytes.Split(src, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if line[0] == '\t' {
			return "\t"
		}
		n := 0
		for n < len(line) && line[n] == ' ' {
			n++
		}
		if n > 0 && (unit == 0 || n < unit) {
			unit = n
		}
	}
	if unit == 0 || unit > 8 {
		unit = 2
	}
	return string(bytes.Repeat([]byte(" "), unit))
}

// A value an editor writes is an int or a string; Set refuses other types.
func checkValue(v any) error {
	switch v.(type) {
	case int, string:
		return nil
	}
	return fmt.Errorf("internal error: cannot write a %T", v)
}

// assignment is a value an edit sets, as a path of map keys (string) and
// list indexes (int) in the decoded document.
type assignment struct {
	path  []any
	value any // int or string
}

// checkEdit reports whether after, decoded, equals before, decoded, with the
// assignments made: the edit changed exactly the targeted values. conv turns
// a value into the decoder's representation of it.
func checkEdit(before, after any, sets []assignment, conv func(any) any) error {
	want := before
	for _, a := range sets {
		var err error
		want, err = assign(want, a.path, conv(a.value))
		if err != nil {
			return err
		}
	}
	if !reflect.DeepEqual(want, after) {
		return fmt.Errorf("internal error: the edited file does not read back as the intended change")
	}
	return nil
}

// assign sets path in tree to v, creating missing objects, and returns the
// tree. Maps are copied on write so that the input tree is not shared.
func assign(tree any, path []any, v any) (any, error) {
	if len(path) == 0 {
		return v, nil
	}
	switch key := path[0].(type) {
	case string:
		switch m := tree.(type) {
		case nil:
			child, err := assign(nil, path[1:], v)
			return map[string]any{key: child}, err
		case map[string]any:
			c := make(map[string]any, len(m)+1)
			maps.Copy(c, m)
			child, err := assign(m[key], path[1:], v)
			c[key] = child
			return c, err
		case map[any]any:
			c := make(map[any]any, len(m)+1)
			maps.Copy(c, m)
			child, err := assign(m[key], path[1:], v)
			c[key] = child
			return c, err
		}
	case int:
		if l, ok := tree.([]any); ok && key < len(l) {
			c := append([]any(nil), l...)
			child, err := assign(l[key], path[1:], v)
			c[key] = child
			return c, err
		}
	}
	return nil, fmt.Errorf("internal error: no place for %v in the decoded file", path)
}

func itoa(n int) string { return strconv.Itoa(n) }

// lineCol finds "line N, column M" (hujson) or "line N" (YAML) in a
// parser's message.
var lineCol = regexp.MustCompile(`line (\d+)(?:, column (\d+))?`)

// Quiet returns a parse error that says where a file fails to parse but
// quotes none of it, for files that hold secrets: the parsers' own
// messages show the offending bytes.
func Quiet(err error) error {
	if err == nil {
		return nil
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, col := de.Position()
		return fmt.Errorf("invalid syntax at line %d, column %d", row, col)
	}
	if m := lineCol.FindStringSubmatch(err.Error()); m != nil {
		if m[2] != "" {
			return fmt.Errorf("invalid syntax at line %s, column %s", m[1], m[2])
		}
		return fmt.Errorf("invalid syntax at line %s", m[1])
	}
	return errors.New("invalid syntax")
}
