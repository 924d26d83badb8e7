package edit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// TOML edits a TOML file (Codex CLI's config.toml) the way JSON and YAML
// edit theirs: go-toml's unstable parser reports the byte range of every
// key/value line and of every scalar value, so a value is replaced by
// splicing new text over its range, and a missing key is added as a new
// line after the last key/value of its table (or, for a key of the root
// table, before the first [table] header). The file is never re-emitted.
//
// Only keys of the root table and of [std] tables are added; values inside
// inline tables, arrays and array tables can be replaced but not added to.
type TOML struct {
	src  []byte // the file without a byte order mark
	bom  int
	nl   string
	tree map[string]any // the decoded document

	values []tomlValue
	tables []tomlTable // the root table first, then each [header] in order

	spans []Span
	sets  []assignment
}

// tomlValue is one key/value line as the parser saw it.
type tomlValue struct {
	path       []string // the table's path and the (dotted) key
	scalar     bool     // a string, integer, float or boolean whose range is known
	start, end int      // the value's bytes, when scalar
}

// tomlTable is the root table or a [header] table.
type tomlTable struct {
	path  []string
	array bool // [[header]]
	next  int  // where a new key/value line goes: after the table's last line that holds one
	keys  int  // how many key/value lines it holds
}

// ParseTOML parses src, which may start with a byte order mark.
func ParseTOML(src []byte) (*TOML, error) {
	body, bom := cutBOM(src)
	var tree map[string]any
	if err := toml.Unmarshal(body, &tree); err != nil {
		return nil, err
	}
	d := &TOML{src: body, bom: bom, nl: newline(body), tree: tree}
	d.tables = []tomlTable{{path: nil}}
	var p unstable.Parser
	p.Reset(body)
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			path := keyPath(e.Key())
			end := lineAfter(body, headerEnd(body, e))
			d.tables = append(d.tables, tomlTable{path: path, array: e.Kind == unstable.ArrayTable, next: end})
		case unstable.KeyValue:
			t := &d.tables[len(d.tables)-1]
			d.addValues(t.path, e)
			t.next = lineAfter(body, int(e.Raw.Offset+e.Raw.Length))
			t.keys++
		}
	}
	if err := p.Error(); err != nil {
		return nil, err
	}
	return d, nil
}

// addValues records the key/value e in the table at path, and the values
// of an inline table it holds.
func (d *TOML) addValues(path []string, e *unstable.Node) {
	v := e.Value()
	kv := tomlValue{path: append(slices.Clone(path), keyPath(e.Key())...)}
	switch v.Kind {
	case unstable.String, unstable.Integer, unstable.Float, unstable.Bool:
		kv.scalar = true
		kv.start, kv.end = int(v.Raw.Offset), int(v.Raw.Offset+v.Raw.Length)
	case unstable.InlineTable:
		for it := v.Children(); it.Next(); {
			if c := it.Node(); c.Kind == unstable.KeyValue {
				d.addValues(kv.path, c)
			}
		}
	}
	d.values = append(d.values, kv)
}

// keyPath returns the parts of a (dotted) key.
func keyPath(it unstable.Iterator) []string {
	var path []string
	for it.Next() {
		path = append(path, string(it.Node().Data))
	}
	return path
}

// headerEnd returns the offset just past a table header's closing bracket:
// the end of its last key part, then the brackets.
func headerEnd(src []byte, e *unstable.Node) int {
	at := 0
	for it := e.Key(); it.Next(); {
		r := it.Node().Raw
		at = int(r.Offset + r.Length)
	}
	for at < len(src) && src[at] != ']' {
		at++
	}
	for at < len(src) && src[at] == ']' {
		at++
	}
	return at
}

// lineAfter returns the offset of the line after the one holding at (past
// a trailing comment), or len(src) at the last line.
func lineAfter(src []byte, at int) int {
	i := bytes.IndexByte(src[at:], '\n')
	if i < 0 {
		return len(src)
	}
	return at + i + 1
}

// Get returns the decoded value at path (table keys, then the key), and
// whether it exists: strings are strings, integers int64, tables
// map[string]any.
func (d *TOML) Get(path ...string) (any, bool) {
	var cur any = d.tree
	for _, k := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[k]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// GetString returns the string at path, or "".
func (d *TOML) GetString(path ...string) string {
	v, _ := d.Get(path...)
	s, _ := v.(string)
	return s
}

// GetInt returns the integer at path; 0 when missing or not an integer.
func (d *TOML) GetInt(path ...string) int {
	v, _ := d.Get(path...)
	n, _ := v.(int64)
	if n < 0 || n > 1<<40 {
		return 0
	}
	return int(n)
}

// Tables returns the keys of the table at path, sorted.
func (d *TOML) Tables(path ...string) []string {
	v, _ := d.Get(path...)
	m, _ := v.(map[string]any)
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Settable returns an error when Set(value, path...) cannot be made.
func (d *TOML) Settable(path ...string) error {
	_, err := d.plan(path)
	return err
}

// plan returns the span that sets path.
func (d *TOML) plan(path []string) (Span, error) {
	where := strings.Join(path, ".")
	for _, v := range d.values {
		if slices.Equal(v.path, path) {
			if !v.scalar {
				return Span{}, fmt.Errorf("%s is not a single value", where)
			}
			return Span{v.start, v.end, ""}, nil
		}
	}
	if _, ok := d.Get(path...); ok {
		return Span{}, fmt.Errorf("%s is set inside an inline table or a dotted key, where ctxfit changes nothing", where)
	}
	parent := path[:len(path)-1]
	if v, ok := d.Get(parent...); ok {
		if _, isTable := v.(map[string]any); !isTable {
			return Span{}, fmt.Errorf("%s is not a table", strings.Join(parent, "."))
		}
	}
	for i := len(d.tables) - 1; i >= 0; i-- {
		t := d.tables[i]
		if !slices.Equal(t.path, parent) {
			continue
		}
		if t.array {
			return Span{}, fmt.Errorf("%s is an array of tables, where ctxfit adds no keys", strings.Join(parent, "."))
		}
		at := t.next
		if i == 0 && t.keys == 0 {
			at = d.rootStart()
		}
		return Span{at, at, ""}, nil
	}
	return Span{}, fmt.Errorf("there is no [%s] table to add %s to", strings.Join(parent, "."), path[len(path)-1])
}

// rootStart returns where the first key of a root table without keys goes:
// after the comments and blank lines that open the file, or before the
// first table header.
func (d *TOML) rootStart() int {
	end := len(d.src)
	if len(d.tables) > 1 {
		end = lineStart(d.src, d.tables[1].next-1)
	}
	at := 0
	for at < end {
		next := lineAfter(d.src, at)
		line := bytes.TrimSpace(d.src[at:next])
		if len(line) > 0 && line[0] != '#' {
			break
		}
		at = next
	}
	if at > end {
		at = end
	}
	return at
}

// lineStart returns the offset of the start of the line holding at.
func lineStart(src []byte, at int) int {
	if at <= 0 {
		return 0
	}
	return bytes.LastIndexByte(src[:at], '\n') + 1
}

// Set makes path (table keys, then the key) hold value, an int or a
// string: it replaces the value when the key exists, and adds a line
// "key = value" to its table when it does not.
func (d *TOML) Set(value any, path ...string) error {
	if err := checkValue(value); err != nil {
		return err
	}
	if len(path) == 0 {
		return errors.New("internal error: no key to set")
	}
	sp, err := d.plan(path)
	if err != nil {
		return err
	}
	if sp.Start != sp.End {
		sp.Text = tomlText(value)
		if str, ok := value.(string); ok && d.src[sp.Start] == '\'' && !strings.ContainsAny(str, "'\n\r") &&
			!bytes.HasPrefix(d.src[sp.Start:], []byte("'''")) {
			sp.Text = "'" + str + "'" // a literal string stays one
		}
	} else {
		var b strings.Builder
		if sp.Start == len(d.src) && sp.Start > 0 && d.src[sp.Start-1] != '\n' {
			b.WriteString(d.nl)
		}
		b.WriteString(tomlKey(path[len(path)-1]) + " = " + tomlText(value) + d.nl)
		sp.Text = b.String()
	}
	d.spans = append(d.spans, sp)
	p := make([]any, len(path))
	for i, k := range path {
		p[i] = k
	}
	d.sets = append(d.sets, assignment{path: p, value: value})
	return nil
}

// tomlText renders an int or a string as TOML: a string as a basic string,
// whose escapes are JSON's.
func tomlText(v any) string {
	s, ok := v.(string)
	if !ok {
		return itoa(v.(int))
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

// tomlKey renders a key: bare when it may be, else quoted.
func tomlKey(k string) string {
	bare := k != ""
	for _, c := range k {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			bare = false
		}
	}
	if bare {
		return k
	}
	return tomlText(k)
}

// Finish returns the edited file, with its byte order mark, and the spans
// that made it. It checks that the result parses and that, decoded, it
// differs from the input only by the values set.
func (d *TOML) Finish() ([]byte, []Span, error) {
	spans := slices.Clone(d.spans)
	body, err := Splice(d.src, spans)
	if err != nil {
		return nil, nil, err
	}
	var after map[string]any
	if err := toml.Unmarshal(body, &after); err != nil {
		return nil, nil, fmt.Errorf("internal error: the edited file does not parse: %w", err)
	}
	var before map[string]any
	if err := toml.Unmarshal(d.src, &before); err != nil {
		return nil, nil, err
	}
	conv := func(v any) any {
		if n, ok := v.(int); ok {
			return int64(n)
		}
		return v
	}
	if err := checkEdit(any(before), any(after), d.sets, conv); err != nil {
		return nil, nil, err
	}
	out := append(append([]byte(nil), utf8BOM[:d.bom]...), body...)
	return out, shift(spans, d.bom), nil
}

// DecodeTOML reads TOML into maps, slices and Go scalars.
func DecodeTOML(b []byte) (any, error) {
	var x map[string]any
	err := toml.Unmarshal(b, &x)
	return x, err
}
