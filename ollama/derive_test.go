package ollama_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/ctxfit/ctxfit/internal/gpusim"
	"github.com/ctxfit/ctxfit/ollama"
)

func TestContextLabel(t *testing.T) {
	for _, tt := range []struct {
		context int
		want    string
	}{
		{24576, "24k"},
		{1024, "1k"},
		{131072, "128k"},
		{24000, "24000"},
		{1000, "1000"},
		{512, "512"},
	} {
		if got := ollama.ContextLabel(tt.context); got != tt.want {
			t.Errorf("ContextLabel(%d) = %q, want %q", tt.context, got, tt.want)
		}
	}
}

// TestDerivedBase inverts DerivedName, so that a client config that names
// a derived model is matched with its base's tuned value; names without the
// suffix are no derived model.
func TestDerivedBase(t *testing.T) {
	for _, tt := range []struct{ name, base string }{
		{"llama3.1:8b-instruct-fp16-ctx24k", "llama3.1:8b-instruct-fp16"},
		{"llama3.1:ctx8k", "llama3.1"},
		{"llama3.1:8b-ctx24000", "llama3.1:8b"},
		{"localhost:5000/team/coder:7b-ctx4k", "localhost:5000/team/coder:7b"},
		{"llama3.1:8b", ""},
		{"llama3.1", ""},
		{"localhost:5000/team/ctx4k", ""},
		{"llama3.1:8b-context", ""},
	} {
		base, ok := ollama.DerivedBase(tt.name)
		if base != tt.base || ok != (tt.base != "") {
			t.Errorf("DerivedBase(%q) = %q, %v; want %q", tt.name, base, ok, tt.base)
		}
		if ok {
			n := 4096
			if again, err := ollama.DerivedName(base, n); err != nil || !strings.HasPrefix(again, base) {
				t.Errorf("DerivedName(%q) = %q, %v", base, again, err)
			}
		}
	}
}

func TestDerivedName(t *testing.T) {
	for _, tt := range []struct {
		model   string
		context int
		want    string // "" for an error
	}{
		{"llama3.1:8b-instruct-fp16", 24576, "llama3.1:8b-instruct-fp16-ctx24k"},
		{"llama3.1:8b-instruct-fp16", 24000, "llama3.1:8b-instruct-fp16-ctx24000"},
		{"llama3.1", 8192, "llama3.1:ctx8k"},
		{"llama3.1:latest", 8192, "llama3.1:ctx8k"},
		{"Llama3.1:LATEST", 8192, "Llama3.1:ctx8k"},
		{" qwen2.5:0.5b ", 32768, "qwen2.5:0.5b-ctx32k"},
		{"hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", 16384, "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M-ctx16k"},
		{"localhost:5000/team/coder", 4096, "localhost:5000/team/coder:ctx4k"},
		{"localhost:5000/team/coder:7b", 4096, "localhost:5000/team/coder:7b-ctx4k"},
		// A derived model's suffix is replaced, not stacked.
		{"llama3.1:8b-ctx24k", 16384, "llama3.1:8b-ctx16k"},
		{"llama3.1:ctx24k", 16384, "llama3.1:ctx16k"},
		{"llama3.1:8b-ctx24000", 24576, "llama3.1:8b-ctx24k"},
		{"", 8192, ""},
		{"llama3.1", 0, ""},
		{"llama3.1", -4096, ""},
		{"llama3.1@sha256:" + strings.Repeat("a", 64), 8192, ""},
		{"m:" + strings.Repeat("t", 75), 8192, ""}, // the tag would pass 80 characters
		{"bad name!", 8192, ""},
	} {
		got, err := ollama.DerivedName(tt.model, tt.context)
		switch {
		case tt.want == "" && err == nil:
			t.Errorf("DerivedName(%q, %d) = %q, want an error", tt.model, tt.context, got)
		case tt.want != "" && (err != nil || got != tt.want):
			t.Errorf("DerivedName(%q, %d) = %q, %v; want %q", tt.model, tt.context, got, err, tt.want)
		}
	}
}

func TestParamNumCtx(t *testing.T) {
	for _, tt := range []struct {
		params string
		want   int
		ok     bool
	}{
		{"num_ctx                        24576", 24576, true},
		{"stop                           \"<|eot_id|>\"\nnum_ctx                        8192\ntemperature                    0.7", 8192, true},
		{"num_ctx 2.4576e+06", 2457600, true}, // %#v of a large float64
		{"num_ctx 0", 0, true},
		{"", 0, false},
		{"num_ctx_extra 4096", 0, false},
		{"num_ctx 1.5", 0, false},
		{"num_ctx -1", 0, false},
		{"num_ctx lots", 0, false},
		{"# num_ctx 4096", 0, false},
	} {
		got, ok := ollama.ParamNumCtx(tt.params)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParamNumCtx(%q) = %d, %v; want %d, %v", tt.params, got, ok, tt.want, tt.ok)
		}
	}
}

// deriveSim is a simulated Ollama server with a clock that tests move, and
// a count of the requests it got by path.
type deriveSim struct {
	*gpusim.Server
	client *api.Client

	mu    sync.Mutex
	now   time.Time
	calls map[string]int
}

// newDeriveSim starts a simulated 32 GB Mac. wrap, when given, stands
// between the client and the simulator.
func newDeriveSim(t *testing.T, wrap func(next http.Handler) http.Handler) *deriveSim {
	t.Helper()
	g, ok := gpusim.LookupGPU("mac32")
	if !ok {
		t.Fatal("no mac32 preset")
	}
	s := &deriveSim{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), calls: map[string]int{}}
	s.Server = gpusim.New(gpusim.Config{GPU: g, Now: s.clock})
	var h http.Handler = s.Server
	if wrap != nil {
		h = wrap(h)
	}
	count := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.calls[r.URL.Path]++
		s.mu.Unlock()
		h.ServeHTTP(w, r)
	})
	srv := httptest.NewServer(count)
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	s.client = ollama.NewClient(u)
	return s
}

func (s *deriveSim) clock() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now
}

func (s *deriveSim) advance(d time.Duration) {
	s.mu.Lock()
	s.now = s.now.Add(d)
	s.mu.Unlock()
}

func (s *deriveSim) creates() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls["/api/create"]
}

func (s *deriveSim) show(t *testing.T, model string) *api.ShowResponse {
	t.Helper()
	resp, err := s.client.Show(context.Background(), &api.ShowRequest{Model: model})
	if err != nil {
		t.Fatalf("show %s: %v", model, err)
	}
	return resp
}

// create makes model from base with params, as `ollama create` would.
func (s *deriveSim) create(t *testing.T, model, base string, params map[string]any) {
	t.Helper()
	req := &api.CreateRequest{Model: model, From: base, Parameters: params}
	if err := s.client.Create(context.Background(), req, func(api.ProgressResponse) error { return nil }); err != nil {
		t.Fatalf("create %s: %v", model, err)
	}
}

const deriveBase = "llama3.1:8b-instruct-fp16"

func TestDeriveModel(t *testing.T) {
	s := newDeriveSim(t, nil)
	ctx := context.Background()

	name, err := ollama.DeriveModel(ctx, s.client, deriveBase, 24576)
	if err != nil {
		t.Fatal(err)
	}
	if name != "llama3.1:8b-instruct-fp16-ctx24k" {
		t.Errorf("name = %q", name)
	}
	show := s.show(t, name)
	if n, ok := ollama.ParamNumCtx(show.Parameters); !ok || n != 24576 {
		t.Errorf("/api/show parameters of %s = %q; want num_ctx 24576", name, show.Parameters)
	}
	if !strings.Contains(show.Parameters, "<|eot_id|>") {
		t.Errorf("the copy lost the base's stop parameters: %q", show.Parameters)
	}
	if !ollama.SameModel(show.Details.ParentModel, deriveBase) {
		t.Errorf("parent model = %q, want %s", show.Details.ParentModel, deriveBase)
	}
	if s.creates() != 1 {
		t.Errorf("%d create requests, want 1", s.creates())
	}

	// The same call again changes nothing on the server.
	s.advance(time.Hour)
	again, err := ollama.DeriveModel(ctx, s.client, deriveBase, 24576)
	if err != nil || again != name {
		t.Fatalf("second DeriveModel = %q, %v; want %q", again, err, name)
	}
	if s.creates() != 1 {
		t.Errorf("the second call created the model again (%d create requests)", s.creates())
	}
	if got := s.show(t, name).ModifiedAt; !got.Equal(show.ModifiedAt) {
		t.Errorf("the copy was rewritten: modified %v, then %v", show.ModifiedAt, got)
	}

	// Asking by the copy's own name is fine too.
	self, err := ollama.DeriveModel(ctx, s.client, name, 24576)
	if err != nil || self != name || s.creates() != 1 {
		t.Errorf("DeriveModel of the copy itself = %q, %v with %d creates; want %q without creating", self, err, s.creates(), name)
	}

	// Another context is another model; the first stays.
	other, err := ollama.DeriveModel(ctx, s.client, deriveBase, 16000)
	if err != nil || other != "llama3.1:8b-instruct-fp16-ctx16000" {
		t.Fatalf("DeriveModel at 16000 = %q, %v", other, err)
	}
	if n, _ := ollama.ParamNumCtx(s.show(t, other).Parameters); n != 16000 {
		t.Errorf("num_ctx of %s = %d, want 16000", other, n)
	}
	if n, _ := ollama.ParamNumCtx(s.show(t, name).Parameters); n != 24576 {
		t.Errorf("num_ctx of %s = %d after deriving another, want 24576", name, n)
	}

	// A load of the copy without options runs at its own num_ctx, which is
	// the whole point for clients that send none.
	req := &api.GenerateRequest{Model: name}
	if err := s.client.Generate(ctx, req, func(api.GenerateResponse) error { return nil }); err != nil {
		t.Fatal(err)
	}
	ps, err := s.client.ListRunning(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps.Models) != 1 || ps.Models[0].ContextLength != 24576 || ps.Models[0].SizeVRAM != ps.Models[0].Size {
		t.Errorf("/api/ps after loading %s: %+v; want it at 24576, 100%% GPU", name, ps.Models)
	}
}

func TestDeriveModelReplacesStaleCopies(t *testing.T) {
	for _, tt := range []struct {
		name  string
		setup func(t *testing.T, s *deriveSim)
	}{
		{"other num_ctx", func(t *testing.T, s *deriveSim) {
			s.create(t, "llama3.1:8b-instruct-fp16-ctx24k", deriveBase, map[string]any{"num_ctx": 8192})
		}},
		{"no num_ctx", func(t *testing.T, s *deriveSim) {
			s.create(t, "llama3.1:8b-instruct-fp16-ctx24k", deriveBase, nil)
		}},
		{"other parent", func(t *testing.T, s *deriveSim) {
			s.create(t, "llama3.1:8b-instruct-fp16-ctx24k", "qwen2.5:0.5b", map[string]any{"num_ctx": 24576})
		}},
		{"base pulled again", func(t *testing.T, s *deriveSim) {
			s.create(t, "llama3.1:8b-instruct-fp16-ctx24k", deriveBase, map[string]any{"num_ctx": 24576})
			s.advance(time.Hour)
			s.create(t, deriveBase, deriveBase, nil)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newDeriveSim(t, nil)
			tt.setup(t, s)
			before := s.creates()
			s.advance(time.Hour)
			name, err := ollama.DeriveModel(context.Background(), s.client, deriveBase, 24576)
			if err != nil {
				t.Fatal(err)
			}
			if s.creates() != before+1 {
				t.Errorf("%d create requests, want %d", s.creates(), before+1)
			}
			show := s.show(t, name)
			if n, _ := ollama.ParamNumCtx(show.Parameters); n != 24576 || !ollama.SameModel(show.Details.ParentModel, deriveBase) {
				t.Errorf("after DeriveModel: parent %q, parameters %q", show.Details.ParentModel, show.Parameters)
			}
		})
	}
}

func TestDeriveModelErrors(t *testing.T) {
	// refuseCreate answers /api/create as an Ollama older than 0.5.5 does.
	refuseCreate := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/api/create" {
				w.WriteHeader(http.StatusBadRequest)
				io.WriteString(w, `{"error":"a modelfile is required"}`)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	// dropParameters forwards /api/create without its parameters.
	dropParameters := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/api/create" {
				var req map[string]any
				json.NewDecoder(r.Body).Decode(&req)
				delete(req, "parameters")
				b, _ := json.Marshal(req)
				r.Body = io.NopCloser(bytes.NewReader(b))
				r.ContentLength = int64(len(b))
			}
			next.ServeHTTP(w, r)
		})
	}
	// failShow answers every /api/show with a server error.
	failShow := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/api/show" {
				http.Error(w, `{"error":"disk on fire"}`, http.StatusInternalServerError)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	for _, tt := range []struct {
		name    string
		wrap    func(http.Handler) http.Handler
		model   string
		context int
		want    string // in the error
		creates int
	}{
		{"missing base", nil, "mistral:7b", 8192, "ollama pull mistral:7b", 0},
		{"bad context", nil, deriveBase, 0, "not a positive number", 0},
		{"old server", refuseCreate, deriveBase, 8192, "Ollama 0.5.5 or newer", 1},
		{"parameters ignored", dropParameters, deriveBase, 8192, "does not report num_ctx 8192", 1},
		{"show fails", failShow, deriveBase, 8192, "disk on fire", 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newDeriveSim(t, tt.wrap)
			name, err := ollama.DeriveModel(context.Background(), s.client, tt.model, tt.context)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("DeriveModel = %q, %v; want an error saying %q", name, err, tt.want)
			}
			if s.creates() != tt.creates {
				t.Errorf("%d create requests, want %d", s.creates(), tt.creates)
			}
		})
	}

	t.Run("cancelled", func(t *testing.T) {
		s := newDeriveSim(t, nil)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := ollama.DeriveModel(ctx, s.client, deriveBase, 8192); err == nil {
			t.Error("DeriveModel with a cancelled context succeeded")
		}
		if s.creates() != 0 {
			t.Errorf("%d create requests after cancelling", s.creates())
		}
	})
}

func TestDerivedFrom(t *testing.T) {
	tests := []struct {
		name, model string
		want        bool
	}{
		{"llama3.1:8b-instruct-fp16-ctx24k", "llama3.1:8b-instruct-fp16", true},
		{"llama3.1:ctx24k", "llama3.1", true},
		{"llama3.1:ctx8k", "llama3.1:latest", true},
		{"llama3.1:8b-instruct-fp16", "llama3.1:8b-instruct-fp16", false},
		{"llama3.1:8b-ctx24k", "llama3.1:8b-instruct-fp16", false},
		{"other:ctx24k", "llama3.1", false},
		{"library/llama3.1:8b-ctx4k", "library/llama3.1:8b", true},
	}
	for _, tt := range tests {
		if got := ollama.DerivedFrom(tt.name, tt.model); got != tt.want {
			t.Errorf("DerivedFrom(%q, %q) = %v, want %v", tt.name, tt.model, got, tt.want)
		}
	}
}
