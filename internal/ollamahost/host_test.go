package ollamahost

import (
	"net/url"
	"strings"
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

// ollamaHostCases is the table of TestHost in Ollama's envconfig
// (v0.17.4, envconfig/config_test.go), copied whole: OLLAMA_HOST value →
// the URL Ollama uses.
var ollamaHostCases = map[string]struct{ value, expect string }{
	"empty":               {"", "http://127.0.0.1:11434"},
	"only address":        {"1.2.3.4", "http://1.2.3.4:11434"},
	"only port":           {":1234", "http://:1234"},
	"address and port":    {"1.2.3.4:1234", "http://1.2.3.4:1234"},
	"hostname":            {"example.com", "http://example.com:11434"},
	"hostname and port":   {"example.com:1234", "http://example.com:1234"},
	"zero port":           {":0", "http://:0"},
	"too large port":      {":66000", "http://:11434"},
	"too small port":      {":-1", "http://:11434"},
	"ipv6 localhost":      {"[::1]", "http://[::1]:11434"},
	"ipv6 world open":     {"[::]", "http://[::]:11434"},
	"ipv6 no brackets":    {"::1", "http://[::1]:11434"},
	"ipv6 + port":         {"[::1]:1337", "http://[::1]:1337"},
	"extra space":         {" 1.2.3.4 ", "http://1.2.3.4:11434"},
	"extra quotes":        {"\"1.2.3.4\"", "http://1.2.3.4:11434"},
	"extra space+quotes":  {" \" 1.2.3.4 \" ", "http://1.2.3.4:11434"},
	"extra single quotes": {"'1.2.3.4'", "http://1.2.3.4:11434"},
	"http":                {"http://1.2.3.4", "http://1.2.3.4:80"},
	"http port":           {"http://1.2.3.4:4321", "http://1.2.3.4:4321"},
	"https":               {"https://1.2.3.4", "https://1.2.3.4:443"},
	"https port":          {"https://1.2.3.4:4321", "https://1.2.3.4:4321"},
	"proxy path":          {"https://example.com/ollama", "https://example.com:443/ollama"},
	"ollama.com":          {"ollama.com", "https://ollama.com:443"},
}

// TestParseOllamaTable runs Ollama's own table through Parse.
func TestParseOllamaTable(t *testing.T) {
	for name, tt := range ollamaHostCases {
		t.Run(name, func(t *testing.T) {
			if got := Parse(tt.value).String(); got != tt.expect {
				t.Errorf("Parse(%q) = %q, Ollama's table says %q", tt.value, got, tt.expect)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	tests := []struct{ flag, env, want, err string }{
		{"", "", Default, ""},
		{"", "remote:1234", "http://remote:1234", ""},
		{"other:9", "remote:1234", "http://other:9", ""},
		{"  ", "remote", "http://remote:11434", ""},
		{"", ":18434", "http://127.0.0.1:18434", ""},
		{":18434", "", "http://127.0.0.1:18434", ""},
		{"", "'gpu-box'", "http://gpu-box:11434", ""},
		{"ollama_1:11434", "", "http://ollama_1:11434", ""},
		{"not a url", "", "", `--host "not a url": "not a url" is not a host name`},
		{"", "host:99999", "", `OLLAMA_HOST "host:99999": the port "99999"`},
		{"ftp://x", "", "", `--host "ftp://x": the scheme "ftp"`},
		{"host:abc", "", "", `the port "abc"`},
		{":", "", "", "no host or port"},
	}
	for _, tt := range tests {
		got, err := Resolve(tt.flag, tt.env)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("Resolve(%q, %q) error = %v, want one containing %q", tt.flag, tt.env, err, tt.err)
		case tt.err == "" && err != nil:
			t.Errorf("Resolve(%q, %q): %v", tt.flag, tt.env, err)
		case tt.err == "" && got.String() != tt.want:
			t.Errorf("Resolve(%q, %q) = %q, want %q", tt.flag, tt.env, got, tt.want)
		}
	}
	// Every value of Ollama's table whose port is valid resolves.
	for name, tt := range ollamaHostCases {
		if strings.Contains(name, "port") && strings.Contains(name, "too") {
			continue
		}
		if _, err := Resolve("", tt.value); err != nil {
			t.Errorf("%s: Resolve(%q): %v", name, tt.value, err)
		}
	}
}

// TestCanonicalKey checks that every spelling of one server gives one key,
// the key state.json uses, and that a key is its own canonical key.
func TestCanonicalKey(t *testing.T) {
	for _, keys := range [][]string{
		{"http://127.0.0.1:18434", "http://:18434", ":18434", "localhost:18434", "http://[::1]:18434", "0.0.0.0:18434", "http://[::]:18434"},
		{"http://127.0.0.1:11434", "", "localhost", "http://localhost:11434"},
		{"http://gpu-box:11434", "gpu-box", "gpu-box:11434", "'gpu-box'"},
	} {
		for _, k := range keys {
			if got := CanonicalKey(k); got != keys[0] {
				t.Errorf("CanonicalKey(%q) = %q, want %q", k, got, keys[0])
			}
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
