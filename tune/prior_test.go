package tune

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/ollama/ollama/api"

	"github.com/ctxfit/ctxfit/internal/gpusim"
	"github.com/ctxfit/ctxfit/state"
)

// TestTuneStartsFromWhatTheServerShows: a tune of a model that a client
// left spilled at 32768 takes that load as a free probe, and a later tune
// of another model starts from the GPU bound the first one measured. Both
// stay exact, and neither needs more loads than a cold tune; a wrong bound
// (the GPU had more room when it was measured) costs loads, not the answer.
func TestTuneStartsFromWhatTheServerShows(t *testing.T) {
	gpu, _ := gpusim.LookupGPU("8GB")
	coder, _ := gpusim.LookupModel("qwen2.5-coder:7b")
	other, _ := gpusim.LookupModel("gemma2:9b")
	small, _ := gpusim.LookupModel("qwen2.5:0.5b")
	ctx := context.Background()
	tune := func(t *testing.T, m gpusim.Model, before int, host *state.GPUBound) (*Result, int) {
		t.Helper()
		sim := gpusim.New(gpusim.Config{GPU: gpu})
		client := simClient(t, sim)
		want := exhaustive(t, sim, m, 1024, 1)
		if before > 0 {
			req := &api.GenerateRequest{Model: m.Name, Options: map[string]any{"num_ctx": before}}
			if err := client.Generate(ctx, req, func(api.GenerateResponse) error { return nil }); err != nil {
				t.Fatal(err)
			}
		}
		res, err := Tune(ctx, client, Options{Model: m.Name, HostGPU: host, RAM: gpu.RAM})
		if want == 0 && errors.Is(err, ErrDoesNotFit) {
			return res, want
		}
		if err != nil || res.Context != want {
			t.Fatalf("%s: Tune = %d, %v; exhaustive %d (%s)", m.Name, res.Context, err, want, probeTrace(res.Probes))
		}
		return res, want
	}

	cold, _ := tune(t, coder, 0, nil)
	warm, _ := tune(t, coder, 32768, nil)
	if warm.Before == nil || warm.Before.Fits() || warm.Before.SizeVRAM == 0 {
		t.Fatalf("the load at 32768 before the tune = %+v, want a spill with layers in VRAM", warm.Before)
	}
	t.Logf("cold %d loads (%s), after a spill at 32768 %d (%s)", cold.Loads, probeTrace(cold.Probes), warm.Loads, probeTrace(warm.Probes))
	if warm.Loads > 2 || warm.Loads > cold.Loads {
		t.Errorf("after a spill at 32768: %d loads, cold %d; want at most 2", warm.Loads, cold.Loads)
	}
	if warm.Restored != "reloaded at num_ctx 32768" {
		t.Errorf("restored %q, want the model back at 32768", warm.Restored)
	}

	// The bound the tunes measured holds the simulated GPU.
	for _, r := range []*Result{cold, warm} {
		if b := r.GPU; b == nil || b.Lo <= 0 || b.Lo > gpu.VRAM || b.Up != 0 && b.Up <= b.Lo || len(b.Beside) != 0 {
			t.Fatalf("measured GPU bound %+v; the GPU lends %d bytes", b, gpu.VRAM)
		}
	}
	if b := cold.GPU; b.Up == 0 || b.Up < gpu.VRAM*9/10 {
		t.Errorf("measured GPU bound %+v; want an upper end near the GPU's %d bytes", b, gpu.VRAM)
	}

	for _, m := range []gpusim.Model{other, small} {
		c, _ := tune(t, m, 0, nil)
		h, _ := tune(t, m, 0, cold.GPU)
		t.Logf("%s: cold %d loads (%s), known host %d (%s)", m.Name, c.Loads, probeTrace(c.Probes), h.Loads, probeTrace(h.Probes))
		if h.Loads > c.Loads || h.Loads > 3 {
			t.Errorf("%s with the host's bound: %d loads, cold %d; want at most 3 and no more than cold", m.Name, h.Loads, c.Loads)
		}
		// A stale bound, measured when something else held half the GPU.
		stale := &state.GPUBound{Lo: cold.GPU.Lo / 2, Up: cold.GPU.Lo/2 + 1<<28}
		s, _ := tune(t, m, 0, stale)
		t.Logf("%s with a stale bound: %d loads (%s)", m.Name, s.Loads, probeTrace(s.Probes))
		// A bound measured beside another model does not apply to a
		// tune with nothing beside it.
		beside := *stale
		beside.Beside = []string{"gemma2:9b"}
		b, _ := tune(t, m, 0, &beside)
		if b.Loads != c.Loads {
			t.Errorf("%s with a bound measured beside another model: %d loads, cold %d; want it ignored", m.Name, b.Loads, c.Loads)
		}
	}
}

// TestBeforePrior: the load /api/ps listed before the tune is taken at the
// num_ctx it was asked for, which /api/ps reports multiplied by the slots
// on some servers; the tune's first load tells which.
func TestBeforePrior(t *testing.T) {
	before := &Probe{Context: 65536, Size: 9 << 30, SizeVRAM: 7 << 30}
	for _, c := range []struct {
		name     string
		parallel int
		first    *Probe
		want     int // 0: not used
	}{
		{"one slot", 1, nil, 65536},
		{"two slots, before the first load", 2, nil, 0},
		{"two slots, server reports num_ctx", 2, &Probe{Context: 8192, Loaded: 8192, Size: 1}, 65536},
		{"two slots, server reports num_ctx × slots", 2, &Probe{Context: 8192, Loaded: 16384, Size: 1}, 32768},
		{"two slots, clamped first load", 2, &Probe{Context: 8192, Loaded: 4096, Size: 1}, 0},
		{"two slots, refused first load", 2, &Probe{Context: 8192, Refused: "x"}, 0},
		{"two slots, server does not report", 2, &Probe{Context: 8192, Size: 1}, 0},
	} {
		pr, ok := beforePrior(before, c.first, c.parallel)
		if got := map[bool]int{true: pr.Context}[ok]; got != c.want {
			t.Errorf("%s: prior at %d (%v), want %d", c.name, pr.Context, ok, c.want)
		}
	}
	for _, c := range []struct {
		first Probe
		want  bool
	}{
		{Probe{Context: 8192, Loaded: 8192}, true},
		{Probe{Context: 262144, Loaded: 131072}, true}, // clamped
		{Probe{Context: 8192}, true},                   // not reported: the prior is not checked
		{Probe{Context: 8192, Loaded: 16384}, false},
		{Probe{Context: 1024, Loaded: 2048}, false},
	} {
		if got := reportsNumCtx(c.first); got != c.want {
			t.Errorf("reportsNumCtx(%+v) = %v, want %v", c.first, got, c.want)
		}
	}
	if _, ok := beforePrior(nil, nil, 1); ok {
		t.Error("a model not loaded before gave a prior")
	}
}

// TestPriorBounds: a prior spill bounds the GPU from above only when the
// model was alone on the server, and priors the loads contradict are
// dropped.
func TestPriorBounds(t *testing.T) {
	m, _ := gpusim.LookupModel("qwen2.5-coder:7b")
	newPlan := func() *tunePlan {
		return newTunePlan(parseModelArch(modelInfo(m)), 1024, 1, float64(m.Size()))
	}
	spill := Probe{Context: 32768, Size: 9 << 30, SizeVRAM: 7 << 30}

	p := newPlan()
	p.addPrior(spill, true)
	lo, up, ok := p.capacity()
	if !ok || lo != 7<<30 || up > 8<<30 {
		t.Errorf("alone: capacity [%v, %v) %v; want from size_vram to about one layer above", lo, up, ok)
	}
	p = newPlan()
	p.addPrior(spill, false)
	if _, up, _ := p.capacity(); up < maxGPU {
		t.Error("beside other models: the spill bounded the GPU from above")
	}
	if lo, _ := p.gpuBound(); lo != 0 {
		t.Errorf("a prior counted in the bound the tune measured: %v", lo)
	}

	p = newPlan()
	p.setHostBound(7<<30, 8<<30)
	p.add(Probe{Context: 2048, Size: 9 << 30, SizeVRAM: 9 << 30}) // fits: the GPU holds more
	lo, up, ok = p.capacity()
	if !p.priorsOff || up < maxGPU {
		t.Errorf("contradicted host bound: capacity [%v, %v) %v, priors off %v; want it dropped", lo, up, ok, p.priorsOff)
	}
	if p.setHostBound(5, 3); p.hostLo == 5 {
		t.Error("an empty bound was taken")
	}
	if p := newPlan(); p.usePrior() {
		t.Error("a new plan has priors")
	}
	p = newPlan()
	p.setHostBound(7<<30, 0)
	if !math.IsInf(p.hostUp, 1) || !p.usePrior() {
		t.Errorf("a bound without an upper end: [%v, %v)", p.hostLo, p.hostUp)
	}
}

// TestRecordKeepsTheGPUBound: Record keeps what a tune measured of the GPU
// for the next tune on the host, narrowing what earlier tunes measured
// while they agree; a joint tune's loads measure the set, not the GPU.
func TestRecordKeepsTheGPUBound(t *testing.T) {
	store := state.OpenStore(t.TempDir())
	key := "http://127.0.0.1:11434"
	record := func(res *Result) *state.GPUBound {
		t.Helper()
		if err := Record(store, key, res, 0); err != nil {
			t.Fatal(err)
		}
		d, err := store.Load()
		if err != nil {
			t.Fatal(err)
		}
		return d.GPUBound(key)
	}
	res := &Result{Model: "a", Context: 8192, Step: 1024, Parallel: 1, GPU: &state.GPUBound{Lo: 6 << 30, Up: 9 << 30}}
	if b := record(res); b == nil || b.Lo != 6<<30 || b.Up != 9<<30 {
		t.Errorf("after the first tune: %+v", b)
	}
	res.GPU = &state.GPUBound{Lo: 7 << 30}
	if b := record(res); b == nil || b.Lo != 7<<30 || b.Up != 9<<30 {
		t.Errorf("after a tune that fit at 7 GiB: %+v, want [7, 9) GiB", b)
	}
	res.GPU = &state.GPUBound{Lo: 1 << 30, Up: 2 << 30}
	res.Companions = []CompanionLoad{{Companion: Companion{Model: "b"}}}
	if b := record(res); b == nil || b.Lo != 7<<30 {
		t.Errorf("after a joint tune: %+v, want it unchanged", b)
	}
}
