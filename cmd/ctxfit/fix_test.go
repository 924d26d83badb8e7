package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ctxfit/ctxfit/clients"
	"github.com/ctxfit/ctxfit/internal/ollamahost"
	"github.com/ctxfit/ctxfit/state"
)

// continueYAML asks for far more context than stays on the GPU for one
// model, and leaves another to Continue's default.
const continueYAML = `# my Continue config
models:
  - name: Llama
    provider: ollama
    model: llama3.1:8b-instruct-fp16
    defaultCompletionOptions:
      contextLength: 131072  # the model's maximum
      maxTokens: 4096
  - name: Qwen
    provider: ollama
    model: qwen2.5-coder:1.5b
  - name: GPT
    provider: openai
    model: gpt-4o
`

// newFixCLI returns a CLI whose Continue folder holds config.yaml, with
// tuned values for the default host.
func newFixCLI(t *testing.T) (*cli, string) {
	t.Helper()
	dir := t.TempDir()
	c := newCLI(t, map[string]string{
		"HOME":                filepath.Join(dir, "home"),
		"CONTINUE_GLOBAL_DIR": filepath.Join(dir, "continue"),
	})
	os.MkdirAll(c.vars["CONTINUE_GLOBAL_DIR"], 0o755)
	config := filepath.Join(c.vars["CONTINUE_GLOBAL_DIR"], "config.yaml")
	if err := os.WriteFile(config, []byte(continueYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	c.tune(ollamahost.Default, "llama3.1:8b-instruct-fp16", "sha256:a", 24576)
	c.tune(ollamahost.Default, "qwen2.5-coder:1.5b", "sha256:b", 32768)
	return c, config
}

// scrub replaces the test's temporary paths in out with stable names.
func (c *cli) scrub(out string) string {
	out = strings.ReplaceAll(out, c.vars["CONTINUE_GLOBAL_DIR"], "CONTINUE")
	out = strings.ReplaceAll(out, c.vars[state.StateDirEnv], "STATE")
	// Backups are named by the time of the fix.
	if i := strings.Index(out, "STATE/backups/continue/"); i >= 0 {
		j := strings.Index(out[i:], "-config.yaml")
		if j > 0 {
			out = out[:i] + "STATE/backups/continue/TIME" + out[i+j:]
		}
	}
	return out
}

func TestFixContinue(t *testing.T) {
	c, config := newFixCLI(t)

	code, out, errOut := c.run("fix", "continue", "--dry-run")
	if code != 0 {
		t.Fatalf("fix --dry-run: exit %d\n%s", code, errOut)
	}
	golden(t, "fix_continue_dry_run.txt", c.scrub(out))
	if b, _ := os.ReadFile(config); string(b) != continueYAML {
		t.Fatal("--dry-run wrote the file")
	}

	code, out, errOut = c.run("fix", "continue")
	if code != 0 {
		t.Fatalf("fix: exit %d\n%s", code, errOut)
	}
	golden(t, "fix_continue.txt", c.scrub(out))
	fixed, _ := os.ReadFile(config)
	// maxTokens 4096 is kept (less than half of 24576), and none is added
	// beside 32768 (Continue's default, 4096, is less than half of it).
	for _, want := range []string{"contextLength: 24576  # the model's maximum\n      maxTokens: 4096\n", "# my Continue config\n",
		"    model: qwen2.5-coder:1.5b\n    defaultCompletionOptions:\n      contextLength: 32768\n"} {
		if !strings.Contains(string(fixed), want) {
			t.Errorf("fixed config lacks %q:\n%s", want, fixed)
		}
	}

	code, out, _ = c.run("fix", "continue")
	if code != 0 || !strings.Contains(out, "nothing to change") {
		t.Errorf("second fix: exit %d, %q; want 0 and nothing to change", code, out)
	}

	code, out, errOut = c.run("undo", "continue", "--dry-run")
	if code != 0 {
		t.Fatalf("undo --dry-run: exit %d\n%s%s", code, out, errOut)
	}
	golden(t, "undo_continue_dry_run.txt", regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d`).ReplaceAllString(c.scrub(out), "TIME"))
	if b, _ := os.ReadFile(config); string(b) != string(fixed) {
		t.Fatal("undo --dry-run wrote the file")
	}

	code, out, errOut = c.run("undo", "continue")
	if code != 0 || !strings.Contains(out, "restored") {
		t.Fatalf("undo: exit %d\n%s%s", code, out, errOut)
	}
	if b, _ := os.ReadFile(config); string(b) != continueYAML {
		t.Errorf("undo left:\n%s", b)
	}
	code, _, errOut = c.run("undo", "continue")
	if code != 1 || !strings.Contains(errOut, "nothing more to undo for Continue: ctxfit's only fix of "+config) {
		t.Errorf("second undo: exit %d, %q", code, errOut)
	}
	if code, out, errOut := c.run("undo", "continue", "--dry-run"); code != 1 || out != "" || !strings.Contains(errOut, "nothing more to undo for Continue") {
		t.Errorf("undo --dry-run with nothing to undo: exit %d, %q, %q", code, out, errOut)
	}
}

func TestFixContinueJSON(t *testing.T) {
	c, _ := newFixCLI(t)
	code, out, errOut := c.run("fix", "--json", "continue")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	var got struct {
		Host    string
		Clients []struct {
			Client   string
			Written  bool
			Changes  []clients.Change
			Warnings []string
		}
		Ollama []any
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(got.Clients) != 1 || got.Ollama == nil || got.Host == "" {
		t.Fatalf("JSON: %s", out)
	}
	rep := got.Clients[0]
	if !rep.Written || len(rep.Changes) != 2 || rep.Changes[0].OldContext != 131072 || rep.Changes[0].NewMaxTokens != 4096 || rep.Warnings == nil {
		t.Errorf("JSON report: %+v\n%s", rep, out)
	}
}

func TestFixContinueErrors(t *testing.T) {
	for _, tt := range []struct {
		name   string
		setup  func(c *cli)
		args   []string
		code   int
		stderr string
	}{
		{"no client", nil, []string{"fix"}, 2, "name one CLIENT"},
		{"unknown client", nil, []string{"fix", "emacs"}, 2, `unknown client "emacs"; ctxfit knows `},
		{"not installed", func(c *cli) { os.RemoveAll(c.vars["CONTINUE_GLOBAL_DIR"]) }, []string{"fix", "continue"}, 1, "Continue has no config file"},
		{"nothing tuned", func(c *cli) { os.Remove(filepath.Join(c.vars[state.StateDirEnv], "state.json")) }, []string{"fix", "continue"}, 1, "no model is tuned on http://127.0.0.1:11434 yet"},
		{"other host", nil, []string{"fix", "continue", "--host", "gpu-box"}, 1, "no model is tuned on http://gpu-box:11434 yet"},
		{"broken config", func(c *cli) {
			os.WriteFile(filepath.Join(c.vars["CONTINUE_GLOBAL_DIR"], "config.yaml"), []byte("models:\n  - name: a\n   provider: ollama\n"), 0o644)
		}, []string{"fix", "continue"}, 1, "does not parse, so ctxfit left it alone"},
		{"undo unknown", nil, []string{"undo", "emacs"}, 2, `unknown client "emacs"`},
		{"fix ollama routes", func(c *cli) { c.vars["OLLAMA_HOST"] = "127.0.0.1:1" }, []string{"fix", "ollama"}, 1, "ctxfit fix ollama: cannot reach Ollama"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newFixCLI(t)
			if tt.setup != nil {
				tt.setup(c)
			}
			code, _, errOut := c.run(tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.stderr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errOut, tt.code, tt.stderr)
			}
		})
	}
}

func TestClients(t *testing.T) {
	c, _ := newFixCLI(t)
	code, out, errOut := c.run("clients")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	golden(t, "clients.txt", section(c.scrub(out), "Continue:"))

	code, out, _ = c.run("clients", "--json")
	var list struct {
		Clients []struct {
			Client    string
			Installed bool
			Paths     []string
			Entries   []clients.Ask
		}
	}
	if err := json.Unmarshal([]byte(out), &list); code != 0 || err != nil {
		t.Fatalf("exit %d, %v\n%s", code, err, out)
	}
	reports := list.Clients
	for _, r := range reports {
		if r.Paths == nil || r.Entries == nil {
			t.Errorf("clients --json, %s: paths or entries null:\n%s", r.Client, out)
		}
	}
	found := false
	for _, r := range reports {
		if r.Client != "Continue" {
			continue
		}
		found = true
		if !r.Installed || len(r.Entries) != 2 || !r.Entries[0].TooLarge() {
			t.Errorf("clients --json, Continue: %+v", r)
		}
	}
	if !found {
		t.Errorf("clients --json lacks Continue: %+v", reports)
	}

	os.RemoveAll(c.vars["CONTINUE_GLOBAL_DIR"])
	_, out, _ = c.run("clients")
	if got := section(c.scrub(out), "Continue:"); got != "Continue: not installed (no CONTINUE/config.yaml, CONTINUE/config.json)\n" {
		t.Errorf("clients without Continue:\n%s", out)
	}
}

// section returns the lines of out from the one starting with head to the
// next unindented one: one client's part of `ctxfit clients`, whatever other
// clients are registered.
func section(out, head string) string {
	var b strings.Builder
	in := false
	for _, line := range strings.SplitAfter(out, "\n") {
		switch {
		case strings.HasPrefix(line, head):
			in = true
		case in && !strings.HasPrefix(line, " "):
			in = false
		}
		if in {
			b.WriteString(line)
		}
	}
	return b.String()
}

func TestClientArg(t *testing.T) {
	for _, tt := range []struct {
		args []string
		name string
		rest string
	}{
		{[]string{"ollama", "--context", "8192"}, "ollama", "--context 8192"},
		{[]string{"--host", "ollama", "continue"}, "continue", "--host ollama"},
		{[]string{"--host=x", "--dry-run", "ollama", "m"}, "ollama", "--host=x --dry-run m"},
		{[]string{"--json"}, "", "--json"},
	} {
		name, rest, _ := clientArg(tt.args)
		if name != tt.name || strings.Join(rest, " ") != tt.rest {
			t.Errorf("clientArg(%q) = %q, %q; want %q, %q", tt.args, name, rest, tt.name, tt.rest)
		}
	}
}

// TestFixAll fixes every client found, goes on past a client whose config
// is broken (exit 1, that file untouched), and ends with the derived model
// on the Ollama side.
func TestFixAll(t *testing.T) {
	_, u := startSim(t, "mac32", nil)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	c := newCLI(t, map[string]string{"HOME": home, "CONTINUE_GLOBAL_DIR": filepath.Join(dir, "continue"), "OLLAMA_HOST": u})
	write := func(p, s string) {
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The entries name the simulator's address: without one they would
	// talk to Ollama's default address, another server.
	continueFile := filepath.Join(dir, "continue", "config.yaml")
	write(continueFile, strings.Replace(continueYAML, "    model: llama3.1:8b-instruct-fp16\n", "    model: llama3.1:8b-instruct-fp16\n    apiBase: "+u+"\n", 1))
	zedFile := filepath.Join(home, ".config", "zed", "settings.json")
	write(zedFile, `{
  // my Zed settings
  "language_models": {
    "ollama": {
      "api_url": "`+u+`",
      "available_models": [
        {"name": "llama3.1:8b-instruct-fp16", "display_name": "Llama", "max_tokens": 131072},
      ],
    },
  },
}
`)
	const brokenAider = "- name: ollama_chat/llama3.1:8b-instruct-fp16\n  extra_params: {num_ctx: [\n"
	aiderFile := filepath.Join(home, ".aider.model.settings.yml")
	write(aiderFile, brokenAider)
	c.tune(u, "llama3.1:8b-instruct-fp16", "", 24576)

	code, out, errOut := c.run("fix", "all")
	if code != 1 {
		t.Errorf("exit %d, want 1 for the broken aider file\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "aider") {
		t.Errorf("stderr does not name aider's broken file:\n%s", errOut)
	}
	for _, want := range []string{"Continue: fixed", "Zed: fixed", "Cline: not installed here.", "llama3.1:8b-instruct-fp16-ctx24k"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if b, _ := os.ReadFile(aiderFile); string(b) != brokenAider {
		t.Errorf("the broken aider file was changed:\n%s", b)
	}
	if b, _ := os.ReadFile(zedFile); !strings.Contains(string(b), `"max_tokens": 24576`) || !strings.Contains(string(b), "// my Zed settings") {
		t.Errorf("Zed's settings were not fixed byte-preservingly:\n%s", b)
	}
	if b, _ := os.ReadFile(continueFile); !strings.Contains(string(b), "contextLength: 24576") {
		t.Errorf("Continue's config was not fixed:\n%s", b)
	}

	// Everything is right now (aider aside): a second run changes nothing.
	os.Remove(aiderFile)
	code, out, _ = c.run("fix", "all")
	if code != 0 || !strings.Contains(out, "Continue: nothing to change") || !strings.Contains(out, "Zed: nothing to change") {
		t.Errorf("second fix all: exit %d\n%s", code, out)
	}
}

// A change that keeps the context (another value of the entry changes)
// says so, not "context 4096 → 4096".
func TestPrintReportContextKept(t *testing.T) {
	var b strings.Builder
	e := &env{stdout: &b, stderr: &b, getenv: func(string) string { return "" }}
	e.printReport(&b, nil, &clients.Report{Client: "Continue", Path: "/home/u/.continue/config.yaml", DryRun: true, Changes: []clients.Change{
		{Where: "models[0]", Title: "Llama", Model: "llama3.1:8b", OldContext: 4096, NewContext: 4096, OldMaxTokens: 4096, NewMaxTokens: 2048},
	}})
	if got := b.String(); strings.Contains(got, "4096 → 4096") || !strings.Contains(got, "context 4096 kept, max tokens 4096 → 2048") {
		t.Errorf("report:\n%s", got)
	}
}

// A context value that is not a number (contextLength: notanumber) is
// named, with the file, the entry and what to do, by fix, fix --dry-run,
// clients and status; fix leaves it as the user wrote it and fixes the
// other entries.
func TestNotANumber(t *testing.T) {
	_, u := startSim(t, "24GB", map[string]int{"llama3.1:8b-instruct-fp16": 8192})
	c, config := newFixCLI(t)
	c.vars["OLLAMA_HOST"] = u
	src := strings.ReplaceAll(strings.Replace(continueYAML, "contextLength: 131072", "contextLength: notanumber", 1),
		"    provider: ollama\n", "    provider: ollama\n    apiBase: "+u+"\n")
	if !strings.Contains(src, "notanumber") {
		t.Fatal("the test config has no notanumber")
	}
	if err := os.WriteFile(config, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	c.tune(u, "llama3.1:8b-instruct-fp16", "", 24576)
	c.tune(u, "qwen2.5-coder:1.5b", "", 32768)
	where := `models[0] Llama (llama3.1:8b-instruct-fp16)`
	what := `defaultCompletionOptions.contextLength is the string "notanumber", not a whole number of tokens`
	tests := []struct {
		name string
		args []string
		want []string // in stdout and stderr together
	}{
		{"dry run", []string{"fix", "continue", "--dry-run"}, []string{"warning: " + where + ": " + what, "leaves the entry alone", "write a whole number of tokens there (24576 stays on the GPU)", "Qwen (qwen2.5-coder:1.5b): context unset → 32768"}},
		{"clients", []string{"clients"}, []string{"  Llama (llama3.1:8b-instruct-fp16): " + what + "; fix leaves it alone"}},
		{"status", []string{"status"}, []string{"warning: Continue: " + where + " in " + config + ": " + what}},
		{"fix", []string{"fix", "continue"}, []string{"warning: " + where + ": " + what, "Continue: fixed " + config}},
		{"fix again", []string{"fix", "continue"}, []string{"Continue: nothing changed in " + config + "; the warnings below name the entries ctxfit left alone.", "warning: " + where + ": " + what}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := c.run(tt.args...)
			if code != 0 {
				t.Fatalf("exit %d\n%s%s", code, out, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(out+errOut, w) {
					t.Errorf("%v does not say %q:\n%s%s", tt.args, w, out, errOut)
				}
			}
			if tt.name == "dry run" {
				golden(t, "fix_not_a_number_dry_run.txt", strings.ReplaceAll(c.scrub(out+"--- stderr\n"+errOut), strings.TrimSuffix(u, "/"), "HOST"))
			}
			if b, _ := os.ReadFile(config); !strings.Contains(string(b), "contextLength: notanumber") {
				t.Errorf("the value was overwritten:\n%s", b)
			}
		})
	}
	code, out, _ := c.run("clients", "--json")
	if code != 0 || !strings.Contains(out, `"not_a_number": "defaultCompletionOptions.contextLength is the string \"notanumber\""`) {
		t.Errorf("clients --json does not mark the entry: exit %d\n%s", code, out)
	}
}
