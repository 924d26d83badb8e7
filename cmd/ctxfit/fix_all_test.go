package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// nineClients are configs of every client ctxfit fixes, each talking to the
// server at BASE (its own way: native API, /v1, a host name), written as
// their documentation shows them; "~" is the home directory.
var nineClients = map[string]string{
	"~/.continue/config.yaml": `models:
  - name: Coder
    provider: ollama
    model: qwen2.5-coder:7b
    apiBase: BASE
    defaultCompletionOptions:
      contextLength: 131072
`,
	"~/.config/zed/settings.json": `{
  // Zed
  "language_models": {
    "ollama": {
      "api_url": "BASE",
      "available_models": [
        { "name": "qwen2.5-coder:7b", "display_name": "Qwen", "max_tokens": 131072 },
      ],
    },
  },
}
`,
	"~/.aider.model.settings.yml": `- name: ollama_chat/qwen2.5-coder:7b
  extra_params:
    api_base: BASE
    num_ctx: 65536
`,
	"~/.cline/data/settings/providers.json": `{"providers":{"ollama":{"settings":{"provider":"ollama","model":"qwen2.5-coder:7b","baseUrl":"BASE","contextWindow":131072}}}}
`,
	"~/.config/opencode/opencode.json": `{
  "$schema": "https://opencode.ai/config.json",
  "model": "local/qwen2.5-coder:7b",
  "provider": {
    "local": {
      "npm": "@ai-sdk/openai-compatible",
      "options": { "baseURL": "BASE/v1" },
      "models": { "qwen2.5-coder:7b": { "limit": { "context": 131072, "output": 8192 } } }
    }
  }
}
`,
	"~/.config/Code/User/chatLanguageModels.json": `[
  {
    "name": "Local",
    "vendor": "customendpoint",
    "models": [
      { "id": "qwen2.5-coder:7b", "name": "Qwen", "url": "BASE/v1/chat/completions", "toolCalling": true, "vision": false, "maxInputTokens": 120000, "maxOutputTokens": 8192 }
    ]
  }
]
`,
	"~/.codex/config.toml": `model = "qwen2.5-coder:7b"
model_provider = "local"

[model_providers.local]
name = "Ollama"
base_url = "BASE/v1"
wire_api = "responses"
`,
	"~/.config/crush/crush.json": `{
  "models": { "large": { "model": "qwen2.5-coder:7b", "provider": "local" } },
  "providers": {
    "local": {
      "type": "openai-compat",
      "base_url": "BASE/v1",
      "models": [ { "id": "qwen2.5-coder:7b", "name": "Qwen", "context_window": 131072, "default_max_tokens": 8192 } ]
    }
  }
}
`,
	"~/.config/goose/config.yaml": `GOOSE_PROVIDER: ollama
GOOSE_MODEL: qwen2.5-coder:7b
OLLAMA_HOST: BASE
`,
}

// TestFixAllNineClients installs all nine clients (and Continue's CLI on
// the PATH), tunes one model, and checks that `ctxfit clients` lists what
// each asks for, `ctxfit fix all` brings every file to the tuned value
// and creates the derived model the /v1 clients select on the server, a
// second run changes nothing, and undo restores each file.
func TestFixAllNineClients(t *testing.T) {
	_, u := startSim(t, "mac32", nil)
	dir := t.TempDir()
	home, bin := filepath.Join(dir, "home"), filepath.Join(dir, "bin")
	os.MkdirAll(bin, 0o755)
	os.WriteFile(filepath.Join(bin, "cn"), []byte("#!/bin/sh\n"), 0o755)
	c := newCLI(t, map[string]string{"HOME": home, "OLLAMA_HOST": u, "PATH": bin})
	orig := map[string]string{}
	for rel, src := range nineClients {
		p := filepath.Join(home, strings.TrimPrefix(rel, "~/"))
		os.MkdirAll(filepath.Dir(p), 0o755)
		src = strings.ReplaceAll(src, "BASE", u)
		if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		orig[p] = src
	}
	const model, tuned, derived = "qwen2.5-coder:7b", 24576, "qwen2.5-coder:7b-ctx24k"
	c.tune(u, model, "", tuned)
	scrub := func(s string) string {
		return strings.ReplaceAll(strings.ReplaceAll(s, home, "HOME"), u, "HOST")
	}

	code, out, errOut := c.run("clients")
	if code != 0 {
		t.Fatalf("clients: exit %d\n%s", code, errOut)
	}
	golden(t, "clients_nine.txt", scrub(out))

	code, out, errOut = c.run("fix", "all", "--dry-run")
	if code != 0 {
		t.Fatalf("fix all --dry-run: exit %d\n%s", code, errOut)
	}
	golden(t, "fix_all_nine_dry_run.txt", scrub(out)+"stderr:\n"+scrub(errOut))
	if n := numCtxOf(t, u, derived); n != -1 {
		t.Fatalf("the dry run created %s", derived)
	}

	code, out, errOut = c.run("fix", "all")
	if code != 0 {
		t.Fatalf("fix all: exit %d\n%s\n%s", code, out, errOut)
	}
	if n := numCtxOf(t, u, derived); n != tuned {
		t.Errorf("the server's %s has num_ctx %d, want %d", derived, n, tuned)
	}
	for p, src := range orig {
		got, _ := os.ReadFile(p)
		want := "24576"
		if strings.HasSuffix(p, "chatLanguageModels.json") {
			want = `"maxInputTokens": 16384` // and maxOutputTokens 8192
		}
		if string(got) == src || !strings.Contains(string(got), want) {
			t.Errorf("%s not fixed:\n%s", p, got)
		}
		v1 := !strings.Contains(p, "zed") && !strings.Contains(p, "aider") && !strings.Contains(p, "cline")
		if v1 != strings.Contains(string(got), derived) {
			t.Errorf("%s: selects %s: %v, want %v:\n%s", p, derived, !v1, v1, got)
		}
		if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v after the fix", p, fi.Mode().Perm())
		}
	}

	code, out, _ = c.run("clients")
	if code != 0 || strings.Contains(out, "Run `ctxfit fix") || strings.Count(out, "tuned, as it should") != 9 {
		t.Errorf("clients after the fix:\n%s", scrub(out))
	}
	code, out, _ = c.run("fix", "all")
	if code != 0 || strings.Count(out, "nothing to change") != 9 {
		t.Errorf("second fix all: exit %d\n%s", code, scrub(out))
	}
	for _, name := range clientNames() {
		if code, _, errOut := c.run("undo", name); code != 0 {
			t.Errorf("undo %s: exit %d: %s", name, code, errOut)
		}
	}
	for p, src := range orig {
		if got, _ := os.ReadFile(p); string(got) != src {
			t.Errorf("undo left %s:\n%s", p, got)
		}
	}
}
