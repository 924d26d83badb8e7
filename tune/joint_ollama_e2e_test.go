package tune

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ctxfit/ctxfit/internal/ollamatest"
	"github.com/ctxfit/ctxfit/ollama"
)

// TestJointAgainstOllama runs joint tunes against the real Ollama server
// built for tests (CPU only, so nothing ever fits on a GPU): with
// OLLAMA_MAX_LOADED_MODELS=2 the two tiny models load side by side, with 1
// each load of the tuned model evicts its companion, as /api/ps shows.
func TestJointAgainstOllama(t *testing.T) {
	const chat, ac = "ctxfit-chat", "ctxfit-ac"
	comps := []Companion{{Model: ac, Context: 2048}}
	tests := []struct {
		maxLoaded string
		evicts    bool
	}{
		{"2", false},
		{"1", true},
	}
	for _, tt := range tests {
		t.Run("OLLAMA_MAX_LOADED_MODELS="+tt.maxLoaded, func(t *testing.T) {
			srv := ollamatest.StartWith(t, ollamatest.Options{Env: []string{"OLLAMA_MAX_LOADED_MODELS=" + tt.maxLoaded}})
			srv.CreateTinyModelVariant(t, chat, "chat")
			srv.CreateTinyModelVariant(t, ac, "ac")
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()

			// A server without a GPU: the companion's load tells.
			_, err := Tune(ctx, srv.Client(), Options{Model: chat, Step: 8192, Companions: comps, GPU: ollama.GPUAbsent})
			if !errors.Is(err, ErrCPUOnly) {
				t.Errorf("joint tune on a CPU-only server: %v, want ErrCPUOnly", err)
			}
			if m, ok := srv.Running(t, ac); !ok || m.ContextLength != 2048 {
				t.Errorf("the companion is not loaded at 2048 after the tune: %+v", m)
			}

			// Told there is a GPU, the tuner measures every load and finds
			// no context at which the set is on it.
			res, err := Tune(ctx, srv.Client(), Options{Model: chat, Step: 8192, Companions: comps, GPU: ollama.GPUPresent})
			if !errors.Is(err, ErrDoesNotFit) || res.Loads == 0 {
				t.Fatalf("joint tune: %+v, %v; want ErrDoesNotFit", res, err)
			}
			for _, pr := range res.Probes {
				t.Logf("probe %d: size %d, size_vram %d, evicted %q", pr.Context, pr.Size, pr.SizeVRAM, pr.Evicted)
				if evicted := len(pr.Evicted) > 0; evicted != tt.evicts {
					t.Errorf("probe at %d evicted %q, want eviction %v", pr.Context, pr.Evicted, tt.evicts)
				}
			}
			_, chatUp := srv.Running(t, chat)
			_, acUp := srv.Running(t, ac)
			if together := chatUp && acUp; together == tt.evicts {
				t.Errorf("after the tune /api/ps lists %s: %v, %s: %v", chat, chatUp, ac, acUp)
			}
			if tt.evicts && res.CompanionLoads < len(res.Probes) {
				t.Errorf("%d probes evicted the companion but it was reloaded %d times", len(res.Probes), res.CompanionLoads)
			}
		})
	}
}
