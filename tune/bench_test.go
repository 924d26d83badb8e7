package tune

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ctxfit/ctxfit/internal/gpusim"
	"github.com/ctxfit/ctxfit/ollama"
)

func TestBench(t *testing.T) {
	gpu, _ := gpusim.LookupGPU("mac32")
	sim := gpusim.New(gpusim.Config{GPU: gpu})
	client := simClient(t, sim)
	const model = "llama3.1:8b-instruct-fp16"

	fit, err := Bench(context.Background(), client, model, 8192, ollama.Progress{})
	if err != nil {
		t.Fatal(err)
	}
	size, vram, _ := sim.Placement(model, 8192, 1)
	if fit.Context != 8192 || fit.Size != size || fit.SizeVRAM != vram || fit.Processor() != "100% GPU" {
		t.Errorf("Bench at 8192 = %+v, want it loaded there whole on the GPU", fit)
	}
	if fit.EvalCount != BenchTokens || fit.TokensPerSecond != float64(fit.EvalCount)/fit.EvalDuration.Seconds() {
		t.Errorf("Bench = %d tokens at %.1f tokens/s in %v: want %d tokens and eval_count/eval_duration", fit.EvalCount, fit.TokensPerSecond, fit.EvalDuration, BenchTokens)
	}
	if fit.FirstToken <= 0 || fit.Load <= 0 {
		t.Errorf("first token after %v, load %v", fit.FirstToken, fit.Load)
	}

	spill, err := Bench(context.Background(), client, model, 32768, ollama.Progress{})
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := ollama.Classify(spill.Size, spill.SizeVRAM); s != ollama.StatePartial || spill.TokensPerSecond >= fit.TokensPerSecond {
		t.Errorf("at 32768: %s, %.1f tokens/s; at 8192: %.1f tokens/s: want a spill that is slower", spill.Processor(), spill.TokensPerSecond, fit.TokensPerSecond)
	}
	if sim.Loads() != 2 {
		t.Errorf("%d loads for two benches, want 2", sim.Loads())
	}
}

func TestBenchErrors(t *testing.T) {
	gpu, _ := gpusim.LookupGPU("24GB")
	sim := gpusim.New(gpusim.Config{GPU: gpu})
	client := simClient(t, sim)
	if _, err := Bench(context.Background(), client, "nosuch", 0, ollama.Progress{}); !errors.Is(err, ErrUnknownModel) {
		t.Errorf("Bench of an unknown model: %v", err)
	}
	sim.SetFault(gpusim.Fault{Status: 500})
	if _, err := Bench(context.Background(), client, "qwen2.5:0.5b", 0, ollama.Progress{}); err == nil || !strings.Contains(err.Error(), "500") {
		t.Errorf("Bench on a failing server: %v", err)
	}
	sim.SetFault(gpusim.Fault{Down: true})
	if _, err := Bench(context.Background(), client, "qwen2.5:0.5b", 0, ollama.Progress{}); !errors.Is(err, ErrServerGone) {
		t.Errorf("Bench on a server that is gone: %v", err)
	}
}

// TestBenchBeforeAfter: the proof that a tune paid off, and the model left
// as the user had it, its keep-alive included; every load of the tune and
// of the comparison but the last reads as ctxfit's own (a probe) to a
// ctxfit watching the server from elsewhere, and the last does not.
func TestBenchBeforeAfter(t *testing.T) {
	gpu, _ := gpusim.LookupGPU("mac32")
	const model = "llama3.1:8b-instruct-fp16"
	for name, keep := range map[string]time.Duration{"an hour": time.Hour, "forever": gpusim.Forever, "near the probes' mark": ollama.ProbeKeepAlive + 2*time.Second} {
		t.Run(name, func(t *testing.T) {
			sim := gpusim.New(gpusim.Config{GPU: gpu})
			client := simClient(t, sim)
			if err := sim.Load(model, 32768, keep); err != nil { // spills on this Mac
				t.Fatal(err)
			}
			probes := 0
			res, err := Tune(context.Background(), client, Options{Model: model, Progress: func(Probe) {
				ps, _ := client.ListRunning(context.Background())
				if m := findRunning(ps, model); m == nil || !ollama.IsProbeLoad(m.ExpiresAt, time.Now()) {
					t.Errorf("a tune's load is not marked as a probe: %+v", m)
				}
				probes++
			}})
			if err != nil || probes == 0 {
				t.Fatal(res, err)
			}
			before, after, err := BenchBeforeAfter(context.Background(), client, res, ollama.Progress{})
			if err != nil {
				t.Fatal(err)
			}
			if before == nil || after == nil || before.Context != 32768 || after.Context != res.Context || before.TokensPerSecond >= after.TokensPerSecond {
				t.Fatalf("before %+v, after %+v: want a slower spilled run at 32768 and a faster one at %d", before, after, res.Context)
			}
			ps, _ := client.ListRunning(context.Background())
			m := findRunning(ps, model)
			if m == nil || m.ContextLength != 32768 {
				t.Fatalf("after the comparison /api/ps lists %+v, want the model at 32768 as before", m)
			}
			left := time.Until(m.ExpiresAt)
			if ollama.IsProbeLoad(m.ExpiresAt, time.Now()) || left < keep-time.Minute || keep < time.Hour && left > keep+2*time.Minute {
				t.Errorf("after the comparison the model expires in %v; it was loaded for %v (and must not read as a probe)", left, keep)
			}
		})
	}
	sim := gpusim.New(gpusim.Config{GPU: gpu})
	client := simClient(t, sim)
	if err := sim.Load(model, 32768, 0); err != nil {
		t.Fatal(err)
	}
	res, err := Tune(context.Background(), client, Options{Model: model})
	if err != nil {
		t.Fatal(err)
	}

	// Nothing to compare when the model ran whole on the GPU before.
	res.Before = &Probe{Context: 4096, Size: 100, SizeVRAM: 100}
	if b, a, err := BenchBeforeAfter(context.Background(), client, res, ollama.Progress{}); b != nil || a != nil || err != nil {
		t.Errorf("BenchBeforeAfter after a fitting start = %v, %v, %v; want nothing", b, a, err)
	}
	res.Before = nil
	if b, a, err := BenchBeforeAfter(context.Background(), client, res, ollama.Progress{}); b != nil || a != nil || err != nil {
		t.Errorf("BenchBeforeAfter with nothing loaded before = %v, %v, %v; want nothing", b, a, err)
	}
}

// TestStalledServer runs a tune and a bench against a server that sends its
// headers and then nothing, or trickles its answer a byte at a time: each
// ends with ollama.ErrStalled after its progress timeout, not at Ctrl-C (the
// test's own deadline, far above the timeouts, stands for it).
func TestStalledServer(t *testing.T) {
	const model = "qwen2.5:0.5b"
	timeout := ollama.Progress{First: 300 * time.Millisecond, Stall: 300 * time.Millisecond}
	faults := []gpusim.Fault{
		{Stall: true, Only: "/api/generate"}, // loads and generations
		{Trickle: 50 * time.Millisecond, Only: "/api/generate"},
		{Stall: true}, // /api/ps and /api/show too
	}
	for _, f := range faults {
		gpu, _ := gpusim.LookupGPU("24GB")
		sim := gpusim.New(gpusim.Config{GPU: gpu})
		client := simClient(t, sim)
		sim.SetFault(f)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // the test's own limit, far above the timeouts
		defer cancel()

		start := time.Now()
		_, err := Tune(ctx, client, Options{Model: model, Timeout: timeout})
		if !errors.Is(err, ollama.ErrStalled) || ctx.Err() != nil {
			t.Errorf("%+v: Tune: %v; want ErrStalled", f, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%+v: Tune took %v to give up", f, d)
		}

		start = time.Now()
		_, err = Bench(ctx, client, model, 2048, timeout)
		if !errors.Is(err, ollama.ErrStalled) || ctx.Err() != nil {
			t.Errorf("%+v: Bench: %v; want ErrStalled", f, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%+v: Bench took %v to give up", f, d)
		}

		// The generation alone stalling: the load answers, the stream stops.
		sim.SetFault(gpusim.Fault{})
		if _, err := Bench(ctx, client, model, 2048, timeout); err != nil {
			t.Fatalf("Bench on a healthy server: %v", err)
		}
	}
}

// TestBenchRepeatingModel: Ollama ends a stream without its final message
// and without an error when the model repeats one token more than 30 times
// (llm/server.go, "token repeat limit reached"), as the tiny test model does
// at temperature 0. Bench used to call that "the Ollama server stopped
// answering" and measure nothing; the tokens that came still time it.
func TestBenchRepeatingModel(t *testing.T) {
	const model = "tiny"
	mux := http.NewServeMux()
	mux.HandleFunc("/api/generate", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Prompt string }
		json.NewDecoder(r.Body).Decode(&req)
		w.Header().Set("Content-Type", "application/x-ndjson")
		if req.Prompt == "" {
			json.NewEncoder(w).Encode(map[string]any{"model": model, "done": true, "done_reason": "load"})
			return
		}
		for range 31 {
			json.NewEncoder(w).Encode(map[string]any{"model": model, "response": "dg", "done": false})
			w.(http.Flusher).Flush()
			time.Sleep(2 * time.Millisecond)
		}
	})
	mux.HandleFunc("/api/ps", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"models": []map[string]any{{"name": model, "model": model, "size": 143_000_000, "size_vram": 0, "context_length": 4096}}})
	})
	res, err := Bench(context.Background(), simClient(t, mux), model, 0, ollama.Progress{})
	if err != nil {
		t.Fatalf("Bench of a model Ollama cut short: %v", err)
	}
	if !res.EndedEarly || res.EvalCount != 30 || res.EvalDuration < 50*time.Millisecond || res.TokensPerSecond <= 0 || res.TokensPerSecond > 600 {
		t.Errorf("Bench = %+v: want it ended early, 30 tokens timed after the first over about 60 ms", res)
	}
	if res.Context != 4096 || res.Processor() != "100% CPU" {
		t.Errorf("Bench = context %d, %s; want 4096, 100%% CPU", res.Context, res.Processor())
	}
}
