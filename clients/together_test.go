package clients

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ctxfit/ctxfit/internal/ollamahost"
)

const (
	chatJSON = `{
  // chat and autocomplete on the same Ollama
  "models": [
    {"title": "Chat", "provider": "ollama", "model": "llama3.1:8b", "contextLength": 131072},
    {"title": "Other", "provider": "ollama", "model": "qwen2.5:14b"},
    {"title": "Cloud", "provider": "openai", "model": "gpt-4o"},
  ],
  "tabAutocompleteModel": {"title": "AC", "provider": "ollama", "model": "qwen2.5-coder:1.5b", "contextLength": 4096},
  "embeddingsProvider": {"provider": "ollama", "model": "nomic-embed-text"},
}
`
	chatYAML = `models:
  - name: Chat
    provider: ollama
    model: llama3.1:8b
    defaultCompletionOptions:
      contextLength: 131072
  - name: AC
    provider: ollama
    model: qwen2.5-coder:1.5b
    roles: [autocomplete]
    defaultCompletionOptions:
      contextLength: 4096
  - name: Embed
    provider: ollama
    model: nomic-embed-text
    roles: [embed]
  - name: Both
    provider: ollama
    model: qwen2.5:14b
    roles: [edit, apply, autocomplete]
`
)

func TestContinueUses(t *testing.T) {
	tests := []struct {
		path, src string
		want      []Use
	}{
		{"config.json", chatJSON, []Use{
			{"chat", "llama3.1:8b", 131072},
			{"chat", "qwen2.5:14b", 0},
			{"autocomplete", "qwen2.5-coder:1.5b", 4096},
			{"embed", "nomic-embed-text", 0},
		}},
		{"config.yaml", chatYAML, []Use{
			{"chat", "llama3.1:8b", 131072},
			{"autocomplete", "qwen2.5-coder:1.5b", 4096},
			{"embed", "nomic-embed-text", 0},
			{"chat", "qwen2.5:14b", 0},
			{"autocomplete", "qwen2.5:14b", 0},
		}},
	}
	for _, tt := range tests {
		got, err := continueClient{}.Uses(Input{Path: tt.path, Src: []byte(tt.src)}, Target{})
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: Uses = %+v, %v\nwant %+v", tt.path, got, err, tt.want)
		}
	}
	if _, err := (continueClient{}).Uses(Input{Path: "config.json", Src: []byte("{")}, Target{}); err == nil {
		t.Error("a broken config.json gave no error")
	}
}

func TestAiderUses(t *testing.T) {
	in := Input{
		Path: "/home/u/.aider.model.settings.yml",
		Src:  []byte("- name: ollama_chat/llama3.1:8b\n  extra_params:\n    num_ctx: 32768\n"),
		Overrides: map[string][]byte{
			"/home/u/.aider.conf.yml": []byte("model: ollama_chat/llama3.1:8b\nweak-model: ollama_chat/qwen2.5-coder:1.5b\neditor-model: gpt-4o\n"),
		},
	}
	got, err := aiderClient{}.Uses(in, Target{})
	want := []Use{{"main", "llama3.1:8b", 32768}, {"weak", "qwen2.5-coder:1.5b", 0}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Uses = %+v, %v; want %+v", got, err, want)
	}
}

func TestSetFor(t *testing.T) {
	uses := []Use{
		{"chat", "chat-a", 131072},
		{"chat", "chat-b", 0},
		{"autocomplete", "ac", 4096},
		{"embed", "emb", 0},
		{"autocomplete", "chat-b", 0},
	}
	tests := []struct {
		model string
		want  []string
	}{
		// A chat model runs beside the first autocomplete and embed models.
		{"chat-a", []string{"chat-a", "ac", "emb"}},
		// chat-b is also an autocomplete model: only embed is another role.
		{"chat-b:latest", []string{"chat-b:latest", "emb"}},
		// The autocomplete model runs beside the default (first) chat model.
		{"ac", []string{"ac", "chat-a", "emb"}},
		{"none", nil},
	}
	for _, tt := range tests {
		var got []string
		for _, u := range SetFor(uses, tt.model) {
			got = append(got, u.Model)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("SetFor(%s) = %q, want %q", tt.model, got, tt.want)
		}
	}
	if s := SetFor(uses, "chat-a"); s[0].Context != 131072 || s[1].Context != 4096 {
		t.Errorf("SetFor keeps no contexts: %+v", s)
	}
}

// TestFixTogether: a fix writes, for each model, the value tuned for the set
// the config runs it in, and warns when that set was never tuned.
func TestFixTogether(t *testing.T) {
	alone := map[string]int{"llama3.1:8b": 32768, "qwen2.5-coder:1.5b": 32768}
	tests := []struct {
		name    string
		joint   map[string]map[string]int // by the set's models joined with ","
		want    map[string]int            // contextLength per model afterwards
		beside  map[string][]string
		warning string
		// kept are the models whose smaller context (4096, the user's)
		// the fix keeps, though want, their tuned value, is larger.
		kept map[string]bool
	}{
		{
			name:  "joint tune",
			joint: map[string]map[string]int{"llama3.1:8b,qwen2.5-coder:1.5b": {"llama3.1:8b": 12288, "qwen2.5-coder:1.5b": 4096}},
			want:  map[string]int{"llama3.1:8b": 12288, "qwen2.5-coder:1.5b": 4096},
			beside: map[string][]string{"llama3.1:8b": {"qwen2.5-coder:1.5b"},
				"qwen2.5-coder:1.5b": {"llama3.1:8b"}},
		},
		{
			name:    "never tuned together",
			want:    map[string]int{"llama3.1:8b": 32768, "qwen2.5-coder:1.5b": 32768},
			warning: "llama3.1:8b's tuned value 32768 was measured alone",
			kept:    map[string]bool{"qwen2.5-coder:1.5b": true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHome(t)
			src := `{"models": [{"title": "Chat", "provider": "ollama", "model": "llama3.1:8b", "contextLength": 131072}],
  "tabAutocompleteModel": {"title": "AC", "provider": "ollama", "model": "qwen2.5-coder:1.5b", "contextLength": 4096}}
`
			path := filepath.Join(h.dir, "config.json")
			if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			tg := Target{
				Host: ollamahost.Parse(""),
				Tuned: func(m string) (int, bool) {
					n, ok := alone[m]
					return n, ok
				},
				ForSet: func(set []Use) (func(string) (int, bool), bool, []string) {
					var names []string
					for _, u := range set {
						names = append(names, u.Model)
					}
					key := strings.Join(names, ",")
					if set[0].Model != "llama3.1:8b" {
						key = names[1] + "," + names[0]
					}
					if v, ok := tt.joint[key]; ok {
						return func(m string) (int, bool) { n, ok := v[m]; return n, ok }, true, nil
					}
					return nil, false, []string{set[0].Model + "'s tuned value 32768 was measured alone"}
				},
			}
			_, asks, err := h.fixer().Asks(continueClient{}, tg)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range asks {
				if !reflect.DeepEqual(a.Beside, tt.beside[a.Model]) || a.Tuned != tt.want[a.Model] {
					t.Errorf("ask %s: tuned %d beside %q, want %d beside %q", a.Model, a.Tuned, a.Beside, tt.want[a.Model], tt.beside[a.Model])
				}
			}
			rep, err := h.fixer().Fix(context.Background(), continueClient{}, tg, false)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]int{}
			for _, c := range rep.Changes {
				got[c.Model] = c.NewContext
			}
			for m, n := range tt.want {
				if tt.kept[m] {
					if got[m] != 0 && got[m] != 4096 {
						t.Errorf("%s: fixed to %d, want the user's smaller 4096 kept (changes %+v)", m, got[m], rep.Changes)
					}
					continue
				}
				if n == 4096 { // already asks for it: unchanged
					continue
				}
				if got[m] != n {
					t.Errorf("%s: fixed to %d, want %d (changes %+v)", m, got[m], n, rep.Changes)
				}
			}
			warned := strings.Join(rep.Warnings, "\n")
			if tt.warning == "" && strings.Contains(warned, "measured alone") || !strings.Contains(warned, tt.warning) {
				t.Errorf("warnings %q, want %q", warned, tt.warning)
			}
			if tt.warning != "" && !strings.HasPrefix(warned, "Continue: ") {
				t.Errorf("warnings %q do not name the client", warned)
			}
		})
	}
}

func TestZedUses(t *testing.T) {
	src := `{
  "agent": {
    "default_model": {"provider": "ollama", "model": "llama3.1:8b"},
    "inline_assistant_model": {"provider": "ollama", "model": "qwen2.5-coder:1.5b"},
    "commit_message_model": {"provider": "openai", "model": "gpt-4o-mini"},
    "favorite_models": [{"provider": "ollama", "model": "qwen2.5:14b"}],
  },
  "language_models": {"ollama": {"available_models": [
    {"name": "llama3.1:8b", "max_tokens": 32768},
    {"name": "qwen2.5-coder:1.5b", "max_tokens": 4096},
  ]}},
}`
	got, err := zedClient{}.Uses(Input{Path: "settings.json", Src: []byte(src)}, Target{})
	want := []Use{{"agent", "llama3.1:8b", 32768}, {"inline", "qwen2.5-coder:1.5b", 4096}, {"agent", "qwen2.5:14b", 0}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Uses = %+v, %v; want %+v", got, err, want)
	}
	var set []string
	for _, u := range SetFor(got, "llama3.1:8b") {
		set = append(set, u.Model)
	}
	if !reflect.DeepEqual(set, []string{"llama3.1:8b", "qwen2.5-coder:1.5b"}) {
		t.Errorf("the agent's model runs beside %q", set)
	}
}
