package tune

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ctxfit/ctxfit/internal/ollamatest"
)

// The generator of testdata/realsched: TestMeasureRealSched measures load
// curves on Ollama's real scheduler (the Vulkan build of
// scripts/ollama-vulkan-for-tests on Mesa's lavapipe, a software GPU of
// 2 GiB) and writes them where runMeasured replays them. It runs only
// when asked, since it takes half an hour of loads:
//
//	export CTXFIT_OLLAMA_VULKAN_BIN=$(scripts/ollama-vulkan-for-tests)
//	CTXFIT_MEASURE_REALSCHED=1 go test ./tune -run TestMeasureRealSched -v -timeout 2h
//
// CTXFIT_MEASURE_REALSCHED_ONLY=<substring> measures only the curves whose
// file name holds it. Sweeps are cached per Ollama version, options, shape
// and step (ollamatest.SweepKey), so a second run writes the same files
// without loading anything.

// realschedStep is the granularity of the generated sweeps: fine enough
// that the replay can tune at 1024, 2048 and 4096.
const realschedStep = 1024

// realschedShapes returns the generated models, each with the sweep's
// largest context (its trained context, so that the tuner's range ends
// where the sweep does) for each overhead. The shapes differ in what
// grows with the context: on the llama.cpp runner Ollama estimates the
// KV cache at 2·layers·kv_heads·head_dim·2 bytes per token and the
// graph at 4·512·(1+heads) bytes per token, so
//
//   - l32-e256-h8kv4-f32: 32 light f32 layers (77 MB), KV 16 KiB and
//     graph 18 KiB per token, many small layers to offload;
//   - l16-e512-h4kv4-f16: 16 f16 layers, head_dim 128 and no grouped
//     query attention, so the KV cache (32 KiB per token) dominates
//     and the graph (10 KiB) is small;
//   - l8-e1024-h16kv8-f16: 8 heavy f16 layers (18 MB each, 146 MB), KV
//     16 KiB and graph 34 KiB per token: a partial offload moves in
//     coarse steps and the graph dominates.
//
// The maxima put the boundary (about 575 MiB left to the model with
// 1 GiB reserved, 320 MiB with 1.25 GiB) some 4 to 6 steps below the
// sweep's end, so that every sweep passes it clearly while its loads stay
// at a few seconds.
func realschedShapes() []struct {
	shape ollamatest.Shape
	max   map[int64]int // by overhead
} {
	type entry = struct {
		shape ollamatest.Shape
		max   map[int64]int
	}
	return []entry{
		{ollamatest.Shape{Name: "l32-e256-h8kv4-f32", Layers: 32, Embedding: 256, Heads: 8, KVHeads: 4, FeedForward: 512, F32: true},
			map[int64]int{realschedOverheads[0]: 19456, realschedOverheads[1]: 11264}},
		{ollamatest.Shape{Name: "l16-e512-h4kv4-f16", Layers: 16, Embedding: 512, Heads: 4, KVHeads: 4, FeedForward: 1024},
			map[int64]int{realschedOverheads[0]: 16384, realschedOverheads[1]: 10240}},
		{ollamatest.Shape{Name: "l8-e1024-h16kv8-f16", Layers: 8, Embedding: 1024, Heads: 16, KVHeads: 8, FeedForward: 2048},
			map[int64]int{realschedOverheads[0]: 13312, realschedOverheads[1]: 7168}},
	}
}

// realschedOverheads are the OLLAMA_GPU_OVERHEAD values measured: 1 GiB
// and 1.25 GiB of lavapipe's 2 GiB.
var realschedOverheads = []int64{1 << 30, 5 << 28}

// realschedCurve is one curve to measure: a server configuration and a
// model.
type realschedCurve struct {
	opts  ollamatest.GPUOptions
	shape ollamatest.Shape
}

// file returns the curve's file name under testdata/realsched: engine,
// flash attention, shape, trained context and overhead.
func (c realschedCurve) file() string {
	engine := string(c.opts.Engine)
	if c.opts.FlashAttention {
		engine += "-fa"
	}
	return fmt.Sprintf("vulkan-lavapipe-%s-%s-ctx%d-oh%dmib.json", engine, c.shape.Name, c.shape.ContextLength, c.opts.Overhead>>20)
}

// realschedCurves returns every curve, grouped by server configuration:
// both engines × the shapes × both overheads, then flash attention
// (OLLAMA_FLASH_ATTENTION=1). Ollama v0.17.4 hands that setting to both
// runners, but the llama.cpp runner is placed by Ollama's estimate, whose
// graph for llama ignores flash attention: its one flash sweep checks that
// the curve is the same. The new engine measures the graph it reserves,
// which with flash attention hardly grows with the context, so the
// boundary moves up; its flash sweeps run at the larger overhead with
// maxima of their own, two shapes so that the replay has a known host.
func realschedCurves() [][]realschedCurve {
	shapes := realschedShapes()
	var groups [][]realschedCurve
	for _, engine := range ollamatest.Engines {
		for _, oh := range realschedOverheads {
			var g []realschedCurve
			for _, s := range shapes {
				sh := s.shape
				sh.ContextLength = s.max[oh]
				g = append(g, realschedCurve{ollamatest.GPUOptions{Engine: engine, Overhead: oh}, sh})
			}
			groups = append(groups, g)
		}
	}
	flash := func(engine ollamatest.Engine, oh int64, maxima ...int) {
		var g []realschedCurve
		for i, m := range maxima {
			sh := shapes[i].shape
			sh.ContextLength = m
			g = append(g, realschedCurve{ollamatest.GPUOptions{Engine: engine, Overhead: oh, FlashAttention: true}, sh})
		}
		groups = append(groups, g)
	}
	flash(ollamatest.EngineLlamaCpp, realschedOverheads[0], shapes[0].max[realschedOverheads[0]])
	flash(ollamatest.EngineOllama, realschedOverheads[1], 16384, 11264)
	return groups
}

func TestMeasureRealSched(t *testing.T) {
	if os.Getenv("CTXFIT_MEASURE_REALSCHED") != "1" {
		t.Skip("measures testdata/realsched on the software GPU (half an hour); set CTXFIT_MEASURE_REALSCHED=1 to run it")
	}
	only := os.Getenv("CTXFIT_MEASURE_REALSCHED_ONLY")
	for _, g := range realschedCurves() {
		var todo []realschedCurve
		for _, c := range g {
			if strings.Contains(c.file(), only) {
				todo = append(todo, c)
			}
		}
		if len(todo) == 0 {
			continue
		}
		name := fmt.Sprintf("%s-oh%dmib-fa%v", g[0].opts.Engine, g[0].opts.Overhead>>20, g[0].opts.FlashAttention)
		// One server at a time: the subtest's cleanup stops it.
		t.Run(name, func(t *testing.T) {
			srv := ollamatest.StartGPU(t, todo[0].opts)
			for _, c := range todo {
				measureCurve(t, srv, c)
			}
		})
	}
}

// measureCurve sweeps one curve on srv, checks it and writes its file.
func measureCurve(t *testing.T, srv *ollamatest.Server, c realschedCurve) {
	// Another model left loaded would take its share of the GPU.
	srv.UnloadAll(t)
	model := "ctxfit-" + c.shape.Name
	srv.CreateModel(t, model, c.shape)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tags, err := srv.Client().List(ctx)
	if err != nil {
		t.Fatalf("/api/tags: %v", err)
	}
	var weights int64
	for _, m := range tags.Models {
		if m.Name == model || m.Name == model+":latest" {
			weights = m.Size
		}
	}
	if weights == 0 {
		t.Fatalf("/api/tags does not list %s", model)
	}
	sw := srv.Sweep(t, model, ollamatest.SweepKey(c.opts, c.shape, realschedStep), realschedStep, c.shape.ContextLength)
	srv.UnloadAll(t)
	largest := sw.Largest()
	t.Logf("%s: weights %d, largest 100%% GPU context %d of %d, swept in %.0f s", c.file(), weights, largest, sw.Max, sw.Seconds)
	if !sw.Monotone() {
		t.Errorf("%s: a larger context fit where a smaller one spilled: %+v", c.file(), sw.Points)
	}
	if largest == 0 || largest > sw.Max-3*realschedStep {
		t.Errorf("%s: the boundary (largest fit %d) is not well inside the sweep (up to %d); change the shape's maximum in realschedShapes", c.file(), largest, sw.Max)
	}
	m := measured{
		Engine: string(c.opts.Engine), Version: ollamatest.Version, Weights: weights,
		Overhead: c.opts.Overhead, FlashAttention: c.opts.FlashAttention,
		Shape: c.shape, Sweep: sw,
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "realsched", c.file())
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}
