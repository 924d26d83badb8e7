package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestStatusEscapesServerStrings serves model names and a version that
// carry terminal escape sequences and bidi controls: `ctxfit status` shows
// them escaped.
func TestStatusEscapesServerStrings(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/api/ps":
			w.Write([]byte(`{"models":[{"name":"evil\u001b[2J\u001b]0;pwned\u0007:latest","model":"evil","size":100,"size_vram":100,"context_length":4096},` +
				`{"name":"abc\u202egnp.exe","model":"abc","size":100,"size_vram":50,"context_length":8192}]}`))
		case "/api/version":
			w.Write([]byte(`{"version":"0.9\u001b[31m"}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	c := newCLI(t, map[string]string{"OLLAMA_HOST": srv.URL})
	code, out, errOut := c.run("status")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, raw := range []string{"\x1b", "\u202e", "\a"} {
		if strings.Contains(out, raw) {
			t.Errorf("status printed a raw %q:\n%s", raw, out)
		}
	}
	for _, shown := range []string{`evil\x1b[2J\x1b]0;pwned\x07:latest`, `abc\u202egnp.exe`, `0.9\x1b[31m`} {
		if !strings.Contains(out, shown) {
			t.Errorf("status does not show %s escaped:\n%s", shown, out)
		}
	}
}
