package gpusim

import (
	"fmt"
	"math"
	"testing"
)

// tiny is a synthetic model whose sizes are easy to compute by hand.
var tiny = Model{
	Name: "tiny:1m", Arch: "llama", Family: "llama", Layers: 4, EmbeddingLength: 64, HeadCount: 1, HeadCountKV: 1,
	TrainedContext: 1024, LayerBytes: 10 * mib, OutputBytes: 500 * mib,
}

func mustModel(t testing.TB, name string) Model {
	t.Helper()
	m, ok := LookupModel(name)
	if !ok {
		t.Fatalf("no preset model %q", name)
	}
	return m
}

func mustGPU(t testing.TB, name string) GPU {
	t.Helper()
	g, ok := LookupGPU(name)
	if !ok {
		t.Fatalf("no preset GPU %q", name)
	}
	return g
}

// TestPlacement checks the memory model against values computed by hand
// from the formulas in the package documentation.
func TestPlacement(t *testing.T) {
	mac32 := UnifiedBudget(32 * gib) // 22,906,492,244
	tests := []struct {
		name       string
		model      Model
		numCtx     int
		parallel   int
		free       int64
		size, vram int64
		gpuLayers  int
	}{
		{
			// tokens 2048; KV per layer 2×2×64×2×2048 = 1 MiB;
			// graph 4×512×(4×896 + 2×14×2048) = 124,780,544 → 128 MiB;
			// 24×(10,549,094 + 1,048,576) + 144,643,072 + 134,217,728.
			name: "qwen2.5:0.5b 2048 on 24GB", model: mustModel(t, "qwen2.5:0.5b"), numCtx: 2048, parallel: 1,
			free: 24*gib - DiscreteReserve, size: 557_204_880, vram: 557_204_880, gpuLayers: 24,
		},
		{
			// KV padded to 256 cells: 2×2×64×2×256 = 131,072 per layer;
			// batch 100: graph 4×100×(3584 + 28×256) = 4,300,800 → 64 MiB.
			name: "qwen2.5:0.5b 100 pads the cache", model: mustModel(t, "qwen2.5:0.5b"), numCtx: 100, parallel: 1,
			free: 24*gib - DiscreteReserve, size: 468_075_920, vram: 468_075_920, gpuLayers: 24,
		},
		{
			// Two slots double the cache and the graph's context part:
			// tokens 4096, KV 2 MiB/layer, graph 2048×(3584+28×4096) → 256 MiB.
			name: "qwen2.5:0.5b 2048 × 2 slots", model: mustModel(t, "qwen2.5:0.5b"), numCtx: 2048, parallel: 2,
			free: 24*gib - DiscreteReserve,
			size: 24*(10_549_094+2*mib) + 144_643_072 + 256*mib, vram: 24*(10_549_094+2*mib) + 144_643_072 + 256*mib, gpuLayers: 24,
		},
		{
			name: "qwen2.5:0.5b on a CPU-only host", model: mustModel(t, "qwen2.5:0.5b"), numCtx: 2048, parallel: 1,
			free: 0, size: 557_204_880, vram: 0,
		},
		{
			// KV 512 MiB/layer; graph 2048×(16384 + 64×131072) =
			// 17,213,423,616 → 257 × 64 MiB = 17,246,978,048; a layer with
			// its cache is 973,127,680, so (22,906,492,244 − graph) holds 5.
			name: "llama3.1 8B fp16 131072 on mac32", model: mustModel(t, "llama3.1:8b-instruct-fp16"), numCtx: 131072, parallel: 1,
			free: mac32, size: 50_488_426_496, vram: 17_246_978_048 + 5*973_127_680, gpuLayers: 5,
		},
		{
			// KV 16 MiB/layer; graph 2048×(16384+64×4096) = 570,425,344 →
			// 9 × 64 MiB; (8 GiB − 512 MiB − graph) / 453,033,984 = 16.4.
			name: "llama3.1 8B fp16 4096 on 8GB", model: mustModel(t, "llama3.1:8b-instruct-fp16"), numCtx: 4096, parallel: 1,
			free: 8*gib - DiscreteReserve, size: 17_202_429_952, vram: 603_979_776 + 16*453_033_984, gpuLayers: 16,
		},
		{
			// Every layer fits but the output weights do not: they stay on
			// the CPU. Layer: 10 MiB + 2×64×2×256 = 10,551,296; graph 64 MiB.
			name: "output weights left on the CPU", model: tiny, numCtx: 256, parallel: 1,
			free: 200 * mib, size: 4*10_551_296 + 500*mib + 64*mib, vram: 64*mib + 4*10_551_296, gpuLayers: 4,
		},
		{
			name: "graph alone does not fit", model: tiny, numCtx: 256, parallel: 1,
			free: 60 * mib, size: 4*10_551_296 + 500*mib + 64*mib, vram: 0,
		},
		{
			name: "graph fits, not one layer", model: tiny, numCtx: 256, parallel: 1,
			free: 64*mib + 10_551_295, size: 4*10_551_296 + 500*mib + 64*mib, vram: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newFootprint(tt.model, tt.numCtx, tt.parallel).place(tt.free)
			if p.size != tt.size || p.vram != tt.vram || p.gpuLayers != tt.gpuLayers {
				t.Errorf("size %d, vram %d, %d layers on the GPU; want %d, %d, %d", p.size, p.vram, p.gpuLayers, tt.size, tt.vram, tt.gpuLayers)
			}
			if p.vram > p.size {
				t.Errorf("vram %d above size %d", p.vram, p.size)
			}
		})
	}
}

// maxOnGPU returns the largest context in [1, limit] at which m loads 100%
// on an empty g, by trying every one.
func maxOnGPU(m Model, g GPU, parallel, limit int) int {
	best := 0
	for n := 1; n <= limit; n++ {
		p := newFootprint(m, n, parallel).place(g.VRAM)
		if p.vram > 0 && p.vram == p.size {
			best = n
		}
	}
	return best
}

// TestStory checks the calibration against what users report.
func TestStory(t *testing.T) {
	llama := mustModel(t, "llama3.1:8b-instruct-fp16")
	mac32 := mustGPU(t, "mac32")

	best := maxOnGPU(llama, mac32, 1, llama.TrainedContext)
	if best < 24576 || best >= 28672 {
		t.Errorf("on mac32 llama3.1 8B fp16 stays on the GPU up to num_ctx %d; want 24576 ≤ max < 28672", best)
	}
	t.Logf("mac32, llama3.1:8b-instruct-fp16: 100%% GPU up to num_ctx %d", best)
	// No holes: every context below the maximum fits too.
	for n := 1; n <= best; n += 97 {
		if p := newFootprint(llama, n, 1).place(mac32.VRAM); p.vram != p.size {
			t.Fatalf("num_ctx %d does not fit but %d does", n, best)
		}
	}

	p := newFootprint(llama, 131072, 1).place(mac32.VRAM)
	if p.vram == 0 || p.vram >= p.size {
		t.Errorf("at 131072 size %d, size_vram %d; want a CPU/GPU split", p.size, p.vram)
	}

	qwen := mustModel(t, "qwen2.5:0.5b")
	if p := newFootprint(qwen, qwen.TrainedContext, 1).place(mustGPU(t, "24GB").VRAM); p.vram != p.size {
		t.Errorf("qwen2.5:0.5b at its trained context on 24GB: size %d, size_vram %d; want 100%% GPU", p.size, p.vram)
	}

	big := mustModel(t, "llama3.1:70b")
	for _, g := range []string{"32GB", "mac32", "24GB"} {
		if n := maxOnGPU(big, mustGPU(t, g), 1, 16384); n != 0 {
			t.Errorf("llama3.1:70b fits on %s at num_ctx %d", g, n)
		}
	}
}

// TestSizeMonotonic checks that more context never needs less memory and
// never puts more on the GPU once it spills.
func TestSizeMonotonic(t *testing.T) {
	for _, g := range GPUs() {
		for _, m := range Models() {
			t.Run(g.Name+"/"+m.Name, func(t *testing.T) {
				var last placement
				for n := 256; n <= m.TrainedContext; n += 256 {
					p := newFootprint(m, n, 1).place(g.VRAM)
					if p.size < last.size {
						t.Fatalf("size shrinks from %d to %d at num_ctx %d", last.size, p.size, n)
					}
					if last.size > 0 && last.vram < last.size && p.vram == p.size && p.vram > 0 {
						t.Fatalf("num_ctx %d fits again after spilling", n)
					}
					last = p
				}
			})
		}
	}
}

// TestNotAStraightLine checks that a tuner fitting a line through two
// measurements is wrong somewhere in between.
func TestNotAStraightLine(t *testing.T) {
	m := mustModel(t, "llama3.1:8b-instruct-fp16")
	size := func(n int) int64 { return newFootprint(m, n, 1).size() }
	a, b := 8192, 16384
	slope := float64(size(b)-size(a)) / float64(b-a)
	off := 0
	for n := a; n <= b; n++ {
		line := float64(size(a)) + slope*float64(n-a)
		if math.Abs(float64(size(n))-line) > float64(mib) {
			off++
		}
	}
	if off == 0 {
		t.Error("sizes lie on a straight line between 8192 and 16384")
	}
}

func TestPresets(t *testing.T) {
	for _, m := range Models() {
		if m.Layers == 0 || m.HeadCount == 0 || m.HeadCountKV == 0 || m.TrainedContext == 0 || m.LayerBytes == 0 || m.Arch == "" {
			t.Errorf("%s: incomplete preset %+v", m.Name, m)
		}
		if got, ok := LookupModel(m.Name); !ok || got.Name != m.Name {
			t.Errorf("LookupModel(%q) = %v, %v", m.Name, got.Name, ok)
		}
	}
	sizes := map[string]float64{ // GB, as ollama list shows them
		"llama3.1:8b-instruct-fp16":                16.1,
		"deepseek-coder-v2:16b-lite-instruct-q6_K": 14.1,
		"qwen2.5:0.5b":                             0.398,
		"llama3.1:70b":                             42.5,
	}
	for name, want := range sizes {
		got := float64(mustModel(t, name).Size()) / 1e9
		if math.Abs(got-want)/want > 0.01 {
			t.Errorf("%s weighs %.3f GB, want %.3f", name, got, want)
		}
	}
	if m := mustModel(t, "gemma2:9b"); m.HeadDim() == m.EmbeddingLength/m.HeadCount {
		t.Error("gemma2:9b should have a head_dim other than embedding/heads")
	}
	if _, ok := LookupModel("QWEN2.5:0.5B"); !ok {
		t.Error("names are case-insensitive")
	}
	if _, ok := LookupModel("registry.ollama.ai/library/qwen2.5:0.5b"); !ok {
		t.Error("the default registry and namespace are optional")
	}
	if _, ok := LookupModel("qwen2.5"); ok {
		t.Error("qwen2.5 means qwen2.5:latest, which is not a preset")
	}

	wantVRAM := map[string]int64{
		"8GB": 8*gib - DiscreteReserve, "16GB": 16*gib - DiscreteReserve, "24GB": 24*gib - DiscreteReserve, "32GB": 32*gib - DiscreteReserve,
		"mac16": 16 * gib / 3 * 2, "mac32": 32 * gib / 3 * 2, "none": 0,
	}
	for _, g := range GPUs() {
		if g.VRAM != wantVRAM[g.Name] {
			t.Errorf("%s: VRAM %d, want %d", g.Name, g.VRAM, wantVRAM[g.Name])
		}
	}
	if got := UnifiedBudget(64 * gib); got != 48*gib {
		t.Errorf("UnifiedBudget(64 GiB) = %d, want 3/4", got)
	}
}

func TestDefaultContext(t *testing.T) {
	tests := []struct {
		gpu  GPU
		want int
	}{
		{mustGPU(t, "none"), 4096},
		{mustGPU(t, "mac16"), 4096},
		{mustGPU(t, "mac32"), 4096}, // 21.3 GiB of working set
		{mustGPU(t, "16GB"), 4096},
		{mustGPU(t, "24GB"), 32768},
		{mustGPU(t, "32GB"), 32768},
		{GPU{Name: "mac64", VRAM: UnifiedBudget(64 * gib), Unified: true}, 262144},
		{GPU{Name: "48GB", VRAM: 48*gib - DiscreteReserve}, 262144},
	}
	for _, tt := range tests {
		t.Run(tt.gpu.Name, func(t *testing.T) {
			if got := New(Config{GPU: tt.gpu}).cfg.DefaultContext; got != tt.want {
				t.Errorf("default num_ctx %d, want %d", got, tt.want)
			}
		})
	}
}

func TestParamsText(t *testing.T) {
	got := paramsText(map[string]any{"num_ctx": float64(24576), "stop": []any{"<|eot_id|>", "x"}, "temperature": 0.7})
	want := fmt.Sprintf("%-30s 24576\n%-30s \"<|eot_id|>\"\n%-30s \"x\"\n%-30s 0.7", "num_ctx", "stop", "stop", "temperature")
	if got != want {
		t.Errorf("paramsText:\n%s\nwant:\n%s", got, want)
	}
}
