package hint

import (
	"net/url"
	"testing"

	"github.com/ctxfit/ctxfit/internal/ollamahost"
)

func TestHostFlag(t *testing.T) {
	tests := []struct {
		name, host string // host "" stands for a nil URL
		want       string
	}{
		{"nil", "", ""},
		{"default", "http://127.0.0.1:11434", ""},
		{"localhost is the default", "http://localhost:11434", ""},
		{"default port", "127.0.0.1", ""},
		{"other port", "127.0.0.1:18790", " --host http://127.0.0.1:18790"},
		{"other host", "gpubox:11434", " --host http://gpubox:11434"},
		{"https", "https://127.0.0.1:11434", " --host https://127.0.0.1:11434"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var u *url.URL
			if tt.host != "" {
				var err error
				if u, err = ollamahost.Resolve(tt.host, ""); err != nil {
					t.Fatal(err)
				}
			}
			if got := HostFlag(u); got != tt.want {
				t.Errorf("HostFlag(%v) = %q, want %q", u, got, tt.want)
			}
		})
	}
}

func TestHints(t *testing.T) {
	other := ollamahost.Parse("127.0.0.1:18790")
	def := ollamahost.Parse("")
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"zero Cmd", Hints{}.Cmd("tune", "qwen2.5-coder:7b"), "`ctxfit tune qwen2.5-coder:7b`"},
		{"default Cmd", For(def, false).Cmd("tune", "qwen2.5-coder:7b"), "`ctxfit tune qwen2.5-coder:7b`"},
		{"other Cmd", For(other, false).Cmd("tune", "qwen2.5-coder:7b"), "`ctxfit tune qwen2.5-coder:7b --host http://127.0.0.1:18790`"},
		{"other Line", For(other, true).Line("fix", "all"), "ctxfit fix all --host http://127.0.0.1:18790"},
		{"tray FixWrites", For(def, false).FixWrites("all"), "Fix now in the tray, or `ctxfit fix all`, writes the tuned value"},
		{"tray FixWrites other", For(other, false).FixWrites("Continue"), "Fix now in the tray, or `ctxfit fix continue --host http://127.0.0.1:18790`, writes the tuned value"},
		{"headless FixWrites", For(def, true).FixWrites("all"), "`ctxfit fix all` writes the tuned value"},
		{"headless FixWrites other", For(other, true).FixWrites("Continue"), "`ctxfit fix continue --host http://127.0.0.1:18790` writes the tuned value"},
		{"tray UseFix", For(other, false).UseFix("Continue"), "use Fix Continue now"},
		{"headless UseFix", For(other, true).UseFix("Continue"), "run `ctxfit fix continue --host http://127.0.0.1:18790`"},
		{"prefix Cmd", Hints{Host: " --host http://127.0.0.1:18790", Headless: true, Prefix: Prefix([]string{"CONTINUE_GLOBAL_DIR=/tmp/ctxfit-demo-continue-1"}, "go run ./cmd/ctxfit")}.Cmd("fix", "all"),
			"`CONTINUE_GLOBAL_DIR=/tmp/ctxfit-demo-continue-1 go run ./cmd/ctxfit fix all --host http://127.0.0.1:18790`"},
		{"prefix quotes", Prefix([]string{"A=/tmp/my dir", "B=it's", "C="}, ""), `A='/tmp/my dir' B='it'\''s' C='' ctxfit`},
		{"prefix of nothing", Prefix(nil, ""), "ctxfit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}
