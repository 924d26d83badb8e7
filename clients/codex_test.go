package clients

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestCodexDiffNamesTheTable checks that a dry run's diff of a Codex config
// with two profiles for one model says which table each change is in, hides
// the values beside them, and keeps hunks whose line counts match their
// headers.
func TestCodexDiffNamesTheTable(t *testing.T) {
	const src = `model = "gpt-5"
model_provider = "openai"

[model_providers.ollama-local]
name = "Ollama"
base_url = "http://localhost:11434/v1"
wire_api = "responses"
http_headers = { "X-Key" = "SECRETVALUE" }

[profiles.small]
model = "llama3.1:8b-instruct-fp16"
model_provider = "ollama-local"
model_context_window = 8192

[profiles."big one"]
model = "llama3.1:8b-instruct-fp16"
model_provider = "ollama-local"
args = [
["SECRETVALUE"],
  "SECRETVALUE-2",
]
model_context_window = 131072
`
	home := t.TempDir()
	p := filepath.Join(home, ".codex", "config.toml")
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	f := &Fixer{Env: Env{Home: home, GOOS: "linux", Getenv: func(string) string { return "" }}, StateDir: t.TempDir()}
	rep, err := f.Fix(context.Background(), codexClient{}, testTarget(), true)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Changes) != 2 {
		t.Fatalf("changes %+v, want both profiles", rep.Changes)
	}
	for _, want := range []string{"[profiles.small]", `[profiles."big one"]`} {
		if !strings.Contains(rep.Diff, "\n "+want+"\n") {
			t.Errorf("the diff does not name %s:\n%s", want, rep.Diff)
		}
	}
	if strings.Contains(rep.Diff, "SECRETVALUE") || strings.Contains(rep.Diff, "localhost") {
		t.Errorf("the diff shows a value ctxfit does not write:\n%s", rep.Diff)
	}
	checkHunkCounts(t, rep.Diff)
}

// checkHunkCounts fails when a hunk of the unified diff d holds other
// numbers of old or new lines than its @@ header says.
func checkHunkCounts(t *testing.T, d string) {
	t.Helper()
	head := regexp.MustCompile(`^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@`)
	count := func(s string) int {
		if s == "" {
			return 1
		}
		n, _ := strconv.Atoi(s)
		return n
	}
	wantOld, wantNew, old, neu := 0, 0, 0, 0
	check := func() {
		if old != wantOld || neu != wantNew {
			t.Errorf("a hunk holds %d old and %d new lines, its header says %d and %d:\n%s", old, neu, wantOld, wantNew, d)
		}
	}
	in := false
	for _, line := range strings.Split(strings.TrimSuffix(d, "\n"), "\n") {
		if m := head.FindStringSubmatch(line); m != nil {
			if in {
				check()
			}
			in, wantOld, wantNew, old, neu = true, count(m[1]), count(m[2]), 0, 0
			continue
		}
		if !in || line == "" {
			continue
		}
		switch line[0] {
		case ' ':
			old++
			neu++
		case '-':
			old++
		case '+':
			neu++
		}
	}
	if in {
		check()
	}
}
