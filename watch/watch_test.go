package watch

import (
	"cmp"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/ctxfit/ctxfit/internal/fanout"
	"github.com/ctxfit/ctxfit/internal/hint"
	"github.com/ctxfit/ctxfit/internal/ollamahost"
	"github.com/ctxfit/ctxfit/ollama"
	"github.com/ctxfit/ctxfit/state"
)

// fakeOllama serves /api/ps from a script that tests change between polls,
// and can misbehave in every way the watcher must survive.
type fakeOllama struct {
	mu     sync.Mutex
	models []api.ProcessModelResponse
	body   string // when set, /api/ps answers this raw body
	status int    // when set, /api/ps answers this status
}

func (f *fakeOllama) set(ms ...api.ProcessModelResponse) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.models, f.body, f.status = ms, "", 0
}

func (f *fakeOllama) misbehave(status int, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status, f.body = status, body
}

func (f *fakeOllama) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.URL.Path {
	case "/api/version":
		w.Write([]byte(`{"version":"0.17.4"}`))
	case "/api/ps":
		if f.status != 0 {
			w.WriteHeader(f.status)
		}
		if f.body != "" || f.status != 0 {
			w.Write([]byte(f.body))
			return
		}
		json.NewEncoder(w).Encode(api.ProcessResponse{Models: f.models})
	default:
		http.NotFound(w, r)
	}
}

const gib = int64(1) << 30

func psModel(name string, size, vram int64, ctx int) api.ProcessModelResponse {
	return api.ProcessModelResponse{Name: name, Model: name, Size: size, SizeVRAM: vram, ContextLength: ctx, Digest: "d-" + name}
}

// clock is a fake time source the tests advance by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock                   { return &clock{time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)} }
func gpu(p ollama.GPUPresence) func() ollama.GPUPresence {
	return func() ollama.GPUPresence { return p }
}
func ram(n int64) func() int64 { return func() int64 { return n } }
func kinds(es []Event) (ks []EventKind) {
	for _, e := range es {
		ks = append(ks, e.Kind)
	}
	return ks
}

func newTestWatcher(t *testing.T, h http.Handler, opts Options) (*Watcher, *state.Store) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	store := state.OpenStore(t.TempDir())
	if opts.LocalGPU == nil {
		opts.LocalGPU = gpu(ollama.GPUUnknown)
	}
	if opts.TotalRAM == nil {
		opts.TotalRAM = ram(64 * gib)
	}
	return New(ollama.NewClient(u), u, store, opts), store
}

func TestWatcherEvents(t *testing.T) {
	f := &fakeOllama{}
	c := newClock()
	w, store := newTestWatcher(t, f, Options{Now: c.now})
	ctx := context.Background()
	const model = "llama3.1:8b-instruct-fp16"

	steps := []struct {
		name    string
		models  []api.ProcessModelResponse
		want    []EventKind
		check   func(t *testing.T, u Update)
		advance time.Duration // before the poll; default 10 s
	}{
		{"empty server", nil, []EventKind{EventReachable}, func(t *testing.T, u Update) {
			if u.Snapshot.Version != "0.17.4" || !u.Snapshot.Reachable {
				t.Errorf("snapshot = %+v, want reachable 0.17.4", u.Snapshot)
			}
		}, 0},
		{"loads on the GPU", []api.ProcessModelResponse{psModel(model, 17*gib, 17*gib, 8192)}, []EventKind{EventLoaded}, func(t *testing.T, u Update) {
			if u.Snapshot.GPU != ollama.GPUPresent {
				t.Errorf("GPU = %s after a model was seen in VRAM, want present", u.Snapshot.GPU)
			}
		}, 0},
		{"nothing changes", []api.ProcessModelResponse{psModel(model, 17*gib, 17*gib, 8192)}, nil, nil, 0},
		{"reloaded big and spilled", []api.ProcessModelResponse{psModel(model, 49*gib, 22*gib, 131072)}, []EventKind{EventContextChanged, EventSpillStarted}, func(t *testing.T, u Update) {
			e := u.Events[1]
			if e.Processor != "55%/45% CPU/GPU" || e.ContextLength != 131072 || !strings.Contains(e.Message, "ctxfit tune") {
				t.Errorf("spill event = %+v", e)
			}
			if !u.Snapshot.Models[0].Spilled || u.Snapshot.Models[0].State != ollama.StatePartial {
				t.Errorf("model = %+v, want spilled partial", u.Snapshot.Models[0])
			}
		}, 0},
		{"still spilled: no second spill event", []api.ProcessModelResponse{psModel(model, 49*gib, 22*gib, 131072)}, nil, nil, 0},
		{"back to a fitting context: thrash (3 loads, 2 lengths)", []api.ProcessModelResponse{psModel(model, 17*gib, 17*gib, 8192)}, []EventKind{EventContextChanged, EventSpillEnded, EventThrash}, func(t *testing.T, u Update) {
			e := u.Events[2]
			if len(e.Contexts) != 2 || e.Contexts[0] != 8192 || e.Contexts[1] != 131072 {
				t.Errorf("thrash contexts = %v, want [8192 131072]", e.Contexts)
			}
		}, 0},
		{"another switch in the same window: reported once", []api.ProcessModelResponse{psModel(model, 49*gib, 22*gib, 131072)}, []EventKind{EventContextChanged, EventSpillStarted}, nil, 0},
		{"a second model, fully on CPU on a GPU host: spilled", []api.ProcessModelResponse{psModel(model, 49*gib, 22*gib, 131072), psModel("qwen2.5:0.5b", gib, 0, 4096)}, []EventKind{EventLoaded, EventSpillStarted}, nil, 0},
		{"gone from /api/ps: maybe reloading, no event yet", nil, nil, func(t *testing.T, u Update) {
			if len(u.Snapshot.Models) != 0 {
				t.Errorf("snapshot still lists %d models", len(u.Snapshot.Models))
			}
		}, 0},
		{"back with another context: Ollama reloaded it", []api.ProcessModelResponse{psModel(model, 17*gib, 17*gib, 8192)}, []EventKind{EventContextChanged, EventSpillEnded}, func(t *testing.T, u Update) {
			if e := u.Events[0]; e.PrevContextLength != 131072 || e.ContextLength != 8192 {
				t.Errorf("context change across a reload gap = %+v", e)
			}
		}, 0},
		{"gone again", nil, nil, nil, 0},
		{"still gone past the grace window: both unloaded", nil, []EventKind{EventUnloaded, EventUnloaded}, nil, 2 * time.Minute},
	}
	for _, s := range steps {
		f.set(s.models...)
		c.advance(cmp.Or(s.advance, 10*time.Second))
		u := w.Poll(ctx)
		if got := kinds(u.Events); !equalKinds(got, s.want) {
			t.Fatalf("%s: events %v, want %v (%+v)", s.name, got, s.want, u.Events)
		}
		if s.check != nil {
			s.check(t, u)
		}
	}
	d, _ := store.Load()
	if !d.Hosts[w.key].GPUSeen {
		t.Error("GPU presence was not remembered in the store")
	}
}

func equalKinds(a, b []EventKind) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestWatcherThrashNeedsTwoLengths(t *testing.T) {
	f := &fakeOllama{}
	c := newClock()
	w, _ := newTestWatcher(t, f, Options{Now: c.now})
	for i := 0; i < 4; i++ { // loaded and unloaded 4 times at one length: no thrash
		f.set(psModel("m", gib, gib, 4096))
		c.advance(time.Minute)
		if u := w.Poll(context.Background()); containsKind(u.Events, EventThrash) {
			t.Fatalf("thrash reported for reloads at one context length: %+v", u.Events)
		}
		f.set()
		w.Poll(context.Background())
	}
	// Two lengths but spread over more than ten minutes: no thrash either.
	f.set(psModel("x", gib, gib, 2048))
	w.Poll(context.Background())
	c.advance(6 * time.Minute)
	f.set(psModel("x", gib, gib, 4096))
	w.Poll(context.Background())
	c.advance(6 * time.Minute)
	f.set(psModel("x", gib, gib, 2048))
	if u := w.Poll(context.Background()); containsKind(u.Events, EventThrash) {
		t.Fatalf("thrash reported for loads spread over 12 minutes: %+v", u.Events)
	}
}

func containsKind(es []Event, k EventKind) bool {
	for _, e := range es {
		if e.Kind == k {
			return true
		}
	}
	return false
}

func TestWatcherCPUOnlyHost(t *testing.T) {
	f := &fakeOllama{}
	w, _ := newTestWatcher(t, f, Options{LocalGPU: gpu(ollama.GPUAbsent), TotalRAM: ram(16 * gib)})
	f.set(psModel("qwen2.5:0.5b", gib, 0, 4096), psModel("llama3.1:70b", 43*gib, 0, 4096))
	u := w.Poll(context.Background())
	if u.Snapshot.GPU != ollama.GPUAbsent {
		t.Fatalf("GPU = %s, want absent", u.Snapshot.GPU)
	}
	for _, m := range u.Snapshot.Models {
		if m.Spilled || m.Processor != "100% CPU" {
			t.Errorf("%s: spilled=%v processor=%q on a CPU-only host", m.Name, m.Spilled, m.Processor)
		}
	}
	if !containsKind(u.Events, EventSwapRisk) {
		t.Fatalf("no swap warning for a 43 GB model with 16 GB of RAM: %v", kinds(u.Events))
	}
	big := u.Snapshot.Models[0] // sorted by name: llama3.1:70b first
	if !strings.Contains(big.RAMWarning, "7–9B") || !strings.Contains(big.RAMWarning, "q4_K_M") {
		t.Errorf("warning %q should suggest a 7–9B model at q4_K_M", big.RAMWarning)
	}
	if u.Snapshot.Models[1].RAMWarning != "" {
		t.Errorf("small model warned: %q", u.Snapshot.Models[1].RAMWarning)
	}
	if u := w.Poll(context.Background()); containsKind(u.Events, EventSwapRisk) {
		t.Error("swap warning repeated on the next poll")
	}
}

func TestRAMWarningClasses(t *testing.T) {
	tests := []struct {
		ram  int64
		want string
	}{
		{16 * gib, "7–9B"},
		{6 * gib, "3–4B"},
		{3 * gib, "0.5–1.5B"},
		{gib, "No model class"},
	}
	for _, tt := range tests {
		if got := ollama.RAMWarning("big", 100*gib, tt.ram, 0); !strings.Contains(got, tt.want) {
			t.Errorf("RAMWarning with %d GiB = %q, want it to mention %q", tt.ram/gib, got, tt.want)
		}
	}
	if got := ollama.RAMWarning("small", gib, 16*gib, 0); got != "" {
		t.Errorf("a 1 GiB model on 16 GiB warned: %q", got)
	}
}

// TestRAMWarningNamesTheBudget checks the warning for a model smaller than
// the RAM but over the share left for models: it used to say "needs 24 GB
// but this machine has 25 GB of RAM", which reads as a false alarm, and
// did not say that the context was what made it too large.
func TestRAMWarningNamesTheBudget(t *testing.T) {
	const gb = 1_000_000_000
	got := ollama.RAMWarning("llama3.1:8b-instruct-fp16", 24_718_622_720, 25_300_000_000, 32768)
	want := "llama3.1:8b-instruct-fp16 needs 24 GB at context 32768, over the 21 GB of RAM left for models (of 25 GB): " +
		"it will swap and answer very slowly. Use a smaller context or a 7–9B model at q4_K_M (about 6.4 GB), which fits; prefer q4_K_M over q8_0 or fp16."
	if got != want {
		t.Errorf("RAMWarning =\n%s\nwant\n%s", got, want)
	}
	got = ollama.RAMWarning("m", 24*gb, 25*gb, 0)
	if !strings.Contains(got, "over the 21 GB of RAM left for models (of 25 GB)") || strings.Contains(got, "context") {
		t.Errorf("RAMWarning without a context = %q", got)
	}
}

func TestWatcherBadServers(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		kind   EventKind
		want   string
	}{
		{"HTTP 500", 500, `{"error":"runner crashed"}`, EventError, "HTTP 500: runner crashed"},
		{"HTTP 404 (not Ollama)", 404, `404 page not found`, EventError, "not an Ollama server"},
		{"non-JSON body", 200, `<html>hello</html>`, EventError, "is this an Ollama server"},
		{"truncated JSON", 200, `{"models":[{"name":"m","size":`, EventError, "is this an Ollama server"},
		{"wrong types", 200, `{"models":"yes"}`, EventError, "is this an Ollama server"},
		{"huge body", 200, `{"models":[],"pad":"` + strings.Repeat("x", ollama.MaxResponseBytes+10) + `"}`, EventError, "larger than"},
		// A plain-text error body ends in a newline, which reached the log
		// and the terminal as a literal "\n"; a server error names the log.
		{"HTTP 500 in plain text", 500, "Internal Server Error\n", EventError, "HTTP 500: Internal Server Error. Ollama's log has more: `journalctl -u ollama`"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeOllama{}
			w, _ := newTestWatcher(t, f, Options{})
			w.Poll(context.Background())
			f.misbehave(tt.status, tt.body)
			u := w.Poll(context.Background())
			if u.Snapshot.Reachable || len(u.Events) != 1 || u.Events[0].Kind != tt.kind || !strings.Contains(u.Events[0].Message, tt.want) {
				t.Fatalf("after %s: reachable=%v events=%+v; want one %s event containing %q", tt.name, u.Snapshot.Reachable, u.Events, tt.kind, tt.want)
			}
			if m := u.Events[0].Message; strings.Count(m, "Ollama server?") > 1 || strings.Contains(m, `\n`) {
				t.Errorf("message %q asks twice or holds an escaped newline", m)
			}
			if u := w.Poll(context.Background()); len(u.Events) != 0 {
				t.Errorf("the same failure was reported again: %+v", u.Events)
			}
			f.set()
			if u := w.Poll(context.Background()); !u.Snapshot.Reachable || !containsKind(u.Events, EventReachable) {
				t.Errorf("recovery not reported: %+v", u)
			}
		})
	}
}

func TestWatcherNegativeSizes(t *testing.T) {
	f := &fakeOllama{}
	w, _ := newTestWatcher(t, f, Options{})
	f.set(psModel("m", -5, -1, -3), psModel("z", 0, 0, 0))
	u := w.Poll(context.Background())
	if !u.Snapshot.Reachable || u.Snapshot.Models[0].State != ollama.StateUnknown || u.Snapshot.Models[0].Spilled || u.Snapshot.Models[0].ContextLength != 0 {
		t.Errorf("negative sizes gave %+v, want unknown, not spilled, context 0", u.Snapshot.Models)
	}
}

func TestWatcherUnreachableAndBackoff(t *testing.T) {
	u, _ := url.Parse("http://127.0.0.1:1") // nothing listens on port 1
	w := New(ollama.NewClient(u), u, nil, Options{LocalGPU: gpu(ollama.GPUAbsent)})
	up := w.Poll(context.Background())
	if up.Snapshot.Reachable || len(up.Events) != 1 || up.Events[0].Kind != EventUnreachable {
		t.Fatalf("poll of a closed port = %+v", up)
	}
	for _, want := range []string{"cannot reach Ollama at http://127.0.0.1:1", "ollama serve", "--host"} {
		if !strings.Contains(up.Events[0].Message, want) {
			t.Errorf("message %q lacks %q", up.Events[0].Message, want)
		}
	}

	// Run backs off: over 700 ms with a 100 ms base it polls at 0, 100, 300
	// (then 700): 3 or 4 polls, far fewer than the 7 a fixed interval makes.
	var polls int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		polls++
		mu.Unlock()
		hj, _ := w.(http.Hijacker)
		conn, _, _ := hj.Hijack()
		conn.Close() // answer nothing, like a dead server behind a live port
	}))
	defer srv.Close()
	su, _ := url.Parse(srv.URL)
	w = New(ollama.NewClient(su), su, nil, Options{FastInterval: 100 * time.Millisecond, MaxBackoff: time.Second, LocalGPU: gpu(ollama.GPUAbsent)})
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	w.Run(ctx)
	mu.Lock()
	defer mu.Unlock()
	if polls < 2 || polls > 5 {
		t.Errorf("%d polls in 700 ms with backoff from 100 ms, want 3 or 4", polls)
	}
}

func TestWatcherTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	w := New(ollama.NewClient(u), u, nil, Options{RequestTimeout: 50 * time.Millisecond, LocalGPU: gpu(ollama.GPUAbsent)})
	up := w.Poll(context.Background())
	if up.Snapshot.Reachable || !strings.Contains(up.Snapshot.Error, "did not answer in time") {
		t.Errorf("slow server: %+v", up.Snapshot)
	}
}

func TestWatcherTunedContextAndSubscribe(t *testing.T) {
	f := &fakeOllama{}
	w, store := newTestWatcher(t, f, Options{FastInterval: 10 * time.Millisecond})
	store.Update(func(d *state.Data) error {
		d.PutTuned(state.Tuned{Host: w.key, Model: "llama3.1:8b-instruct-fp16", Context: 24576, MeasuredAt: time.Now()})
		return nil
	})
	ch, cancel := w.Subscribe()
	defer cancel()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go w.Run(ctx)
	f.set(psModel("llama3.1:8b-instruct-fp16", 49*gib, 22*gib, 131072))
	deadline := time.After(5 * time.Second)
	for {
		select {
		case u := <-ch:
			for _, e := range u.Events {
				if e.Kind == EventSpillStarted {
					if !strings.Contains(e.Message, "24576 stays on the GPU") {
						t.Errorf("spill message %q does not name the tuned context", e.Message)
					}
					m := u.Snapshot.Models[0]
					if m.TunedContext == nil || *m.TunedContext != 24576 {
						t.Errorf("tuned context in snapshot = %v", m.TunedContext)
					}
					return
				}
			}
		case <-deadline:
			t.Fatal("no spill event reached the subscriber in 5 s")
		}
	}
}

func TestSubscriberNeverBlocksWatcher(t *testing.T) {
	f := &fakeOllama{}
	w, _ := newTestWatcher(t, f, Options{})
	ch, cancel := w.Subscribe() // never read
	done := make(chan struct{})
	go func() {
		for i := 0; i < 3*fanout.MaxQueued; i++ {
			f.set(psModel("m", gib, gib, 1024+i))
			w.Poll(context.Background())
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a subscriber that never reads blocked the watcher")
	}
	// The queue (plus the one update in hand) kept the newest update and
	// merged older events into it.
	var last Update
	n := 0
	for u := range drain(ch, cancel) {
		last = u
		n++
	}
	if n > fanout.MaxQueued+1 || last.Snapshot.Models[0].ContextLength != 1024+3*fanout.MaxQueued-1 {
		t.Errorf("received %d updates, last context %d", n, last.Snapshot.Models[0].ContextLength)
	}
}

func drain(ch <-chan Update, cancel func()) <-chan Update {
	out := make(chan Update)
	go func() {
		defer close(out)
		for {
			select {
			case u, ok := <-ch:
				if !ok {
					return
				}
				out <- u
			case <-time.After(200 * time.Millisecond):
				cancel()
				for range ch {
				}
				return
			}
		}
	}()
	return out
}

func BenchmarkPoll(b *testing.B) {
	f := &fakeOllama{}
	f.set(psModel("llama3.1:8b-instruct-fp16", 49*gib, 22*gib, 131072), psModel("qwen2.5:0.5b", gib, gib, 4096))
	srv := httptest.NewServer(f)
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	w := New(ollama.NewClient(u), u, state.OpenStore(b.TempDir()), Options{LocalGPU: gpu(ollama.GPUPresent)})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		w.Poll(ctx)
	}
}

// OnUpdate sees every poll before Poll returns, in order, with the state
// the poll read.
func TestOnUpdate(t *testing.T) {
	f := &fakeOllama{}
	var got []Update
	w, store := newTestWatcher(t, f, Options{OnUpdate: func(u Update) { got = append(got, u) }})
	store.Update(func(d *state.Data) error { d.Settings.AutoFix = true; return nil })
	f.set(psModel("m", gib, gib, 4096))
	u := w.Poll(context.Background())
	if len(got) != 1 || len(got[0].Events) != len(u.Events) || got[0].Snapshot.Models[0].Name != "m" {
		t.Fatalf("OnUpdate got %+v after one poll that returned %+v", got, u)
	}
	if got[0].Data == nil || !got[0].Data.Settings.AutoFix {
		t.Errorf("the update lacks the state the poll read: %+v", got[0].Data)
	}
	f.set()
	w.Poll(context.Background())
	if len(got) != 2 || len(got[1].Snapshot.Models) != 0 {
		t.Errorf("second poll: OnUpdate got %d updates, the last %+v", len(got), got[len(got)-1])
	}
}

// Forget makes loads made on purpose (a tune's probes) count toward no
// reload thrash.
func TestForgetDropsLoadsFromThrash(t *testing.T) {
	f := &fakeOllama{}
	c := newClock()
	w, _ := newTestWatcher(t, f, Options{Now: c.now})
	for _, n := range []int{2048, 4096} { // two probes
		f.set(psModel("m", gib, gib, n))
		c.advance(time.Second)
		w.Poll(context.Background())
	}
	w.Forget("m")
	f.set(psModel("m", gib, gib, 8192)) // a third load, at a third length
	c.advance(time.Second)
	if u := w.Poll(context.Background()); containsKind(u.Events, EventThrash) {
		t.Fatalf("thrash reported from loads the watcher was told to forget: %+v", u.Events)
	}
	// Without Forget the same three loads are thrash: the test can fail.
	w2, _ := newTestWatcher(t, f, Options{Now: c.now})
	var thrash bool
	for _, n := range []int{2048, 4096, 8192} {
		f.set(psModel("m", gib, gib, n))
		c.advance(time.Second)
		thrash = containsKind(w2.Poll(context.Background()).Events, EventThrash)
	}
	if !thrash {
		t.Error("three loads at three lengths were not thrash; the test above proves nothing")
	}
}

// TestWatcherReconnectsWithinFastInterval stops the server long enough for
// the backoff to grow past a second, starts it again on the same port, and
// expects the watcher to see it within about FastInterval rather than at
// the end of its backoff (the ~12 s a user waited after restarting Ollama).
func TestWatcherReconnectsWithinFastInterval(t *testing.T) {
	f := &fakeOllama{}
	srv := httptest.NewServer(f)
	addr := srv.Listener.Addr().String()
	su, _ := url.Parse(srv.URL)
	srv.Close() // nothing listens now: connections are refused
	const fast = 100 * time.Millisecond
	w := New(ollama.NewClient(su), su, nil, Options{FastInterval: fast, MaxBackoff: 30 * time.Second, LocalGPU: gpu(ollama.GPUAbsent)})
	ch, stop := w.Subscribe()
	defer stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	// Backoff from 100 ms: polls at 0, 0.1, 0.3, 0.7, 1.5, 3.1 s; after
	// 1.6 s the next poll is due at 3.1 s.
	time.Sleep(1600 * time.Millisecond)
	if w.Snapshot().Reachable {
		t.Fatal("reachable with nothing listening")
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("cannot listen on %s again: %v", addr, err)
	}
	back := httptest.NewUnstartedServer(f)
	back.Listener.Close()
	back.Listener = l
	back.Start()
	defer back.Close()
	started := time.Now()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case u := <-ch:
			if !u.Snapshot.Reachable {
				continue
			}
			took := time.Since(started)
			if took > 4*fast+500*time.Millisecond {
				t.Errorf("reconnected %v after the server came back, want about %v", took, fast)
			}
			t.Logf("reconnected %v after the server came back (fast interval %v; the backoff's next poll was %v away)", took, fast, 3100*time.Millisecond-1600*time.Millisecond)
			return
		case <-deadline:
			t.Fatal("the watcher did not reconnect within 5 s")
		}
	}
}

// TestEvictionThrash: chat and autocomplete models that do not fit together
// unload each other; the third swap within ten minutes is reported once,
// with both models, their sizes, what the GPU holds and the joint tune.
func TestEvictionThrash(t *testing.T) {
	const chat, ac = "llama3.1:8b-instruct-fp16", "qwen2.5-coder:7b"
	chatM := psModel(chat, 23*gib, 23*gib, 32768)
	acM := psModel(ac, 5*gib, 5*gib, 4096)
	f := &fakeOllama{}
	c := newClock()
	w, _ := newTestWatcher(t, f, Options{Now: c.now})
	type step struct {
		after  time.Duration
		models []api.ProcessModelResponse
	}
	// The user alternates: chat loaded; autocomplete evicts it (seen in one
	// poll, or over two polls while the new model loads); and back.
	script := []step{
		{0, []api.ProcessModelResponse{chatM}},
		{30 * time.Second, []api.ProcessModelResponse{acM}},  // swap 1, one poll
		{time.Minute, nil},                                   // chat unloaded…
		{5 * time.Second, []api.ProcessModelResponse{chatM}}, // …and loaded: swap 2
		{time.Minute, []api.ProcessModelResponse{acM}},       // swap 3: reported
		{time.Minute, []api.ProcessModelResponse{chatM}},     // swap 4: not again
		{time.Minute, []api.ProcessModelResponse{acM}},       // swap 5
	}
	var got []Event
	for i, s := range script {
		c.advance(s.after)
		f.set(s.models...)
		for _, e := range w.Poll(context.Background()).Events {
			if e.Kind == EventEvictionThrash {
				got = append(got, e)
				if i != 4 {
					t.Errorf("eviction thrash reported at step %d, want at the third swap (step 4)", i)
				}
			}
		}
	}
	if len(got) != 1 {
		t.Fatalf("%d eviction thrash events, want 1: %+v", len(got), got)
	}
	e := got[0]
	if e.Model != chat || len(e.Companions) != 1 || e.Companions[0] != ac+"=4096" {
		t.Errorf("event names %s with %q, want %s with %s=4096", e.Model, e.Companions, chat, ac)
	}
	for _, want := range []string{chat + " (24 GB, context 32768)", ac + " (5.4 GB, context 4096)", "unloaded each other 3 times in 10m0s",
		"do not fit on the GPU together", "The GPU now holds " + ac + " (5.4 GB, 100% GPU)",
		"`ctxfit tune " + chat + " --with " + ac + "=4096`", "ctxfit fix all"} {
		if !strings.Contains(e.Message, want) {
			t.Errorf("message %q lacks %q", e.Message, want)
		}
	}

	// Swaps spread over more than ten minutes are not thrash; nor is a
	// model that loads long after another expired.
	w2, _ := newTestWatcher(t, f, Options{Now: c.now})
	for i := 0; i < 6; i++ {
		c.advance(6 * time.Minute)
		f.set(map[bool]api.ProcessModelResponse{true: chatM, false: acM}[i%2 == 0])
		if u := w2.Poll(context.Background()); containsKind(u.Events, EventEvictionThrash) {
			t.Fatalf("thrash reported for swaps six minutes apart: %+v", u.Events)
		}
	}
	w3, _ := newTestWatcher(t, f, Options{Now: c.now})
	for i := 0; i < 6; i++ {
		f.set(map[bool]api.ProcessModelResponse{true: chatM, false: acM}[i%2 == 0])
		w3.Poll(context.Background())
		c.advance(30 * time.Second)
		f.set()
		w3.Poll(context.Background())
		c.advance(2 * time.Minute) // loads come long after the other left
		if u := w3.Poll(context.Background()); containsKind(u.Events, EventEvictionThrash) {
			t.Fatalf("thrash reported for models that expired: %+v", u.Events)
		}
	}
}

// TestTunedBeside: while the set of a joint tune is loaded, its value is
// the one shown; alone, the model's own.
func TestTunedBeside(t *testing.T) {
	const chat, ac = "llama3.1:8b-instruct-fp16", "qwen2.5-coder:7b"
	f := &fakeOllama{}
	w, store := newTestWatcher(t, f, Options{})
	store.Update(func(d *state.Data) error {
		d.PutTuned(state.Tuned{Host: w.key, Model: chat, Context: 24576, MeasuredAt: time.Now()})
		d.PutTuned(state.Tuned{Host: w.key, Model: chat, Context: 13312, MeasuredAt: time.Now(),
			Companions: []state.Companion{{Model: ac, Context: 4096}}})
		return nil
	})
	f.set(psModel(chat, 20*gib, 20*gib, 13312), psModel(ac, 5*gib, 5*gib, 4096))
	snap := w.Poll(context.Background()).Snapshot
	want := map[string]struct {
		ctx    int
		beside string
	}{chat: {13312, ac}, ac: {4096, chat}}
	for _, m := range snap.Models {
		if m.TunedContext == nil || *m.TunedContext != want[m.Name].ctx || strings.Join(m.TunedBeside, ",") != want[m.Name].beside {
			t.Errorf("%s: tuned %v beside %q, want %+v", m.Name, m.TunedContext, m.TunedBeside, want[m.Name])
		}
	}
	f.set(psModel(chat, 22*gib, 22*gib, 24576))
	m := w.Poll(context.Background()).Snapshot.Models[0]
	if m.TunedContext == nil || *m.TunedContext != 24576 || m.TunedBeside != nil {
		t.Errorf("alone: tuned %v beside %q, want 24576 alone", m.TunedContext, m.TunedBeside)
	}
}

// A server whose models stay loaded unchanged is polled every
// SteadyInterval; any change, or a model out of /api/ps for a reload,
// brings back FastInterval at once, and SteadyAfter later the steady pace.
func TestWatcherInterval(t *testing.T) {
	const fast, steady, idle, after = time.Second, 2 * time.Second, 3 * time.Second, 30 * time.Second
	w := New(nil, &url.URL{Scheme: "http", Host: "127.0.0.1:1"}, nil, Options{FastInterval: fast, SteadyInterval: steady, IdleInterval: idle, SteadyAfter: after, MaxBackoff: 8 * time.Second})
	t0 := time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)
	loaded := Snapshot{Reachable: true, Models: []Model{{Name: "m"}}}
	event := []Event{{Kind: EventLoaded, Model: "m"}}
	tests := []struct {
		name        string
		u           Update
		reloading   bool
		changed     time.Time // when a poll last saw a change
		now         time.Time
		wait        time.Duration
		wantChanged time.Time
	}{
		{"a load", Update{Snapshot: loaded, Events: event}, false, time.Time{}, t0, fast, t0},
		{"loaded, changed just now", Update{Snapshot: loaded}, false, t0, t0.Add(10 * time.Second), fast, t0},
		{"loaded, steady", Update{Snapshot: loaded}, false, t0, t0.Add(after), steady, t0},
		{"steady, then a spill", Update{Snapshot: loaded, Events: []Event{{Kind: EventSpillStarted, Model: "m"}}}, false, t0, t0.Add(time.Hour), fast, t0.Add(time.Hour)},
		{"steady, then out for a reload", Update{Snapshot: Snapshot{Reachable: true}}, true, t0, t0.Add(time.Hour), fast, t0.Add(time.Hour)},
		{"nothing loaded", Update{Snapshot: Snapshot{Reachable: true}}, false, t0, t0.Add(time.Hour), idle, t0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w.mu.Lock()
			w.gone = map[string]goneModel{}
			if tt.reloading {
				w.gone["m"] = goneModel{}
			}
			w.mu.Unlock()
			wait, backoff, changed := w.interval(tt.u, 4*time.Second, tt.changed, tt.now)
			if wait != tt.wait || backoff != fast || !changed.Equal(tt.wantChanged) {
				t.Errorf("interval = %v, backoff %v, changed %v; want %v, %v, %v", wait, backoff, changed, tt.wait, fast, tt.wantChanged)
			}
		})
	}
	// Unreachable: the backoff doubles up to MaxBackoff.
	if wait, backoff, _ := w.interval(Update{}, 4*time.Second, t0, t0); wait != 4*time.Second || backoff != 8*time.Second {
		t.Errorf("unreachable: wait %v, backoff %v; want 4s, 8s", wait, backoff)
	}
	if _, backoff, _ := w.interval(Update{}, 8*time.Second, t0, t0); backoff != 8*time.Second {
		t.Errorf("unreachable: backoff %v past MaxBackoff 8s", backoff)
	}
}

// After a steady spell, a reload that spills is still told within about
// FastInterval of its end: the model's absence during the reload is seen
// at the steady pace and brings back the fast one.
func TestWatcherSteadyThenSpill(t *testing.T) {
	f := &fakeOllama{}
	const fast, steady = 20 * time.Millisecond, 400 * time.Millisecond
	w, _ := newTestWatcher(t, f, Options{FastInterval: fast, SteadyInterval: steady, SteadyAfter: 100 * time.Millisecond})
	ch, cancel := w.Subscribe()
	defer cancel()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	f.set(psModel("qwen2.5-coder:7b", 6*gib, 6*gib, 8192))
	var polls atomic.Int64
	w.opts.ObservePoll = func(time.Duration) { polls.Add(1) }
	go w.Run(ctx)
	time.Sleep(time.Second) // loaded, steady for most of it
	if n := polls.Load(); n > 10 {
		t.Errorf("%d polls in 1 s of a steady server; want about 100ms/20ms + 900ms/400ms = 7", n)
	}
	f.set()                // the client asks for a larger context: Ollama reloads
	time.Sleep(2 * steady) // the absence is seen
	before := polls.Load()
	time.Sleep(300 * time.Millisecond)
	if n := polls.Load() - before; n < 5 {
		t.Errorf("%d polls in 300ms while the model reloads; want the fast pace (about 15)", n)
	}
	f.set(psModel("qwen2.5-coder:7b", 10*gib, 8*gib, 32768))
	for deadline := time.After(5 * time.Second); ; {
		select {
		case u := <-ch:
			for _, e := range u.Events {
				if e.Kind == EventSpillStarted {
					return
				}
			}
		case <-deadline:
			t.Fatal("no spill told")
		}
	}
}

// TestWatcherLearnsTheGPU: a model alone at 100% GPU raises the host's GPU
// bound to its size, a spill alone caps it below its size; two models
// loaded together, or one on the CPU, say nothing of it.
func TestWatcherLearnsTheGPU(t *testing.T) {
	f := &fakeOllama{}
	w, store := newTestWatcher(t, f, Options{})
	ctx := context.Background()
	for _, s := range []struct {
		name   string
		models []api.ProcessModelResponse
		lo, up int64
	}{
		{"nothing loaded", nil, -1, -1},
		{"on the CPU", []api.ProcessModelResponse{psModel("a", 5*gib, 0, 4096)}, -1, -1},
		{"fits", []api.ProcessModelResponse{psModel("a", 5*gib, 5*gib, 4096)}, 5 * gib, 0},
		{"spills", []api.ProcessModelResponse{psModel("a", 9*gib, 7*gib, 32768)}, 5 * gib, 9 * gib},
		{"two models", []api.ProcessModelResponse{psModel("a", 6*gib, 6*gib, 4096), psModel("b", 2*gib, 1*gib, 4096)}, 5 * gib, 9 * gib},
		{"a larger fit", []api.ProcessModelResponse{psModel("a", 7*gib, 7*gib, 16384)}, 7 * gib, 9 * gib},
		{"a fit above the old cap: the GPU changed", []api.ProcessModelResponse{psModel("a", 10*gib, 10*gib, 16384)}, 10 * gib, 0},
	} {
		f.set(s.models...)
		w.Poll(ctx)
		d, err := store.Load()
		if err != nil {
			t.Fatal(err)
		}
		b := d.GPUBound(w.key)
		switch {
		case s.lo < 0 && b != nil:
			t.Errorf("%s: bound %+v, want none", s.name, b)
		case s.lo >= 0 && (b == nil || b.Lo != s.lo || b.Up != s.up || b.MeasuredAt.IsZero()):
			t.Errorf("%s: bound %+v, want [%d, %d)", s.name, b, s.lo, s.up)
		}
	}
}

// TestMessagesNameTheHost: the commands in the watcher's messages repeat
// Options.Hints' --host, and only that: without it they are as before.
func TestMessagesNameTheHost(t *testing.T) {
	other := hint.For(ollamahost.Parse("127.0.0.1:18790"), true)
	spilled := Model{Name: "qwen2.5-coder:7b", Size: 8 << 30, Processor: "20%/80% CPU/GPU", ContextLength: 32768, Spilled: true}
	small := Model{Name: "llama3.2:3b", Size: 3 << 30, Processor: "100% GPU", ContextLength: 4096}
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"spill, default", SpillEvent(spilled, hint.Hints{}).Message,
			"qwen2.5-coder:7b spilled onto the CPU: 8.6 GB, 20%/80% CPU/GPU, context 32768; run `ctxfit tune qwen2.5-coder:7b` to find the largest context that stays on the GPU"},
		{"spill, other host", SpillEvent(spilled, other).Message,
			"qwen2.5-coder:7b spilled onto the CPU: 8.6 GB, 20%/80% CPU/GPU, context 32768; run `ctxfit tune qwen2.5-coder:7b --host http://127.0.0.1:18790` to find the largest context that stays on the GPU"},
		{"eviction, default", evictionEvent(spilled, small, 3, map[string]Model{"a": small}, hint.Hints{}).Message,
			"qwen2.5-coder:7b (8.6 GB, context 32768) and llama3.2:3b (3.2 GB, context 4096) unloaded each other 3 times in 10m0s: they do not fit on the GPU together, so every switch between them reloads one. " +
				"The GPU now holds llama3.2:3b (3.2 GB, 100% GPU). `ctxfit tune qwen2.5-coder:7b --with llama3.2:3b=4096` finds the context that leaves room for both; then `ctxfit fix all`"},
		{"eviction, other host", evictionEvent(spilled, small, 3, map[string]Model{"a": small}, other).Message,
			"qwen2.5-coder:7b (8.6 GB, context 32768) and llama3.2:3b (3.2 GB, context 4096) unloaded each other 3 times in 10m0s: they do not fit on the GPU together, so every switch between them reloads one. " +
				"The GPU now holds llama3.2:3b (3.2 GB, 100% GPU). `ctxfit tune qwen2.5-coder:7b --with llama3.2:3b=4096 --host http://127.0.0.1:18790` finds the context that leaves room for both; then `ctxfit fix all --host http://127.0.0.1:18790`"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got  %q\nwant %q", tt.got, tt.want)
			}
		})
	}

	// Reload thrash, through a watcher given the hints.
	f := &fakeOllama{}
	c := newClock()
	w, _ := newTestWatcher(t, f, Options{Now: c.now, Hints: other})
	var thrash []string
	for _, ctx := range []int{8192, 32768, 8192, 32768} {
		f.set(psModel("qwen2.5-coder:7b", 5*gib, 5*gib, ctx))
		c.advance(10 * time.Second)
		for _, e := range w.Poll(context.Background()).Events {
			if e.Kind == EventThrash {
				thrash = append(thrash, e.Message)
			}
		}
	}
	if len(thrash) != 1 || !strings.HasSuffix(thrash[0], "Give them the same context (ctxfit fix all --host http://127.0.0.1:18790)") {
		t.Errorf("thrash messages %q; want one ending in the fix with --host", thrash)
	}
}

// TestSpillEndedWording: a spill that ends because the server's sizes stop
// making sense is not a model "Unknown again", as the log used to say.
func TestSpillEndedWording(t *testing.T) {
	f := &fakeOllama{}
	w, _ := newTestWatcher(t, f, Options{LocalGPU: gpu(ollama.GPUPresent)})
	const model = "llama3.1:8b"
	f.set(psModel(model, 6*gib, 3*gib, 8192))
	w.Poll(context.Background())
	f.set(psModel(model, 6*gib, 9*gib, 8192))
	u := w.Poll(context.Background())
	var msg string
	for _, e := range u.Events {
		if e.Kind == EventSpillEnded {
			msg = e.Message
		}
	}
	want := "llama3.1:8b no longer shows a spill: Unknown, context 8192 (the server reports sizes that make no sense: size 6442450944, in VRAM 9663676416)"
	if msg != want {
		t.Errorf("spill ended: %q, want %q", msg, want)
	}
	f.set(psModel(model, 6*gib, 6*gib, 8192))
	w.Poll(context.Background())
	f.set(psModel(model, 6*gib, 3*gib, 8192))
	w.Poll(context.Background())
	f.set(psModel(model, 6*gib, 6*gib, 8192))
	msg = ""
	for _, e := range w.Poll(context.Background()).Events {
		if e.Kind == EventSpillEnded {
			msg = e.Message
		}
	}
	if msg != "llama3.1:8b is 100% GPU again, context 8192" {
		t.Errorf("back on the GPU: %q", msg)
	}
}
