package main

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ctxfit/ctxfit/internal/ollamatest"
	"github.com/ctxfit/ctxfit/ollama"
)

// TestVulkanE2E runs ctxfit against Ollama's real scheduler on a GPU: the
// Vulkan build of scripts/ollama-vulkan-for-tests on Mesa's lavapipe, a
// software GPU of 2 GiB, most of it reserved with OLLAMA_GPU_OVERHEAD so
// that the generated model spills at a context of a few thousand tokens.
// Each engine gets its own server; the test first finds the boundary by
// hand (an exhaustive search, cached per engine and Ollama version), then
// checks ctxfit's status, watcher, tune and bench against it.
func TestVulkanE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("loads a model a few dozen times on a software GPU (minutes)")
	}
	for _, engine := range ollamatest.Engines {
		t.Run(string(engine), func(t *testing.T) { vulkanE2E(t, engine) })
	}
}

// gpuStep is the granularity of the GPU tests' contexts.
const gpuStep = 4096

func vulkanE2E(t *testing.T, engine ollamatest.Engine) {
	opts := ollamatest.GPUOptions{Engine: engine, Overhead: ollamatest.DefaultGPUOverhead}
	srv := ollamatest.StartGPU(t, opts)
	const model = "ctxfit-gpu"
	sh := ollamatest.GPUShape
	srv.CreateModel(t, model, sh)
	if tags, err := srv.Client().List(context.Background()); err == nil && len(tags.Models) == 1 {
		t.Logf("%s: /api/tags size %d", model, tags.Models[0].Size)
	}

	sw := srv.Sweep(t, model, ollamatest.SweepKey(opts, sh, gpuStep), gpuStep, sh.ContextLength)
	want := sw.Largest()
	var line []string
	for _, p := range sw.Points {
		_, proc := ollama.Classify(p.Size, p.SizeVRAM)
		line = append(line, strings.ReplaceAll(proc, " ", "")+"@"+strconv.Itoa(p.Context))
	}
	t.Logf("%s engine: exhaustive search at step %d: %s; the largest 100%% GPU context is %d", engine, gpuStep, strings.Join(line, " "), want)
	if !sw.Monotone() {
		t.Fatalf("a larger context fit where a smaller one spilled: %+v", sw.Points)
	}
	if want == 0 || want == sw.Max {
		t.Fatalf("the boundary is not inside the contexts tried (largest fit %d of %d): the GPU tests need a model that fits at small contexts and spills at large ones; change GPUShape or the overhead", want, sw.Max)
	}
	spill := want + gpuStep
	spilled := sw.Points[spill/gpuStep-1]

	t.Run("status", func(t *testing.T) {
		x := newE2E(t, srv.Host())
		for _, c := range []int{want, spill} {
			ps := srv.Load(t, model, c)
			code, out, _ := x.ctxfit("status", "--json")
			// status --json's shape (docs/json.md).
			var snap struct {
				GPU    ollama.GPUPresence `json:"gpu"`
				Models []struct {
					Size          int64        `json:"size"`
					SizeVRAM      int64        `json:"size_vram"`
					Processor     string       `json:"processor"`
					ContextLength int          `json:"context"`
					State         ollama.State `json:"state"`
					Spilled       bool         `json:"spilled"`
				} `json:"models"`
			}
			if err := json.Unmarshal([]byte(out), &snap); code != 0 || err != nil {
				t.Fatalf("status --json: exit %d, %v", code, err)
			}
			if len(snap.Models) != 1 {
				t.Fatalf("status --json lists %d models, want 1", len(snap.Models))
			}
			m := snap.Models[0]
			state, proc := ollama.Classify(ps.Size, ps.SizeVRAM)
			if m.Size != ps.Size || m.SizeVRAM != ps.SizeVRAM || m.Processor != proc || m.ContextLength != c {
				t.Errorf("status at %d: %+v; /api/ps says size %d, size_vram %d (%s)", c, m, ps.Size, ps.SizeVRAM, proc)
			}
			if snap.GPU != ollama.GPUPresent {
				t.Errorf("status at %d: GPU %s, want present (the model is in VRAM)", c, snap.GPU)
			}
			switch c {
			case want:
				if m.State != ollama.StateGPU || m.Processor != "100% GPU" || m.Spilled {
					t.Errorf("status at %d, the largest fit: %s, %s, spilled %v; want 100%% GPU", c, m.State, m.Processor, m.Spilled)
				}
			case spill:
				if m.State != ollama.StatePartial || !strings.HasSuffix(m.Processor, "CPU/GPU") || !m.Spilled {
					t.Errorf("status at %d, the smallest spill: %s, %s, spilled %v; want a CPU/GPU split", c, m.State, m.Processor, m.Spilled)
				}
				if s, _ := ollama.Classify(spilled.Size, spilled.SizeVRAM); s != state {
					t.Errorf("status at %d: %s now, %s in the exhaustive search", c, state, s)
				}
			}
		}
	})

	t.Run("watcher warns once", func(t *testing.T) {
		srv.Load(t, model, want)
		x := newE2E(t, srv.Host())
		_, logs, stop := startCommand(t, x.vars, "run", "--headless")
		defer stop()
		waitForIn(t, 30*time.Second, "the watcher to see the model on the GPU", func() bool {
			return strings.Contains(logs.String(), "event=reachable") && strings.Contains(logs.String(), "event=loaded")
		})
		if strings.Contains(logs.String(), "event=spill_started") {
			t.Fatalf("a spill event for a model 100%% on the GPU:\n%s", logs.String())
		}
		srv.Load(t, model, spill)
		waitForIn(t, 30*time.Second, "the spill event", func() bool { return strings.Contains(logs.String(), "event=spill_started") })
		// A few more polls of the spilled model: no second warning.
		time.Sleep(4 * time.Second)
		if n := strings.Count(logs.String(), "event=spill_started"); n != 1 {
			t.Errorf("%d spill events for one spill, want 1:\n%s", n, logs.String())
		}
		if code := stop(); code != 0 {
			t.Errorf("run: exit %d", code)
		}
	})

	t.Run("tune", func(t *testing.T) {
		x := newE2E(t, srv.Host())
		prior, wasLoaded := srv.Running(t, model)
		start := time.Now()
		code, out, _ := x.ctxfit("tune", model, "--step", strconv.Itoa(gpuStep), "--json")
		if code != 0 {
			t.Fatalf("tune: exit %d", code)
		}
		var res struct {
			Context int `json:"context"`
			Loads   int `json:"loads"`
			Probes  []struct {
				Context  int   `json:"context"`
				Size     int64 `json:"size"`
				SizeVRAM int64 `json:"size_vram"`
			} `json:"probes"`
			Restored string `json:"restored"`
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("tune --json: %v", err)
		}
		t.Logf("%s engine: ctxfit tune = %d in %d loads, %.0f s; exhaustive search = %d in %d loads", engine, res.Context, res.Loads, time.Since(start).Seconds(), want, len(sw.Points))
		if res.Context != want {
			t.Errorf("tune = %d, the exhaustive search = %d", res.Context, want)
		}
		// Each of the tune's loads agrees with the search's at that context.
		for _, p := range res.Probes {
			got := p.SizeVRAM == p.Size
			if ref := sw.Points[p.Context/gpuStep-1]; ref.Fits() != got {
				t.Errorf("at %d the tune saw fit=%v, the exhaustive search fit=%v", p.Context, got, ref.Fits())
			}
		}
		// The tune leaves the model as it found it, and says how.
		m, ok := srv.Running(t, model)
		switch {
		case res.Restored == "":
			t.Errorf("tune --json says nothing of how it left %s", model)
		case wasLoaded && (!ok || m.ContextLength != prior.ContextLength):
			t.Errorf("after the tune /api/ps lists %+v, want %s back at %d as before (%s)", m, model, prior.ContextLength, res.Restored)
		case !wasLoaded && ok:
			t.Errorf("after the tune /api/ps lists %+v, want %s unloaded as before (%s)", m, model, res.Restored)
		}
	})

	t.Run("bench", func(t *testing.T) {
		x := newE2E(t, srv.Host())
		// lavapipe generates a token in seconds, and the first request
		// compiles its shaders.
		x.timeout = 6 * time.Minute
		speed := map[int]benchJSON{}
		for _, c := range []int{spill, want} {
			code, out, _ := x.ctxfit("bench", model, "--context", strconv.Itoa(c), "--tokens", "8", "--json")
			var b benchJSON
			if err := json.Unmarshal([]byte(out), &b); code != 0 || err != nil {
				t.Fatalf("bench at %d: exit %d, %v", c, code, err)
			}
			if b.TokensPerSecond <= 0 || b.EvalCount <= 0 || b.Context != c {
				t.Errorf("bench at %d: %+v; want tokens/s at that context", c, b)
			}
			speed[c] = b
		}
		t.Logf("%s engine: %.1f tokens/s at num_ctx %d (%s), %.1f tokens/s at the tuned %d (%s)", engine,
			speed[spill].TokensPerSecond, spill, speed[spill].Processor, speed[want].TokensPerSecond, want, speed[want].Processor)
		if speed[want].Processor != "100% GPU" || !strings.HasSuffix(speed[spill].Processor, "CPU/GPU") {
			t.Errorf("bench ran at %s (tuned) and %s (spilled); want 100%% GPU and a split", speed[want].Processor, speed[spill].Processor)
		}
	})
}

// waitForIn is waitFor with a longer deadline, for a software GPU.
func waitForIn(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
