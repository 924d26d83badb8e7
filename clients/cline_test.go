package clients

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The testdata files hold fake secrets, all containing "SECRET", so that
// the tests can check that none ever shows.
const clineSecret = "SECRET"

func TestClineEditGolden(t *testing.T) {
	editGolden(t, clineClient{}, "cline", "*.json", "providers.json", "", clientTarget())
}

func TestClineEditRefusesLooseJSON(t *testing.T) {
	for _, src := range []string{
		"{\"providers\": {\"ollama\": {\"settings\": {\"provider\": \"ollama\", \"apiKey\": \"SECRET-9\", \"model\": \"llama3.1:8b-instruct-fp16\",}}}}",
		"// Cline\n{\"providers\": {}}",
		"\xef\xbb\xbf{\"providers\": {}}",
		"{\"apiKey\": \"SECRET-9\"",
		"[]",
	} {
		_, err := clineClient{}.Edit(Input{Path: "providers.json", Src: []byte(src)}, clientTarget())
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("Edit(%q) = %v, want a ParseError", src, err)
			continue
		}
		if strings.Contains(err.Error(), clineSecret) {
			t.Errorf("the error shows the file's content: %v", err)
		}
	}
}

func TestClineAsks(t *testing.T) {
	src := readFile(t, filepath.Join("testdata", "cline", "context_set.json"))
	asks, err := clineClient{}.Asks(Input{Path: "providers.json", Src: src}, clientTarget())
	if err != nil {
		t.Fatal(err)
	}
	if len(asks) != 1 || asks[0].String() != "Cline asks qwen2.5-coder:1.5b for 131072 tokens; 32768 stays on the GPU" || asks[0].MaxTokens != 131072 {
		t.Errorf("Asks = %+v", asks)
	}
	for _, name := range []string{"other_host.json", "openai_compatible.json"} {
		src := readFile(t, filepath.Join("testdata", "cline", name))
		if asks, err := (clineClient{}).Asks(Input{Path: "providers.json", Src: src}, clientTarget()); err != nil || len(asks) != 0 {
			t.Errorf("%s: Asks = %+v, %v; want none", name, asks, err)
		}
	}
}

func TestClineFiles(t *testing.T) {
	home := t.TempDir()
	vars := map[string]string{}
	env := Env{Home: home, Getenv: func(k string) string { return vars[k] }}
	for _, tt := range []struct {
		vars map[string]string
		want string
	}{
		{nil, filepath.Join(home, ".cline", "data", "settings", "providers.json")},
		{map[string]string{"CLINE_DIR": "/c"}, filepath.Join("/c", "data", "settings", "providers.json")},
		{map[string]string{"CLINE_DIR": "/c", "CLINE_DATA_DIR": "/d"}, filepath.Join("/d", "settings", "providers.json")},
		{map[string]string{"CLINE_DATA_DIR": "/d", "CLINE_PROVIDER_SETTINGS_PATH": "/p.json"}, "/p.json"},
	} {
		vars = tt.vars
		f, err := clineClient{}.Files(env)
		if err != nil || f.Config != "" || len(f.Watch) != 1 || f.Watch[0] != tt.want {
			t.Errorf("%v: Files = %+v, %v; want to watch %s", tt.vars, f, err, tt.want)
		}
	}
}

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
		`-      "headers": …,`,
		`+  …`,
		`+  }`,
		`-  "auth": {`,
		"",
	}, "\n")
	if got != want {
		t.Errorf("redactDiff:\n%s\nwant:\n%s", got, want)
	}
}

// FuzzClineEdit checks that for any providers.json Edit either refuses it,
// or returns strict JSON that holds the tuned value, and that no error
// quotes the file.
func FuzzClineEdit(f *testing.F) {
	inputs, _ := filepath.Glob(filepath.Join("testdata", "cline", "*.json"))
	for _, in := range inputs {
		if !strings.Contains(in, ".fixed.") {
			f.Add(readFile(f, in))
		}
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		in := Input{Path: "providers.json", Src: src}
		res, err := clineClient{}.Edit(in, clientTarget())
		if err != nil {
			if strings.Contains(err.Error(), "internal error") {
				t.Fatalf("Edit refused a file it should handle: %v", err)
			}
			if bytes.Contains(src, []byte("SECRET")) && strings.Contains(err.Error(), "SECRET") {
				t.Fatalf("the error quotes the file: %v", err)
			}
			return
		}
		if err := strictJSON(res.Out); err != nil {
			t.Fatalf("output is %v", err)
		}
		checkClientEdit(t, clineClient{}, in, res, clientTarget())
	})
}
