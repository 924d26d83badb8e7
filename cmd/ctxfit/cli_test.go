package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestHelpGolden: every command has help in one layout (usage, description,
// flags, examples), printed on stdout with exit 0 for `help COMMAND`,
// `COMMAND -h` and `COMMAND --help` alike.
func TestHelpGolden(t *testing.T) {
	c := newCLI(t, nil)
	docs := helpDocs()
	for _, cmd := range commands() {
		if _, ok := docs[cmd.name]; !ok {
			t.Errorf("command %s has no help in helpDocs", cmd.name)
		}
	}
	var names []string
	for name := range docs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			words := strings.Fields(name)
			code, out, errOut := c.run(append([]string{"help"}, words...)...)
			if code != 0 || errOut != "" {
				t.Fatalf("help %s: exit %d, stderr %q", name, code, errOut)
			}
			for _, part := range []string{"Usage:\n  ctxfit ", "\nFlags:\n", "  -h, --help", "\nExamples:\n  ctxfit "} {
				if !strings.Contains(out, part) {
					t.Errorf("help %s lacks %q:\n%s", name, part, out)
				}
			}
			golden(t, filepath.Join("help", strings.ReplaceAll(name, " ", "_")+".txt"), out)
			for _, flag := range []string{"-h", "--help"} {
				code, again, _ := c.run(append(words, flag)...)
				if code != 0 || again != out {
					t.Errorf("%s %s: exit %d, output differs from help %s:\n%s", name, flag, code, name, again)
				}
			}
		})
	}
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		code, out, _ := c.run(args...)
		if code != 0 || !strings.Contains(out, "Usage:\n  ctxfit [flags]") {
			t.Errorf("%v: exit %d\n%s", args, code, out)
		}
	}
}

// TestCLIConventions covers what users of ollama, gh and docker expect.
func TestCLIConventions(t *testing.T) {
	c := newCLI(t, nil)
	for _, args := range [][]string{{"--version"}, {"version"}} {
		code, out, _ := c.run(args...)
		if code != 0 || !strings.HasPrefix(out, "ctxfit ") || !strings.Contains(out, "go1.") || !strings.Contains(out, "/") {
			t.Errorf("%v: exit %d, %q; want version, commit, Go version, OS/arch", args, code, out)
		}
	}
	tests := []struct {
		args []string
		code int
		says string
	}{
		{[]string{"bogus"}, 2, `unknown command "bogus"`},
		{[]string{"status", "extra"}, 2, `unexpected "extra"`},
		{[]string{"status", "--host", "not a url"}, 2, `"not a url" is not a host name`},
		{[]string{"--host", "ftp://x"}, 2, `the scheme "ftp"`}, // ctxfit [flags] is `ctxfit run [flags]`
		{[]string{"completion"}, 2, "name one shell"},
		{[]string{"clients", "--bogus"}, 2, "Run `ctxfit help clients` for usage."},
		{[]string{"fix", "ollama", "--context", "-1", "m"}, 2, "Run `ctxfit help fix ollama` for usage."},
	}
	for _, tt := range tests {
		code, _, errOut := c.run(tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.says) {
			t.Errorf("%q: exit %d, stderr %q; want %d and %q", tt.args, code, errOut, tt.code, tt.says)
		}
	}
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		code, out, _ := c.run("completion", shell)
		if code != 0 || !strings.Contains(out, "tune") || !strings.Contains(out, "host") || !strings.Contains(out, "dry-run") {
			t.Errorf("completion %s: exit %d\n%s", shell, code, out)
		}
	}
	// Hints use the name ctxfit was started as.
	e := &env{prog: "go run ./cmd/ctxfit"}
	if got := e.cmdline(nil, "fix", "all"); got != "`go run ./cmd/ctxfit fix all`" {
		t.Errorf("cmdline = %s", got)
	}
	for arg0, want := range map[string]string{"/usr/local/bin/ctxfit": "ctxfit", `C:\bin\ctxfit.exe`: "ctxfit", os.TempDir() + "/go-build123/b001/exe/ctxfit": "go run ./cmd/ctxfit", "/tmp/bin/ctxfit": "ctxfit"} {
		if filepath.Separator != '\\' && strings.Contains(arg0, `\`) {
			continue
		}
		if got := progName(arg0); got != want {
			t.Errorf("progName(%q) = %q, want %q", arg0, got, want)
		}
	}
}

// TestJSONGolden runs every command that takes --json in one scene and
// checks the one schema: a JSON object on stdout, lists as lists, no null
// anywhere, the same names for the same things (golden files), and for an
// error {"error": …} with a non-zero exit.
func TestJSONGolden(t *testing.T) {
	_, u := startSim(t, "24GB", map[string]int{"llama3.1:8b-instruct-fp16": 131072})
	c, config := newFixCLI(t)
	c.vars["OLLAMA_HOST"] = u
	// Continue's entries talk to the simulated server.
	src := strings.ReplaceAll(continueYAML, "    provider: ollama\n", "    provider: ollama\n    apiBase: "+u+"\n")
	if err := os.WriteFile(config, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	c.tune(u, "llama3.1:8b-instruct-fp16", "", 24576)
	// A client whose context no file sets: an entry of clients' same list.
	if err := os.MkdirAll(filepath.Join(c.vars["HOME"], ".vscode", "extensions", "kilocode.kilo-code-4.0.0"), 0o755); err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name string
		args []string
		code int
	}{
		{"status", []string{"status"}, 0},
		{"tune", []string{"tune", "qwen2.5:0.5b"}, 0},
		{"tune_list", []string{"tune", "--list"}, 0},
		{"bench", []string{"bench", "qwen2.5:0.5b", "--context", "2048"}, 0},
		{"clients", []string{"clients"}, 0},
		{"fix_continue_dry_run", []string{"fix", "continue", "--dry-run"}, 0},
		{"fix_all_dry_run", []string{"fix", "all", "--dry-run"}, 0},
		{"fix_continue", []string{"fix", "continue"}, 0},
		{"undo_dry_run", []string{"undo", "continue", "--dry-run"}, 0},
		{"undo", []string{"undo", "continue"}, 0},
		{"fix_ollama", []string{"fix", "ollama", "qwen2.5:0.5b"}, 0},
		{"fix_ollama_undo", []string{"fix", "ollama", "--undo", "qwen2.5:0.5b"}, 0},
		{"version", []string{"version"}, 0},
		{"error_tune", []string{"tune", "nosuch:1b"}, 1},
		{"error_host", []string{"status", "--host", "not a url"}, 2},
		{"error_client", []string{"fix", "emacs"}, 2},
		{"error_unreachable", []string{"status", "--host", "127.0.0.1:1"}, 1},
		{"error_flag", []string{"tune", "--nosuch"}, 2},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			code, out, errOut := c.run(append(s.args, "--json")...)
			if code != s.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, s.code, out, errOut)
			}
			var v any
			if err := json.Unmarshal([]byte(out), &v); err != nil {
				t.Fatalf("stdout is not JSON: %v\n%s", err, out)
			}
			obj, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("stdout is not one JSON object:\n%s", out)
			}
			if s.code != 0 {
				if msg, _ := obj["error"].(string); msg == "" {
					t.Errorf("an error without \"error\": %s", out)
				}
			}
			if path := findNull(v, "$"); path != "" {
				t.Errorf("null at %s:\n%s", path, out)
			}
			golden(t, filepath.Join("json", s.name+".json"), normalizeJSON(c, u, out))
		})
	}
}

// findNull returns the path of the first null in v, or "".
func findNull(v any, path string) string {
	switch x := v.(type) {
	case nil:
		return path
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if p := findNull(x[k], path+"."+k); p != "" {
				return p
			}
		}
	case []any:
		for i, e := range x {
			if p := findNull(e, path+"["+string(rune('0'+i%10))+"]"); p != "" {
				return p
			}
		}
	}
	return ""
}

var (
	jsonTime    = regexp.MustCompile(`"\d{4}-\d\d-\d\dT[0-9:.]+(Z|[+-]\d\d:\d\d)"`)
	jsonSeconds = regexp.MustCompile(`("[a-z_]*seconds|"tokens_per_second)": [0-9.e+-]+`)
	jsonBuild   = regexp.MustCompile(`"(version|commit|commit_time|go|os|arch)": "[^"]*"`)
	jsonPort    = regexp.MustCompile(`127\.0\.0\.1:[0-9]+`)
	jsonDigest  = regexp.MustCompile(`"digest": "[0-9a-f]{64}"`)
)

// normalizeJSON replaces what changes from run to run in out.
func normalizeJSON(c *cli, u, out string) string {
	out = strings.ReplaceAll(out, u, "HOST")
	out = c.scrub(out)
	out = strings.ReplaceAll(out, c.vars["HOME"], "HOME")
	out = jsonTime.ReplaceAllString(out, `"TIME"`)
	out = jsonSeconds.ReplaceAllString(out, `$1": 0`)
	out = jsonBuild.ReplaceAllString(out, `"$1": "X"`)
	out = jsonDigest.ReplaceAllString(out, `"digest": "DIGEST"`)
	out = jsonPort.ReplaceAllString(out, "127.0.0.1:PORT")
	return out
}
