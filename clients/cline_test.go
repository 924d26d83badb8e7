package clients

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The testdata files hold fake secrets, all containing "SECRET", so that
// the tests can check that none ever shows.
const clineSecret = "SECRET"

// TestClineFixKeepsSecrets fixes a real providers.json with mode 0600: the
// mode stays, the backup is private, the dry run's diff shows
// the change and no secret, and undo restores the original bytes.
func TestClineFixKeepsSecrets(t *testing.T) {
	home, state := t.TempDir(), filepath.Join(t.TempDir(), "state")
	env := Env{Home: home, Getenv: func(string) string { return "" }}
	p := filepath.Join(home, ".cline", "data", "settings", "providers.json")
	os.MkdirAll(filepath.Dir(p), 0o700)
	orig := readFile(t, filepath.Join("testdata", "cline", "basic.json"))
	if err := os.WriteFile(p, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	f := &Fixer{Env: env, StateDir: state}
	ctx := context.Background()

	rep, err := f.Fix(ctx, clineClient{}, clientTarget(), true)
	if err != nil {
		t.Fatal(err)
	}
	// The Fixer itself redacts: what `ctxfit fix cline --dry-run` prints.
	redacted := strings.ReplaceAll(rep.Diff, p, "~/.cline/data/settings/providers.json")
	if strings.Contains(redacted, clineSecret) {
		t.Errorf("the redacted diff shows a secret:\n%s", redacted)
	}
	if !strings.Contains(redacted, `+        "contextWindow": 24576`) {
		t.Errorf("the redacted diff hides the change:\n%s", redacted)
	}
	compareGolden(t, filepath.Join("testdata", "cline", "basic.diff"), []byte(redacted))
	if strings.Contains(clientReport(Result{Changes: rep.Changes, Warnings: rep.Warnings}), clineSecret) {
		t.Error("the report shows a secret")
	}

	rep, err = f.Fix(ctx, clineClient{}, clientTarget(), false)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Written || len(rep.Changes) != 1 {
		t.Fatalf("report = %+v", rep)
	}
	if got, want := readFile(t, p), readFile(t, filepath.Join("testdata", "cline", "basic.fixed.json")); !bytes.Equal(got, want) {
		t.Errorf("fixed file:\n%s", got)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("providers.json has mode %v after the fix, want 0600", fi.Mode().Perm())
	}
	if fi, err := os.Stat(rep.Backup); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("backup mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	if fi, err := os.Stat(filepath.Dir(rep.Backup)); err != nil || fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("backup directory mode %v, %v; want no access for others", fi.Mode().Perm(), err)
	}
	ents, _ := os.ReadDir(filepath.Dir(p))
	if len(ents) != 1 {
		t.Errorf("the settings folder holds %d entries, want only providers.json (temporary file left?)", len(ents))
	}

	if _, err := f.Undo(ctx, clineClient{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readFile(t, p), orig) {
		t.Error("undo did not restore the original bytes")
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("providers.json has mode %v after undo, want 0600", fi.Mode().Perm())
	}
}

func TestClineRedactDiff(t *testing.T) {
	diff := strings.Join([]string{
		"--- a",
		"+++ b",
		"@@ -3,9 +3,10 @@",
		`       "apiKey": "sk-SECRET-1",`,
		`-      "baseUrl": "http://SECRET@localhost:11434"`,
		`+      "baseUrl": "http://SECRET@localhost:11434",`,
		`+      "contextWindow": 24576`,
		`-      "maxTokens": 131072,`,
		`+      "maxTokens": 12288,`,
		`-      "headers": {"Authorization": "Bearer SECRET-2"},`,
		`+  "SECRET-3",`,
		`+  }`,
		`-  "auth": {`,
		"",
	}, "\n")
	got := clineClient{}.redactDiff(diff)
	want := strings.Join([]string{
		"--- a",
		"+++ b",
		"@@ -3,9 +3,10 @@",
		`-      "baseUrl": …`,
		`+      "baseUrl": …,`,
		`+      "contextWindow": 24576`,
		`-      "maxTokens": 131072,`,
		`+      "maxTokens": 12288,`,
		`-      "headers": {"Authorization": …},`,
		`+  …`,
		`+  }`,
		`-  "auth": {`,
		"",
	}, "\n")
	if got != want {
		t.Errorf("redactDiff:\n%s\nwant:\n%s", got, want)
	}
}
