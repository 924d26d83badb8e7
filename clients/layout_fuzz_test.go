package clients

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ctxfit/ctxfit/internal/ollamahost"
)

// FuzzContinueLayouts builds valid configs in the many ways people write
// them (indentation, line endings, trailing commas, comments in every place,
// missing, empty or null option objects, a byte order mark, no final line
// break) from the bits of layout, and checks that Edit fixes every one of
// them, never refusing, with the properties of FuzzContinueEdit.
func FuzzContinueLayouts(f *testing.F) {
	for i := uint64(0); i < 64; i++ {
		f.Add(i*0x9E3779B97F4A7C15, "note", "Llama ✨")
	}
	f.Fuzz(func(t *testing.T, layout uint64, comment, title string) {
		bits := func(n uint) uint64 { v := layout & (1<<n - 1); layout >>= n; return v }
		// Comments hold any printable text (YAML allows no control
		// characters, and a line break or "*/" would end the comment).
		comment = strings.Map(func(r rune) rune {
			if r < ' ' || r == '*' || (r >= 0x7f && r <= 0x9f) || r == '\u2028' || r == '\u2029' ||
				r == utf8.RuneError || r == 0xfffe || r == 0xffff {
				return ' '
			}
			return r
		}, comment)
		yml := bits(1) == 1
		var src string
		if yml {
			src = yamlLayout(bits, comment, title)
		} else {
			src = jsonLayout(bits, comment, title)
		}
		path := "config.json"
		if yml {
			path = "config.yaml"
		}
		tgt := Target{Host: ollamahost.Parse(""), Tuned: func(string) (int, bool) { return 24576, true }}
		res, err := continueClient{}.Edit(Input{Path: path, Src: []byte(src)}, tgt)
		if err != nil {
			t.Fatalf("Edit refused a valid config: %v\n%s", err, src)
		}
		if len(res.Changes) == 0 {
			t.Fatalf("nothing changed in\n%s", src)
		}
		checkEditProperties(t, path, []byte(src), res, tgt)
	})
}

func jsonLayout(bits func(uint) uint64, comment, title string) string {
	nl := []string{"\n", "\r\n"}[bits(1)]
	ind := []string{"  ", "    ", "\t", ""}[bits(2)]
	if ind == "" {
		nl = ""
	}
	trailing := bits(1) == 1
	q, _ := json.Marshal(title)
	var b strings.Builder
	if bits(1) == 1 {
		b.WriteString("\xef\xbb\xbf")
	}
	line := func(depth int, s string) { b.WriteString(nl + strings.Repeat(ind, depth) + s) }
	cmt := func() string {
		switch bits(2) {
		case 1:
			if nl != "" { // a line comment needs a line of its own after it
				return " // " + comment
			}
		case 2:
			return " /* " + comment + " */"
		}
		return ""
	}
	b.WriteString("{")
	line(1, `"models": [`)
	models := 1 + int(bits(1))
	for m := 0; m < models; m++ {
		line(2, "{")
		var members []string
		members = append(members, `"title": `+string(q), `"provider": "ollama"`, fmt.Sprintf(`"model": "m%d"`, m))
		switch bits(2) {
		case 1:
			members = append(members, `"contextLength": 131072`)
		case 2:
			members = append(members, `"contextLength": "8192"`)
		}
		switch bits(2) {
		case 1:
			members = append(members, `"completionOptions": {}`)
		case 2:
			members = append(members, `"completionOptions": {"temperature": 0.5, "maxTokens": 4096}`)
		case 3:
			members = append(members, `"completionOptions": null`)
		}
		if bits(1) == 1 {
			members = append(members, `"requestOptions": {"extraBodyProperties": {"options": {"num_gpu": 1}}}`)
		}
		for i, mem := range members {
			if i < len(members)-1 || trailing {
				mem += ","
			}
			line(3, mem+cmt())
		}
		if c := cmt(); c != "" {
			line(3, strings.TrimSpace(c))
		}
		s := "}"
		if m < models-1 || trailing {
			s += ","
		}
		line(2, s)
	}
	line(1, "]")
	line(0, "}")
	if bits(1) == 1 {
		b.WriteString(nl)
	}
	return b.String()
}

func yamlLayout(bits func(uint) uint64, comment, title string) string {
	nl := []string{"\n", "\r\n"}[bits(1)]
	unit := []string{"  ", "    "}[bits(1)]
	compact := bits(1) == 1          // "- name" at the key's own indentation
	q := strconv.QuoteToASCII(title) // Go's escapes are all YAML escapes too
	var b strings.Builder
	if bits(1) == 1 {
		b.WriteString("\xef\xbb\xbf")
	}
	cmt := func() string {
		if bits(1) == 1 {
			return "  # " + comment
		}
		return ""
	}
	b.WriteString("name: test" + cmt() + nl + "models:" + cmt() + nl)
	item := unit
	if compact {
		item = ""
	}
	keys := item + "  "
	models := 1 + int(bits(1))
	for m := 0; m < models; m++ {
		b.WriteString(item + "- name: " + string(q) + cmt() + nl)
		b.WriteString(keys + "provider: ollama" + nl)
		b.WriteString(fmt.Sprintf("%smodel: m%d%s%s", keys, m, cmt(), nl))
		if bits(1) == 1 {
			b.WriteString(keys + "contextLength: 131072" + nl)
		}
		switch bits(2) {
		case 1:
			b.WriteString(keys + "defaultCompletionOptions:" + cmt() + nl)
		case 2:
			b.WriteString(keys + "defaultCompletionOptions: {}" + nl)
		case 3:
			b.WriteString(keys + "defaultCompletionOptions:" + nl + keys + unit + "temperature: 0.5" + cmt() + nl)
			if bits(1) == 1 {
				b.WriteString(keys + unit + "contextLength: \"131072\"" + nl)
			}
		}
		if bits(1) == 1 {
			b.WriteString(keys + "roles:" + nl + keys + "- chat" + nl + keys + "- edit" + nl)
		}
		if bits(1) == 1 {
			b.WriteString(keys + "chatOptions:" + nl + keys + unit + "baseSystemMessage: |" + nl +
				keys + unit + unit + "Be brief." + nl + nl + keys + unit + unit + "# not a comment" + nl)
		}
		if c := cmt(); c != "" {
			b.WriteString(item + strings.TrimSpace(c) + nl)
		}
	}
	out := b.String()
	if bits(1) == 1 {
		out = strings.TrimSuffix(out, nl)
	}
	return out
}
