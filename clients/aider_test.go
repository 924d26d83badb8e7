package clients

import (
	"strings"
	"testing"

	"github.com/ctxfit/ctxfit/internal/ollamahost"
)

func TestAiderOverrideWarnings(t *testing.T) {
	src := []byte("- name: ollama_chat/llama3.1:8b-instruct-fp16\n  extra_params:\n    num_ctx: 131072\n")
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
