package edit

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/tailscale/hujson"
	"go.yaml.in/yaml/v3"
)

// A config value that should be a number of tokens but is something else
// (contextLength: notanumber, "max_tokens": "abc", 8192.5) reads as 0, as
// if unset, through Num, Integer and GetInt. The NotNumber functions tell
// such a value apart from an unset one, so that clients can say so
// instead of overwriting what the user wrote. Each returns "" for a value
// that is absent, null or a whole number ctxfit reads, and otherwise
// describes it for a message: `the string "abc"`, `8192.5`, `a list`.

// maxShown bounds how much of a value a message quotes.
const maxShown = 40

func shown(s string) string {
	if len(s) > maxShown {
		s = s[:maxShown] + "…"
	}
	return strconv.Quote(s)
}

// NotNumberJSON describes the value at the path of keys under v when it is
// present, not null, and not a whole number that Num reads.
func NotNumberJSON(v *hujson.Value, keys ...string) string {
	for _, k := range keys[:len(keys)-1] {
		v = Member(v, k)
	}
	m := Member(v, keys[len(keys)-1])
	if m == nil || isNull(m) {
		return ""
	}
	switch x := m.Value.(type) {
	case hujson.Literal:
		switch x.Kind() {
		case '0':
			if n, err := strconv.ParseInt(string(x), 10, 64); err == nil && n >= 0 && n <= 1<<40 {
				return ""
			}
			return string(x)
		case '"':
			return "the string " + shown(x.String())
		}
		return string(x) // true, false
	case *hujson.Object:
		return "an object"
	case *hujson.Array:
		return "a list"
	}
	return fmt.Sprint(m.Value)
}

// NotNumberYAML describes the value at the path of keys under mapping m
// (aliases followed) when it is present, not empty or null, and not a whole
// number that Integer reads.
func NotNumberYAML(m *yaml.Node, keys ...string) string {
	for _, k := range keys[:len(keys)-1] {
		_, m = Get(m, k)
		if m != nil && m.Kind == yaml.AliasNode {
			m = m.Alias
		}
	}
	_, v := Get(m, keys[len(keys)-1])
	if v != nil && v.Kind == yaml.AliasNode {
		v = v.Alias
	}
	switch {
	case v == nil || isEmpty(v) || (v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null"):
		return ""
	case v.Kind == yaml.MappingNode:
		return "a mapping"
	case v.Kind == yaml.SequenceNode:
		return "a list"
	case v.Kind != yaml.ScalarNode:
		return "not a number"
	case v.ShortTag() == "!!int":
		if n, err := strconv.ParseInt(strings.ReplaceAll(v.Value, "_", ""), 0, 64); err == nil && n >= 0 && n <= 1<<40 {
			return ""
		}
		return v.Value
	case v.ShortTag() == "!!str":
		return "the string " + shown(v.Value)
	}
	return v.Value // a float, a bool, a timestamp
}

// NotNumber describes the value at path when it is present and not a
// whole number that GetInt reads.
func (d *TOML) NotNumber(path ...string) string {
	v, ok := d.Get(path...)
	if !ok || v == nil {
		return ""
	}
	switch x := v.(type) {
	case int64:
		if x >= 0 && x <= 1<<40 {
			return ""
		}
		return strconv.FormatInt(x, 10)
	case string:
		return "the string " + shown(x)
	case map[string]any:
		return "a table"
	case []any:
		return "a list"
	}
	return fmt.Sprint(v)
}
