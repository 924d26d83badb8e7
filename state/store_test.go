package state

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctxfit/ctxfit/ollama"
)

func TestStoreRoundTrip(t *testing.T) {
	s := OpenStore(filepath.Join(t.TempDir(), "state"))
	d, err := s.Load()
	if err != nil || len(d.Tuned) != 0 {
		t.Fatalf("Load of a missing store = %+v, %v", d, err)
	}
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	err = s.Update(func(d *Data) error {
		d.Settings.AutoFix = true
		d.Host("http://127.0.0.1:11434").GPUSeen = true
		d.PutTuned(Tuned{Host: "http://127.0.0.1:11434", Model: "llama3.1:8b", Digest: "a", Parallel: 1, Context: 24576, MeasuredAt: t0})
		d.PutTuned(Tuned{Host: "http://127.0.0.1:11434", Model: "llama3.1:8b", Digest: "a", Parallel: 1, Context: 25600, MeasuredAt: t0.Add(time.Hour)})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err = OpenStore(s.Dir()).Load()
	if err != nil {
		t.Fatal(err)
	}
	if !d.Settings.AutoFix || len(d.Tuned) != 1 || d.Tuned[0].Context != 25600 {
		t.Errorf("reloaded data = %+v, want auto-fix and one tuned value 25600", d)
	}
	if g := d.GPU("http://127.0.0.1:11434", ollama.GPUAbsent); g != ollama.GPUPresent {
		t.Errorf("GPU after a model was seen in VRAM = %s, want present", g)
	}
}

func TestStoreDamaged(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "state.json"), []byte("{not json"), 0o600)
	s := OpenStore(dir)
	if _, err := s.Load(); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("Load of damaged state: %v, want a 'damaged' error", err)
	}
	if err := s.Update(func(*Data) error { return nil }); err == nil {
		t.Error("Update over damaged state succeeded; it must not overwrite the user's file")
	}
	b, _ := os.ReadFile(filepath.Join(dir, "state.json"))
	if string(b) != "{not json" {
		t.Error("damaged state file was changed")
	}
}

func TestStoreConcurrentUpdates(t *testing.T) {
	s := OpenStore(t.TempDir())
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s.Update(func(d *Data) error {
				d.PutTuned(Tuned{Host: "h", Model: "m", Parallel: i, Context: i})
				return nil
			})
		}(i)
	}
	wg.Wait()
	d, _ := s.Load()
	if len(d.Tuned) != 20 {
		t.Errorf("%d tuned values after 20 concurrent updates, want 20", len(d.Tuned))
	}
}

func TestTunedFor(t *testing.T) {
	t0 := time.Now()
	d := &Data{Tuned: []Tuned{
		{Host: "h", Model: "m:latest", Digest: "old", Context: 1, MeasuredAt: t0.Add(time.Hour)},
		{Host: "h", Model: "m", Digest: "new", Context: 2, MeasuredAt: t0},
		{Host: "other", Model: "m", Digest: "new", Context: 3, MeasuredAt: t0.Add(2 * time.Hour)},
	}}
	if tu, ok := d.TunedFor("h", "m", "new"); !ok || tu.Context != 2 {
		t.Errorf("TunedFor with matching digest = %v %v, want context 2", tu, ok)
	}
	if tu, ok := d.TunedFor("h", "m:latest", ""); !ok || tu.Context != 1 {
		t.Errorf("TunedFor without digest = %v %v, want the newest (1)", tu, ok)
	}
	if _, ok := d.TunedFor("h", "x", ""); ok {
		t.Error("TunedFor found an untuned model")
	}
	if g := d.GPU("nowhere", ""); g != ollama.GPUUnknown {
		t.Errorf("GPU of an unknown remote host = %s", g)
	}
	d.Host("h").GPU = ollama.GPUAbsent
	d.Host("h").GPUSeen = true
	if g := d.GPU("h", ollama.GPUPresent); g != ollama.GPUAbsent {
		t.Errorf("user's setting should win, got %s", g)
	}
}

// TestStoreMigratesHostKeys reads a state.json in which an older ctxfit
// stored one server under two keys (OLLAMA_HOST=:18434 gave "http://:18434")
// and checks that it comes back with one canonical key, merged, and that
// saving it writes no second entry again.
func TestStoreMigratesHostKeys(t *testing.T) {
	dir := t.TempDir()
	old := `{"settings": {"auto_fix": false, "notifications_off": false},
  "hosts": {"http://:18434": {"gpu_seen": true}, "http://127.0.0.1:18434": {"gpu": "absent"}, "http://localhost:11434": {}},
  "tuned": [
    {"host": "http://:18434", "model": "m", "digest": "d", "parallel": 1, "context": 8192, "step": 1024, "loads": 3, "measured_at": "2026-11-02T00:00:00Z"},
    {"host": "http://127.0.0.1:18434", "model": "m", "digest": "d", "parallel": 1, "context": 4096, "step": 1024, "loads": 3, "measured_at": "2026-11-01T00:00:00Z"},
    {"host": "http://[::1]:18434", "model": "m", "digest": "d", "parallel": 2, "context": 2048, "step": 1024, "loads": 3, "measured_at": "2026-11-01T00:00:00Z"}
  ]}`
	if err := os.WriteFile(filepath.Join(dir, "state.json"), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	s := OpenStore(dir)
	d, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	const key = "http://127.0.0.1:18434"
	if len(d.Hosts) != 2 || d.Hosts[key] == nil || d.Hosts["http://127.0.0.1:11434"] == nil {
		t.Fatalf("hosts = %v, want %s and http://127.0.0.1:11434", d.Hosts, key)
	}
	if h := d.Hosts[key]; !h.GPUSeen || h.GPU != ollama.GPUAbsent {
		t.Errorf("merged host = %+v, want gpu_seen and gpu absent", h)
	}
	if len(d.Tuned) != 2 {
		t.Fatalf("tuned = %+v, want two (parallel 1 and 2)", d.Tuned)
	}
	for _, tu := range d.Tuned {
		if tu.Host != key {
			t.Errorf("tuned host = %q, want %q", tu.Host, key)
		}
		if tu.Parallel == 1 && tu.Context != 8192 {
			t.Errorf("parallel 1 kept %d, want the later 8192", tu.Context)
		}
	}
	if err := s.Update(func(*Data) error { return nil }); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "state.json"))
	if strings.Contains(string(b), `"http://:18434"`) || strings.Contains(string(b), "[::1]") {
		t.Errorf("saved state still has an old key:\n%s", b)
	}
}

func TestTunedForParallel(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	d := &Data{}
	d.PutTuned(Tuned{Host: "h", Model: "m", Parallel: 1, Context: 24576, MeasuredAt: t0})
	d.PutTuned(Tuned{Host: "h", Model: "m", Parallel: 2, Context: 12288, MeasuredAt: t0.Add(time.Hour)})
	for _, tt := range []struct{ parallel, want int }{{1, 24576}, {2, 12288}, {0, 12288}, {4, 12288}} {
		if got, ok := d.TunedForParallel("h", "m", "", tt.parallel); !ok || got.Context != tt.want {
			t.Errorf("TunedForParallel(parallel %d) = %d, %v; want %d", tt.parallel, got.Context, ok, tt.want)
		}
	}
}

func TestTuneLeases(t *testing.T) {
	now := time.Now()
	d := &Data{}
	d.PutLease(TuneLease{Host: "h", Model: "llama3.1:8b", By: "a", Expires: now.Add(time.Minute)})
	d.PutLease(TuneLease{Host: "h", Model: "llama3.1:8b", By: "b", Expires: now.Add(time.Minute)}) // replaces a
	d.PutLease(TuneLease{Host: "other", Model: "gemma2", Expires: now.Add(time.Minute)})
	d.PutLease(TuneLease{Host: "h", Model: "old", Expires: now.Add(-time.Second)}) // expired
	live := d.LiveLeases("h", now)
	if len(live) != 1 || live[0].By != "b" {
		t.Fatalf("live leases on h = %+v, want b's alone", live)
	}
	d.DropLease("h", "llama3.1:8b")
	if got := d.LiveLeases("h", now); len(got) != 0 {
		t.Errorf("after DropLease: %+v", got)
	}
	if len(d.Leases) != 1 || d.Leases[0].Host != "other" {
		t.Errorf("DropLease should keep other hosts' live leases and drop expired ones: %+v", d.Leases)
	}
}

// TestTunedSet: a model keeps both answers, alone and beside its
// companions, and each is found by what it was measured with.
func TestTunedSet(t *testing.T) {
	t0 := time.Now()
	var d Data
	d.PutTuned(Tuned{Host: "h", Model: "chat", Parallel: 1, Context: 32768, MeasuredAt: t0})
	d.PutTuned(Tuned{Host: "h", Model: "chat", Parallel: 1, Context: 12288, MeasuredAt: t0.Add(time.Minute),
		Companions: []Companion{{Model: "ac:1.5b", Context: 4096}}})
	d.PutTuned(Tuned{Host: "h", Model: "chat", Parallel: 1, Context: 8192, MeasuredAt: t0.Add(2 * time.Minute),
		Companions: []Companion{{Model: "ac:1.5b", Context: 4096}, {Model: "embed", Context: 2048}}})
	// The same set again replaces the earlier joint result.
	d.PutTuned(Tuned{Host: "h", Model: "chat", Parallel: 1, Context: 13312, MeasuredAt: t0.Add(3 * time.Minute),
		Companions: []Companion{{Model: "ac:1.5b", Context: 4096}}})
	if len(d.Tuned) != 3 {
		t.Fatalf("%d results kept, want 3: %+v", len(d.Tuned), d.Tuned)
	}

	if tu, ok := d.TunedFor("h", "chat", ""); !ok || tu.Context != 32768 || tu.Joint() {
		t.Errorf("TunedFor = %+v %v, want the tune alone (32768)", tu, ok)
	}
	tests := []struct {
		set     []string
		ok      bool
		context map[string]int
	}{
		{[]string{"chat:latest", "ac:1.5b"}, true, map[string]int{"chat": 13312, "ac:1.5b": 4096}},
		{[]string{"ac:1.5b", "chat"}, true, map[string]int{"chat": 13312, "ac:1.5b": 4096}},
		{[]string{"embed", "ac:1.5b", "chat"}, true, map[string]int{"chat": 8192, "ac:1.5b": 4096, "embed:latest": 2048}},
		{[]string{"chat", "embed"}, false, nil},
		{[]string{"chat"}, false, nil},
	}
	for _, tt := range tests {
		tu, ok := d.TunedSet("h", tt.set)
		if ok != tt.ok {
			t.Errorf("TunedSet(%q) = %+v, %v", tt.set, tu, ok)
			continue
		}
		for m, want := range tt.context {
			if got, ok := tu.ContextFor(m); !ok || got != want {
				t.Errorf("TunedSet(%q).ContextFor(%s) = %d, %v; want %d", tt.set, m, got, ok, want)
			}
		}
		if _, ok := tu.ContextFor("other"); ok {
			t.Errorf("TunedSet(%q) gives a context to a model outside it", tt.set)
		}
	}
	if _, ok := d.TunedSet("elsewhere", []string{"chat", "ac:1.5b"}); ok {
		t.Error("TunedSet found a set tuned on another host")
	}
	if k := SetKey([]string{"b", "a:latest", "a"}); k != "a:latest + b:latest" {
		t.Errorf("SetKey = %q", k)
	}
}

// Peek reads the file again exactly when it changed: through this Store,
// through another (a CLI in another process), or when it was removed; an
// unchanged file is not parsed again.
func TestPeek(t *testing.T) {
	dir := t.TempDir()
	s, other := OpenStore(dir), OpenStore(dir)
	d, err := s.Peek()
	if err != nil || len(d.Tuned) != 0 {
		t.Fatalf("Peek of no file: %+v, %v", d, err)
	}
	put := func(st *Store, ctx int) {
		t.Helper()
		if err := st.Update(func(d *Data) error {
			d.PutTuned(Tuned{Host: "http://h:1", Model: "m", Parallel: 1, Context: ctx, Step: 1024})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	tuned := func() int {
		t.Helper()
		d, err := s.Peek()
		if err != nil {
			t.Fatal(err)
		}
		tu, _ := d.TunedFor("http://h:1", "m", "")
		return tu.Context
	}
	put(s, 8192)
	if got := tuned(); got != 8192 {
		t.Fatalf("after this Store's write: %d, want 8192", got)
	}
	first, _ := s.Peek()
	if again, _ := s.Peek(); again != first {
		t.Error("an unchanged file was parsed again")
	}
	put(other, 16384) // same size, maybe the same modification time
	if got := tuned(); got != 16384 {
		t.Fatalf("after another Store's write: %d, want 16384", got)
	}
	if err := os.Remove(filepath.Join(dir, "state.json")); err != nil {
		t.Fatal(err)
	}
	if got := tuned(); got != 0 {
		t.Fatalf("after removal: %d, want 0", got)
	}
	if err := os.WriteFile(filepath.Join(dir, "state.json"), []byte("{damaged"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Peek(); err == nil {
		t.Error("a damaged file peeked without an error")
	}
}

func TestGPUBoundMerge(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	b := func(lo, up int64, beside ...string) GPUBound {
		return GPUBound{Lo: lo, Up: up, MeasuredAt: t0, Beside: beside}
	}
	for _, c := range []struct {
		name      string
		old       *GPUBound
		new, want GPUBound
	}{
		{"first", nil, b(5, 9), b(5, 9)},
		{"narrower", &GPUBound{Lo: 4, Up: 10}, b(5, 9), b(5, 9)},
		{"intersect", &GPUBound{Lo: 6, Up: 10}, b(5, 9), b(6, 9)},
		{"new has no upper end", &GPUBound{Lo: 6, Up: 10}, b(7, 0), b(7, 10)},
		{"old has no upper end", &GPUBound{Lo: 6}, b(5, 9), b(6, 9)},
		{"disagree: the GPU changed", &GPUBound{Lo: 6, Up: 8}, b(9, 12), b(9, 12)},
		{"measured beside another model", &GPUBound{Lo: 6, Up: 10, Beside: []string{"gemma2:9b"}}, b(3, 4), b(3, 4)},
	} {
		got := c.old.Merge(c.new)
		if got.Lo != c.want.Lo || got.Up != c.want.Up || !got.MeasuredAt.Equal(t0) || len(got.Beside) != len(c.want.Beside) {
			t.Errorf("%s: %+v merged with %+v = %+v, want %+v", c.name, c.old, c.new, got, c.want)
		}
	}
}

func TestGPUBoundRoundTrip(t *testing.T) {
	s := OpenStore(t.TempDir())
	key := "http://127.0.0.1:11434"
	err := s.Update(func(d *Data) error {
		d.Host(key).GPUBound = &GPUBound{Lo: 7 << 30, Up: 8 << 30, MeasuredAt: time.Now().UTC(), Beside: []string{"gemma2:9b"}}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if b := d.GPUBound(key); b == nil || b.Lo != 7<<30 || b.Up != 8<<30 || len(b.Beside) != 1 {
		t.Errorf("reloaded bound %+v", b)
	}
	if b := d.GPUBound("http://10.0.0.2:11434"); b != nil {
		t.Errorf("another host has bound %+v", b)
	}
}
