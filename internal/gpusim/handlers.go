package gpusim

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ollama/ollama/api"
	"github.com/ollama/ollama/types/model"

	"github.com/ctxfit/ctxfit/unified"
)

// maxRequestBytes bounds a request body; prompts in tests are short.
const maxRequestBytes = 32 << 20

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	running := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "Ollama is running")
	}
	mux.HandleFunc("GET /{$}", running)
	mux.HandleFunc("HEAD /{$}", running)
	mux.HandleFunc("GET /api/version", s.handleVersion)
	mux.HandleFunc("HEAD /api/version", s.handleVersion)
	mux.HandleFunc("GET /api/tags", s.handleTags)
	mux.HandleFunc("HEAD /api/tags", s.handleTags)
	mux.HandleFunc("GET /api/ps", s.handlePs)
	mux.HandleFunc("POST /api/show", s.handleShow)
	mux.HandleFunc("POST /api/generate", s.handleGenerate)
	mux.HandleFunc("POST /api/chat", s.handleChat)
	mux.HandleFunc("POST /api/create", s.handleCreate)
	mux.HandleFunc("DELETE /api/delete", s.handleDelete)
	mux.HandleFunc("GET "+unified.SimulatedPath, s.handleUnified)
	mux.HandleFunc("POST "+unified.SimulatedPath, s.handleUnified)
	s.routesV1(mux)
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	w.Write(b)
}

// writeError answers as Ollama's handlers do: {"error": msg}.
func writeError(w http.ResponseWriter, code int, msg string) {
	b, _ := json.Marshal(map[string]string{"error": msg})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	w.Write(b)
}

// decode reads a JSON request body into v, answering 400 as Ollama does
// when it cannot.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBytes)).Decode(v)
	switch {
	case errors.Is(err, io.EOF):
		writeError(w, http.StatusBadRequest, "missing request body")
		return false
	case err != nil:
		writeError(w, http.StatusBadRequest, err.Error())
		return false
	}
	return true
}

func notFound(w http.ResponseWriter, name string) {
	writeError(w, http.StatusNotFound, fmt.Sprintf("model '%s' not found", name))
}

func (s *Server) handleVersion(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"version": s.cfg.Version})
}

func (e *entry) details() api.ModelDetails {
	return api.ModelDetails{
		ParentModel:       e.parent,
		Format:            "gguf",
		Family:            e.Family,
		Families:          []string{e.Family},
		ParameterSize:     e.ParameterSize,
		QuantizationLevel: e.Quantization,
	}
}

func (s *Server) handleTags(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	models := make([]api.ListModelResponse, 0, len(s.models))
	for _, e := range s.models {
		models = append(models, api.ListModelResponse{
			Name:       e.Name,
			Model:      e.Name,
			ModifiedAt: e.modified,
			Size:       e.Size(),
			Digest:     e.Digest,
			Details:    e.details(),
		})
	}
	s.mu.Unlock()
	slices.SortStableFunc(models, func(a, b api.ListModelResponse) int {
		return cmp.Or(b.ModifiedAt.Compare(a.ModifiedAt), strings.Compare(a.Name, b.Name))
	})
	writeJSON(w, http.StatusOK, api.ListResponse{Models: models})
}

func (s *Server) handlePs(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.expireLocked(s.cfg.Now())
	f := s.fault
	models := make([]api.ProcessModelResponse, 0, len(s.loaded))
	for _, l := range s.loaded {
		m := api.ProcessModelResponse{
			Name:          l.entry.Name,
			Model:         l.entry.Name,
			Size:          l.place.size,
			SizeVRAM:      l.place.vram,
			Digest:        l.entry.Digest,
			Details:       l.entry.details(),
			ExpiresAt:     l.expires,
			ContextLength: l.numCtx,
		}
		if f.VRAMAboveSize {
			m.SizeVRAM = m.Size + m.Size/10 + 1
		}
		if f.NegativeSizes {
			m.Size, m.SizeVRAM = -m.Size, -m.SizeVRAM
		}
		models = append(models, m)
	}
	s.mu.Unlock()
	// Longest time left first, as Ollama sorts them; then by name, so that
	// equal expiries keep a stable order.
	slices.SortStableFunc(models, func(a, b api.ProcessModelResponse) int {
		return cmp.Or(cmp.Compare(b.ExpiresAt.Unix(), a.ExpiresAt.Unix()), strings.Compare(a.Name, b.Name))
	})
	writeJSON(w, http.StatusOK, api.ProcessResponse{Models: models})
}

func (s *Server) handleShow(w http.ResponseWriter, r *http.Request) {
	var req api.ShowRequest
	if !decode(w, r, &req) {
		return
	}
	name := cmp.Or(req.Model, req.Name)
	if name == "" {
		writeError(w, http.StatusBadRequest, "model is required")
		return
	}
	e := s.lookup(name)
	if e == nil {
		notFound(w, name)
		return
	}
	info := map[string]any{
		"general.architecture":                       e.Arch,
		e.Arch + ".block_count":                      e.Layers,
		e.Arch + ".context_length":                   e.TrainedContext,
		e.Arch + ".embedding_length":                 e.EmbeddingLength,
		e.Arch + ".attention.head_count":             e.HeadCount,
		e.Arch + ".attention.head_count_kv":          e.HeadCountKV,
		e.Arch + ".attention.layer_norm_rms_epsilon": 1e-05,
	}
	if e.KeyLength > 0 {
		info[e.Arch+".attention.key_length"] = e.KeyLength
	}
	if e.ValueLength > 0 {
		info[e.Arch+".attention.value_length"] = e.ValueLength
	}
	params := paramsText(e.params)
	var mf strings.Builder
	fmt.Fprintf(&mf, "# Modelfile generated by \"ollama show\"\n# To build a new Modelfile based on this, replace FROM with:\n# FROM %s\n\n", e.Name)
	fmt.Fprintf(&mf, "FROM %s\n", cmp.Or(e.parent, "/usr/share/ollama/.ollama/models/blobs/sha256-"+e.Digest))
	for _, line := range strings.Split(params, "\n") {
		if line != "" {
			k, v, _ := strings.Cut(line, " ")
			fmt.Fprintf(&mf, "PARAMETER %s %s\n", k, strings.TrimSpace(v))
		}
	}
	writeJSON(w, http.StatusOK, api.ShowResponse{
		Modelfile:    mf.String(),
		Parameters:   params,
		Template:     "{{ .Prompt }}",
		Details:      e.details(),
		ModelInfo:    info,
		Tensors:      e.Tensors(),
		Capabilities: []model.Capability{model.CapabilityCompletion},
		ModifiedAt:   e.modified,
	})
}

func (s *Server) handleCreate(w http.ResponseWriter, r *http.Request) {
	var req api.CreateRequest
	if !decode(w, r, &req) {
		return
	}
	name := cmp.Or(req.Model, req.Name)
	if strings.TrimSpace(name) == "" {
		writeError(w, http.StatusBadRequest, "invalid model name")
		return
	}
	if req.From == "" {
		writeError(w, http.StatusBadRequest, "neither 'from' or 'files' was specified")
		return
	}
	base := s.lookup(req.From)
	if base == nil {
		// Ollama tries to pull an unknown base from its registry.
		writeError(w, http.StatusInternalServerError, "pull model manifest: file does not exist")
		return
	}
	if _, _, err := intOption(req.Parameters, "num_ctx"); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	e := s.create(name, base, req.Parameters)
	progress := []api.ProgressResponse{
		{Status: "using existing layer sha256:" + base.Digest},
		{Status: "creating new layer sha256:" + e.Digest},
		{Status: "writing manifest"},
		{Status: "success"},
	}
	if req.Stream != nil && !*req.Stream {
		writeJSON(w, http.StatusOK, progress[len(progress)-1])
		return
	}
	stream(w, r, progress)
}

// handleDelete removes a model, as `ollama rm` asks: 200 with no body, or
// 404 "model 'x' not found".
func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request) {
	var req api.DeleteRequest
	if !decode(w, r, &req) {
		return
	}
	name := cmp.Or(req.Model, req.Name)
	s.mu.Lock()
	_, ok := s.models[canonicalName(name)]
	delete(s.models, canonicalName(name))
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("model '%s' not found", name))
		return
	}
	w.WriteHeader(http.StatusOK)
}

// stream writes msgs as newline-delimited JSON, flushing each.
func stream[T any](w http.ResponseWriter, r *http.Request, msgs []T) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	for _, m := range msgs {
		if r.Context().Err() != nil {
			return
		}
		b, err := json.Marshal(m)
		if err != nil {
			return
		}
		if _, err := w.Write(append(b, '\n')); err != nil {
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
	}
}

// words are the simulated model's vocabulary.
var words = strings.Fields("The quick brown fox jumps over the lazy dog while the context window stays on the GPU.")

// completion is what /api/generate and /api/chat have in common.
type completion struct {
	model     string
	prompt    string // empty: load (or unload) only
	keepAlive *api.Duration
	options   map[string]any
	stream    *bool
	// reply builds one message of the answer; final ones carry metrics.
	reply func(created time.Time, text string, done bool, reason string, m api.Metrics, context []int) any
}

func (s *Server) handleGenerate(w http.ResponseWriter, r *http.Request) {
	var req api.GenerateRequest
	if !decode(w, r, &req) {
		return
	}
	s.complete(w, r, completion{
		model: req.Model, prompt: req.Prompt, keepAlive: req.KeepAlive, options: req.Options, stream: req.Stream,
		reply: func(created time.Time, text string, done bool, reason string, m api.Metrics, context []int) any {
			return api.GenerateResponse{Model: req.Model, CreatedAt: created, Response: text, Done: done, DoneReason: reason, Metrics: m, Context: context}
		},
	})
}

func (s *Server) handleChat(w http.ResponseWriter, r *http.Request) {
	var req api.ChatRequest
	if !decode(w, r, &req) {
		return
	}
	var prompt strings.Builder
	for _, m := range req.Messages {
		fmt.Fprintf(&prompt, "<|%s|>%s\n", m.Role, m.Content)
	}
	s.complete(w, r, completion{
		model: req.Model, prompt: prompt.String(), keepAlive: req.KeepAlive, options: req.Options, stream: req.Stream,
		reply: func(created time.Time, text string, done bool, reason string, m api.Metrics, _ []int) any {
			return api.ChatResponse{Model: req.Model, CreatedAt: created, Message: api.Message{Role: "assistant", Content: text}, Done: done, DoneReason: reason, Metrics: m}
		},
	})
}

// complete loads the model as the request asks and answers it: a load,
// an unload, or a short deterministic generation with simulated timings.
func (s *Server) complete(w http.ResponseWriter, r *http.Request, c completion) {
	e := s.lookup(c.model)
	if e == nil {
		notFound(w, c.model)
		return
	}
	created := func() time.Time { return s.cfg.Now().UTC() }

	// An empty prompt with keep_alive 0 unloads.
	if c.prompt == "" && c.keepAlive != nil && c.keepAlive.Duration == 0 {
		s.Unload(e.Name)
		writeJSON(w, http.StatusOK, c.reply(created(), "", true, "unload", api.Metrics{}, nil))
		return
	}

	numCtx, ok, err := intOption(c.options, "num_ctx")
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if !ok {
		numCtx = s.defaultCtx(e)
	}
	numPredict, _, err := intOption(c.options, "num_predict")
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	session := DefaultKeepAlive
	if c.keepAlive != nil {
		session = c.keepAlive.Duration
	}

	run, loaded, err := s.schedule(r.Context(), e, max(numCtx, 4), session)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if session == 0 {
		defer s.Unload(e.Name)
	}
	if c.prompt == "" {
		writeJSON(w, http.StatusOK, c.reply(created(), "", true, "load", api.Metrics{}, nil))
		return
	}

	// A short deterministic answer: num_predict tokens when set (bounded),
	// else 32 ending in a natural stop.
	n, reason := 32, "stop"
	if numPredict > 0 {
		n, reason = min(numPredict, 4096), "length"
	}
	promptTokens := max(1, (len(c.prompt)+3)/4)
	metrics := s.cfg.GPU.timings(run, promptTokens, n, loaded)
	context := make([]int, 0, promptTokens+n)
	for i := range promptTokens + n {
		context = append(context, 1000+i%500)
	}
	text := func(i int) string {
		if i == 0 {
			return words[0]
		}
		return " " + words[i%len(words)]
	}

	if c.stream != nil && !*c.stream {
		var sb strings.Builder
		for i := range n {
			sb.WriteString(text(i))
		}
		writeJSON(w, http.StatusOK, c.reply(created(), sb.String(), true, reason, metrics, context))
		return
	}
	msgs := make([]any, 0, n+1)
	for i := range n {
		msgs = append(msgs, c.reply(created(), text(i), false, "", api.Metrics{}, nil))
	}
	stream(w, r, append(msgs, c.reply(created(), "", true, reason, metrics, context)))
}
