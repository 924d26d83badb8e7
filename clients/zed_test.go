package clients

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctxfit/ctxfit/clients/edit"

	"github.com/ctxfit/ctxfit/internal/ollamahost"
)

// The helpers here serve the tests of Zed, aider and Cline alike.

// clientTuned are the tuned values those tests fix towards, on the default
// host.
var clientTuned = map[string]int{
	"llama3.1:8b-instruct-fp16": 24576,
	"qwen2.5-coder:1.5b":        32768,
	"mistral-nemo:latest":       16384,
}

func clientTarget() Target {
	return Target{
		Host: ollamahost.Parse(""),
		Tuned: func(model string) (int, bool) {
			for m, n := range clientTuned {
				if sameModelName(m, model) {
					return n, true
				}
			}
			return 0, false
		},
	}
}

// clientReport renders what Edit reported, for the .report golden files.
func clientReport(res Result) string {
	var b strings.Builder
	for _, c := range res.Changes {
		fmt.Fprintf(&b, "%s %s: context %s → %d", c.Where, c.Label(), unsetOr(c.OldContext), c.NewContext)
		if c.OldMaxTokens != c.NewMaxTokens {
			fmt.Fprintf(&b, ", max tokens %s → %d", unsetOr(c.OldMaxTokens), c.NewMaxTokens)
		}
		b.WriteByte('\n')
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", w)
	}
	if b.Len() == 0 {
		b.WriteString("no changes\n")
	}
	return b.String()
}

func unsetOr(n int) string {
	if n == 0 {
		return "unset"
	}
	return fmt.Sprint(n)
}

// editGolden runs c.Edit, as on a file called configName, on every input
// under testdata/DIR (the files matching pattern but not *.fixed.* or
// *.conf.*), and compares the output with NAME.fixed.EXT and the report
// with NAME.report; -update rewrites them. When NAME.conf.EXT exists, it is
// passed as the override overrideName. Each edit must also pass
// checkClientEdit.
func editGolden(t *testing.T, c Client, dir, pattern, configName, overrideName string, tgt Target) {
	t.Helper()
	inputs, err := filepath.Glob(filepath.Join("testdata", dir, pattern))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, in := range inputs {
		if strings.Contains(filepath.Base(in), ".fixed.") || strings.Contains(filepath.Base(in), ".conf.") {
			continue
		}
		n++
		t.Run(filepath.Base(in), func(t *testing.T) {
			src := readFile(t, in)
			input := Input{Path: configName, Src: src}
			ext := filepath.Ext(in)
			if conf, err := os.ReadFile(strings.TrimSuffix(in, ext) + ".conf" + ext); err == nil {
				input.Overrides = map[string][]byte{overrideName: conf}
			}
			res, err := c.Edit(input, tgt)
			if err != nil {
				t.Fatalf("Edit: %v", err)
			}
			checkClientEdit(t, c, input, res, tgt)
			fixedPath := strings.TrimSuffix(in, ext) + ".fixed" + ext
			reportPath := strings.TrimSuffix(in, ext) + ".report"
			compareGolden(t, fixedPath, res.Out)
			compareGolden(t, reportPath, []byte(clientReport(res)))
		})
	}
	if n == 0 {
		t.Fatalf("no inputs under testdata/%s", dir)
	}
}

func compareGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it):\n%s", path, edit.Diff("want", "got", want, got))
	}
}

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkClientEdit checks what must hold for every edit: nothing changes
// when nothing is reported; otherwise a second edit of the output changes
// nothing, and every changed entry now asks for its tuned value (or a
// warning says what overrides it).
func checkClientEdit(t testing.TB, c Client, in Input, res Result, tgt Target) {
	t.Helper()
	if len(res.Changes) == 0 {
		if !bytes.Equal(res.Out, in.Src) {
			t.Fatal("no changes reported, but the output differs from the input")
		}
		return
	}
	again, err := c.Edit(Input{Path: in.Path, Src: res.Out, Overrides: in.Overrides}, tgt)
	if err != nil {
		t.Fatalf("second Edit: %v\n%s", err, res.Out)
	}
	if len(again.Changes) != 0 {
		t.Fatalf("second Edit changed %+v again\n%s", again.Changes, res.Out)
	}
	asks, err := c.Asks(Input{Path: in.Path, Src: res.Out}, tgt)
	if err != nil {
		t.Fatalf("Asks on the output: %v", err)
	}
	for _, ch := range res.Changes {
		found := false
		for _, a := range asks {
			if a.Where != ch.Where {
				continue
			}
			found = true
			if a.Context != ch.NewContext && len(res.Warnings) == 0 {
				t.Errorf("%s asks for %d after the fix, want %d", a.Where, a.Context, ch.NewContext)
			}
		}
		if !found {
			t.Errorf("Asks on the output has no entry at %s", ch.Where)
		}
	}
}

func TestZedEditGolden(t *testing.T) {
	editGolden(t, zedClient{}, "zed", "*.json", "settings.json", "", clientTarget())
}

func TestZedEditRefusesBrokenFiles(t *testing.T) {
	for _, src := range []string{
		`{"language_models": {"ollama": {"available_models": [{"name": "llama3.1:8b-instruct-fp16", "max_tokens": 1}`,
		`[]`,
		`{"a": 1,, }`,
		``,
	} {
		_, err := zedClient{}.Edit(Input{Path: "settings.json", Src: []byte(src)}, clientTarget())
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("Edit(%q) = %v, want a ParseError", src, err)
		}
	}
}

func TestZedAsks(t *testing.T) {
	src := readFile(t, filepath.Join("testdata", "zed", "add_trailing_commas.json"))
	asks, err := zedClient{}.Asks(Input{Path: "settings.json", Src: src}, clientTarget())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range asks {
		got = append(got, fmt.Sprintf("%s: %s", a.Where, a))
	}
	want := []string{
		"language_models.ollama.available_models[0]: Zed asks phi3:mini for 4096 tokens",
		"agent.default_model: Zed asks mistral-nemo for its default context; 16384 stays on the GPU",
		"agent.inline_assistant_model: Zed asks qwen2.5-coder:1.5b for its default context; 32768 stays on the GPU",
		"agent.favorite_models[0]: Zed asks llama3.1:8b-instruct-fp16 for its default context; 24576 stays on the GPU",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Asks:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Another server's settings ask nothing of this one.
	other := readFile(t, filepath.Join("testdata", "zed", "other_host.json"))
	if asks, err := (zedClient{}).Asks(Input{Path: "settings.json", Src: other}, clientTarget()); err != nil || len(asks) != 0 {
		t.Errorf("other host: Asks = %v, %v; want none", asks, err)
	}
}

func TestZedFiles(t *testing.T) {
	home := t.TempDir()
	vars := map[string]string{}
	env := Env{Home: home, GOOS: "linux", Getenv: func(k string) string { return vars[k] }}
	for _, tt := range []struct {
		goos string
		vars map[string]string
		want string
	}{
		{"linux", nil, filepath.Join(home, ".config", "zed", "settings.json")},
		{"linux", map[string]string{"XDG_CONFIG_HOME": "/xdg"}, filepath.Join("/xdg", "zed", "settings.json")},
		{"linux", map[string]string{"XDG_CONFIG_HOME": "relative"}, filepath.Join(home, ".config", "zed", "settings.json")},
		{"freebsd", map[string]string{"FLATPAK_XDG_CONFIG_HOME": "/flat", "XDG_CONFIG_HOME": "/xdg"}, filepath.Join("/flat", "zed", "settings.json")},
		{"darwin", map[string]string{"XDG_CONFIG_HOME": "/xdg"}, filepath.Join(home, ".config", "zed", "settings.json")},
		{"windows", map[string]string{"APPDATA": `C:\Users\u\AppData\Roaming`}, filepath.Join(`C:\Users\u\AppData\Roaming`, "Zed", "settings.json")},
		{"windows", nil, filepath.Join(home, "AppData", "Roaming", "Zed", "settings.json")},
	} {
		vars = tt.vars
		env.GOOS = tt.goos
		f, err := zedClient{}.Files(env)
		if err != nil || f.Config != "" || len(f.Watch) != 1 || f.Watch[0] != tt.want {
			t.Errorf("%s %v: Files = %+v, %v; want to watch %s", tt.goos, tt.vars, f, err, tt.want)
		}
	}
	vars, env.GOOS = nil, "linux"
	p := filepath.Join(home, ".config", "zed", "settings.json")
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, []byte("{}"), 0o644)
	if f, _ := (zedClient{}).Files(env); f.Config != p {
		t.Errorf("with settings.json: Config = %q, want %s", f.Config, p)
	}
}

// TestZedFixRealFile fixes a settings.json that is a symlink into a
// dotfiles folder, with mode 0600: the link stays a link, the target gets
// the fix and keeps its mode, a dry run prints the diff and writes nothing,
// and undo restores the original bytes.
func TestZedFixRealFile(t *testing.T) {
	home, state, dotfiles := t.TempDir(), t.TempDir(), t.TempDir()
	env := Env{Home: home, GOOS: "linux", Getenv: func(string) string { return "" }}
	target := filepath.Join(dotfiles, "zed-settings.json")
	orig := readFile(t, filepath.Join("testdata", "zed", "basic.json"))
	if err := os.WriteFile(target, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(home, ".config", "zed", "settings.json")
	os.MkdirAll(filepath.Dir(link), 0o755)
	if err := os.Symlink(target, link); err != nil {
		t.Skipf("no symlinks here: %v", err)
	}
	f := &Fixer{Env: env, StateDir: state}
	ctx := context.Background()

	rep, err := f.Fix(ctx, zedClient{}, clientTarget(), true)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Written || !bytes.Equal(readFile(t, target), orig) {
		t.Fatal("the dry run wrote the file")
	}
	compareGolden(t, filepath.Join("testdata", "zed", "basic.diff"), []byte(strings.ReplaceAll(rep.Diff, link, "~/.config/zed/settings.json")))

	rep, err = f.Fix(ctx, zedClient{}, clientTarget(), false)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Written || len(rep.Changes) != 2 {
		t.Fatalf("report = %+v", rep)
	}
	if got, want := readFile(t, target), readFile(t, filepath.Join("testdata", "zed", "basic.fixed.json")); !bytes.Equal(got, want) {
		t.Errorf("fixed file:\n%s", got)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("settings.json is no longer a symlink: %v %v", fi.Mode(), err)
	}
	if fi, _ := os.Stat(target); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if again, err := f.Fix(ctx, zedClient{}, clientTarget(), false); err != nil || again.Written || len(again.Changes) != 0 {
		t.Errorf("second fix = %+v, %v; want nothing to do", again, err)
	}

	if _, err := f.Undo(ctx, zedClient{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readFile(t, target), orig) {
		t.Error("undo did not restore the original bytes")
	}
}

// FuzzZedEdit checks that for any settings.json Edit either refuses it or
// returns one that parses and holds the tuned values.
func FuzzZedEdit(f *testing.F) {
	inputs, _ := filepath.Glob(filepath.Join("testdata", "zed", "*.json"))
	for _, in := range inputs {
		if !strings.Contains(in, ".fixed.") {
			f.Add(readFile(f, in))
		}
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		in := Input{Path: "settings.json", Src: src}
		res, err := zedClient{}.Edit(in, clientTarget())
		if err != nil {
			if strings.Contains(err.Error(), "internal error") {
				t.Fatalf("Edit refused a file it should handle: %v", err)
			}
			return
		}
		if len(res.Changes) > 0 {
			if _, err := edit.DecodeJSON(func() []byte { b, _ := edit.CutBOM(res.Out); return b }()); err != nil {
				t.Fatalf("output does not parse: %v", err)
			}
		}
		checkClientEdit(t, zedClient{}, in, res, clientTarget())
	})
}
