package clients

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRedactPerClient runs a dry-run fix of each client's config with API
// keys on and next to the changed lines: neither the diff nor the --json
// report shows them.
func TestRedactPerClient(t *testing.T) {
	const secret = "SECRETVALUE"
	tests := []struct {
		name   string
		client Client
		path   string // under the home directory
		src    string
	}{
		{"continue json", continueClient{}, ".continue/config.json", `{
  "models": [
    {
      "title": "Llama",
      "provider": "ollama",
      "model": "llama3.1:8b-instruct-fp16",
      "apiKey": "SECRETVALUE-1",
      "contextLength": 131072,
      "requestOptions": {"headers": {"Authorization": "Bearer SECRETVALUE-2"}},
      "completionOptions": {"maxTokens": 4096}
    }
  ]
}
`},
		{"continue yaml", continueClient{}, ".continue/config.yaml", `name: Local
version: 1.0.0
schema: v1
models:
  - name: Llama
    provider: ollama
    model: llama3.1:8b-instruct-fp16
    apiKey: SECRETVALUE-1
    defaultCompletionOptions:
      contextLength: 131072 # api_key: SECRETVALUE-2
      maxTokens: 4096
    requestOptions:
      headers:
        Authorization: Bearer SECRETVALUE-3
`},
		// The hunk starts inside the block scalar: the key line is out of it.
		{"continue yaml block scalar", continueClient{}, ".continue/config.yaml", `name: Local
version: 1.0.0
schema: v1
models:
  - name: Llama
    provider: ollama
    model: llama3.1:8b-instruct-fp16
    apiKey: |
      SECRETVALUE-1
      SECRETVALUE-2
      SECRETVALUE-3
      SECRETVALUE-4
    defaultCompletionOptions:
      contextLength: 131072
`},
		{"zed", zedClient{}, ".config/zed/settings.json", `{
  "language_models": {
    "ollama": {
      "api_url": "http://localhost:11434",
      "api_key": "SECRETVALUE-1",
      "available_models": [
        {"name": "llama3.1:8b-instruct-fp16", "max_tokens": 131072, "token": "SECRETVALUE-2"}
      ]
    },
    "openai": {"api_key": "SECRETVALUE-3"}
  }
}
`},
		{"aider", aiderClient{}, ".aider.model.settings.yml", `- name: ollama_chat/llama3.1:8b-instruct-fp16
  extra_params:
    api_key: SECRETVALUE-1
    num_ctx: 131072
    extra_headers: {Authorization: Bearer SECRETVALUE-2}
`},
		{"cline", clineClient{}, ".cline/data/settings/providers.json", `{
  "version": 1,
  "providers": {
    "ollama": {
      "settings": {
        "provider": "ollama",
        "model": "llama3.1:8b-instruct-fp16",
        "apiKey": "SECRETVALUE-1",
        "contextWindow": 131072
      }
    }
  }
}
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := t.TempDir()
			p := filepath.Join(home, tt.path)
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, []byte(tt.src), 0o600); err != nil {
				t.Fatal(err)
			}
			f := &Fixer{Env: Env{Home: home, GOOS: "linux", Getenv: func(string) string { return "" }}, StateDir: t.TempDir()}
			rep, err := f.Fix(context.Background(), tt.client, testTarget(), true)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Changes) == 0 || rep.Diff == "" {
				t.Fatalf("the dry run changes nothing (%+v); the test needs a change next to the secrets", rep)
			}
			if strings.Contains(rep.Diff, secret) {
				t.Errorf("the diff shows a secret:\n%s", rep.Diff)
			}
			if !strings.Contains(rep.Diff, Redacted) && tt.name != "cline" {
				t.Errorf("the diff hides no secret; are the secrets near the change?\n%s", rep.Diff)
			}
			b, _ := json.Marshal(rep)
			if strings.Contains(string(b), secret) {
				t.Errorf("the --json report shows a secret: %s", b)
			}
		})
	}
}

// TestRedactLog checks the log's side: a Keeper notice whose error quotes a
// secret shows it redacted.
func TestRedactLog(t *testing.T) {
	n := Notice{Kind: NoticeFailed, Client: "Continue", Err: &ParseError{Path: "config.yaml", Err: errors.New(`line 3: unexpected "apiKey": "SECRETVALUE" near Bearer SECRETVALUE2`)}}
	if s := n.String(); strings.Contains(s, "SECRETVALUE") {
		t.Errorf("log line shows a secret: %s", s)
	}
}
