package edit

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/tailscale/hujson"
)

// AppendJSONArray returns src with an object for each of items (whose
// values are ints and strings) appended to the array at path (object keys),
// which must hold at least one element. The new elements follow the layout of the last one: on their own
// lines at its indentation (or on its line when the array is written on one
// line), as a one-line or multi-line object like it, with the file's line
// endings and trailing-comma style. It checks that the result decodes to
// the input plus the new elements.
func AppendJSONArray(src []byte, items [][]Field, path ...string) ([]byte, error) {
	d, err := ParseJSON(src)
	if err != nil {
		return nil, err
	}
	listV := d.Root()
	for _, k := range path {
		listV = Member(listV, k)
	}
	list := Array(listV)
	if list == nil || len(list.Elements) == 0 {
		return nil, fmt.Errorf("internal error: no list at %s to add to", strings.Join(path, "."))
	}
	last := &list.Elements[len(list.Elements)-1]

	// The layout of the last element.
	elemNL := lastNewline(last.BeforeExtra)
	indent := ""
	if elemNL >= 0 {
		indent = indentAfter(last.BeforeExtra, elemNL)
	}
	sep, memberIndent, multiline := ": ", "", false
	if o := Object(last); o != nil && len(o.Members) > 0 {
		sep = d.colon(o)
		if nl := lastNewline(o.Members[0].Name.BeforeExtra); nl >= 0 {
			multiline = true
			memberIndent = indentAfter(o.Members[0].Name.BeforeExtra, nl)
		}
	}
	if multiline && !strings.HasPrefix(memberIndent, indent) {
		memberIndent = indent + d.unit
	}

	elems := make([]string, len(items))
	decoded := make([]any, len(items))
	for i, item := range items {
		kv := make([][2]string, len(item))
		m := map[string]any{}
		for j, f := range item {
			if err := checkValue(f.Value); err != nil {
				return nil, err
			}
			kv[j] = [2]string{f.Key, jsonText(f.Value)}
			m[f.Key] = f.Value
			if n, ok := f.Value.(int); ok {
				m[f.Key] = json.Number(itoa(n))
			}
		}
		var b strings.Builder
		b.WriteByte('{')
		for j, p := range kv {
			if multiline {
				b.WriteString(d.nl + memberIndent)
			} else if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString(string(hujson.String(p[0])) + sep + p[1])
			if multiline && j < len(kv)-1 {
				b.WriteByte(',')
			}
		}
		if multiline {
			b.WriteString(d.nl + indent)
		}
		b.WriteByte('}')
		elems[i] = b.String()
		decoded[i] = m
	}

	var spans []Span
	trailing := last.AfterExtra != nil
	switch {
	case elemNL < 0: // [{...}, {...}] on one line
		text := ""
		for _, e := range elems {
			text += ", " + e
		}
		if trailing {
			at := last.EndOffset + len(last.AfterExtra) + 1
			spans = append(spans, Span{at, at, strings.TrimPrefix(text, ",") + ","})
		} else {
			spans = append(spans, Span{last.EndOffset, last.EndOffset, text})
		}
	case trailing:
		at := last.EndOffset + len(last.AfterExtra) + 1 // after the comma
		text := ""
		for _, e := range elems {
			text += d.nl + indent + e + ","
		}
		spans = append(spans, Span{at, at, text})
	default:
		spans = append(spans, Span{last.EndOffset, last.EndOffset, ","})
		closing := listV.EndOffset - 1
		extra := list.AfterExtra
		at := last.EndOffset
		if nl := lastNewline(extra); nl >= 0 { // after any comment on the last element's line
			at = closing - len(extra) + d.lineEnd(extra, nl)
		}
		text := ""
		for i, e := range elems {
			if i > 0 {
				text += ","
			}
			text += d.nl + indent + e
		}
		spans = append(spans, Span{at, at, text})
	}
	body, err := Splice(d.src, spans)
	if err != nil {
		return nil, err
	}

	before, err := DecodeJSON(d.src)
	if err != nil {
		return nil, err
	}
	after, err := DecodeJSON(body)
	if err != nil {
		return nil, fmt.Errorf("internal error: the edited file does not parse: %w", err)
	}
	old, _ := lookupPath(before, toAny(path)).([]any)
	want, err := assign(before, toAny(path), append(append([]any(nil), old...), decoded...))
	if err != nil {
		return nil, err
	}
	if err := checkEdit(want, after, nil, nil); err != nil {
		return nil, err
	}
	return append(append([]byte(nil), utf8BOM[:d.bom]...), body...), nil
}

// lookupPath returns the value at path (map keys and list indexes) in a
// decoded document, or nil.
func lookupPath(tree any, path []any) any {
	for _, k := range path {
		switch k := k.(type) {
		case string:
			switch m := tree.(type) {
			case map[string]any:
				tree = m[k]
			case map[any]any:
				tree = m[k]
			default:
				return nil
			}
		case int:
			l, ok := tree.([]any)
			if !ok || k < 0 || k >= len(l) {
				return nil
			}
			tree = l[k]
		}
	}
	return tree
}
