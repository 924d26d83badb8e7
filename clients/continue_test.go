package clients

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctxfit/ctxfit/clients/edit"

	"github.com/tailscale/hujson"
	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// testTarget is clientTarget, for the tests written for Continue first.
func testTarget() Target { return clientTarget() }

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
	} else if _, err := edit.ParseHuJSON(func() []byte { b, _ := edit.CutBOM(res.Out); return b }()); err != nil {
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

	got, err := edit.Splice(src, res.spans)
	if err != nil || !bytes.Equal(got, res.Out) {
		t.Fatalf("the spans do not make the output (%v): the file changed outside them", err)
	}
	targets := targetedValues(t, path, src)
	for _, sp := range res.spans {
		if sp.Start != sp.End && !targets[[2]int{sp.Start, sp.End}] {
			t.Errorf("span %d..%d replaces %q, which is not a targeted value", sp.Start, sp.End, src[sp.Start:sp.End])
		}
		if strings.Trim(sp.Text, "\t\r\n {}:,\"0123456789"+
			"contextLength completionOptions maxTokens defaultCompletionOptions requestOptions extraBodyProperties options num_ctx") != "" {
			t.Errorf("span inserts %q, more than keys and numbers", sp.Text)
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
	body, bom := edit.CutBOM(src)
	if !isYAML(path) {
		v, err := edit.ParseHuJSON(body)
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
	d, err := edit.ParseYAML(src)
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
					if s, e, err := d.ValueSpan(n.Content[i+1], n.Style&yaml.FlowStyle != 0); err == nil {
						out[[2]int{bom + s, bom + e}] = true
					}
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(d.Root())
	return out
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

// TestContinueCLIGetsDerivedModels: with Continue's CLI (cn) on the PATH,
// the fix of config.yaml also names the derived model in each entry it
// fixes, creating it first, and undo restores the names; config.json,
// which cn does not read, keeps its names.
func TestContinueCLIGetsDerivedModels(t *testing.T) {
	h := newTestHome(t)
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "cn"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	h.env.Getenv = func(k string) string {
		if k == "PATH" {
			return bin
		}
		return ""
	}
	if f, _ := (continueClient{}).Files(h.env); len(f.V1Readers) != 1 || f.V1Readers[0] != filepath.Join(bin, "cn") {
		t.Fatalf("Files.V1Readers = %q, want cn", f.V1Readers)
	}
	p := h.put("yaml_several.yaml")
	orig := read(t, p)
	var created []string
	f := h.fixer()
	f.Derive = func(ctx context.Context, model string, n int) (string, error) {
		name, err := testDeriveModel(ctx, model, n)
		created = append(created, name)
		return name, err
	}
	rep, err := f.Fix(context.Background(), continueClient{}, testTarget(), false)
	if err != nil {
		t.Fatal(err)
	}
	got := read(t, p)
	for _, ch := range rep.Changes {
		want, _ := testDerive(ch.Model, ch.NewContext)
		if ch.Derived != want || !bytes.Contains(got, []byte("model: "+want)) {
			t.Errorf("%s: Derived = %q; the file should name %s:\n%s", ch.Where, ch.Derived, want, got)
		}
	}
	if len(created) != len(rep.Changes) || len(created) == 0 {
		t.Errorf("created %q for %d changes", created, len(rep.Changes))
	}
	checkClientEdit(t, continueClient{}, Input{Path: p, Src: orig, V1Readers: []string{"cn"}},
		Result{Out: got, Changes: rep.Changes, Warnings: rep.Warnings}, testTarget())
	asks, _ := (continueClient{}).Asks(Input{Path: p, Src: got, V1Readers: []string{"cn"}}, testTarget())
	for _, a := range asks {
		if a.Tuned > 0 && a.Differs() {
			t.Errorf("after the fix %s still differs: %+v", a.Where, a)
		}
	}
	if _, err := f.Undo(context.Background(), continueClient{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(read(t, p), orig) {
		t.Error("undo did not restore the original names")
	}

	// config.json: cn ignores it, so the names stay.
	res, err := continueClient{}.Edit(Input{Path: "config.json", Src: readFile(t, filepath.Join("testdata", "continue", "json_several.json")), V1Readers: []string{"cn"}}, testTarget())
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range res.Changes {
		if ch.Derived != "" {
			t.Errorf("config.json: %s selects %s", ch.Where, ch.Derived)
		}
	}
}

// TestFixWithoutServerKeepsNames: when the derived models cannot be
// created (the server is down), the fix still writes the context values,
// keeps the model names and says why.
func TestFixWithoutServerKeepsNames(t *testing.T) {
	home, state := t.TempDir(), t.TempDir()
	env := Env{Home: home, GOOS: "linux", Getenv: func(string) string { return "" }}
	p := filepath.Join(home, ".config", "goose", "config.yaml")
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, readFile(t, filepath.Join("testdata", "goose", "lead_worker.yaml")), 0o644)
	f := &Fixer{Env: env, StateDir: state, Derive: func(context.Context, string, int) (string, error) {
		return "", errors.New("Ollama is not running")
	}}
	rep, err := f.Fix(context.Background(), gooseClient{}, clientTarget(), false)
	if err != nil {
		t.Fatal(err)
	}
	got := string(read(t, p))
	if !rep.Written || !strings.Contains(got, "GOOSE_CONTEXT_LIMIT: 32768") || strings.Contains(got, "ctx32k") {
		t.Errorf("fix wrote:\n%s", got)
	}
	if w := strings.Join(rep.Warnings, "\n"); !strings.Contains(w, "Ollama is not running") {
		t.Errorf("warnings do not say why the names stayed: %s", w)
	}
}

// TestContinueMaxTokensRule: the maxTokens rule (WantMaxTokens) with the
// ceiling at half the context, or a quarter in config.yaml when Continue's
// CLI reads it: a larger limit, or an unset one while the default of a
// program that reads the file (the IDE's 4096, cn's 35% of the context up
// to 64000) is larger, becomes the ceiling; a smaller explicit one is kept.
func TestContinueMaxTokensRule(t *testing.T) {
	tests := []struct {
		name     string
		path     string
		cn       bool
		cur, n   int
		want     int    // 0: left as it is
		wantEdit string // the maxTokens line config.yaml has after the fix; "" for none
	}{
		{"json: larger than half", "config.json", false, 16384, 24576, 12288, ""},
		{"json: smaller kept", "config.json", false, 8192, 24576, 0, ""},
		{"json: unset stays unset", "config.json", false, 0, 24576, 0, ""},
		{"json: unset but the default is larger", "config.json", false, 0, 6144, 3072, ""},
		{"json: cn does not read it", "config.json", true, 8192, 24576, 0, ""},
		{"yaml without cn: smaller than half kept", "config.yaml", false, 8192, 24576, 0, "maxTokens: 8192"},
		{"yaml with cn: larger than a quarter", "config.yaml", true, 8192, 24576, 6144, "maxTokens: 6144"},
		{"yaml with cn: smaller kept", "config.yaml", true, 2048, 24576, 0, "maxTokens: 2048"},
		{"yaml with cn: unset, cn's default (35%) is larger", "config.yaml", true, 0, 24576, 6144, "maxTokens: 6144"},
		{"yaml with cn: unset, cn's default (64000) is smaller", "config.yaml", true, 0, 262144, 0, ""},
		{"yaml with cn: unset but the default is larger", "config.yaml", true, 0, 8192, 2048, "maxTokens: 2048"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{Path: tt.path}
			if tt.cn {
				in.V1Readers = []string{"cn"}
			}
			if got := continueWantMaxTokens(in, tt.cur, tt.n); got != tt.want {
				t.Errorf("continueWantMaxTokens(%d, %d) = %d, want %d", tt.cur, tt.n, got, tt.want)
			}
			if !isYAML(tt.path) {
				return
			}
			src := "models:\n  - name: M\n    provider: ollama\n    model: tiny:1b\n    defaultCompletionOptions:\n      contextLength: 131072\n"
			if tt.cur > 0 {
				src += fmt.Sprintf("      maxTokens: %d\n", tt.cur)
			}
			in.Src = []byte(src)
			tgt := Target{Host: clientTarget().Host, Tuned: func(string) (int, bool) { return tt.n, true }}
			res, err := continueClient{}.Edit(in, tgt)
			if err != nil || len(res.Changes) != 1 {
				t.Fatalf("Edit = %+v, %v", res.Changes, err)
			}
			out := string(res.Out)
			if !strings.Contains(out, fmt.Sprintf("contextLength: %d\n", tt.n)) {
				t.Errorf("contextLength not set:\n%s", out)
			}
			switch {
			case tt.wantEdit == "" && strings.Contains(out, "maxTokens"):
				t.Errorf("maxTokens added:\n%s", out)
			case tt.wantEdit != "" && !strings.Contains(out, tt.wantEdit+"\n"):
				t.Errorf("want %s in:\n%s", tt.wantEdit, out)
			}
			want := tt.want
			if want == 0 {
				want = tt.cur
			}
			if c := res.Changes[0]; c.NewMaxTokens != want || c.OldMaxTokens != tt.cur {
				t.Errorf("Change max tokens %d → %d, want %d → %d", c.OldMaxTokens, c.NewMaxTokens, tt.cur, want)
			}
		})
	}
}
