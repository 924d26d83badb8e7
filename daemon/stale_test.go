package daemon

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ctxfit/ctxfit/hub"
	"github.com/ctxfit/ctxfit/internal/ollamahost"
	"github.com/ctxfit/ctxfit/ollama"
	"github.com/ctxfit/ctxfit/state"
)

// TestCheckStale: a tune measured under another GPU budget than the
// server's now is told out of date once per budget, naming the re-tune;
// tunes under the same budget (give or take Ollama's rounding), joint
// tunes, other servers' and tunes with no budget are not.
func TestCheckStale(t *testing.T) {
	u := ollamahost.Parse("http://127.0.0.1:11434")
	store := state.OpenStore(t.TempDir())
	const gib = 1 << 30
	now := time.Now()
	key := ollamahost.Key(u)
	if err := store.Update(func(d *state.Data) error {
		d.PutTuned(state.Tuned{Host: key, Model: "llama3.1:8b", Parallel: 1, Context: 24576, Step: 1024, MeasuredAt: now, GPUBudget: 21 * gib})
		d.PutTuned(state.Tuned{Host: key, Model: "qwen2.5-coder:7b", Parallel: 1, Context: 65536, Step: 1024, MeasuredAt: now, GPUBudget: 24*gib - 32<<20})
		d.PutTuned(state.Tuned{Host: key, Model: "gemma2:9b", Parallel: 1, Context: 8192, Step: 1024, MeasuredAt: now})
		d.PutTuned(state.Tuned{Host: "http://gpubox:11434", Model: "mistral:7b", Parallel: 1, Context: 8192, Step: 1024, MeasuredAt: now, GPUBudget: 21 * gib})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	budget := int64(24 * gib)
	d := New(Config{Host: u, Client: ollama.NewClient(u), Store: store, Getenv: func(string) string { return "" },
		GPUBudget: func(context.Context) int64 { return budget }})
	updates, stop := d.hub.Subscribe()
	defer stop()
	stale := func() []hub.Event {
		d.checkStale(context.Background())
		var got []hub.Event
		for {
			select {
			case u := <-updates:
				for _, e := range u.Events {
					if e.Kind == hub.EventTuneStale {
						got = append(got, e)
					}
				}
			case <-time.After(100 * time.Millisecond):
				return got
			}
		}
	}
	got := stale()
	if len(got) != 1 || got[0].Model != "llama3.1:8b" || got[0].ContextLength != 24576 ||
		!strings.Contains(got[0].Message, "`ctxfit tune llama3.1:8b`") || !strings.Contains(got[0].Message, "24.0 GiB now") {
		t.Fatalf("first check: %+v; want one stale tune of llama3.1:8b naming the re-tune", got)
	}
	if got := stale(); len(got) != 0 {
		t.Errorf("the same budget again: %+v; want nothing (told once)", got)
	}
	budget = 28 * gib
	if got := stale(); len(got) != 2 {
		t.Errorf("a new budget: %+v; want both tuned models told again", got)
	}
}
