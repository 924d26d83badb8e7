package gpusim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
)

// Ollama's OpenAI-compatible API (/v1/...) has no field for num_ctx: a
// request through it loads the model at its Modelfile's num_ctx, else the
// server's default, whatever the client believes its context is. The
// simulator answers the three endpoints the coding clients use
// (/v1/models, /v1/chat/completions, /v1/responses) with that load and a
// short fixed answer, streamed as server-sent events when asked, so that
// real clients can run against it and the tests can read what they loaded.

// v1Reply is the simulator's answer to every /v1 prompt.
const v1Reply = "Hi."

func (s *Server) routesV1(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/models", s.handleV1Models)
	mux.HandleFunc("POST /v1/chat/completions", s.handleV1Chat)
	mux.HandleFunc("POST /v1/responses", s.handleV1Responses)
}

// v1Error answers as Ollama's OpenAI layer does.
func v1Error(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]any{"error": map[string]any{"message": msg, "type": "api_error"}})
}

func (s *Server) handleV1Models(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	data := make([]map[string]any, 0, len(s.models))
	for _, e := range s.models {
		data = append(data, map[string]any{"id": e.Name, "object": "model", "created": e.modified.Unix(), "owned_by": "library"})
	}
	s.mu.Unlock()
	slices.SortFunc(data, func(a, b map[string]any) int {
		if a["id"].(string) < b["id"].(string) {
			return -1
		}
		return 1
	})
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}

// v1Load loads model as a /v1 request does: at its own context.
func (s *Server) v1Load(w http.ResponseWriter, r *http.Request, model string) bool {
	e := s.lookup(model)
	if e == nil {
		v1Error(w, http.StatusNotFound, fmt.Sprintf("model %q not found, try pulling it first", model))
		return false
	}
	if _, _, err := s.schedule(r.Context(), e, max(s.defaultCtx(e), 4), DefaultKeepAlive); err != nil {
		v1Error(w, http.StatusInternalServerError, err.Error())
		return false
	}
	return true
}

// sse writes server-sent events: each of events is an event name and its
// data, marshalled as JSON unless it is a string.
func sse(w http.ResponseWriter, events ...[2]any) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	for _, ev := range events {
		if name, _ := ev[0].(string); name != "" {
			fmt.Fprintf(w, "event: %s\n", name)
		}
		data, ok := ev[1].(string)
		if !ok {
			b, _ := json.Marshal(ev[1])
			data = string(b)
		}
		fmt.Fprintf(w, "data: %s\n\n", data)
	}
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *Server) handleV1Chat(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model  string `json:"model"`
		Stream bool   `json:"stream"`
	}
	if !decode(w, r, &req) || !s.v1Load(w, r, req.Model) {
		return
	}
	created := s.cfg.Now().Unix()
	usage := map[string]any{"prompt_tokens": 8, "completion_tokens": 2, "total_tokens": 10}
	if !req.Stream {
		writeJSON(w, http.StatusOK, map[string]any{
			"id": "chatcmpl-sim", "object": "chat.completion", "created": created, "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": v1Reply}, "finish_reason": "stop"}},
			"usage":   usage,
		})
		return
	}
	chunk := func(delta map[string]any, finish any) [2]any {
		return [2]any{"", map[string]any{"id": "chatcmpl-sim", "object": "chat.completion.chunk", "created": created, "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}}}}
	}
	last := chunk(map[string]any{}, "stop")
	last[1].(map[string]any)["usage"] = usage
	sse(w, chunk(map[string]any{"role": "assistant", "content": v1Reply}, nil), last, [2]any{"", "[DONE]"})
}

func (s *Server) handleV1Responses(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model  string `json:"model"`
		Stream bool   `json:"stream"`
	}
	if !decode(w, r, &req) || !s.v1Load(w, r, req.Model) {
		return
	}
	item := map[string]any{"type": "message", "id": "msg-sim", "role": "assistant", "status": "completed",
		"content": []any{map[string]any{"type": "output_text", "text": v1Reply, "annotations": []any{}}}}
	resp := func(status string, output []any) map[string]any {
		return map[string]any{"id": "resp-sim", "object": "response", "created_at": s.cfg.Now().Unix(), "status": status, "model": req.Model, "output": output,
			"usage": map[string]any{"input_tokens": 8, "output_tokens": 2, "total_tokens": 10,
				"input_tokens_details": map[string]any{"cached_tokens": 0}, "output_tokens_details": map[string]any{"reasoning_tokens": 0}}}
	}
	if !req.Stream {
		writeJSON(w, http.StatusOK, resp("completed", []any{item}))
		return
	}
	sse(w,
		[2]any{"response.created", map[string]any{"type": "response.created", "response": resp("in_progress", []any{})}},
		[2]any{"response.output_item.added", map[string]any{"type": "response.output_item.added", "output_index": 0, "item": item}},
		[2]any{"response.output_text.delta", map[string]any{"type": "response.output_text.delta", "item_id": "msg-sim", "output_index": 0, "content_index": 0, "delta": v1Reply}},
		[2]any{"response.output_item.done", map[string]any{"type": "response.output_item.done", "output_index": 0, "item": item}},
		[2]any{"response.completed", map[string]any{"type": "response.completed", "response": resp("completed", []any{item})}},
	)
}
