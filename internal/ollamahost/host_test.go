package ollamahost

import (
	"net/url"
	"testing"

	"github.com/ollama/ollama/envconfig"
)

// TestParseMatchesOllama checks Parse against Ollama's own envconfig.Host for
// every form OLLAMA_HOST takes, so the two can never drift apart silently.
func TestParseMatchesOllama(t *testing.T) {
	for _, s := range []string{
		"", "   ", "localhost", "localhost:1234", ":11435", "0.0.0.0", "0.0.0.0:8080",
		"[::1]", "[::1]:1234", "::1", "example.com", "example.com:80",
		"http://example.com", "https://example.com", "https://example.com:8443/ollama",
		"http://127.0.0.1:11434", "ollama.com", "host:99999", "host:-1", "host:abc",
		"10.0.0.5:11434/path/more",
	} {
		t.Run(s, func(t *testing.T) {
			t.Setenv("OLLAMA_HOST", s)
			want := envconfig.Host().String()
			if got := Parse(s).String(); got != want {
				t.Errorf("Parse(%q) = %q, Ollama says %q", s, got, want)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	tests := []struct{ flag, env, want string }{
		{"", "", Default},
		{"", "remote:1234", "http://remote:1234"},
		{"other:9", "remote:1234", "http://other:9"},
		{"  ", "remote", "http://remote:11434"},
	}
	for _, tt := range tests {
		if got := Resolve(tt.flag, tt.env).String(); got != tt.want {
			t.Errorf("Resolve(%q, %q) = %q, want %q", tt.flag, tt.env, got, tt.want)
		}
	}
}

func TestSameAndLocal(t *testing.T) {
	u := func(s string) *url.URL { return Parse(s) }
	same := [][2]string{
		{"localhost", "127.0.0.1"},
		{"http://localhost:11434", "[::1]:11434"},
		{"0.0.0.0", "127.0.0.1:11434"},
	}
	for _, p := range same {
		if !Same(u(p[0]), u(p[1])) {
			t.Errorf("Same(%q, %q) = false, want true", p[0], p[1])
		}
	}
	differ := [][2]string{
		{"localhost:11434", "localhost:11435"},
		{"remote", "localhost"},
		{"https://localhost:11434", "http://localhost:11434"},
	}
	for _, p := range differ {
		if Same(u(p[0]), u(p[1])) {
			t.Errorf("Same(%q, %q) = true, want false", p[0], p[1])
		}
	}
	for s, want := range map[string]bool{"localhost": true, "[::1]:5": true, "192.168.1.4": false, "gpu-box:11434": false, "0.0.0.0": true} {
		if got := IsLocal(u(s)); got != want {
			t.Errorf("IsLocal(%q) = %v, want %v", s, got, want)
		}
	}
}
