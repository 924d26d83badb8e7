package clients

import (
	"bytes"
	"fmt"
	"maps"
	"reflect"
	"sort"
	"strconv"
)

// The editors never re-encode a file: they find where a value or a new key
// goes using the parser's positions, and splice new text into the original
// bytes. Everything outside the spans stays byte for byte: comments, commas,
// key order, indentation, line endings and a byte order mark.

// span replaces src[start:end] with text; start == end inserts.
type span struct {
	start, end int
	text       string
}

// splice applies spans, which must not overlap, to src. Insertions at the
// same offset keep their order.
func splice(src []byte, spans []span) ([]byte, error) {
	s := append([]span(nil), spans...)
	sort.SliceStable(s, func(i, j int) bool { return s[i].start < s[j].start })
	var out bytes.Buffer
	out.Grow(len(src) + 256)
	at := 0
	for _, sp := range s {
		if sp.start < at || sp.end < sp.start || sp.end > len(src) {
			return nil, fmt.Errorf("internal error: overlapping edits at byte %d", sp.start)
		}
		out.Write(src[at:sp.start])
		out.WriteString(sp.text)
		at = sp.end
	}
	out.Write(src[at:])
	return out.Bytes(), nil
}

// utf8BOM is the byte order mark some editors put at the start of a file.
var utf8BOM = []byte("\xef\xbb\xbf")

// cutBOM returns src without a leading UTF-8 byte order mark, and its length.
func cutBOM(src []byte) ([]byte, int) {
	if bytes.HasPrefix(src, utf8BOM) {
		return src[len(utf8BOM):], len(utf8BOM)
	}
	return src, 0
}

// shift moves spans computed on a body that follows n bytes of prefix.
func shift(spans []span, n int) []span {
	for i := range spans {
		spans[i].start += n
		spans[i].end += n
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

// assignment is a value an edit sets, as a path of map keys (string) and
// list indexes (int) in the decoded document.
type assignment struct {
	path  []any
	value int
}

// checkEdit reports whether after, decoded, equals before, decoded, with the
// assignments made: the edit changed exactly the targeted values. num turns
// an int into the decoder's representation of numbers.
func checkEdit(before, after any, sets []assignment, num func(int) any) error {
	want := before
	for _, a := range sets {
		var err error
		want, err = assign(want, a.path, num(a.value))
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
