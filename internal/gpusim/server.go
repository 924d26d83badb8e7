package gpusim

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ollama/ollama/format"
)

// DefaultKeepAlive is how long a model stays loaded after a request that
// sets no keep_alive, as in Ollama.
const DefaultKeepAlive = 5 * time.Minute

// Forever is the keep_alive of a model that never expires (a negative
// keep_alive in a request).
const Forever = time.Duration(math.MaxInt64)

// Config describes a simulated server. The zero value is a CPU-only host
// with the preset models.
type Config struct {
	// GPU is the host's accelerator; see GPUs for presets.
	GPU GPU
	// Models are the pulled models; nil means Models().
	Models []Model
	// Parallel is OLLAMA_NUM_PARALLEL, the slots each model is loaded
	// with; 0 means 1.
	Parallel int
	// DefaultContext is OLLAMA_CONTEXT_LENGTH; 0 picks it by total VRAM.
	DefaultContext int
	// MaxLoaded is OLLAMA_MAX_LOADED_MODELS: a load that finds this many
	// other models loaded evicts one first. 0 means Ollama's default, 3 per
	// GPU (3 on a CPU-only host too).
	MaxLoaded int
	// Version is what /api/version reports; empty means "0.17.4".
	Version string
	// Now is the clock; nil means time.Now. Tests pass a fake one to
	// control keep_alive expiry.
	Now func() time.Time
	// LoadDelay is a real delay added to every (re)load, for demos and for
	// tests of cancellation. Reported durations never depend on it.
	LoadDelay time.Duration
}

// Server is a simulated Ollama server. It implements http.Handler; Start
// serves it on a real listener. It is safe for concurrent use.
type Server struct {
	cfg Config
	mux *http.ServeMux

	loadMu sync.Mutex // serializes loads, like Ollama's scheduler

	mu     sync.Mutex // guards everything below
	models map[string]*entry
	loaded map[string]*runner
	loads  int
	// evictions counts the models unloaded to make room for another.
	evictions int
	fault     Fault
	http      *http.Server
}

// entry is a model the server has, with its Modelfile parameters.
type entry struct {
	Model
	params   map[string]any // Modelfile parameters: num_ctx, stop, …
	parent   string
	modified time.Time
}

// runner is a loaded model.
type runner struct {
	entry    *entry
	reqCtx   int // num_ctx as requested; a different one reloads
	numCtx   int // num_ctx after clamping to the trained context
	parallel int
	place    placement
	session  time.Duration
	expires  time.Time
}

// New returns a server described by cfg.
func New(cfg Config) *Server {
	if cfg.Models == nil {
		cfg.Models = Models()
	}
	cfg.Parallel = max(cfg.Parallel, 1)
	cfg.Version = cmp.Or(cfg.Version, "0.17.4")
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.DefaultContext <= 0 {
		cfg.DefaultContext = defaultContext(cfg.GPU.totalVRAM())
	}
	if cfg.MaxLoaded <= 0 {
		cfg.MaxLoaded = defaultMaxLoaded
	}
	s := &Server{
		cfg:    cfg,
		models: map[string]*entry{},
		loaded: map[string]*runner{},
	}
	// Presets were pulled at fixed times, a minute apart, so /api/tags
	// lists them in a stable order.
	pulled := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, m := range cfg.Models {
		e := &entry{Model: m, params: presetParams(m), modified: pulled.Add(-time.Duration(i) * time.Minute)}
		e.Name = shortName(m.Name)
		e.Digest = m.digest()
		s.models[canonicalName(m.Name)] = e
	}
	s.mux = s.routes()
	return s
}

// defaultMaxLoaded is Ollama's OLLAMA_MAX_LOADED_MODELS when unset on a
// host with one GPU or none: defaultModelsPerGPU × max(GPUs, 1) in
// server/sched.go.
const defaultMaxLoaded = 3

// defaultContext is Ollama's default num_ctx for a host with total bytes of
// VRAM (server/routes.go, since v0.15.5).
func defaultContext(total int64) int {
	switch {
	case total >= 47*gib:
		return 262144
	case total >= 23*gib:
		return 32768
	}
	return 4096
}

// presetParams returns the Modelfile parameters a pulled model carries: the
// stop sequences of its chat template, and num_ctx when set.
func presetParams(m Model) map[string]any {
	p := map[string]any{}
	switch m.Family {
	case "llama":
		p["stop"] = []any{"<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"}
	case "qwen2":
		p["stop"] = []any{"<|im_start|>", "<|im_end|>"}
	case "deepseek2":
		p["stop"] = []any{"User:", "Assistant:"}
	case "gemma2":
		p["stop"] = []any{"<start_of_turn>", "<end_of_turn>"}
	}
	if m.NumCtx > 0 {
		p["num_ctx"] = float64(m.NumCtx) // as read back from a params blob
	}
	return p
}

// Start serves s on a real listener at addr ("127.0.0.1:0" picks a free
// port) and returns its base URL, e.g. "http://127.0.0.1:38211".
func (s *Server) Start(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("gpusim: listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	s.mu.Lock()
	if s.http != nil {
		s.mu.Unlock()
		ln.Close()
		return "", errors.New("gpusim: server already started")
	}
	s.http = srv
	s.mu.Unlock()
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), nil
}

// Close stops the listener started by Start and closes its connections.
func (s *Server) Close() error {
	s.mu.Lock()
	srv := s.http
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Close()
}

// SetFault makes every endpoint misbehave as f says until it is cleared
// with SetFault(Fault{}).
func (s *Server) SetFault(f Fault) {
	s.mu.Lock()
	s.fault = f
	s.mu.Unlock()
}

// Loads returns how many times a model was loaded or reloaded so far, by
// requests and by Load.
func (s *Server) Loads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loads
}

// Placement returns the size and size_vram that /api/ps would report for
// model loaded with numCtx and parallel slots on the empty GPU, without
// loading it. numCtx <= 0 takes the default a load request would;
// parallel <= 0 takes the server's. numCtx is clamped as a load clamps it.
func (s *Server) Placement(model string, numCtx, parallel int) (size, sizeVRAM int64, err error) {
	s.mu.Lock()
	e := s.models[canonicalName(model)]
	s.mu.Unlock()
	if e == nil {
		return 0, 0, fmt.Errorf("gpusim: model %q not found", model)
	}
	if numCtx <= 0 {
		numCtx = s.defaultCtx(e)
	}
	if parallel <= 0 {
		parallel = s.cfg.Parallel
	}
	p := newFootprint(e.Model, e.clamp(max(numCtx, 4)), parallel).place(s.cfg.GPU.VRAM)
	return p.size, p.vram, nil
}

// Load loads model with numCtx as a request without a prompt would: numCtx
// <= 0 takes the model's or the server's default; keepAlive 0 means
// DefaultKeepAlive and a negative one Forever.
func (s *Server) Load(model string, numCtx int, keepAlive time.Duration) error {
	s.mu.Lock()
	e := s.models[canonicalName(model)]
	s.mu.Unlock()
	if e == nil {
		return fmt.Errorf("gpusim: model %q not found", model)
	}
	if numCtx <= 0 {
		numCtx = s.defaultCtx(e)
	}
	switch {
	case keepAlive == 0:
		keepAlive = DefaultKeepAlive
	case keepAlive < 0:
		keepAlive = Forever
	}
	_, _, err := s.schedule(context.Background(), e, max(numCtx, 4), keepAlive)
	return err
}

// Unload unloads model if it is loaded. Like a request with keep_alive 0
// to Ollama's scheduler, it waits for a load in progress (of any model,
// since loads are serialized) to end first, so that a load its client
// abandoned does not come back after the unload.
func (s *Server) Unload(model string) {
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	s.mu.Lock()
	delete(s.loaded, canonicalName(model))
	s.mu.Unlock()
}

func (s *Server) lookup(name string) *entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.models[canonicalName(name)]
}

func (s *Server) defaultCtx(e *entry) int {
	if n, ok, err := intOption(e.params, "num_ctx"); ok && err == nil {
		return n
	}
	return s.cfg.DefaultContext
}

// clamp limits numCtx to the trained context, as Ollama's runner does.
func (e *entry) clamp(numCtx int) int {
	if e.TrainedContext > 0 && numCtx > e.TrainedContext {
		return e.TrainedContext
	}
	return numCtx
}

// schedule makes sure e is loaded with reqCtx and the server's parallel
// count, reloading it when its context differs, and sets its keep_alive. It
// returns the runner and whether it was (re)loaded.
func (s *Server) schedule(ctx context.Context, e *entry, reqCtx int, session time.Duration) (runner, bool, error) {
	s.loadMu.Lock()
	defer s.loadMu.Unlock()

	key := canonicalName(e.Name)
	s.mu.Lock()
	now := s.cfg.Now()
	s.expireLocked(now)
	if r := s.loaded[key]; r != nil && r.entry == e && r.reqCtx == reqCtx && r.parallel == s.cfg.Parallel {
		r.session, r.expires = session, now.Add(session)
		defer s.mu.Unlock()
		return *r, false, nil
	}
	delete(s.loaded, key) // Ollama stops the old runner before starting a new one
	numCtx := e.clamp(reqCtx)
	place, err := s.fitLocked(newFootprint(e.Model, numCtx, s.cfg.Parallel))
	if err != nil {
		s.mu.Unlock()
		return runner{}, false, err
	}
	s.loads++
	r := &runner{entry: e, reqCtx: reqCtx, numCtx: numCtx, parallel: s.cfg.Parallel, place: place, session: session}
	s.mu.Unlock()

	if d := s.cfg.LoadDelay; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	r.expires = s.cfg.Now().Add(session)
	s.loaded[key] = r
	return *r, true, nil
}

// fitLocked places f beside the loaded models, evicting them one at a time
// (shortest keep_alive first, then by name, as Ollama's ByDurationAndName)
// until it fits whole or nothing else is loaded. As in Ollama's
// processPending, a load that finds MaxLoaded models loaded evicts one
// before it even tries.
func (s *Server) fitLocked(f footprint) (placement, error) {
	g := s.cfg.GPU
	for {
		if len(s.loaded) >= s.cfg.MaxLoaded {
			s.evictLocked()
			continue
		}
		var usedVRAM, usedRAM int64
		for _, r := range s.loaded {
			usedVRAM += r.place.vram
			usedRAM += r.place.size - r.place.vram
		}
		free := int64(0)
		if g.VRAM > 0 {
			free = max(g.VRAM-usedVRAM, 0)
		}
		p := f.place(free)
		ramFree := g.RAM - usedRAM
		fitsGPU := g.VRAM <= 0 || p.vram == p.size
		fitsRAM := g.Unified || g.RAM <= 0 || p.size-p.vram <= ramFree
		if fitsGPU && fitsRAM || len(s.loaded) == 0 {
			if !fitsRAM {
				return p, fmt.Errorf("model requires more system memory (%s) than is available (%s)",
					format.HumanBytes2(uint64(p.size-p.vram)), format.HumanBytes2(uint64(max(ramFree, 0))))
			}
			return p, nil
		}
		s.evictLocked()
	}
}

// evictLocked unloads the loaded model Ollama's findRunnerToUnload picks:
// the shortest keep_alive (compared as unsigned, so that a negative one,
// forever, comes last), then the first by name. Every simulated runner is
// idle between requests.
func (s *Server) evictLocked() {
	victims := make([]*runner, 0, len(s.loaded))
	for _, r := range s.loaded {
		victims = append(victims, r)
	}
	if len(victims) == 0 {
		return
	}
	sort.Slice(victims, func(i, j int) bool {
		if victims[i].session != victims[j].session {
			return uint64(victims[i].session) < uint64(victims[j].session)
		}
		return victims[i].entry.Name < victims[j].entry.Name
	})
	delete(s.loaded, canonicalName(victims[0].entry.Name))
	s.evictions++
}

// Evictions returns how many loaded models were unloaded to make room for
// another load so far.
func (s *Server) Evictions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.evictions
}

// expireLocked drops the models whose keep_alive has run out.
func (s *Server) expireLocked(now time.Time) {
	for k, r := range s.loaded {
		if !now.Before(r.expires) {
			delete(s.loaded, k)
		}
	}
}

// create adds (or replaces) a model derived from base with params
// overriding base's.
func (s *Server) create(name string, base *entry, params map[string]any) *entry {
	p := map[string]any{}
	for k, v := range base.params {
		p[k] = v
	}
	for k, v := range params {
		p[k] = v
	}
	e := &entry{Model: base.Model, params: p, parent: base.Name, modified: s.cfg.Now().UTC()}
	e.Name = shortName(name)
	e.NumCtx = 0
	if n, ok, err := intOption(p, "num_ctx"); ok && err == nil {
		e.NumCtx = n
	}
	sum := sha256.Sum256(fmt.Appendf(nil, "gpusim:%s:%s:%s", canonicalName(name), base.Digest, paramsText(p)))
	e.Digest = hex.EncodeToString(sum[:])
	s.mu.Lock()
	s.models[canonicalName(name)] = e
	s.mu.Unlock()
	return e
}

// paramsText returns the parameters as /api/show prints them: one per line,
// the name padded to 30 columns, the value in Go syntax; lists give one
// line per element. Ollama's order is a map's; here it is sorted.
func paramsText(p map[string]any) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var lines []string
	for _, k := range keys {
		switch v := p[k].(type) {
		case []any:
			for _, x := range v {
				lines = append(lines, fmt.Sprintf("%-*s %#v", 30, k, x))
			}
		default:
			lines = append(lines, fmt.Sprintf("%-*s %#v", 30, k, v))
		}
	}
	return strings.Join(lines, "\n")
}

// intOption reads an integer option as Ollama's Options.FromMap does:
// JSON numbers are float64, Go callers may pass ints; nil is absent.
func intOption(m map[string]any, key string) (n int, ok bool, err error) {
	v, ok := m[key]
	if !ok || v == nil {
		return 0, false, nil
	}
	switch t := v.(type) {
	case float64:
		return int(t), true, nil
	case int:
		return t, true, nil
	case int64:
		return int(t), true, nil
	}
	return 0, false, fmt.Errorf("option %q must be of type integer", key)
}
