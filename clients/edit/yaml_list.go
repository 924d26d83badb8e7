package edit

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Field is one key of a mapping that AppendYAMLList writes: Value is an
// int, a string or a []Field (a nested mapping).
type Field struct {
	Key   string
	Value any
}

// yamlText renders an int or a string as a YAML scalar.
func yamlText(v any) string {
	if s, ok := v.(string); ok {
		return YAMLString(s)
	}
	return itoa(v.(int))
}

// yamlTextLike renders v as yamlText does, but a string in the quotes of
// the scalar it replaces, so that a quoted value stays quoted.
func yamlTextLike(v any, style yaml.Style) string {
	s, ok := v.(string)
	switch {
	case !ok:
		return yamlText(v)
	case style == yaml.DoubleQuotedStyle:
		return strconv.Quote(s)
	case style == yaml.SingleQuotedStyle && !strings.ContainsAny(s, "\n\r"):
		return "'" + strings.ReplaceAll(s, "'", "''") + "'"
	}
	return YAMLString(s)
}

// YAMLString returns s as a YAML scalar: plain when it reads back as the
// same string, else double-quoted.
func YAMLString(s string) string {
	var back map[string]any
	if yaml.Unmarshal([]byte("k: "+s), &back) == nil {
		if v, ok := back["k"].(string); ok && v == s {
			return s
		}
	}
	return strconv.Quote(s)
}

// AppendYAMLList returns src, a YAML file whose top level is a block list
// (or an empty file), with one mapping appended to the list for each of
// items, laid out like the entries before it: the same dash and key
// columns, the file's indentation step and line endings. It checks that the
// result decodes to the input plus the new entries.
func AppendYAMLList(src []byte, items [][]Field) ([]byte, error) {
	d, err := ParseYAML(src)
	if err != nil {
		return nil, err
	}
	dash, key := 0, 2
	at := len(d.src)
	var before []any
	if list := d.root; list != nil && list.Kind == yaml.SequenceNode && len(list.Content) > 0 {
		if list.Style&yaml.FlowStyle != 0 {
			return nil, fmt.Errorf("the list is written in flow style ([...]), where ctxfit adds no entries")
		}
		last := list.Content[len(list.Content)-1]
		dash = list.Column - 1
		key = dash + 2
		if first := list.Content[0]; first.Kind == yaml.MappingNode && first.Line == list.Line && first.Column > list.Column+1 {
			key = first.Column - 1
		}
		end := maxLine(last)
		if last.Kind == yaml.MappingNode {
			end = d.blockEnd(last)
		}
		end = d.itemEnd(end, dash)
		if end < len(d.lines) {
			at = d.lines[end]
		}
		x, err := DecodeYAML(d.src)
		if err != nil {
			return nil, err
		}
		before, _ = x.([]any)
	} else if d.root != nil && !(d.root.Kind == yaml.ScalarNode && d.root.ShortTag() == "!!null") {
		return nil, fmt.Errorf("the top level is not a list")
	}

	var b strings.Builder
	if at == len(d.src) && at > 0 && d.src[at-1] != '\n' && d.src[at-1] != '\r' {
		b.WriteString(d.nl)
	}
	want := append([]any(nil), before...)
	for _, item := range items {
		if len(item) == 0 {
			return nil, fmt.Errorf("internal error: an empty entry to add")
		}
		first := true
		var write func(fields []Field, indent int) (map[string]any, error)
		write = func(fields []Field, indent int) (map[string]any, error) {
			m := map[string]any{}
			for _, f := range fields {
				pad := strings.Repeat(" ", indent)
				if first {
					pad = strings.Repeat(" ", dash) + "-" + strings.Repeat(" ", key-dash-1)
					first = false
				}
				switch v := f.Value.(type) {
				case []Field:
					b.WriteString(pad + f.Key + ":" + d.nl)
					sub, err := write(v, indent+d.unit)
					if err != nil {
						return nil, err
					}
					m[f.Key] = sub
				default:
					if err := checkValue(v); err != nil {
						return nil, err
					}
					b.WriteString(pad + f.Key + ": " + yamlText(v) + d.nl)
					m[f.Key] = v
				}
			}
			return m, nil
		}
		m, err := write(item, key)
		if err != nil {
			return nil, err
		}
		want = append(want, m)
	}
	body, err := Splice(d.src, []Span{{at, at, b.String()}})
	if err != nil {
		return nil, err
	}
	after, err := DecodeYAML(body)
	if err != nil {
		return nil, fmt.Errorf("internal error: the edited file does not parse: %w", err)
	}
	if err := checkEdit(any(want), after, nil, nil); err != nil {
		return nil, err
	}
	return append(append([]byte(nil), utf8BOM[:d.bom]...), body...), nil
}

// itemEnd returns the last line of the list item that ends at line end:
// the comments after it that are indented deeper than its dash still
// belong to it.
func (d *YAML) itemEnd(end, dash int) int {
	for l := end + 1; l <= len(d.lines); l++ {
		start, stop := d.lines[l-1], len(d.src)
		if l < len(d.lines) {
			stop = d.lines[l]
		}
		line := d.src[start:stop]
		trimmed := bytes.TrimLeft(line, " ")
		if len(bytes.TrimSpace(trimmed)) == 0 {
			continue
		}
		if len(line)-len(trimmed) <= dash || trimmed[0] != '#' {
			break
		}
		end = l
	}
	return end
}
