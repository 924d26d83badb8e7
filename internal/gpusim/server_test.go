package gpusim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/ctxfit/ctxfit/internal/gpusim"
)

const (
	llama8b  = "llama3.1:8b-instruct-fp16"
	deepseek = "deepseek-coder-v2:16b-lite-instruct-q6_K"
	qwen05   = "qwen2.5:0.5b"
	qwen7b   = "qwen2.5-coder:7b"
	llama70b = "llama3.1:70b"
	gemma9b  = "gemma2:9b"
)

// clock is a fake time source tests advance by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func gpu(t testing.TB, name string) gpusim.GPU {
	t.Helper()
	g, ok := gpusim.LookupGPU(name)
	if !ok {
		t.Fatalf("no GPU preset %q", name)
	}
	return g
}

// start serves a simulator on a real listener and returns it with an
// Ollama API client pointed at it.
func start(t testing.TB, cfg gpusim.Config) (*gpusim.Server, *api.Client) {
	t.Helper()
	s := gpusim.New(cfg)
	u, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	base, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return s, api.NewClient(base, &http.Client{Timeout: 10 * time.Second})
}

// processor is `ollama ps`'s PROCESSOR column (cmd/cmd.go).
func processor(m api.ProcessModelResponse) string {
	switch {
	case m.SizeVRAM == 0:
		return "100% CPU"
	case m.SizeVRAM == m.Size:
		return "100% GPU"
	case m.SizeVRAM > m.Size || m.Size == 0:
		return "Unknown"
	}
	cpu := math.Round(float64(m.Size-m.SizeVRAM) / float64(m.Size) * 100)
	return fmt.Sprintf("%d%%/%d%% CPU/GPU", int(cpu), int(100-cpu))
}

func load(t testing.TB, c *api.Client, model string, numCtx int, keepAlive string) api.GenerateResponse {
	t.Helper()
	req := &api.GenerateRequest{Model: model}
	if numCtx > 0 {
		req.Options = map[string]any{"num_ctx": numCtx}
	}
	if keepAlive != "" {
		var d api.Duration
		if err := json.Unmarshal([]byte(keepAlive), &d); err != nil {
			t.Fatal(err)
		}
		req.KeepAlive = &d
	}
	var last api.GenerateResponse
	if err := c.Generate(context.Background(), req, func(r api.GenerateResponse) error { last = r; return nil }); err != nil {
		t.Fatalf("load %s at %d: %v", model, numCtx, err)
	}
	return last
}

func ps(t testing.TB, c *api.Client) []api.ProcessModelResponse {
	t.Helper()
	r, err := c.ListRunning(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return r.Models
}

func names(ms []api.ProcessModelResponse) string {
	var n []string
	for _, m := range ms {
		n = append(n, m.Name)
	}
	return strings.Join(n, ",")
}

// TestStoryOverHTTP tells the brief's story through the API, as the tuner
// and `ollama ps` see it.
func TestStoryOverHTTP(t *testing.T) {
	s, c := start(t, gpusim.Config{GPU: gpu(t, "mac32")})
	tests := []struct {
		numCtx    int
		processor string
	}{
		{24576, "100% GPU"},
		{28672, ""}, // a split, whatever the share
		{131072, "56%/44% CPU/GPU"},
		{4096, "100% GPU"},
	}
	for _, tt := range tests {
		r := load(t, c, llama8b, tt.numCtx, "")
		if r.DoneReason != "load" || !r.Done {
			t.Errorf("load answered %+v", r)
		}
		ms := ps(t, c)
		if len(ms) != 1 || ms[0].ContextLength != tt.numCtx {
			t.Fatalf("at %d /api/ps lists %+v", tt.numCtx, ms)
		}
		got := processor(ms[0])
		if tt.processor == "" && !strings.HasSuffix(got, "CPU/GPU") || tt.processor != "" && got != tt.processor {
			t.Errorf("at num_ctx %d: %s (size %d, size_vram %d), want %q", tt.numCtx, got, ms[0].Size, ms[0].SizeVRAM, tt.processor)
		}
		size, vram, err := s.Placement(llama8b, tt.numCtx, 0)
		if err != nil || size != ms[0].Size || vram != ms[0].SizeVRAM {
			t.Errorf("Placement(%d) = %d, %d, %v; /api/ps says %d, %d", tt.numCtx, size, vram, err, ms[0].Size, ms[0].SizeVRAM)
		}
	}
	if got := s.Loads(); got != len(tests) {
		t.Errorf("Loads() = %d, want %d", got, len(tests))
	}
}

func TestLoadsAndContext(t *testing.T) {
	clk := newClock()
	s, c := start(t, gpusim.Config{GPU: gpu(t, "24GB"), Now: clk.Now})
	steps := []struct {
		name    string
		model   string
		numCtx  int // 0: none in the request
		prompt  string
		loads   int
		context int // ps context_length afterwards
	}{
		{"first load", qwen05, 2048, "", 1, 2048},
		{"same context refreshes", qwen05, 2048, "", 1, 2048},
		{"generation at the same context", qwen05, 2048, "hi", 1, 2048},
		{"other context reloads", qwen05, 4096, "", 2, 4096},
		{"no num_ctx is the 24GB default", qwen05, 0, "", 3, 32768},
		{"above trained is clamped", qwen05, 100000, "", 4, 32768},
		{"same request above trained does not reload", qwen05, 100000, "", 4, 32768},
		{"trained itself differs from the request before", qwen05, 32768, "", 5, 32768},
		{"tiny contexts become 4", qwen05, 1, "", 6, 4},
		{"generation at another context reloads", qwen05, 8192, "hello", 7, 8192},
	}
	for _, st := range steps {
		req := &api.GenerateRequest{Model: st.model, Prompt: st.prompt}
		if st.numCtx > 0 {
			req.Options = map[string]any{"num_ctx": st.numCtx}
		}
		if err := c.Generate(context.Background(), req, func(api.GenerateResponse) error { return nil }); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := s.Loads(); got != st.loads {
			t.Errorf("%s: Loads() = %d, want %d", st.name, got, st.loads)
		}
		if ms := ps(t, c); len(ms) != 1 || ms[0].ContextLength != st.context {
			t.Errorf("%s: /api/ps lists %+v, want context %d", st.name, ms, st.context)
		}
	}
}

func TestServerDefaults(t *testing.T) {
	tests := []struct {
		name string
		cfg  gpusim.Config
		want int
	}{
		{"mac32 by VRAM", gpusim.Config{GPU: gpu(t, "mac32")}, 4096},
		{"24GB by VRAM", gpusim.Config{GPU: gpu(t, "24GB")}, 32768},
		{"OLLAMA_CONTEXT_LENGTH", gpusim.Config{GPU: gpu(t, "24GB"), DefaultContext: 8192}, 8192},
		{"clamped to trained", gpusim.Config{GPU: gpusim.GPU{Name: "80GB", VRAM: 79 * 1 << 30}}, 32768},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := gpusim.New(tt.cfg)
			if err := s.Load(qwen05, 0, 0); err != nil {
				t.Fatal(err)
			}
			var r api.ProcessResponse
			get(t, s, "/api/ps", &r)
			if len(r.Models) != 1 || r.Models[0].ContextLength != tt.want {
				t.Errorf("/api/ps lists %+v, want context %d", r.Models, tt.want)
			}
		})
	}
}

func TestParallelSlots(t *testing.T) {
	s := gpusim.New(gpusim.Config{GPU: gpu(t, "24GB"), Parallel: 2})
	if err := s.Load(qwen05, 8192, 0); err != nil {
		t.Fatal(err)
	}
	var r api.ProcessResponse
	get(t, s, "/api/ps", &r)
	two, _, _ := s.Placement(qwen05, 8192, 2)
	one, _, _ := s.Placement(qwen05, 8192, 1)
	if len(r.Models) != 1 || r.Models[0].Size != two || r.Models[0].ContextLength != 8192 {
		t.Errorf("with 2 slots /api/ps lists %+v, want size %d", r.Models, two)
	}
	if def, _, _ := s.Placement(qwen05, 8192, 0); def != two || one >= two {
		t.Errorf("Placement: default slots %d, 1 slot %d, 2 slots %d", def, one, two)
	}
	if _, _, err := s.Placement("missing", 8192, 1); err == nil {
		t.Error("Placement of an unknown model succeeded")
	}
	if err := s.Load("missing", 8192, 0); err == nil {
		t.Error("Load of an unknown model succeeded")
	}
}

func TestCustomModels(t *testing.T) {
	m := gpusim.Model{Name: "Tiny", Arch: "llama", Family: "llama", Layers: 2, EmbeddingLength: 64, HeadCount: 1, HeadCountKV: 1,
		TrainedContext: 2048, LayerBytes: 1 << 20, OutputBytes: 1 << 20, NumCtx: 1024}
	s := gpusim.New(gpusim.Config{GPU: gpu(t, "8GB"), Models: []gpusim.Model{m}})
	var tags api.ListResponse
	get(t, s, "/api/tags", &tags)
	if len(tags.Models) != 1 || tags.Models[0].Name != "Tiny:latest" || tags.Models[0].Size != 3<<20 {
		t.Fatalf("/api/tags lists %+v", tags.Models)
	}
	if err := s.Load("tiny", 0, 0); err != nil {
		t.Fatal(err)
	}
	var r api.ProcessResponse
	get(t, s, "/api/ps", &r)
	if len(r.Models) != 1 || r.Models[0].ContextLength != 1024 || r.Models[0].Name != "Tiny:latest" {
		t.Errorf("/api/ps lists %+v, want the Modelfile's num_ctx 1024", r.Models)
	}
}

// get runs one GET through ServeHTTP and decodes its JSON answer.
func get(t testing.TB, s *gpusim.Server, path string, v any) {
	t.Helper()
	w := httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
	if w.Code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, w.Code, w.Body)
	}
	if err := json.Unmarshal(w.Body.Bytes(), v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

func TestEviction(t *testing.T) {
	clk := newClock()
	s, c := start(t, gpusim.Config{GPU: gpu(t, "24GB"), Now: clk.Now})
	load(t, c, qwen7b, 8192, `"5m"`)
	load(t, c, qwen05, 2048, `"10m"`)
	if got := names(ps(t, c)); got != qwen05+","+qwen7b {
		t.Fatalf("both should fit together; /api/ps lists %s", got)
	}

	// llama3.1 8B fp16 at 16384 needs about 19 GiB: evicting qwen2.5-coder
	// (the shorter keep_alive) is enough; qwen2.5:0.5b stays.
	load(t, c, llama8b, 16384, "")
	ms := ps(t, c)
	if got := names(ms); got != qwen05+","+llama8b {
		t.Errorf("after loading %s /api/ps lists %s", llama8b, got)
	}
	for _, m := range ms {
		if processor(m) != "100% GPU" {
			t.Errorf("%s: %s", m.Name, processor(m))
		}
	}

	// 70B fits nowhere: everything else goes and it takes the empty GPU.
	load(t, c, llama70b, 8192, "")
	ms = ps(t, c)
	if len(ms) != 1 || ms[0].Name != llama70b || !strings.HasSuffix(processor(ms[0]), "CPU/GPU") {
		t.Errorf("after loading 70B: %+v", ms)
	}
	_, vram, _ := s.Placement(llama70b, 8192, 1)
	if ms[0].SizeVRAM != vram {
		t.Errorf("70B alone has size_vram %d, want the empty GPU's %d", ms[0].SizeVRAM, vram)
	}
	if s.Loads() != 4 {
		t.Errorf("Loads() = %d, want 4", s.Loads())
	}
}

func TestMaxLoaded(t *testing.T) {
	tests := []struct {
		name      string
		maxLoaded int
		loads     []string // in this order, each with keep_alive 5m
		want      string   // /api/ps afterwards
		evictions int
	}{
		// Three small models fit the 24 GB card together; Ollama's default
		// keeps all three.
		{"default three", 0, []string{qwen05, qwen7b, gemma9b}, gemma9b + "," + qwen7b + "," + qwen05, 0},
		// With OLLAMA_MAX_LOADED_MODELS=1 each load evicts the other,
		// although they would fit together.
		{"one", 1, []string{qwen05, qwen7b, qwen05}, qwen05, 2},
		// With 2 the third load evicts the first by name among equal
		// keep_alives (Ollama's ByDurationAndName; "-" sorts before ":").
		{"two", 2, []string{qwen05, qwen7b, gemma9b}, gemma9b + "," + qwen05, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			s, c := start(t, gpusim.Config{GPU: gpu(t, "24GB"), Now: clk.Now, MaxLoaded: tt.maxLoaded})
			for _, m := range tt.loads {
				load(t, c, m, 4096, `"5m"`)
				clk.Advance(time.Second)
			}
			if got := names(ps(t, c)); got != tt.want {
				t.Errorf("/api/ps lists %s, want %s", got, tt.want)
			}
			if s.Evictions() != tt.evictions {
				t.Errorf("Evictions() = %d, want %d", s.Evictions(), tt.evictions)
			}
		})
	}
}

func TestSystemMemory(t *testing.T) {
	// A CPU-only host with 32 GiB cannot hold 70B's 40+ GiB: Ollama refuses.
	_, c := start(t, gpusim.Config{GPU: gpu(t, "none")})
	err := c.Generate(context.Background(), &api.GenerateRequest{Model: llama70b}, func(api.GenerateResponse) error { return nil })
	var se api.StatusError
	if !errors.As(err, &se) || se.StatusCode != 500 || !strings.Contains(se.ErrorMessage, "model requires more system memory") {
		t.Errorf("loading 70B on a 32 GiB CPU-only host: %v", err)
	}
	// Small models load, 100% CPU.
	load(t, c, qwen05, 2048, "")
	load(t, c, qwen7b, 2048, "")
	ms := ps(t, c)
	if len(ms) != 2 {
		t.Fatalf("/api/ps lists %s", names(ms))
	}
	for _, m := range ms {
		if m.SizeVRAM != 0 || m.Size == 0 {
			t.Errorf("%s on a CPU-only host: size %d, size_vram %d", m.Name, m.Size, m.SizeVRAM)
		}
	}
}

func TestKeepAlive(t *testing.T) {
	clk := newClock()
	s, c := start(t, gpusim.Config{GPU: gpu(t, "24GB"), Now: clk.Now})

	load(t, c, qwen05, 2048, `"1m"`)
	ms := ps(t, c)
	if len(ms) != 1 || !ms[0].ExpiresAt.Equal(clk.Now().Add(time.Minute)) {
		t.Fatalf("/api/ps lists %+v, want expiry in 1m", ms)
	}
	clk.Advance(59 * time.Second)
	if len(ps(t, c)) != 1 {
		t.Error("expired early")
	}
	clk.Advance(time.Second)
	if ms := ps(t, c); len(ms) != 0 {
		t.Errorf("still loaded after keep_alive: %+v", ms)
	}

	// A request refreshes keep_alive without reloading; default is 5m.
	load(t, c, qwen05, 2048, `"1m"`)
	clk.Advance(30 * time.Second)
	load(t, c, qwen05, 2048, "")
	clk.Advance(4 * time.Minute)
	if len(ps(t, c)) != 1 {
		t.Error("a request without keep_alive should keep the model 5m")
	}
	if s.Loads() != 2 {
		t.Errorf("Loads() = %d, want 2", s.Loads())
	}

	// Negative is forever; ps lists the longest-lived first.
	load(t, c, qwen7b, 2048, `-1`)
	clk.Advance(1000 * time.Hour)
	if ms := ps(t, c); len(ms) != 1 || ms[0].Name != qwen7b {
		t.Errorf("keep_alive -1: /api/ps lists %+v", ms)
	}
	load(t, c, qwen05, 2048, `"10m"`)
	if got := names(ps(t, c)); got != qwen7b+","+qwen05 {
		t.Errorf("order %s, want longest expiry first", got)
	}

	// keep_alive 0 (number or string) unloads.
	for _, ka := range []string{`0`, `"0"`, `"0s"`} {
		load(t, c, qwen05, 2048, "")
		r := load(t, c, qwen05, 0, ka)
		if r.DoneReason != "unload" {
			t.Errorf("keep_alive %s answered %q", ka, r.DoneReason)
		}
		if got := names(ps(t, c)); got != qwen7b {
			t.Errorf("keep_alive %s: /api/ps lists %s", ka, got)
		}
	}

	// A generation with keep_alive 0 answers, then unloads.
	zero := api.Duration{}
	err := c.Generate(context.Background(), &api.GenerateRequest{Model: qwen05, Prompt: "hi", KeepAlive: &zero}, func(api.GenerateResponse) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if got := names(ps(t, c)); got != qwen7b {
		t.Errorf("after a keep_alive 0 generation /api/ps lists %s", got)
	}

	s.Unload(qwen7b)
	if ms := ps(t, c); len(ms) != 0 {
		t.Errorf("Unload left %s", names(ms))
	}
}

func TestDerivedModel(t *testing.T) {
	clk := newClock()
	s, c := start(t, gpusim.Config{GPU: gpu(t, "mac32"), Now: clk.Now})
	ctx := context.Background()
	var statuses []string
	err := c.Create(ctx, &api.CreateRequest{Model: "llama3.1-24k", From: llama8b, Parameters: map[string]any{"num_ctx": 24576}},
		func(r api.ProgressResponse) error { statuses = append(statuses, r.Status); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(statuses) == 0 || statuses[len(statuses)-1] != "success" {
		t.Errorf("create streamed %q, want it to end in success", statuses)
	}

	show, err := c.Show(ctx, &api.ShowRequest{Model: "llama3.1-24k"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(show.Parameters, fmt.Sprintf("%-30s 24576", "num_ctx")) || !strings.Contains(show.Parameters, `"<|eot_id|>"`) {
		t.Errorf("parameters:\n%s", show.Parameters)
	}
	if show.Details.ParentModel != llama8b || show.ModelInfo["llama.context_length"] != float64(131072) {
		t.Errorf("details %+v, model_info %v", show.Details, show.ModelInfo)
	}

	// Loading it without num_ctx uses the Modelfile's.
	load(t, c, "llama3.1-24k", 0, "")
	ms := ps(t, c)
	if len(ms) != 1 || ms[0].Name != "llama3.1-24k:latest" || ms[0].ContextLength != 24576 || processor(ms[0]) != "100% GPU" {
		t.Errorf("/api/ps lists %+v", ms)
	}
	if size, vram, _ := s.Placement("llama3.1-24k", 0, 0); size != ms[0].Size || vram != ms[0].SizeVRAM {
		t.Errorf("Placement with the Modelfile's context = %d, %d", size, vram)
	}
	// A request's num_ctx still wins.
	load(t, c, "llama3.1-24k:latest", 8192, "")
	if ms := ps(t, c); ms[0].ContextLength != 8192 {
		t.Errorf("request num_ctx ignored: %d", ms[0].ContextLength)
	}

	// It is listed, newest first, with a digest of its own.
	tags, err := c.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tags.Models[0].Name != "llama3.1-24k:latest" || tags.Models[0].Digest == "" || tags.Models[0].Size != tags.Models[1].Size && tags.Models[1].Name == llama8b {
		t.Errorf("/api/tags lists first %+v", tags.Models[0])
	}

	// Re-creating with another value replaces it; stream false answers once.
	no := false
	var once []api.ProgressResponse
	err = c.Create(ctx, &api.CreateRequest{Model: "llama3.1-24k", From: llama8b, Parameters: map[string]any{"num_ctx": 16384}, Stream: &no},
		func(r api.ProgressResponse) error { once = append(once, r); return nil })
	if err != nil || len(once) != 1 || once[0].Status != "success" {
		t.Errorf("create without streaming: %v %+v", err, once)
	}
	load(t, c, "llama3.1-24k", 0, "")
	if ms := ps(t, c); ms[0].ContextLength != 16384 {
		t.Errorf("replaced model loads at %d", ms[0].ContextLength)
	}

	bad := []struct {
		req  api.CreateRequest
		code int
	}{
		{api.CreateRequest{Model: "x", From: "no-such-model"}, 500},
		{api.CreateRequest{Model: "x"}, 400},
		{api.CreateRequest{From: llama8b}, 400},
		{api.CreateRequest{Model: "x", From: llama8b, Parameters: map[string]any{"num_ctx": "lots"}}, 400},
	}
	for _, b := range bad {
		err := c.Create(ctx, &b.req, func(api.ProgressResponse) error { return nil })
		var se api.StatusError
		if !errors.As(err, &se) || se.StatusCode != b.code {
			t.Errorf("create %+v: %v, want status %d", b.req, err, b.code)
		}
	}
}

func TestShow(t *testing.T) {
	_, c := start(t, gpusim.Config{GPU: gpu(t, "24GB")})
	ctx := context.Background()
	tests := []struct {
		model string
		want  map[string]any
		gone  []string
	}{
		{deepseek, map[string]any{
			"general.architecture":              "deepseek2",
			"deepseek2.block_count":             27.0,
			"deepseek2.context_length":          163840.0,
			"deepseek2.embedding_length":        2048.0,
			"deepseek2.attention.head_count":    16.0,
			"deepseek2.attention.head_count_kv": 16.0,
			"deepseek2.attention.key_length":    192.0,
			"deepseek2.attention.value_length":  128.0,
		}, nil},
		{"QWEN2.5:0.5B", map[string]any{
			"general.architecture":          "qwen2",
			"qwen2.block_count":             24.0,
			"qwen2.context_length":          32768.0,
			"qwen2.embedding_length":        896.0,
			"qwen2.attention.head_count":    14.0,
			"qwen2.attention.head_count_kv": 2.0,
		}, []string{"qwen2.attention.key_length"}},
	}
	for _, tt := range tests {
		r, err := c.Show(ctx, &api.ShowRequest{Model: tt.model})
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range tt.want {
			if r.ModelInfo[k] != v {
				t.Errorf("%s: %s = %v, want %v", tt.model, k, r.ModelInfo[k], v)
			}
		}
		for _, k := range tt.gone {
			if _, ok := r.ModelInfo[k]; ok {
				t.Errorf("%s: unexpected %s", tt.model, k)
			}
		}
		if r.Details.Family == "" || r.Details.QuantizationLevel == "" || r.Details.ParameterSize == "" {
			t.Errorf("%s: details %+v", tt.model, r.Details)
		}
		if strings.Contains(r.Parameters, "num_ctx") {
			t.Errorf("%s: a pulled model sets no num_ctx:\n%s", tt.model, r.Parameters)
		}
	}

	_, err := c.Show(ctx, &api.ShowRequest{Model: "missing:7b"})
	var se api.StatusError
	if !errors.As(err, &se) || se.StatusCode != 404 || se.ErrorMessage != "model 'missing:7b' not found" {
		t.Errorf("show of an unknown model: %#v", err)
	}
}

// TestRoundTrip calls every endpoint through Ollama's own client.
func TestRoundTrip(t *testing.T) {
	s, c := start(t, gpusim.Config{GPU: gpu(t, "24GB"), Version: "0.17.4"})
	ctx := context.Background()

	if v, err := c.Version(ctx); err != nil || v != "0.17.4" {
		t.Errorf("Version = %q, %v", v, err)
	}
	if err := c.Heartbeat(ctx); err != nil {
		t.Errorf("Heartbeat: %v", err)
	}
	tags, err := c.List(ctx)
	if err != nil || len(tags.Models) != len(gpusim.Models()) {
		t.Fatalf("List: %d models, %v", len(tags.Models), err)
	}
	for _, m := range tags.Models {
		if len(m.Digest) != 64 || m.Size <= 0 || m.Details.Family == "" || m.Details.ParameterSize == "" || m.Details.QuantizationLevel == "" {
			t.Errorf("tag %+v", m)
		}
	}

	// A streamed generation: chunks, then a final message with metrics.
	var chunks []api.GenerateResponse
	err = c.Generate(ctx, &api.GenerateRequest{Model: qwen05, Prompt: "Say hello", Options: map[string]any{"num_ctx": 8192, "num_predict": 5}},
		func(r api.GenerateResponse) error { chunks = append(chunks, r); return nil })
	if err != nil {
		t.Fatal(err)
	}
	final := chunks[len(chunks)-1]
	if len(chunks) != 6 || !final.Done || final.DoneReason != "length" || final.EvalCount != 5 ||
		final.EvalDuration <= 0 || final.PromptEvalCount <= 0 || final.PromptEvalDuration <= 0 || final.LoadDuration <= 0 ||
		final.TotalDuration < final.LoadDuration+final.EvalDuration {
		t.Errorf("%d chunks, final %+v", len(chunks), final)
	}

	// Not streamed: one answer with the whole text; no num_predict: 32 tokens.
	no := false
	var one []api.GenerateResponse
	err = c.Generate(ctx, &api.GenerateRequest{Model: qwen05, Prompt: "Say hello", Stream: &no, Options: map[string]any{"num_ctx": 8192}},
		func(r api.GenerateResponse) error { one = append(one, r); return nil })
	if err != nil || len(one) != 1 || one[0].EvalCount != 32 || one[0].DoneReason != "stop" || len(strings.Fields(one[0].Response)) != 32 {
		t.Errorf("stream false: %v %+v", err, one)
	}
	if one[0].LoadDuration >= final.LoadDuration {
		t.Errorf("load_duration %v of a loaded model should be below the first's %v", one[0].LoadDuration, final.LoadDuration)
	}

	// Chat shares generate's model: loads with no messages, answers as the assistant.
	var chat []api.ChatResponse
	err = c.Chat(ctx, &api.ChatRequest{Model: qwen05, Options: map[string]any{"num_ctx": 8192}},
		func(r api.ChatResponse) error { chat = append(chat, r); return nil })
	if err != nil || len(chat) != 1 || chat[0].DoneReason != "load" {
		t.Errorf("chat load: %v %+v", err, chat)
	}
	chat = nil
	err = c.Chat(ctx, &api.ChatRequest{Model: qwen05, Messages: []api.Message{{Role: "user", Content: "hi"}}, Options: map[string]any{"num_ctx": 8192, "num_predict": 3}},
		func(r api.ChatResponse) error { chat = append(chat, r); return nil })
	if err != nil || len(chat) != 4 || chat[0].Message.Role != "assistant" || chat[0].Message.Content == "" || chat[3].EvalCount != 3 {
		t.Errorf("chat: %v %+v", err, chat)
	}

	ms := ps(t, c)
	if len(ms) != 1 || ms[0].Name != qwen05 || ms[0].Model != qwen05 || len(ms[0].Digest) != 64 || ms[0].Details.Family != "qwen2" || ms[0].ContextLength != 8192 {
		t.Errorf("ps %+v", ms)
	}
	if s.Loads() != 1 {
		t.Errorf("Loads() = %d", s.Loads())
	}

	// Unknown models are 404 with Ollama's text.
	err = c.Generate(ctx, &api.GenerateRequest{Model: "nope"}, func(api.GenerateResponse) error { return nil })
	var se api.StatusError
	if !errors.As(err, &se) || se.StatusCode != 404 || se.ErrorMessage != "model 'nope' not found" {
		t.Errorf("generate unknown: %#v", err)
	}
	// Options of the wrong type are refused as Ollama refuses them.
	err = c.Generate(ctx, &api.GenerateRequest{Model: qwen05, Options: map[string]any{"num_ctx": "big"}}, func(api.GenerateResponse) error { return nil })
	if !errors.As(err, &se) || se.StatusCode != 500 || !strings.Contains(se.ErrorMessage, `"num_ctx" must be of type integer`) {
		t.Errorf("num_ctx string: %v", err)
	}
}

func TestBadRequests(t *testing.T) {
	s := gpusim.New(gpusim.Config{GPU: gpusim.GPU{Name: "24GB"}})
	tests := []struct {
		method, path, body string
		code               int
		errText            string
	}{
		{"POST", "/api/generate", `{"model":`, 400, "unexpected EOF"},
		{"POST", "/api/generate", ``, 400, "missing request body"},
		{"POST", "/api/show", `not json`, 400, "invalid character"},
		{"POST", "/api/show", `{}`, 400, "model is required"},
		{"POST", "/api/create", `[1,2]`, 400, "cannot unmarshal"},
		{"POST", "/api/generate", `{"model":"qwen2.5:0.5b","keep_alive":true}`, 400, "Unsupported type"},
		{"GET", "/api/nothing", ``, 404, ""},
	}
	for _, tt := range tests {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body)))
		if w.Code != tt.code {
			t.Errorf("%s %s %q: %d %s, want %d", tt.method, tt.path, tt.body, w.Code, w.Body, tt.code)
			continue
		}
		if tt.errText != "" {
			var e struct{ Error string }
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || !strings.Contains(e.Error, tt.errText) {
				t.Errorf("%s %s %q: body %s, want error containing %q", tt.method, tt.path, tt.body, w.Body, tt.errText)
			}
		}
	}
}

// TestSpeed checks the speed model: spilled is slower, CPU-only slowest.
func TestSpeed(t *testing.T) {
	tps := func(g gpusim.GPU, model string, numCtx int) float64 {
		t.Helper()
		_, c := start(t, gpusim.Config{GPU: g})
		no := false
		var r api.GenerateResponse
		err := c.Generate(context.Background(), &api.GenerateRequest{Model: model, Prompt: "count", Stream: &no,
			Options: map[string]any{"num_ctx": numCtx, "num_predict": 64}}, func(x api.GenerateResponse) error { r = x; return nil })
		if err != nil {
			t.Fatal(err)
		}
		return float64(r.EvalCount) / r.EvalDuration.Seconds()
	}
	g24 := gpu(t, "24GB")
	full := tps(g24, llama8b, 16384)
	spilled := tps(g24, llama8b, 65536)
	cpu := tps(gpu(t, "none"), llama8b, 16384)
	t.Logf("llama3.1 8B fp16: %.1f tokens/s on 24GB, %.1f spilled, %.1f CPU-only", full, spilled, cpu)
	if full < 3*spilled {
		t.Errorf("spilled %.1f tokens/s is not much slower than 100%% GPU %.1f", spilled, full)
	}
	if cpu >= spilled {
		t.Errorf("CPU-only %.1f tokens/s should be slowest (spilled %.1f)", cpu, spilled)
	}
	if small := tps(g24, qwen05, 2048); small <= full {
		t.Errorf("0.5B %.1f tokens/s should beat 8B %.1f", small, full)
	}
}

func TestLoadDelay(t *testing.T) {
	_, c := start(t, gpusim.Config{GPU: gpu(t, "24GB"), LoadDelay: 50 * time.Millisecond})
	began := time.Now()
	load(t, c, qwen05, 2048, "")
	if d := time.Since(began); d < 50*time.Millisecond {
		t.Errorf("load took %v, want at least the 50ms LoadDelay", d)
	}
	began = time.Now()
	load(t, c, qwen05, 2048, "")
	if d := time.Since(began); d >= 50*time.Millisecond {
		t.Errorf("refresh took %v; only loads are delayed", d)
	}
}

// TestFaults drives every fault through Ollama's client: each is an error,
// never a panic or a hang, and clearing the fault restores service.
func TestFaults(t *testing.T) {
	s, c := start(t, gpusim.Config{GPU: gpu(t, "24GB")})
	if err := s.Load(qwen05, 2048, 0); err != nil {
		t.Fatal(err)
	}
	calls := map[string]func(ctx context.Context) error{
		"ps": func(ctx context.Context) error { _, err := c.ListRunning(ctx); return err },
		"version": func(ctx context.Context) error {
			_, err := c.Version(ctx)
			return err
		},
		"show": func(ctx context.Context) error { _, err := c.Show(ctx, &api.ShowRequest{Model: qwen05}); return err },
		"generate": func(ctx context.Context) error {
			return c.Generate(ctx, &api.GenerateRequest{Model: qwen05, Prompt: "hi"}, func(api.GenerateResponse) error { return nil })
		},
		"load": func(ctx context.Context) error {
			return c.Generate(ctx, &api.GenerateRequest{Model: qwen05, Options: map[string]any{"num_ctx": 2048}}, func(api.GenerateResponse) error { return nil })
		},
	}
	faults := []struct {
		name  string
		fault gpusim.Fault
		check func(error) bool
	}{
		{"down", gpusim.Fault{Down: true}, func(err error) bool { return err != nil }},
		{"500", gpusim.Fault{Status: 500}, func(err error) bool {
			var se api.StatusError
			return errors.As(err, &se) && se.StatusCode == 500
		}},
		{"404", gpusim.Fault{Status: 404}, func(err error) bool {
			var se api.StatusError
			return errors.As(err, &se) && se.StatusCode == 404
		}},
		{"malformed", gpusim.Fault{Malformed: true}, func(err error) bool { return err != nil }},
		{"truncated", gpusim.Fault{Truncated: true}, func(err error) bool { return err != nil }},
		{"slow", gpusim.Fault{Delay: 5 * time.Second}, func(err error) bool { return errors.Is(err, context.DeadlineExceeded) }},
	}
	for _, f := range faults {
		s.SetFault(f.fault)
		for name, call := range calls {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			err := call(ctx)
			cancel()
			if !f.check(err) {
				t.Errorf("%s fault, %s: %v", f.name, name, err)
			}
		}
	}
	s.SetFault(gpusim.Fault{})
	for name, call := range calls {
		if err := call(context.Background()); err != nil {
			t.Errorf("after clearing the fault, %s: %v", name, err)
		}
	}
}

func TestFaultSizes(t *testing.T) {
	s, c := start(t, gpusim.Config{GPU: gpu(t, "mac32")})
	if err := s.Load(llama8b, 131072, 0); err != nil {
		t.Fatal(err)
	}
	s.SetFault(gpusim.Fault{NegativeSizes: true})
	if ms := ps(t, c); len(ms) != 1 || ms[0].Size >= 0 || ms[0].SizeVRAM >= 0 {
		t.Errorf("negative sizes: %+v", ms)
	}
	s.SetFault(gpusim.Fault{VRAMAboveSize: true})
	if ms := ps(t, c); len(ms) != 1 || ms[0].SizeVRAM <= ms[0].Size || processor(ms[0]) != "Unknown" {
		t.Errorf("vram above size: %+v", ms)
	}
}

func TestFaultHuge(t *testing.T) {
	s, _ := start(t, gpusim.Config{GPU: gpu(t, "24GB")})
	u, err := s.Start("127.0.0.1:0")
	if err == nil {
		t.Fatalf("second Start succeeded at %s", u)
	}
	const huge = 9 << 20
	s.SetFault(gpusim.Fault{Huge: huge})
	w := httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest("GET", "/api/ps", nil))
	if w.Body.Len() != huge {
		t.Errorf("body of %d bytes, want %d", w.Body.Len(), huge)
	}
	var r api.ProcessResponse
	if err := json.Unmarshal(w.Body.Bytes(), &r); err != nil {
		t.Errorf("huge body is not the padded answer: %v", err)
	}
	// A client that caps what it reads gives up.
	capped := &http.Client{Transport: capTransport{8 << 20}}
	srvURL := startedURL(t, s)
	resp, err := capped.Get(srvURL + "/api/ps")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Error("reading a huge answer through a capped client succeeded")
	}
}

// startedURL serves s on another listener (Start allows one) for raw HTTP.
func startedURL(t *testing.T, s *gpusim.Server) string {
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv.URL
}

type capTransport struct{ max int64 }

func (c capTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	body := resp.Body
	resp.Body = io.NopCloser(io.MultiReader(io.LimitReader(body, c.max), errReader{}))
	return resp, nil
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("response too large") }

func TestFaultDownInProcess(t *testing.T) {
	s := gpusim.New(gpusim.Config{})
	s.SetFault(gpusim.Fault{Down: true})
	defer func() {
		if r := recover(); r != http.ErrAbortHandler {
			t.Errorf("ServeHTTP without a connection: recovered %v, want http.ErrAbortHandler", r)
		}
	}()
	s.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/api/ps", nil))
}

func TestConcurrentRequests(t *testing.T) {
	_, c := start(t, gpusim.Config{GPU: gpu(t, "24GB")})
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 20 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			ctxLen := 2048 * (1 + i%3)
			errs <- c.Generate(context.Background(), &api.GenerateRequest{Model: qwen05, Prompt: "x", Options: map[string]any{"num_ctx": ctxLen}},
				func(api.GenerateResponse) error { return nil })
		}()
		go func() {
			defer wg.Done()
			_, err := c.ListRunning(context.Background())
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func BenchmarkPs(b *testing.B) {
	s := gpusim.New(gpusim.Config{GPU: gpu(b, "32GB")})
	for _, m := range []string{qwen05, qwen7b, "gemma2:9b"} {
		if err := s.Load(m, 4096, 0); err != nil {
			b.Fatal(err)
		}
	}
	req := httptest.NewRequest("GET", "/api/ps", nil)
	var body bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		w.Body = &body
		body.Reset()
		s.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}

func TestDelete(t *testing.T) {
	sim := gpusim.New(gpusim.Config{})
	u, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	del := func(model string) int {
		req, _ := http.NewRequest(http.MethodDelete, u+"/api/delete", strings.NewReader(`{"model":"`+model+`"}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := del("qwen2.5:0.5b"); code != http.StatusOK {
		t.Errorf("delete: HTTP %d", code)
	}
	if code := del("qwen2.5:0.5b"); code != http.StatusNotFound {
		t.Errorf("second delete: HTTP %d, want 404", code)
	}
}
