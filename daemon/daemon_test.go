package daemon

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ctxfit/ctxfit/clients"
	"github.com/ctxfit/ctxfit/hub"
	"github.com/ctxfit/ctxfit/internal/gpusim"
	"github.com/ctxfit/ctxfit/internal/ollamahost"
	"github.com/ctxfit/ctxfit/localapi"
	"github.com/ctxfit/ctxfit/ollama"
	"github.com/ctxfit/ctxfit/state"
	"github.com/ctxfit/ctxfit/watch"
)

func newTestDaemon(t *testing.T) *Daemon {
	u := ollamahost.Parse("http://127.0.0.1:1")
	return New(Config{Host: u, Client: ollama.NewClient(u), Store: state.OpenStore(t.TempDir()), Getenv: func(string) string { return "" }})
}

// A lease begins a tune once, a registered tune of the same model is not
// begun twice, and a lease that goes (removed or expired) ends it.
func TestSyncLeases(t *testing.T) {
	d := newTestDaemon(t)
	now := time.Now()
	lease := state.TuneLease{Host: d.key, Model: "llama3.1:8b", By: "ctxfit tune (pid 7)", Started: now, Expires: now.Add(time.Minute)}
	data := &state.Data{Leases: []state.TuneLease{lease,
		{Host: "other", Model: "qwen", Expires: now.Add(time.Minute)},
		{Host: d.key, Model: "gemma", Expires: now.Add(-time.Second)}}}
	began, ended := d.syncLeases(data)
	if len(began) != 1 || began[0].Model != "llama3.1:8b" || len(ended) != 0 {
		t.Fatalf("first sync: began %+v, ended %+v", began, ended)
	}
	if began, ended = d.syncLeases(data); len(began)+len(ended) != 0 {
		t.Errorf("second sync of the same leases: began %+v, ended %+v", began, ended)
	}
	// The same tuner reaches the API: the hub knows the tune already.
	d.hub.BeginTune(hub.Tune{Model: "llama3.1:8b", By: "lease", Lease: true})
	if err := d.BeginTune("llama3.1:8b", "ctxfit tune (pid 7)"); err != nil {
		t.Fatalf("BeginTune after its lease: %v", err)
	}
	if st := d.hub.State(); len(st.Tunes) != 1 {
		t.Errorf("tunes after the lease turned into a registration: %+v", st.Tunes)
	}
	if began, ended = d.syncLeases(&state.Data{}); len(began)+len(ended) != 0 {
		t.Errorf("a registered tune's lease going away ended it: began %+v, ended %+v", began, ended)
	}
	// A lease of a model nobody registered, then gone: ended.
	other := state.TuneLease{Host: d.key, Model: "gemma2:9b", Started: now, Expires: now.Add(time.Minute)}
	d.syncLeases(&state.Data{Leases: []state.TuneLease{other}})
	if _, ended = d.syncLeases(&state.Data{}); len(ended) != 1 || ended[0].Model != "gemma2:9b" {
		t.Errorf("ended %+v, want gemma2:9b", ended)
	}
}

// A lease's end is a tuned event when its tuner stored a result after the
// lease began, else a failed one.
func TestLeaseResult(t *testing.T) {
	now := time.Now()
	l := state.TuneLease{Host: "h", Model: "m", By: "ctxfit tune (pid 7)", Started: now}
	data := &state.Data{Tuned: []state.Tuned{{Host: "h", Model: "m", Context: 8192, Loads: 4, MeasuredAt: now.Add(-time.Hour)}}}
	if e := leaseResult(data, "h", l); e.Kind != hub.EventTuneFailed {
		t.Errorf("an old result counted: %+v", e)
	}
	data.Tuned[0].MeasuredAt = now.Add(time.Second)
	if e := leaseResult(data, "h", l); e.Kind != hub.EventTuned || e.ContextLength != 8192 {
		t.Errorf("a fresh result did not: %+v", e)
	}
}

// After the watcher reports two models unloading each other, the tray's
// tune of the larger one is joint.
func TestTuneAfterEvictionThrash(t *testing.T) {
	g, _ := gpusim.LookupGPU("mac32")
	sim := gpusim.New(gpusim.Config{GPU: g})
	simURL, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	u := ollamahost.Parse(simURL)
	d := New(Config{Host: u, Client: ollama.NewClient(u), Store: state.OpenStore(t.TempDir()), Getenv: func(string) string { return "" }})
	const llama, ac = "llama3.1:8b-instruct-fp16", "qwen2.5-coder:7b"
	d.watched(watch.Update{Snapshot: watch.Snapshot{Host: u.String(), Reachable: true},
		Events: []watch.Event{{Kind: watch.EventEvictionThrash, Model: llama, Companions: []string{ac + "=4096"}, Message: "unloaded each other"}}})
	if err := d.Tune(context.Background(), llama, nil); err != nil {
		t.Fatal(err)
	}
	data, err := d.cfg.Store.Load()
	if err != nil {
		t.Fatal(err)
	}
	joint, ok := data.TunedSet(d.key, []string{llama, ac})
	if !ok || joint.Context <= 0 || joint.Companions[0].Context != 4096 {
		t.Errorf("stored %+v, %v; want a joint tune beside %s at 4096", joint, ok, ac)
	}
}

// A tune's answer and its "tune applied" count name only the entries that
// ask too much for the tuned model, not those of other models.
func TestEndTuneTooLargeOfTheTunedModel(t *testing.T) {
	dir := t.TempDir()
	src := `{"models": [
  {"title": "A", "provider": "ollama", "model": "llama3.1:8b", "apiBase": "http://127.0.0.1:1", "contextLength": 32768},
  {"title": "B", "provider": "ollama", "model": "qwen2.5:7b", "apiBase": "http://127.0.0.1:1", "contextLength": 32768},
]}
`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	u := ollamahost.Parse("http://127.0.0.1:1")
	store := state.OpenStore(t.TempDir())
	now := time.Now()
	if err := store.Update(func(data *state.Data) error {
		data.PutTuned(state.Tuned{Host: ollamahost.Key(u), Model: "llama3.1:8b", Context: 8192, MeasuredAt: now})
		data.PutTuned(state.Tuned{Host: ollamahost.Key(u), Model: "qwen2.5:7b", Context: 8192, MeasuredAt: now})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	d := New(Config{Host: u, Client: ollama.NewClient(u), Store: store, Getenv: func(k string) string {
		if k == "CONTINUE_GLOBAL_DIR" {
			return dir
		}
		return ""
	}})
	if err := d.BeginTune("llama3.1:8b", "test"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := d.EndTune(ctx, localapi.TuneEnd{Model: "llama3.1:8b", Context: 8192, Message: "tuned"})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.TooLarge) != 1 || out.TooLarge[0].Model != "llama3.1:8b" || out.TooLarge[0].Tuned != 8192 {
		t.Errorf("too large after the tune of llama3.1:8b: %+v, want its entry alone", out.TooLarge)
	}
}

func TestTunedBy(t *testing.T) {
	tests := []struct {
		a    clients.Ask
		want bool
	}{
		{clients.Ask{Model: "llama3.1:8b"}, true},
		{clients.Ask{Model: "llama3.1:8b-instruct-q4_K_M"}, false},
		{clients.Ask{Model: "qwen2.5-coder:7b", Beside: []string{"llama3.1:8b"}}, true},
		{clients.Ask{Model: "qwen2.5-coder:7b", Beside: []string{"gemma2:9b"}}, false},
		{clients.Ask{Model: "qwen2.5-coder:7b"}, false},
	}
	for _, tt := range tests {
		if got := tunedBy(tt.a, "llama3.1:8b"); got != tt.want {
			t.Errorf("tunedBy(%s beside %v, llama3.1:8b) = %v, want %v", tt.a.Model, tt.a.Beside, got, tt.want)
		}
	}
}
