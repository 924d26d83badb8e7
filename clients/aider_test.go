package clients

import (
	"strings"
	"testing"
)

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
