package watch_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ctxfit/ctxfit/internal/ollamatest"
	"github.com/ctxfit/ctxfit/ollama"
	"github.com/ctxfit/ctxfit/state"
	"github.com/ctxfit/ctxfit/tune"
	"github.com/ctxfit/ctxfit/watch"
)

// TestWatcherAgainstOllama watches a real Ollama server while the tiny
// model loads at num_ctx 2048 and reloads at 8192: the watcher must report
// the load and then the change of context, with the sizes /api/ps gives.
func TestWatcherAgainstOllama(t *testing.T) {
	srv := ollamatest.Start(t)
	const model = "ctxfit-tiny"
	srv.CreateTinyModel(t, model)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	w := watch.New(ollama.NewClient(srv.URL()), srv.URL(), state.OpenStore(t.TempDir()), watch.Options{
		FastInterval: 100 * time.Millisecond,
		IdleInterval: 100 * time.Millisecond,
		LocalGPU:     func() ollama.GPUPresence { return ollama.GPUAbsent },
	})
	updates, stop := w.Subscribe()
	defer stop()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()

	// next returns the next load event for model: loaded, unloaded or
	// context changed.
	next := func() (watch.Event, watch.Snapshot) {
		t.Helper()
		for {
			select {
			case u := <-updates:
				for _, e := range u.Events {
					t.Logf("event %s: %s", e.Kind, e.Message)
					switch e.Kind {
					case watch.EventLoaded, watch.EventUnloaded, watch.EventContextChanged:
						if ollama.SameModel(e.Model, model) {
							return e, u.Snapshot
						}
					case watch.EventUnreachable, watch.EventError:
						t.Fatalf("watcher lost the server: %s", e.Message)
					}
				}
			case <-ctx.Done():
				t.Fatalf("no event for %s: %v", model, ctx.Err())
			}
		}
	}

	small := srv.Load(t, model, 2048)
	e, snap := next()
	if e.Kind != watch.EventLoaded {
		t.Fatalf("first event %s, want %s", e.Kind, watch.EventLoaded)
	}
	if e.ContextLength != 2048 || e.Size != small.Size || e.Processor != "100% CPU" {
		t.Errorf("loaded event: context %d, size %d, %q; want 2048, %d, 100%% CPU", e.ContextLength, e.Size, e.Processor, small.Size)
	}
	if !snap.Reachable || snap.GPU != ollama.GPUAbsent || len(snap.Models) != 1 || snap.Models[0].Spilled || snap.Models[0].State != ollama.StateCPU {
		t.Errorf("snapshot after load: %+v; want one model, 100%% CPU, not spilled, GPU absent", snap)
	}

	large := srv.Load(t, model, 8192)
	// Ollama drops the model from /api/ps while it reloads it; the watcher
	// must still see one reload with a new context, not an unload and a
	// fresh load.
	e, snap = next()
	if e.Kind != watch.EventContextChanged {
		t.Fatalf("reload at num_ctx 8192 reported as %s (%s), want %s", e.Kind, e.Message, watch.EventContextChanged)
	}
	if e.PrevContextLength != 2048 || e.ContextLength != 8192 || e.Size != large.Size {
		t.Errorf("context changed event: %d → %d, size %d; want 2048 → 8192, size %d", e.PrevContextLength, e.ContextLength, e.Size, large.Size)
	}
	if large.Size <= small.Size {
		t.Errorf("size at 8192 (%d) is not more than at 2048 (%d)", large.Size, small.Size)
	}
	if len(snap.Models) != 1 || snap.Models[0].ContextLength != 8192 {
		t.Errorf("snapshot after reload: %+v; want the model at context 8192", snap.Models)
	}
}

// TestTuneAgainstOllama tunes on a real server that runs models on the CPU
// only: the tuner must say so before any load when the host is known to
// have no GPU, else after at most two loads, none above the smallest
// context (the RAM is not given), with the trained context and digest it
// saw, leaving nothing loaded; and tell an unknown model from a failure.
func TestTuneAgainstOllama(t *testing.T) {
	srv := ollamatest.Start(t)
	const model = "ctxfit-tiny"
	digest := srv.CreateTinyModel(t, model)
	client := ollama.NewClient(srv.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	tests := []struct {
		gpu      ollama.GPUPresence
		maxLoads int
	}{
		{ollama.GPUAbsent, 0},
		{ollama.GPUUnknown, 2},
	}
	for _, tt := range tests {
		t.Run(string(tt.gpu), func(t *testing.T) {
			srv.UnloadAll(t)
			res, err := tune.Tune(ctx, client, tune.Options{Model: model, GPU: tt.gpu})
			if !errors.Is(err, tune.ErrCPUOnly) {
				t.Fatalf("Tune = %+v, %v; want ErrCPUOnly", res, err)
			}
			t.Logf("%v (%d loads)", err, res.Loads)
			if res.Loads > tt.maxLoads || (tt.maxLoads > 0 && res.Loads < 1) {
				t.Errorf("%d loads, want %d at most (and one at least unless refused at once)", res.Loads, tt.maxLoads)
			}
			for _, p := range res.Probes {
				if p.Context > tune.DefaultStep {
					t.Errorf("loaded at num_ctx %d; want nothing above %d on a server that may be CPU-only", p.Context, tune.DefaultStep)
				}
			}
			if res.Context != 0 {
				t.Errorf("context %d, want none", res.Context)
			}
			if tt.maxLoads > 0 && (res.Digest != digest || res.TrainedContext != ollamatest.TinyContextLength) {
				t.Errorf("digest %q, trained context %d; want %q, %d", res.Digest, res.TrainedContext, digest, ollamatest.TinyContextLength)
			}
			if ps, err := client.ListRunning(ctx); err != nil || len(ps.Models) != 0 {
				t.Errorf("after the tune /api/ps lists %+v (%v), want nothing", ps, err)
			}
		})
	}

	t.Run("unknown model", func(t *testing.T) {
		res, err := tune.Tune(ctx, client, tune.Options{Model: "no-such-model"})
		if !errors.Is(err, tune.ErrUnknownModel) || res.Loads != 0 {
			t.Errorf("Tune = %+v, %v; want ErrUnknownModel without a load", res, err)
		}
	})
}

// TestEvictionThrashAgainstOllama: with OLLAMA_MAX_LOADED_MODELS=1 (the
// test server's setting), two tiny models loaded in turn evict each other,
// as /api/ps shows, and the watcher reports the third swap.
func TestEvictionThrashAgainstOllama(t *testing.T) {
	srv := ollamatest.Start(t)
	const chat, ac = "ctxfit-chat", "ctxfit-ac"
	srv.CreateTinyModelVariant(t, chat, "chat")
	srv.CreateTinyModelVariant(t, ac, "ac")
	w := watch.New(ollama.NewClient(srv.URL()), srv.URL(), state.OpenStore(t.TempDir()), watch.Options{
		LocalGPU: func() ollama.GPUPresence { return ollama.GPUAbsent },
	})
	ctx := context.Background()
	var thrash []watch.Event
	for i := 0; i < 4; i++ {
		model, other, numCtx := chat, ac, 4096
		if i%2 == 1 {
			model, other, numCtx = ac, chat, 2048
		}
		srv.Load(t, model, numCtx)
		if _, ok := srv.Running(t, other); ok && i > 0 {
			t.Errorf("load %d: %s is still listed beside %s with OLLAMA_MAX_LOADED_MODELS=1", i, other, model)
		}
		for _, e := range w.Poll(ctx).Events {
			t.Logf("event %s: %s", e.Kind, e.Message)
			if e.Kind == watch.EventEvictionThrash {
				thrash = append(thrash, e)
			}
		}
	}
	if len(thrash) != 1 {
		t.Fatalf("%d eviction thrash events over 3 swaps, want 1", len(thrash))
	}
	if e := thrash[0]; e.Model == "" || len(e.Companions) != 1 {
		t.Errorf("event %+v names no joint tune", e)
	}
}
