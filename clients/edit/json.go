package edit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/tailscale/hujson"
)

// JSON edits a JSON file with comments and trailing commas (HuJSON, as
// Continue's and Zed's configs are). It parses with hujson, which keeps the
// byte offsets of every value and the exact whitespace and comments around
// it, and splices new values and keys into the original bytes at those
// offsets, so that nothing else in the file changes. Added keys go on their
// own lines, in the file's indentation and line endings, and follow its
// trailing-comma style.
//
// Clients look values up with Member, Str and Num, queue changes with Set
// (after checking them with Settable), and get the new bytes from Finish,
// which also checks that the result parses and reads back as intended.
type JSON struct {
	src  []byte // the file without a byte order mark
	bom  int    // length of the byte order mark cut from the file
	root hujson.Value
	nl   string // the file's line ending
	unit string // one level of indentation

	spans   []Span
	sets    []assignment
	pending map[*hujson.Value]*newObject // keys to add to existing objects
	order   []*hujson.Value              // pending's keys in the order they were first used
}

// newObject holds the keys to add to one object.
type newObject struct {
	members []*newMember
}

// newMember is a key to add: a value (an int or a string), or an object of
// further new keys.
type newMember struct {
	name  string
	value any
	obj   *newObject
}

func (o *newObject) get(name string) *newMember {
	for _, m := range o.members {
		if m.name == name {
			return m
		}
	}
	return nil
}

// Root returns the document's top value, for the lookups (Member, Str, Num)
// and for Set.
func (d *JSON) Root() *hujson.Value { return &d.root }

// ParseJSON parses src, which may start with a byte order mark.
func ParseJSON(src []byte) (*JSON, error) {
	body, bom := cutBOM(src)
	v, err := ParseHuJSON(body)
	if err != nil {
		return nil, err
	}
	return &JSON{
		src: body, bom: bom, root: v,
		nl: newline(body), unit: indentUnit(body),
		pending: map[*hujson.Value]*newObject{},
	}, nil
}

// Object returns v's object, or nil when v is not one.
func Object(v *hujson.Value) *hujson.Object {
	if v == nil {
		return nil
	}
	o, _ := v.Value.(*hujson.Object)
	return o
}

// Array returns v's array, or nil when v is not one.
func Array(v *hujson.Value) *hujson.Array {
	if v == nil {
		return nil
	}
	a, _ := v.Value.(*hujson.Array)
	return a
}

// Member returns the value of key name in object v, or nil. With duplicate
// keys it returns the last, as JavaScript's JSON.parse and Go's decoder
// read them.
func Member(v *hujson.Value, name string) *hujson.Value {
	o := Object(v)
	if o == nil {
		return nil
	}
	var found *hujson.Value
	for i := range o.Members {
		m := &o.Members[i]
		if lit, ok := m.Name.Value.(hujson.Literal); ok && lit.String() == name {
			found = &m.Value
		}
	}
	return found
}

// Str returns the string value of key name in object v, or "".
func Str(v *hujson.Value, name string) string {
	m := Member(v, name)
	if m == nil {
		return ""
	}
	if lit, ok := m.Value.(hujson.Literal); ok && lit.Kind() == '"' {
		return lit.String()
	}
	return ""
}

// Num returns the integer value of key name in object v; 0 when it is
// missing or not an integer.
func Num(v *hujson.Value, name string) int {
	m := Member(v, name)
	if m == nil {
		return 0
	}
	if lit, ok := m.Value.(hujson.Literal); ok && lit.Kind() == '0' {
		return int(lit.Int())
	}
	return 0
}

// Settable returns an error when Set(v, …, keys…) cannot be made: when a
// key on the way exists but is not an object.
func (d *JSON) Settable(v *hujson.Value, keys ...string) error {
	for i, k := range keys[:len(keys)-1] {
		next := Member(v, k)
		if next == nil || isNull(next) {
			return nil
		}
		if Object(next) == nil {
			return fmt.Errorf("%s is not an object", strings.Join(keys[:i+1], "."))
		}
		v = next
	}
	return nil
}

// Set makes keys (a path of object keys under v, which is at path in the
// document) hold value, an int or a string: it replaces the value when the
// key exists and adds the key, and the objects on the way, when it does not.
// It changes nothing and returns Settable's error when a key on the way is
// not an object.
func (d *JSON) Set(v *hujson.Value, path []any, value any, keys ...string) error {
	if err := checkValue(value); err != nil {
		return err
	}
	if Object(v) == nil {
		return fmt.Errorf("not an object")
	}
	if err := d.Settable(v, keys...); err != nil {
		return err
	}
	full := append(append([]any(nil), path...), toAny(keys)...)
	d.sets = append(d.sets, assignment{path: full, value: value})
	for i, k := range keys {
		next := Member(v, k)
		if next == nil {
			d.add(v, keys[i:], value)
			return nil
		}
		if i == len(keys)-1 {
			d.spans = append(d.spans, Span{next.StartOffset, next.EndOffset, jsonText(value)})
			return nil
		}
		if isNull(next) { // "completionOptions": null becomes an object
			d.add(next, keys[i+1:], value)
			return nil
		}
		v = next
	}
	return nil
}

// jsonText renders an int or a string as JSON.
func jsonText(v any) string {
	if s, ok := v.(string); ok {
		return string(hujson.String(s))
	}
	return itoa(v.(int))
}

// add queues the missing keys to create in object v.
func (d *JSON) add(v *hujson.Value, keys []string, value any) {
	o := d.pending[v]
	if o == nil {
		o = &newObject{}
		d.pending[v] = o
		d.order = append(d.order, v)
	}
	addMembers(o, keys, value)
}

// Finish returns the edited file, with its byte order mark, and the spans
// that made it (in the file's offsets). It checks that the result parses and
// that, decoded, it differs from the input only by the values set.
func (d *JSON) Finish() ([]byte, []Span, error) {
	spans := append([]Span(nil), d.spans...)
	for _, v := range d.order {
		spans = append(spans, d.insert(v, d.pending[v])...)
	}
	body, err := Splice(d.src, spans)
	if err != nil {
		return nil, nil, err
	}
	before, err := DecodeJSON(d.src)
	if err != nil {
		return nil, nil, err
	}
	after, err := DecodeJSON(body)
	if err != nil {
		return nil, nil, fmt.Errorf("internal error: the edited file does not parse: %w", err)
	}
	conv := func(v any) any {
		if n, ok := v.(int); ok {
			return json.Number(itoa(n))
		}
		return v
	}
	if err := checkEdit(before, after, d.sets, conv); err != nil {
		return nil, nil, err
	}
	out := append(append([]byte(nil), utf8BOM[:d.bom]...), body...)
	return out, shift(spans, d.bom), nil
}

// ParseHuJSON parses b, accepting, as Continue does, a file that ends in a
// line comment without a line break. The values' offsets are b's either way.
func ParseHuJSON(b []byte) (hujson.Value, error) {
	v, err := hujson.Parse(b)
	if err != nil && len(b) > 0 && b[len(b)-1] != '\n' {
		if v2, err2 := hujson.Parse(append(b[:len(b):len(b)], '\n')); err2 == nil {
			return v2, nil
		}
	}
	return v, err
}

// DecodeJSON reads HuJSON into maps, slices and json.Numbers.
func DecodeJSON(b []byte) (any, error) {
	// Standardize blanks comments in place, in the parsed bytes: parse a copy.
	v, err := ParseHuJSON(append([]byte(nil), b...))
	if err != nil {
		return nil, err
	}
	v.Standardize()
	dec := json.NewDecoder(bytes.NewReader(v.Pack()))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return nil, err
	}
	return x, nil
}

// isNull reports whether v is the literal null.
func isNull(v *hujson.Value) bool {
	lit, ok := v.Value.(hujson.Literal)
	return ok && lit.Kind() == 'n'
}

// insert returns the spans that add o's members at the end of object v, or
// that put an object holding them in place of null.
func (d *JSON) insert(v *hujson.Value, o *newObject) []Span {
	if isNull(v) {
		return []Span{{v.StartOffset, v.EndOffset, d.inline(o)}}
	}
	obj := Object(v)
	closing := v.EndOffset - 1 // the '}'
	extra := obj.AfterExtra    // between the last comma (or '{') and the '}'
	extraStart := closing - len(extra)
	nlAt := lastNewline(extra) // where the '}' line starts within extra, or -1

	if len(obj.Members) == 0 {
		if nlAt < 0 { // {} or { }: stay on one line
			text := d.inlineMembers(o, ": ", ", ")
			if len(extra) > 0 && extra[0] == ' ' {
				text = " " + text
			}
			return []Span{{extraStart, extraStart, text}}
		}
		closeIndent := indentAfter(extra, nlAt)
		return []Span{{extraStart + d.lineEnd(extra, nlAt), extraStart + d.lineEnd(extra, nlAt),
			d.lines(o, closeIndent+d.unit, d.unit, false)}}
	}

	last := &obj.Members[len(obj.Members)-1]
	trailingComma := last.Value.AfterExtra != nil
	sep := d.colon(obj)
	memberNL := lastNewline(last.Name.BeforeExtra)
	if memberNL < 0 { // one line: {"a": 1} → {"a": 1, "b": 2}
		comma := ", "
		if len(last.Name.BeforeExtra) == 0 {
			comma = "," // minified
		}
		text := d.inlineMembers(o, sep, comma)
		if trailingComma {
			at := last.Value.EndOffset + len(last.Value.AfterExtra) + 1
			return []Span{{at, at, comma[1:] + text + ","}}
		}
		return []Span{{last.Value.EndOffset, last.Value.EndOffset, comma + text}}
	}

	indent := indentAfter(last.Name.BeforeExtra, memberNL)
	unit := d.unit
	if nlAt >= 0 {
		if ci := indentAfter(extra, nlAt); strings.HasPrefix(indent, ci) && len(indent) > len(ci) {
			unit = indent[len(ci):]
		}
	}
	var spans []Span
	if !trailingComma {
		spans = append(spans, Span{last.Value.EndOffset, last.Value.EndOffset, ","})
	}
	at := closing // the '}' shares the last member's line
	if nlAt >= 0 {
		at = extraStart + d.lineEnd(extra, nlAt)
	}
	return append(spans, Span{at, at, d.lines(o, indent, unit, trailingComma)})
}

// lines renders o's members one per line at indent (nested objects one unit
// deeper), each line starting with a line break; commas separate them, and
// end the last when trailing is set.
func (d *JSON) lines(o *newObject, indent, unit string, trailing bool) string {
	var b strings.Builder
	for i, m := range o.members {
		b.WriteString(d.nl + indent)
		b.WriteString(string(hujson.String(m.name)) + ": ")
		if m.obj != nil {
			b.WriteString("{" + d.lines(m.obj, indent+unit, unit, false) + d.nl + indent + "}")
		} else {
			b.WriteString(jsonText(m.value))
		}
		if i < len(o.members)-1 || trailing {
			b.WriteByte(',')
		}
	}
	return b.String()
}

// inline renders o as a one-line object.
func (d *JSON) inline(o *newObject) string {
	return "{" + d.inlineMembers(o, ": ", ", ") + "}"
}

// inlineMembers renders o's members on one line, with sep between key and
// value and comma between members.
func (d *JSON) inlineMembers(o *newObject, sep, comma string) string {
	parts := make([]string, len(o.members))
	for i, m := range o.members {
		var v string
		if m.obj == nil {
			v = jsonText(m.value)
		} else {
			v = "{" + d.inlineMembers(m.obj, sep, comma) + "}"
		}
		parts[i] = string(hujson.String(m.name)) + sep + v
	}
	return strings.Join(parts, comma)
}

// colon returns what goes between a key and its value in obj: ": " unless
// its first member is written otherwise.
func (d *JSON) colon(obj *hujson.Object) string {
	m := obj.Members[0]
	before, after := m.Name.AfterExtra, m.Value.BeforeExtra
	if onlyBlanks(before) && onlyBlanks(after) {
		return string(before) + ":" + string(after)
	}
	return ": "
}

// lineEnd returns the offset in extra where text for a new line goes: at
// the line break at nlAt, before its carriage return.
func (d *JSON) lineEnd(extra []byte, nlAt int) int {
	if nlAt > 0 && extra[nlAt-1] == '\r' {
		return nlAt - 1
	}
	return nlAt
}

// lastNewline returns the offset of the last line break in extra (spaces
// and comments) that is not inside a block comment, or -1.
func lastNewline(extra []byte) int {
	last := -1
	for i := 0; i < len(extra); i++ {
		switch {
		case extra[i] == '\n':
			last = i
		case bytes.HasPrefix(extra[i:], []byte("/*")):
			end := bytes.Index(extra[i+2:], []byte("*/"))
			if end < 0 {
				return last
			}
			i += 2 + end + 1
		case bytes.HasPrefix(extra[i:], []byte("//")):
			end := bytes.IndexByte(extra[i:], '\n')
			if end < 0 {
				return last
			}
			i += end - 1 // the loop sees the '\n' next
		}
	}
	return last
}

// indentAfter returns the blanks that follow the line break at nlAt in
// extra, or "" when a comment follows them.
func indentAfter(extra []byte, nlAt int) string {
	rest := extra[nlAt+1:]
	if !onlyBlanks(rest) {
		n := 0
		for n < len(rest) && (rest[n] == ' ' || rest[n] == '\t') {
			n++
		}
		return string(rest[:n])
	}
	return string(rest)
}

func onlyBlanks(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' {
			return false
		}
	}
	return true
}

func toAny(keys []string) []any {
	a := make([]any, len(keys))
	for i, k := range keys {
		a[i] = k
	}
	return a
}

// NumAt returns the integer at the path of keys under v, and whether the
// path exists.
func NumAt(v *hujson.Value, keys ...string) (int, bool) {
	for _, k := range keys[:len(keys)-1] {
		v = Member(v, k)
	}
	if Member(v, keys[len(keys)-1]) == nil {
		return 0, false
	}
	return Num(v, keys[len(keys)-1]), true
}
