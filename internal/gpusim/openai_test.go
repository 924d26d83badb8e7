package gpusim_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ollama/ollama/api"

	"github.com/ctxfit/ctxfit/internal/gpusim"
)

// TestV1LoadsAtTheModelsOwnContext: a request through the OpenAI-compatible
// API loads the model at its Modelfile's num_ctx, else the server's
// default, whatever options it carries, as Ollama does; the answer is a
// chat completion or a Responses stream that clients can read.
func TestV1LoadsAtTheModelsOwnContext(t *testing.T) {
	s, c := start(t, gpusim.Config{GPU: gpu(t, "mac32"), DefaultContext: 4096})
	ctx := context.Background()
	err := c.Create(ctx, &api.CreateRequest{Model: "small:ctx12k", From: "qwen2.5:0.5b", Parameters: map[string]any{"num_ctx": 12288}}, func(api.ProgressResponse) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path, body, want string
		ctx              int
	}{
		{"/v1/chat/completions", `{"model": "qwen2.5:0.5b", "messages": [{"role": "user", "content": "hi"}], "options": {"num_ctx": 32768}}`, `"content":"Hi."`, 4096},
		{"/v1/chat/completions", `{"model": "small:ctx12k", "stream": true, "messages": [{"role": "user", "content": "hi"}]}`, "data: [DONE]", 12288},
		{"/v1/responses", `{"model": "small:ctx12k", "stream": true, "input": "hi"}`, "event: response.completed", 12288},
		{"/v1/responses", `{"model": "qwen2.5:0.5b", "input": "hi"}`, `"status":"completed"`, 4096},
	} {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest("POST", tt.path, strings.NewReader(tt.body)))
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), tt.want) {
			t.Errorf("POST %s %s: %d %s; want %q", tt.path, tt.body, w.Code, w.Body, tt.want)
		}
		ms := ps(t, c)
		found := false
		for _, m := range ms {
			if strings.Contains(tt.body, `"`+strings.TrimSuffix(m.Name, ":latest")+`"`) {
				found = true
				if m.ContextLength != tt.ctx {
					t.Errorf("POST %s %s loaded %s at %d, want %d", tt.path, tt.body, m.Name, m.ContextLength, tt.ctx)
				}
			}
		}
		if !found {
			t.Errorf("POST %s %s: /api/ps lists %s", tt.path, tt.body, names(ms))
		}
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(`{"model": "nope"}`)))
	if w.Code != http.StatusNotFound {
		t.Errorf("an unknown model: %d %s", w.Code, w.Body)
	}
	var list struct{ Data []struct{ ID string } }
	get(t, s, "/v1/models", &list)
	if len(list.Data) == 0 {
		t.Error("/v1/models lists nothing")
	}
}
