package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/ctxfit/ctxfit/internal/clientstest"
	"github.com/ctxfit/ctxfit/internal/ollamahost"
	"github.com/ctxfit/ctxfit/ollama"
)

// TestRealClientsRunAtTheTunedContext fixes the configs of Continue's CLI,
// opencode and Codex CLI, the real programs from npm, runs each once with a
// prompt, and checks the context the server loaded the model at: the tuned
// value, which none of them can ask for through /v1; only the derived model
// they now select carries it. Before the fix each runs the model at the
// server's default. It runs against the simulator, whose /v1 endpoints load
// models as Ollama's do. (Against the real test server the tiny model's
// gibberish keeps the agents generating and calling tools until they are
// killed, so that their loads cannot be told apart; see issue 20's note.)
func TestRealClientsRunAtTheTunedContext(t *testing.T) {
	dir := clientstest.Dir(t)
	t.Run("simulator", func(t *testing.T) {
		_, u := startSim(t, "mac32", nil)
		runRealClients(t, dir, u, ollama.NewClient(ollamahost.Parse(u)), "qwen2.5:0.5b", 12288)
	})
}

// runRealClients is TestRealClientsRunAtTheTunedContext against the server
// at base, serving model.
func runRealClients(t *testing.T, dir, base string, client *api.Client, model string, tuned int) {
	tmp := t.TempDir()
	home := filepath.Join(tmp, "home")
	bin := filepath.Join(dir, "node_modules", ".bin")
	vars := map[string]string{
		"HOME": home, "OLLAMA_HOST": base, "PATH": bin + string(os.PathListSeparator) + os.Getenv("PATH"),
		"CODEX_HOME":      filepath.Join(home, ".codex"),
		"XDG_CONFIG_HOME": filepath.Join(home, ".config"),
		"XDG_CACHE_HOME":  filepath.Join(home, ".cache"),
		"XDG_DATA_HOME":   filepath.Join(home, ".local", "share"),
	}
	files := map[string]string{
		".continue/config.yaml": "name: ctxfit e2e\nversion: 1.0.0\nschema: v1\nmodels:\n  - name: Model\n    provider: ollama\n    model: " + model +
			"\n    apiBase: " + base + "\n    roles: [chat]\n    defaultCompletionOptions:\n      contextLength: 32768\n      maxTokens: 64\n",
		".config/opencode/opencode.json": `{
  "$schema": "https://opencode.ai/config.json",
  "model": "local/` + model + `",
  "provider": {
    "local": {
      "npm": "@ai-sdk/openai-compatible",
      "options": { "baseURL": "` + base + `/v1" },
      "models": { "` + model + `": { "limit": { "context": 32768, "output": 64 } } }
    }
  }
}
`,
		".codex/config.toml": "model = \"" + model + "\"\nmodel_provider = \"local\"\n\n[model_providers.local]\nname = \"Ollama\"\nbase_url = \"" + base +
			"/v1\"\nwire_api = \"responses\"\n",
	}
	for rel, src := range files {
		p := filepath.Join(home, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := newCLI(t, vars)
	c.tune(base, model, "", tuned)

	runs := map[string][]string{
		"Continue": {"cn", "-p", "--config", filepath.Join(home, ".continue", "config.yaml"), "Say hi."},
		"opencode": {"opencode", "run", "Say hi."},
		"Codex":    {"codex", "exec", "--skip-git-repo-check", "Say hi."},
	}
	loaded := func(name string, args []string) int {
		t.Helper()
		unloadAll(t, client)
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(bin, args[0]), args[1:]...)
		cmd.Dir = tmp
		cmd.WaitDelay = 5 * time.Second // helpers the client started may hold its output open
		for k, v := range vars {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		out, err := cmd.CombinedOutput()
		t.Logf("%s: %v\n%s", strings.Join(args, " "), err, tail(string(out), 2000))
		ps, perr := client.ListRunning(context.Background())
		if perr != nil {
			t.Fatal(perr)
		}
		for _, m := range ps.Models {
			if strings.HasPrefix(m.Name, strings.SplitN(model, ":", 2)[0]) {
				t.Logf("%s loaded %s at %d", name, m.Name, m.ContextLength)
				return m.ContextLength
			}
		}
		t.Errorf("%s loaded no model (its output is above)", name)
		return 0
	}

	before := map[string]int{}
	for name, args := range runs {
		before[name] = loaded(name, args)
		if before[name] == tuned {
			t.Fatalf("%s ran at %d before any fix; pick another tuned value", name, tuned)
		}
	}
	if code, out, errOut := c.run("fix", "all"); code != 0 {
		t.Fatalf("fix all: exit %d\n%s\n%s", code, out, errOut)
	}
	for name, args := range runs {
		if got := loaded(name, args); got != tuned {
			t.Errorf("%s: the server loaded the model at %d after the fix (before: %d), want the tuned %d", name, got, before[name], tuned)
		}
	}
}

// unloadAll unloads every model the server has loaded.
func unloadAll(t *testing.T, client *api.Client) {
	t.Helper()
	ctx := context.Background()
	ps, err := client.ListRunning(ctx)
	if err != nil {
		t.Fatal(err)
	}
	zero := api.Duration{Duration: 0}
	for _, m := range ps.Models {
		client.Generate(ctx, &api.GenerateRequest{Model: m.Name, KeepAlive: &zero}, func(api.GenerateResponse) error { return nil })
	}
	for i := 0; i < 50; i++ {
		if ps, err := client.ListRunning(ctx); err == nil && len(ps.Models) == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("models stay loaded after keep_alive 0")
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
