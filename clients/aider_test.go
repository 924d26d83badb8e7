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

	"github.com/ctxfit/ctxfit/internal/ollamahost"
)

func TestAiderEditGolden(t *testing.T) {
	editGolden(t, aiderClient{}, "aider", "*.yml", "/home/u/.aider.model.settings.yml", "/home/u/.aider.conf.yml", clientTarget())
}

func TestAiderEditRefusesBrokenFiles(t *testing.T) {
	for _, src := range []string{
		"- name: a\n  name: b\n",
		"name: ollama_chat/llama3.1:8b-instruct-fp16\nextra_params:\n  num_ctx: 1\n",
		"- name: [unclosed\n",
		"just text\n",
	} {
		_, err := aiderClient{}.Edit(Input{Path: ".aider.model.settings.yml", Src: []byte(src)}, clientTarget())
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("Edit(%q) = %v, want a ParseError", src, err)
		}
	}
}

func TestAiderOverrideWarnings(t *testing.T) {
	src := []byte("- name: ollama_chat/llama3.1:8b-instruct-fp16\n  extra_params:\n    num_ctx: 2048\n")
	in := Input{Path: "/home/u/.aider.model.settings.yml", Src: src, Overrides: map[string][]byte{
		"/repo/.aider.model.settings.yml": []byte("- name: ollama_chat/llama3.1:8b-instruct-fp16\n  edit_format: diff\n- name: ollama_chat/other\n"),
		"/repo/.aider.conf.yml":           []byte("model-settings-file: team-models.yml\n"),
		"/work/.aider.model.settings.yml": []byte("- name: [broken\n"),
	}}
	res, err := aiderClient{}.Edit(in, clientTarget())
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(res.Warnings, "\n")
	for _, want := range []string{
		"/repo/.aider.model.settings.yml has its own entry for ollama_chat/llama3.1:8b-instruct-fp16",
		"/repo/.aider.conf.yml names model-settings-file team-models.yml",
		"/work/.aider.model.settings.yml does not parse",
		"restart running aider sessions",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("warnings lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "ollama_chat/other") {
		t.Errorf("warnings name an entry that was not changed:\n%s", got)
	}
}

func TestAiderAsks(t *testing.T) {
	src := readFile(t, filepath.Join("testdata", "aider", "basic.yml"))
	asks, err := aiderClient{}.Asks(Input{Path: "s.yml", Src: src}, clientTarget())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range asks {
		got = append(got, fmt.Sprintf("%s %s", a.Where, a))
	}
	want := []string{
		"[0] aider asks llama3.1:8b-instruct-fp16 for 131072 tokens; 24576 stays on the GPU",
		"[1] aider asks qwen2.5-coder:1.5b for its default context; 32768 stays on the GPU",
		"[2] aider asks phi3:mini for 4096 tokens",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Asks:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// The models .aider.conf.yml names without an entry ask for aider's
	// per-request sizing.
	in := Input{Path: "s.yml", Src: readFile(t, filepath.Join("testdata", "aider", "add_to_list.yml")),
		Overrides: map[string][]byte{"/h/.aider.conf.yml": readFile(t, filepath.Join("testdata", "aider", "add_to_list.conf.yml"))}}
	asks, err = aiderClient{}.Asks(in, clientTarget())
	if err != nil {
		t.Fatal(err)
	}
	got = got[:0]
	for _, a := range asks {
		got = append(got, fmt.Sprintf("%s %s", a.Where, a))
	}
	want = []string{
		"[0] aider asks phi3:mini for 4096 tokens",
		".aider.conf.yml aider asks llama3.1:8b-instruct-fp16 for its default context; 24576 stays on the GPU",
		".aider.conf.yml aider asks qwen2.5-coder:1.5b for its default context; 32768 stays on the GPU",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Asks with .aider.conf.yml:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestAiderFiles(t *testing.T) {
	home := t.TempDir()
	repo := filepath.Join(t.TempDir(), "repo")
	work := filepath.Join(repo, "sub")
	os.MkdirAll(filepath.Join(repo, ".git"), 0o755)
	os.MkdirAll(work, 0o755)
	env := Env{Home: home, Getenv: func(string) string { return "" }, WorkDir: work}

	f, err := aiderClient{}.Files(env)
	if err != nil || f.Config != "" || len(f.Overrides) != 0 {
		t.Fatalf("nothing there: Files = %+v, %v", f, err)
	}
	for _, p := range []string{
		filepath.Join(home, aiderSettingsName), filepath.Join(home, aiderConfName),
		filepath.Join(repo, aiderSettingsName), filepath.Join(work, aiderConfName),
	} {
		os.WriteFile(p, []byte("# x\n"), 0o644)
	}
	f, _ = aiderClient{}.Files(env)
	if f.Config != filepath.Join(home, aiderSettingsName) {
		t.Errorf("Config = %q", f.Config)
	}
	want := []string{filepath.Join(home, aiderConfName), filepath.Join(repo, aiderSettingsName), filepath.Join(work, aiderConfName)}
	if strings.Join(f.Overrides, "\n") != strings.Join(want, "\n") {
		t.Errorf("Overrides = %q, want %q", f.Overrides, want)
	}

	// Run in the home directory, which is also a git repository (dotfiles):
	// every file is listed once.
	os.MkdirAll(filepath.Join(home, ".git"), 0o755)
	env.WorkDir = home
	f, _ = aiderClient{}.Files(env)
	if len(f.Overrides) != 1 || f.Overrides[0] != filepath.Join(home, aiderConfName) {
		t.Errorf("in a dotfiles home: Overrides = %q", f.Overrides)
	}
}

// TestAiderFixRealFile fixes ~/.aider.model.settings.yml through the
// Fixer, adding the entry for the model ~/.aider.conf.yml names, and undoes
// it.
func TestAiderFixRealFile(t *testing.T) {
	home, state := t.TempDir(), t.TempDir()
	env := Env{Home: home, Getenv: func(string) string { return "" }}
	p := filepath.Join(home, aiderSettingsName)
	orig := readFile(t, filepath.Join("testdata", "aider", "add_to_list.yml"))
	os.WriteFile(p, orig, 0o640)
	os.WriteFile(filepath.Join(home, aiderConfName), readFile(t, filepath.Join("testdata", "aider", "add_to_list.conf.yml")), 0o644)
	f := &Fixer{Env: env, StateDir: state}
	ctx := context.Background()

	rep, err := f.Fix(ctx, aiderClient{}, clientTarget(), false)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Written || len(rep.Changes) != 2 {
		t.Fatalf("report = %+v", rep)
	}
	if got, want := readFile(t, p), readFile(t, filepath.Join("testdata", "aider", "add_to_list.fixed.yml")); !bytes.Equal(got, want) {
		t.Errorf("fixed file:\n%s", got)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", fi.Mode().Perm())
	}
	if again, err := f.Fix(ctx, aiderClient{}, clientTarget(), false); err != nil || again.Written {
		t.Errorf("second fix = %+v, %v; want nothing to do", again, err)
	}
	if _, err := f.Undo(ctx, aiderClient{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readFile(t, p), orig) {
		t.Error("undo did not restore the original bytes")
	}
}

// FuzzAiderEdit checks that for any settings file Edit either refuses it or
// returns one that parses and holds the tuned values.
func FuzzAiderEdit(f *testing.F) {
	inputs, _ := filepath.Glob(filepath.Join("testdata", "aider", "*.yml"))
	for _, in := range inputs {
		if !strings.Contains(in, ".fixed.") && !strings.Contains(in, ".conf.") {
			f.Add(readFile(f, in), []byte("model: ollama_chat/llama3.1:8b-instruct-fp16\n"))
		}
	}
	f.Fuzz(func(t *testing.T, src, conf []byte) {
		in := Input{Path: ".aider.model.settings.yml", Src: src, Overrides: map[string][]byte{"/h/.aider.conf.yml": conf}}
		res, err := aiderClient{}.Edit(in, clientTarget())
		if err != nil {
			if strings.Contains(err.Error(), "internal error") {
				t.Fatalf("Edit refused a file it should handle: %v", err)
			}
			return
		}
		checkClientEdit(t, aiderClient{}, in, res, clientTarget())
	})
}

// TestAiderAddsTunedModels adds an ollama_chat/ entry for each tuned model
// the file lacks, in the file's own layout, and none for a model that an
// entry (under either prefix, with or without :latest) already covers.
func TestAiderAddsTunedModels(t *testing.T) {
	src := []byte("# my aider models\n- name: ollama/qwen2.5-coder:1.5b\n  extra_params:\n    num_ctx: 32768\n")
	tgt := clientTarget()
	tgt.Models = []string{"llama3.1:8b-instruct-fp16", "qwen2.5-coder:1.5b"}
	res, err := aiderClient{}.Edit(Input{Path: "/home/u/.aider.model.settings.yml", Src: src}, tgt)
	if err != nil {
		t.Fatal(err)
	}
	want := string(src) + "- name: ollama_chat/llama3.1:8b-instruct-fp16\n  extra_params:\n    num_ctx: 24576\n"
	if string(res.Out) != want {
		t.Errorf("Edit gave\n%s\nwant\n%s", res.Out, want)
	}
	if len(res.Changes) != 1 || res.Changes[0].Model != "llama3.1:8b-instruct-fp16" || res.Changes[0].NewContext != 24576 {
		t.Errorf("changes = %+v", res.Changes)
	}
	checkClientEdit(t, aiderClient{}, Input{Path: "/home/u/.aider.model.settings.yml", Src: src}, res, tgt)

	// Once there, nothing more is added.
	again, err := aiderClient{}.Edit(Input{Path: "/home/u/.aider.model.settings.yml", Src: res.Out}, tgt)
	if err != nil || len(again.Changes) != 0 || string(again.Out) != string(res.Out) {
		t.Errorf("second Edit = %+v, %v; want no change", again.Changes, err)
	}
}

// TestAiderAPIBase: aider pointed at another server the documented ways
// (OLLAMA_API_BASE in the environment, or set-env in .aider.conf.yml, which
// beats the environment; the working directory's file beats home's) is
// fixed for that server, and left alone for any other.
func TestAiderAPIBase(t *testing.T) {
	src := []byte("- name: ollama_chat/llama3.1:8b-instruct-fp16\n  extra_params:\n    num_ctx: 131072\n" +
		"- name: ollama_chat/qwen2.5-coder:1.5b\n  extra_params:\n    api_base: http://localhost:11434\n    num_ctx: 131072\n")
	remote := clientTarget()
	remote.Host = ollamahost.Parse("gpu-box")
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "OLLAMA_API_BASE" {
				return v
			}
			return ""
		}
	}
	tests := []struct {
		name     string
		getenv   func(string) string
		confs    map[string]string
		target   Target
		wantBase string
		changed  []string
	}{
		{"default server, nothing set", nil, nil, clientTarget(), "", []string{"llama3.1:8b-instruct-fp16", "qwen2.5-coder:1.5b"}},
		{"remote, nothing set", nil, nil, remote, "", nil},
		{"remote in the environment", env("http://gpu-box:11434"), nil, remote, "http://gpu-box:11434", []string{"llama3.1:8b-instruct-fp16"}},
		{"environment elsewhere", env("http://elsewhere:11434"), nil, remote, "http://elsewhere:11434", nil},
		{"set-env beats the environment", env("http://elsewhere:11434"),
			map[string]string{"/home/u/.aider.conf.yml": "set-env:\n  - OLLAMA_API_BASE=http://gpu-box:11434\n"},
			remote, "http://gpu-box:11434", []string{"llama3.1:8b-instruct-fp16"}},
		{"set-env as one string", nil,
			map[string]string{"/home/u/.aider.conf.yml": "set-env: OLLAMA_API_BASE=gpu-box:11434\n"},
			remote, "gpu-box:11434", []string{"llama3.1:8b-instruct-fp16"}},
		{"the working directory's file wins", env("http://gpu-box:11434"),
			map[string]string{
				"/home/u/.aider.conf.yml":         "set-env:\n  - OLLAMA_API_BASE=http://gpu-box:11434\n",
				"/home/u/src/app/.aider.conf.yml": "set-env:\n  - OTHER=1\n  - OLLAMA_API_BASE=http://127.0.0.1:11434\n",
			},
			remote, "http://127.0.0.1:11434", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{Path: "/home/u/.aider.model.settings.yml", Src: src, Getenv: tt.getenv, Overrides: map[string][]byte{}}
			for p, c := range tt.confs {
				in.Overrides[p] = []byte(c)
			}
			if got := aiderAPIBase(in); got != tt.wantBase {
				t.Errorf("aiderAPIBase = %q, want %q", got, tt.wantBase)
			}
			res, err := aiderClient{}.Edit(in, tt.target)
			if err != nil {
				t.Fatal(err)
			}
			var changed []string
			for _, c := range res.Changes {
				changed = append(changed, c.Model)
			}
			if strings.Join(changed, ",") != strings.Join(tt.changed, ",") {
				t.Errorf("changed %v, want %v", changed, tt.changed)
			}
		})
	}
}
