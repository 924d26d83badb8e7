package edit

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// YAML edits a YAML file the way jsonDoc edits JSON: no YAML library
// writes a file back unchanged, so it parses with go.yaml.in/yaml/v3, turns
// each node's line and column (columns count characters) into a byte offset,
// and splices new text into the original bytes. Added keys go at the end of
// their mapping, in the file's indentation and line endings; a byte order
// mark stays.
//
// Values it cannot place safely (anchors, aliases, tags, multi-line
// scalars, non-empty flow mappings that would need a new key) make Settable
// return an error, so that the client can skip that entry with a warning.
type YAML struct {
	src   []byte // the file without a byte order mark
	bom   int
	root  *yaml.Node // the document's top value
	lines []int      // byte offset where each line starts; lines[0] is line 1
	nl    string
	unit  int // spaces in one level of indentation

	spans   []Span
	sets    []assignment
	pending map[*yaml.Node]*yamlAdd
	order   []*yaml.Node
}

// yamlAdd holds the keys to add to one mapping, or to the empty value of
// key, or to put in place of a null.
type yamlAdd struct {
	key     *yaml.Node // set when the value is empty (key: with nothing after it)
	replace bool       // the value is an explicit null (~), to become a flow mapping
	obj     newObject
}

// Root returns the document's top value; nil for an empty file.
func (d *YAML) Root() *yaml.Node { return d.root }

// ParseYAML parses src, which may start with a byte order mark.
func ParseYAML(src []byte) (*YAML, error) {
	body, bom := cutBOM(src)
	var doc yaml.Node
	if err := yaml.Unmarshal(body, &doc); err != nil {
		return nil, err
	}
	if _, err := DecodeYAML(body); err != nil { // duplicate keys and the like
		return nil, err
	}
	d := &YAML{src: body, bom: bom, nl: newline(body), pending: map[*yaml.Node]*yamlAdd{}}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		d.root = doc.Content[0]
	}
	d.lines = lineStarts(body)
	d.unit = yamlUnit(d.root)
	return d, nil
}

// DecodeYAML reads YAML into maps, slices and Go scalars.
func DecodeYAML(b []byte) (any, error) {
	var x any
	err := yaml.Unmarshal(b, &x)
	return x, err
}

// lineStarts returns the offset of each line's start, breaking lines where
// the YAML scanner does: CR LF, CR, LF, NEL, LS and PS.
func lineStarts(b []byte) []int {
	starts := []int{0}
	for i := 0; i < len(b); {
		n := lineBreak(b, i)
		if n == 0 {
			i++
			continue
		}
		i += n
		starts = append(starts, i)
	}
	return starts
}

// lineBreak returns the length of the line break at b[i:], or 0.
func lineBreak(b []byte, i int) int {
	switch {
	case b[i] == '\r' && i+1 < len(b) && b[i+1] == '\n':
		return 2
	case b[i] == '\r' || b[i] == '\n':
		return 1
	case bytes.HasPrefix(b[i:], []byte("\u0085")):
		return 2
	case bytes.HasPrefix(b[i:], []byte("\u2028")), bytes.HasPrefix(b[i:], []byte("\u2029")):
		return 3
	}
	return 0
}

// yamlUnit finds the file's indentation step: how much deeper a block
// mapping sits than the key that holds it. Two when nothing shows it.
func yamlUnit(n *yaml.Node) int {
	seq := 0
	var walk func(n *yaml.Node) int
	walk = func(n *yaml.Node) int {
		if n == nil {
			return 0
		}
		if n.Kind == yaml.MappingNode && n.Style&yaml.FlowStyle == 0 {
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if v.Line > k.Line && v.Column > k.Column && v.Style&yaml.FlowStyle == 0 {
					switch v.Kind {
					case yaml.MappingNode:
						return v.Column - k.Column
					case yaml.SequenceNode:
						if seq == 0 {
							seq = v.Column - k.Column
						}
					}
				}
			}
		}
		for _, c := range n.Content {
			if u := walk(c); u > 0 {
				return u
			}
		}
		return 0
	}
	if u := walk(n); u > 0 && u <= 8 {
		return u
	}
	if seq > 0 && seq <= 8 {
		return seq
	}
	return 2
}

// offset returns the byte offset of a node's line and column (1-based,
// columns counting characters).
func (d *YAML) offset(n *yaml.Node) (int, error) {
	if n.Line < 1 || n.Line > len(d.lines) {
		return 0, errors.New("position outside the file")
	}
	at := d.lines[n.Line-1]
	for col := 1; col < n.Column; col++ {
		if at >= len(d.src) || lineBreak(d.src, at) > 0 {
			return 0, errors.New("position outside its line")
		}
		_, size := utf8.DecodeRune(d.src[at:])
		at += size
	}
	return at, nil
}

// Mapping returns n when it is a mapping (not an alias of one), else nil.
func Mapping(n *yaml.Node) *yaml.Node {
	if n != nil && n.Kind == yaml.MappingNode {
		return n
	}
	return nil
}

// Get returns the key and value nodes of key in mapping m, or nils.
func Get(m *yaml.Node, key string) (k, v *yaml.Node) {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if c := m.Content[i]; c.Kind == yaml.ScalarNode && c.Value == key {
			k, v = c, m.Content[i+1]
		}
	}
	return k, v
}

// Text returns the scalar value of key in m, following an alias; "" when
// missing or not a scalar.
func Text(m *yaml.Node, key string) string {
	_, v := Get(m, key)
	if v != nil && v.Kind == yaml.AliasNode {
		v = v.Alias
	}
	if v == nil || v.Kind != yaml.ScalarNode || v.ShortTag() == "!!null" {
		return ""
	}
	return v.Value
}

// Integer returns the integer value of key in m; 0 when missing or not an
// integer.
func Integer(m *yaml.Node, key string) int {
	_, v := Get(m, key)
	if v != nil && v.Kind == yaml.AliasNode {
		v = v.Alias
	}
	if v == nil || v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int" {
		return 0
	}
	n, err := strconv.ParseInt(strings.ReplaceAll(v.Value, "_", ""), 0, 64)
	if err != nil || n < 0 || n > 1<<40 {
		return 0
	}
	return int(n)
}

// isEmpty reports whether v is the empty value of "key:" with nothing after.
func isEmpty(v *yaml.Node) bool {
	return v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null" && v.Value == "" && v.Style == 0
}

// Settable returns an error when Set(m, …, keys…) cannot be made safely.
func (d *YAML) Settable(m *yaml.Node, keys ...string) error {
	for i, k := range keys {
		where := strings.Join(keys[:i+1], ".")
		if m.Kind != yaml.MappingNode {
			return fmt.Errorf("%s is not a mapping", strings.Join(keys[:i], "."))
		}
		if m.Anchor != "" {
			return fmt.Errorf("%s is shared through a YAML anchor", where)
		}
		_, v := Get(m, k)
		if kn, _ := Get(m, "<<"); kn != nil && v == nil { // the value may live in the merged mapping
			what := "the entry"
			if i > 0 {
				what = strings.Join(keys[:i], ".")
			}
			return fmt.Errorf("%s takes %s from a YAML merge key (<<), shared with other entries", what, k)
		}
		if v == nil {
			if m.Style&yaml.FlowStyle != 0 && len(m.Content) > 0 {
				what := "the entry"
				if i > 0 {
					what = strings.Join(keys[:i], ".")
				}
				return fmt.Errorf("%s is written in flow style ({...}), where ctxfit adds no keys", what)
			}
			return nil
		}
		if i == len(keys)-1 {
			_, _, err := d.ValueSpan(v, m.Style&yaml.FlowStyle != 0)
			if err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
			return nil
		}
		switch {
		case v.Kind == yaml.AliasNode:
			return fmt.Errorf("%s is a YAML alias (*name) shared with other entries", where)
		case v.Kind == yaml.MappingNode:
			m = v
		case isEmpty(v):
			return nil
		case v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null":
			if _, _, err := d.ValueSpan(v, m.Style&yaml.FlowStyle != 0); err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
			return nil
		default:
			return fmt.Errorf("%s is not a mapping", where)
		}
	}
	return nil
}

// Set makes keys (a path of mapping keys under m, which is at path in the
// document) hold value (an int or a string), replacing the value or adding the missing keys. It
// changes nothing and returns Settable's error when that cannot be done.
func (d *YAML) Set(m *yaml.Node, path []any, value any, keys ...string) error {
	if err := checkValue(value); err != nil {
		return err
	}
	if err := d.Settable(m, keys...); err != nil {
		return err
	}
	n := value
	d.sets = append(d.sets, assignment{path: append(append([]any(nil), path...), toAny(keys)...), value: n})
	for i, k := range keys {
		kn, v := Get(m, k)
		flow := m.Style&yaml.FlowStyle != 0
		switch {
		case v == nil:
			d.add(m, nil, keys[i:], n)
			return nil
		case i == len(keys)-1:
			start, end, _ := d.ValueSpan(v, flow)
			d.spans = append(d.spans, Span{start, end, yamlTextLike(n, v.Style)})
			return nil
		case isEmpty(v):
			d.add(v, kn, keys[i+1:], n)
			return nil
		case v.Kind == yaml.ScalarNode: // an explicit null (~): becomes a flow mapping
			d.add(v, nil, keys[i+1:], n)
			d.pending[v].replace = true
			return nil
		}
		m = v
	}
	return nil
}

// add queues keys to create in mapping m, or under key when m is its empty
// value.
func (d *YAML) add(m, key *yaml.Node, keys []string, n any) {
	a := d.pending[m]
	if a == nil {
		a = &yamlAdd{key: key}
		d.pending[m] = a
		d.order = append(d.order, m)
	}
	addMembers(&a.obj, keys, n)
}

// addMembers adds the path keys to o, creating the objects on the way, with
// n as the last key's value; the JSON and YAML editors both queue additions
// this way.
func addMembers(o *newObject, keys []string, n any) {
	for i, k := range keys {
		m := o.get(k)
		if m == nil {
			m = &newMember{name: k}
			o.members = append(o.members, m)
		}
		if i == len(keys)-1 {
			m.value, m.obj = n, nil
			return
		}
		if m.obj == nil {
			m.obj = &newObject{}
		}
		o = m.obj
	}
}

// ValueSpan returns where the text of scalar v starts and ends. It refuses
// what it cannot replace on its own: aliases, anchors, tags, block scalars
// and scalars that run over several lines.
func (d *YAML) ValueSpan(v *yaml.Node, flow bool) (int, int, error) {
	if v.Kind == yaml.AliasNode {
		return 0, 0, errors.New("the value is a YAML alias (*name)")
	}
	if v.Kind == yaml.MappingNode && v.Style&yaml.FlowStyle != 0 && len(v.Content) == 0 {
		return d.emptyFlowSpan(v)
	}
	if v.Kind != yaml.ScalarNode {
		return 0, 0, errors.New("the value is not a single value")
	}
	start, err := d.offset(v)
	if err != nil {
		return 0, 0, err
	}
	if start < len(d.src) && (d.src[start] == '&' || d.src[start] == '!') {
		return 0, 0, errors.New("the value carries a YAML anchor or tag")
	}
	lineEnd := len(d.src)
	if v.Line < len(d.lines) {
		lineEnd = d.lines[v.Line]
	}
	line := d.src[start:lineEnd]
	end := -1
	switch v.Style {
	case yaml.DoubleQuotedStyle:
		for i := 1; i < len(line); i++ {
			if line[i] == '\\' {
				i++
			} else if line[i] == '"' {
				end = i + 1
				break
			}
		}
	case yaml.SingleQuotedStyle:
		for i := 1; i < len(line); i++ {
			if line[i] == '\'' {
				if i+1 < len(line) && line[i+1] == '\'' {
					i++
					continue
				}
				end = i + 1
				break
			}
		}
	case 0: // plain
		end = 0
		for end < len(line) && lineBreak(line, end) == 0 {
			c := line[end]
			if (c == '#' && end > 0 && (line[end-1] == ' ' || line[end-1] == '\t')) ||
				(flow && (c == ',' || c == ']' || c == '}')) {
				break
			}
			end++
		}
		for end > 0 && (line[end-1] == ' ' || line[end-1] == '\t') {
			end--
		}
		if string(line[:end]) != v.Value {
			return 0, 0, errors.New("the value runs over several lines")
		}
	default:
		return 0, 0, errors.New("the value is a block scalar (| or >)")
	}
	if end <= 0 {
		return 0, 0, errors.New("the value runs over several lines")
	}
	return start, start + end, nil
}

// emptyFlowSpan returns where an empty flow mapping "{ }" starts and ends.
func (d *YAML) emptyFlowSpan(v *yaml.Node) (int, int, error) {
	start, err := d.offset(v)
	if err != nil {
		return 0, 0, err
	}
	i := start
	if i >= len(d.src) || d.src[i] != '{' {
		return 0, 0, errors.New("the value carries a YAML anchor or tag")
	}
	for i++; i < len(d.src) && (d.src[i] == ' ' || d.src[i] == '\t'); i++ {
	}
	if i >= len(d.src) || d.src[i] != '}' {
		return 0, 0, errors.New("the value runs over several lines")
	}
	return start, i + 1, nil
}

// Finish returns the edited file, with its byte order mark, and the spans
// that made it. It checks that the result parses and that, decoded, it
// differs from the input only by the values set.
func (d *YAML) Finish() ([]byte, []Span, error) {
	var adds []Span
	var depth []int
	for _, m := range d.order {
		sp, indent, err := d.insert(m, d.pending[m])
		if err != nil {
			return nil, nil, err
		}
		adds, depth = append(adds, sp), append(depth, indent)
	}
	// Lines added at the same place go deepest first: a key added to a
	// nested mapping that ends where its parent ends belongs above the key
	// added to the parent.
	order := make([]int, len(adds))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool { return depth[order[i]] > depth[order[j]] })
	spans := append([]Span(nil), d.spans...)
	for _, i := range order {
		spans = append(spans, adds[i])
	}
	body, err := Splice(d.src, spans)
	if err != nil {
		return nil, nil, err
	}
	before, err := DecodeYAML(d.src)
	if err != nil {
		return nil, nil, err
	}
	after, err := DecodeYAML(body)
	if err != nil {
		return nil, nil, fmt.Errorf("internal error: the edited file does not parse: %w", err)
	}
	if err := checkEdit(before, after, d.sets, func(v any) any { return v }); err != nil {
		return nil, nil, err
	}
	out := append(append([]byte(nil), utf8BOM[:d.bom]...), body...)
	return out, shift(spans, d.bom), nil
}

// insert returns the span that adds a's keys, and the indentation of the
// added lines: new lines after the last line of block mapping m, or after
// the line of a.key when m is its empty value, or a flow mapping in place of
// an empty "{}" or a null.
func (d *YAML) insert(m *yaml.Node, a *yamlAdd) (Span, int, error) {
	if a.replace || (m.Kind == yaml.MappingNode && m.Style&yaml.FlowStyle != 0) {
		start, end, err := d.ValueSpan(m, true)
		if err != nil {
			return Span{}, 0, err
		}
		return Span{start, end, inlineYAML(&a.obj)}, 0, nil
	}
	var line, indent int // insert before line (1-based), at indent
	if a.key != nil {
		line, indent = a.key.Line+1, a.key.Column-1+d.unit
	} else {
		line, indent = d.blockEnd(m)+1, m.Column-1
	}
	at := len(d.src)
	if line-1 < len(d.lines) {
		at = d.lines[line-1]
	}
	var b strings.Builder
	if at == len(d.src) && at > 0 && d.src[at-1] != '\n' && d.src[at-1] != '\r' {
		// The file's last line has no line break. Adding one would change
		// a block scalar ending there ("|" keeps one final line break), so
		// the keys go above m's last key instead, when that starts a line.
		if k := d.lastKeyLine(m); a.key == nil && k > 0 && endsInBlockScalar(m) {
			at = k
		} else {
			b.WriteString(d.nl)
		}
	}
	d.writeLines(&b, &a.obj, indent)
	return Span{at, at, b.String()}, indent, nil
}

// endsInBlockScalar reports whether the last node in n is a block scalar
// (| or >).
func endsInBlockScalar(n *yaml.Node) bool {
	for len(n.Content) > 0 {
		n = n.Content[len(n.Content)-1]
	}
	return n.Kind == yaml.ScalarNode && n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0
}

// lastKeyLine returns the offset of the line of block mapping m's last key
// when that key is not its first and nothing but spaces precede it on its
// line; else 0.
func (d *YAML) lastKeyLine(m *yaml.Node) int {
	if m.Kind != yaml.MappingNode || len(m.Content) < 4 {
		return 0
	}
	k := m.Content[len(m.Content)-2]
	at, err := d.offset(k)
	if err != nil {
		return 0
	}
	start := d.lines[k.Line-1]
	if !onlyBlanks(d.src[start:at]) || strings.ContainsRune(string(d.src[start:at]), '\t') {
		return 0
	}
	return start
}

// blockEnd returns the last line that belongs to block mapping m: the last
// line a node of m starts on, and after it the lines indented deeper than
// m's keys (the rest of a block scalar, a comment) or closing a flow
// collection.
func (d *YAML) blockEnd(m *yaml.Node) int {
	last := maxLine(m)
	keyIndent := m.Column - 1
	for l := last + 1; l <= len(d.lines); l++ {
		start := d.lines[l-1]
		end := len(d.src)
		if l < len(d.lines) {
			end = d.lines[l]
		}
		text := d.src[start:end]
		ind := 0
		for ind < len(text) && text[ind] == ' ' {
			ind++
		}
		rest := bytes.TrimRight(text[ind:], " \t\r\n")
		if len(rest) == 0 {
			continue
		}
		if ind > keyIndent || (ind >= keyIndent && (rest[0] == ']' || rest[0] == '}')) {
			last = l
			continue
		}
		break
	}
	return last
}

func maxLine(n *yaml.Node) int {
	l := n.Line
	for _, c := range n.Content {
		if cl := maxLine(c); cl > l {
			l = cl
		}
	}
	return l
}

// writeLines writes o's members as block mapping lines at indent.
func (d *YAML) writeLines(b *strings.Builder, o *newObject, indent int) {
	pad := strings.Repeat(" ", indent)
	for _, m := range o.members {
		if m.obj != nil {
			b.WriteString(pad + m.name + ":" + d.nl)
			d.writeLines(b, m.obj, indent+d.unit)
			continue
		}
		b.WriteString(pad + m.name + ": " + yamlText(m.value) + d.nl)
	}
}

// inlineYAML renders o as a flow mapping.
func inlineYAML(o *newObject) string {
	parts := make([]string, len(o.members))
	for i, m := range o.members {
		var v string
		if m.obj == nil {
			v = yamlText(m.value)
		} else {
			v = inlineYAML(m.obj)
		}
		parts[i] = m.name + ": " + v
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// IntegerAt returns the integer at the path of keys under m, and whether
// the path exists.
func IntegerAt(m *yaml.Node, keys ...string) (int, bool) {
	for _, k := range keys[:len(keys)-1] {
		_, m = Get(m, k)
	}
	if k, _ := Get(m, keys[len(keys)-1]); k == nil {
		return 0, false
	}
	return Integer(m, keys[len(keys)-1]), true
}

// Source returns the file's bytes without a byte order mark, as the
// nodes' lines and columns count them.
func (d *YAML) Source() []byte { return d.src }
