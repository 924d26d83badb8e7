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

			// A server known to have no GPU is refused before any load.
			_, err := Tune(ctx, srv.Client(), Options{Model: chat, Step: 8192, Companions: comps, GPU: ollama.GPUAbsent})
			if !errors.Is(err, ErrCPUOnly) {
				t.Errorf("joint tune on a CPU-only server: %v, want ErrCPUOnly", err)
			}
			for _, m := range []string{chat, ac} {
				if _, ok := srv.Running(t, m); ok {
					t.Errorf("%s loaded on a server known to have no GPU", m)
				}
			}

			// Told there is a GPU, the tuner loads the model on the emptied
			// server, then the companion beside it, and reads /api/ps.
			srv.UnloadAll(t)
			var listed [][2]bool
			res, err := Tune(ctx, srv.Client(), Options{Model: chat, Step: 8192, Companions: comps, GPU: ollama.GPUPresent,
				Progress: func(Probe) {
					_, chatUp := srv.Running(t, chat)
					_, acUp := srv.Running(t, ac)
					listed = append(listed, [2]bool{chatUp, acUp})
				}})
			t.Logf("joint tune: %d loads (%d of the companion): %v", res.Loads, res.CompanionLoads, err)
			if !errors.Is(err, ErrDoesNotFit) || len(res.Probes) == 0 {
				t.Fatalf("joint tune: %+v, %v; want ErrDoesNotFit after a probe", res, err)
			}
			pr := res.Probes[0]
			t.Logf("probe %d: size %d, size_vram %d, evicted %q, companion spilled %v; /api/ps then listed %s: %v, %s: %v",
				pr.Context, pr.Size, pr.SizeVRAM, pr.Evicted, pr.CompanionSpilled, chat, listed[0][0], ac, listed[0][1])
			if tt.evicts {
				// The companion's load unloaded the model.
				if listed[0] != [2]bool{false, true} || len(pr.Evicted) != 1 || pr.Fits() {
					t.Errorf("with one model at a time: /api/ps listed %v, probe %+v", listed[0], pr)
				}
			} else {
				// Both loaded side by side, the companion on the CPU.
				if listed[0] != [2]bool{true, true} || len(pr.Evicted) != 0 || !pr.CompanionSpilled || pr.Fits() {
					t.Errorf("with two models: /api/ps listed %v, probe %+v", listed[0], pr)
				}
			}
		})
	}
}
