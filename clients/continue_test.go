package clients

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tailscale/hujson"
	"go.yaml.in/yaml/v3"

	"github.com/ctxfit/ctxfit/internal/ollamahost"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// testTuned are the tuned values the tests fix towards, on the default host.
var testTuned = map[string]int{
	"llama3.1:8b-instruct-fp16": 24576,
	"qwen2.5-coder:1.5b":        32768,
	"mistral-nemo:latest":       16384,
	"tiny:1b":                   6144, // below 2 × Continue's default maxTokens
}

func testTarget() Target {
	return Target{
		Host: ollamahost.Parse(""),
		Tuned: func(model string) (int, bool) {
			if !strings.Contains(model[strings.LastIndex(model, "/")+1:], ":") {
				model += ":latest"
			}
			n, ok := testTuned[strings.ToLower(model)]
			return n, ok
		},
	}
}

// describe renders what Edit reported, for the .report golden files.
func describe(res Result) string {
	var b strings.Builder
	for _, c := range res.Changes {
		maxTokens := fmt.Sprintf("maxTokens %s → %d", orUnset(c.OldMaxTokens), c.NewMaxTokens)
		if c.NewMaxTokens == c.OldMaxTokens {
			maxTokens = fmt.Sprintf("maxTokens %s kept", orUnset(c.OldMaxTokens))
		}
		fmt.Fprintf(&b, "%s %s: contextLength %s → %d, %s\n",
			c.Where, c.Label(), orUnset(c.OldContext), c.NewContext, maxTokens)
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", w)
	}
	if b.Len() == 0 {
		b.WriteString("no changes\n")
	}
	return b.String()
}

func orUnset(n int) string {
	if n == 0 {
		return "unset"
	}
	return fmt.Sprint(n)
}

// goldenCases lists the inputs under testdata/continue (NAME.json or
// NAME.yaml); their results are NAME.fixed.EXT and NAME.report.
func goldenCases(t testing.TB) []string {
	var names []string
	for _, pat := range []string{"*.json", "*.yaml"} {
		m, err := filepath.Glob(filepath.Join("testdata", "continue", pat))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range m {
			if !strings.Contains(filepath.Base(p), ".fixed.") {
				names = append(names, p)
			}
		}
	}
	if len(names) == 0 {
		t.Fatal("no golden inputs under testdata/continue")
	}
	return names
}

func TestContinueEditGolden(t *testing.T) {
	for _, in := range goldenCases(t) {
		name := filepath.Base(in)
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			// The path's extension picks the format, as for the real file.
			path := "config" + filepath.Ext(in)
			res, err := continueClient{}.Edit(Input{Path: path, Src: src}, testTarget())
			if err != nil {
				t.Fatalf("Edit: %v", err)
			}
			checkEditProperties(t, path, src, res, testTarget())

			ext := filepath.Ext(in)
			fixedPath := strings.TrimSuffix(in, ext) + ".fixed" + ext
			reportPath := strings.TrimSuffix(in, ext) + ".report"
			report := describe(res)
			if *update {
				if err := os.WriteFile(fixedPath, res.Out, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(reportPath, []byte(report), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(fixedPath)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(res.Out, want) {
				t.Errorf("fixed file differs from %s:\n%s", fixedPath, unifiedDiff("want", "got", want, res.Out))
			}
			wantReport, err := os.ReadFile(reportPath)
			if err != nil {
				t.Fatal(err)
			}
			if report != string(wantReport) {
				t.Errorf("report differs from %s:\n%s", reportPath, unifiedDiff("want", "got", wantReport, []byte(report)))
			}
		})
	}
}

// checkEditProperties checks what must hold for every successful edit: the
// output parses; every entry ctxfit targets now asks for the tuned values, so
// a second edit changes nothing; and the output equals the input outside the
// changed spans, each of which replaces a targeted value or inserts only new
// keys and numbers.
func checkEditProperties(t testing.TB, path string, src []byte, res Result, tgt Target) {
	t.Helper()
	c := continueClient{}
	if len(res.Changes) == 0 {
		if !bytes.Equal(res.Out, src) {
			t.Fatalf("no changes reported, but the output differs from the input")
		}
		return
	}
	if isYAML(path) {
		var x any
		if err := yaml.Unmarshal(res.Out, &x); err != nil {
			t.Fatalf("output does not parse as YAML: %v\n%s", err, res.Out)
		}
	} else if _, err := parseHuJSON(bytes.TrimPrefix(res.Out, utf8BOM)); err != nil {
		t.Fatalf("output does not parse as JSON: %v\n%s", err, res.Out)
	}
	again, err := c.Edit(Input{Path: path, Src: res.Out}, tgt)
	if err != nil {
		t.Fatalf("second Edit: %v", err)
	}
	if len(again.Changes) != 0 {
		t.Fatalf("second Edit changed %+v again\n%s", again.Changes, res.Out)
	}
	asks, err := c.Asks(Input{Path: path, Src: res.Out}, tgt)
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range res.Changes {
		for _, a := range asks {
			if a.Where == ch.Where && a.Differs() {
				t.Errorf("%s still asks for context %d, maxTokens %d; want %d, %d", a.Where, a.Context, a.MaxTokens, a.Tuned, a.WantMaxTokens)
			}
		}
	}

	got, err := splice(src, res.spans)
	if err != nil || !bytes.Equal(got, res.Out) {
		t.Fatalf("the spans do not make the output (%v): the file changed outside them", err)
	}
	targets := targetedValues(t, path, src)
	for _, sp := range res.spans {
		if sp.start != sp.end && !targets[[2]int{sp.start, sp.end}] {
			t.Errorf("span %d..%d replaces %q, which is not a targeted value", sp.start, sp.end, src[sp.start:sp.end])
		}
		if strings.Trim(sp.text, "\t\r\n {}:,\"0123456789"+
			"contextLength completionOptions maxTokens defaultCompletionOptions requestOptions extraBodyProperties options num_ctx") != "" {
			t.Errorf("span inserts %q, more than keys and numbers", sp.text)
		}
	}
}

// targetedValues returns the byte ranges of the values Edit may replace in
// src: contextLength, maxTokens, num_ctx and empty option mappings, found
// independently of the editors with the parsers' own positions.
func targetedValues(t testing.TB, path string, src []byte) map[[2]int]bool {
	t.Helper()
	keys := map[string]bool{"contextLength": true, "maxTokens": true, "num_ctx": true,
		"completionOptions": true, "defaultCompletionOptions": true}
	out := map[[2]int]bool{}
	body, bom := cutBOM(src)
	if !isYAML(path) {
		v, err := parseHuJSON(body)
		if err != nil {
			t.Fatal(err)
		}
		for x := range v.All() {
			if o, ok := x.Value.(*hujson.Object); ok {
				for _, m := range o.Members {
					if lit, ok := m.Name.Value.(hujson.Literal); ok && keys[lit.String()] {
						out[[2]int{bom + m.Value.StartOffset, bom + m.Value.EndOffset}] = true
					}
				}
			}
		}
		return out
	}
	d, err := parseYAML(src)
	if err != nil {
		t.Fatal(err)
	}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n == nil {
			return
		}
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if keys[n.Content[i].Value] {
					if s, e, err := d.scalarSpan(n.Content[i+1], n.Style&yaml.FlowStyle != 0); err == nil {
						out[[2]int{bom + s, bom + e}] = true
					}
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(d.root)
	return out
}

func TestContinueEditRefusesBrokenFiles(t *testing.T) {
	for _, tt := range []struct{ path, src string }{
		{"config.json", `{"models": [ {"provider": "ollama", "model": "llama3.1:8b-instruct-fp16",`},
		{"config.json", `[]`},
		{"config.json", `{"models": [], "models": }`},
		{"config.yaml", "models:\n  - name: a\n   provider: ollama\n"},
		{"config.yaml", "models:\n  - name: a\n    name: b\n"},
	} {
		_, err := continueClient{}.Edit(Input{Path: tt.path, Src: []byte(tt.src)}, testTarget())
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("Edit(%q) = %v, want a ParseError", tt.src, err)
		}
	}
}

func TestContinueAsks(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("testdata", "continue", "json_several.json"))
	if err != nil {
		t.Fatal(err)
	}
	asks, err := continueClient{}.Asks(Input{Path: "config.json", Src: src}, testTarget())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range asks {
		got = append(got, fmt.Sprintf("%s %s differs=%v toolarge=%v", a.Where, a, a.Differs(), a.TooLarge()))
	}
	want := []string{
		"models[1] Continue asks llama3.1:8b-instruct-fp16 for 131072 tokens; 24576 stays on the GPU differs=true toolarge=true",
		"models[3] Continue asks phi3:mini for 131072 tokens differs=false toolarge=false",
		"models[4] Continue asks mistral-nemo for 16384 tokens; 16384 stays on the GPU differs=false toolarge=false",
		"tabAutocompleteModel Continue asks qwen2.5-coder:1.5b for 8192 tokens; 32768 stays on the GPU differs=true toolarge=false",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Asks:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestContinueFiles(t *testing.T) {
	home := t.TempDir()
	work := t.TempDir()
	env := Env{Home: home, Getenv: func(string) string { return "" }, WorkDir: work}
	dir := filepath.Join(home, ".continue")
	c := continueClient{}

	f, err := c.Files(env)
	if err != nil || f.Config != "" || len(f.Watch) != 2 {
		t.Fatalf("no config: Files = %+v, %v; want no Config and two watched paths", f, err)
	}
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "config.json"), []byte("{}"), 0o644)
	if f, _ = c.Files(env); f.Config != filepath.Join(dir, "config.json") {
		t.Errorf("config.json alone: Config = %q", f.Config)
	}
	os.WriteFile(filepath.Join(dir, "config.yaml"), []byte("models: []\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "config.ts"), []byte("export {}"), 0o644)
	os.WriteFile(filepath.Join(work, ".continuerc.json"), []byte("{}"), 0o644)
	f, _ = c.Files(env)
	if f.Config != filepath.Join(dir, "config.yaml") {
		t.Errorf("both files: Config = %q, want config.yaml", f.Config)
	}
	if len(f.Overrides) != 2 {
		t.Errorf("Overrides = %v, want config.ts and .continuerc.json", f.Overrides)
	}

	other := t.TempDir()
	env.Getenv = func(k string) string {
		if k == "CONTINUE_GLOBAL_DIR" {
			return other
		}
		return ""
	}
	if f, _ = c.Files(env); f.Watch[0] != filepath.Join(other, "config.yaml") || f.Config != "" {
		t.Errorf("CONTINUE_GLOBAL_DIR: Files = %+v", f)
	}
}

func TestContinueOverrideWarnings(t *testing.T) {
	src := []byte(`{"models": [{"title": "Llama", "provider": "ollama", "model": "llama3.1:8b-instruct-fp16"}]}`)
	in := Input{Path: "config.json", Src: src, Overrides: map[string][]byte{
		"/w/.continuerc.json":       []byte(`{"models": [{"title": "Llama", "contextLength": 131072}, {"title": "Other", "contextLength": 1}]}`),
		"/home/.continue/config.ts": []byte(`export function modifyConfig(c) { return c }`),
	}}
	res, err := continueClient{}.Edit(in, testTarget())
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(res.Warnings, "\n")
	for _, want := range []string{"config.ts can change the models", `.continuerc.json sets contextLength or maxTokens for "Llama"`} {
		if !strings.Contains(got, want) {
			t.Errorf("warnings %q lack %q", got, want)
		}
	}
	if strings.Contains(got, "Other") {
		t.Errorf("warnings name an entry that was not changed: %q", got)
	}
}
