package tune

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/ctxfit/ctxfit/internal/gpusim"
	"github.com/ctxfit/ctxfit/internal/hint"
	"github.com/ctxfit/ctxfit/internal/ollamahost"
	"github.com/ctxfit/ctxfit/ollama"
)

// simClient serves sim over HTTP (through wrap, when given) and returns a
// client for it.
func simClient(t testing.TB, h http.Handler) *api.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return ollama.NewClient(u)
}

// exhaustive returns the answer a hand search over every multiple of step
// finds with the simulator's ground truth: the largest that loads 100% on
// the GPU, 0 when none does.
func exhaustive(t testing.TB, sim *gpusim.Server, m gpusim.Model, step, parallel int) int {
	t.Helper()
	best := 0
	for c := step; c <= m.TrainedContext; c += step {
		size, vram, err := sim.Placement(m.Name, c, parallel)
		if err != nil {
			t.Fatal(err)
		}
		if size == vram {
			best = c
		}
	}
	return best
}

// matrixCase is one tune of the matrix.
type matrixCase struct {
	gpu      gpusim.GPU
	model    gpusim.Model
	parallel int
	step     int
}

func (c matrixCase) String() string {
	return fmt.Sprintf("%s/%s/p%d/s%d", c.gpu.Name, c.model.Name, c.parallel, c.step)
}

// matrix returns every GPU with a GPU × every preset model × parallel
// 1/2/4 × step 1024/4096.
func matrix() []matrixCase {
	var cs []matrixCase
	for _, g := range gpusim.GPUs() {
		if g.VRAM == 0 {
			continue
		}
		for _, m := range gpusim.Models() {
			for _, p := range []int{1, 2, 4} {
				for _, s := range []int{1024, 4096} {
					cs = append(cs, matrixCase{g, m, p, s})
				}
			}
		}
	}
	return cs
}

// runCase tunes one case on a fresh simulator and checks the answer
// against the exhaustive search and the model's state afterwards. It
// returns the loads the tune made.
func runCase(t testing.TB, c matrixCase) int {
	t.Helper()
	sim := gpusim.New(gpusim.Config{GPU: c.gpu, Parallel: c.parallel})
	client := simClient(t, sim)
	want := exhaustive(t, sim, c.model, c.step, c.parallel)

	// The tuner runs beside the server, as on a desktop: it knows the RAM.
	ram := c.gpu.RAM
	if ram == 0 {
		ram = 1 << 40
	}
	res, err := Tune(context.Background(), client, Options{Model: c.model.Name, Step: c.step, Parallel: c.parallel, RAM: ram})
	if want == 0 {
		var dnf *DoesNotFitError
		if !errors.As(err, &dnf) || res.Context != 0 {
			t.Errorf("%s: Tune = %d, %v; the exhaustive search finds nothing that fits", c, res.Context, err)
		}
		return res.Loads
	}
	if err != nil {
		t.Errorf("%s: %v (probes %+v)", c, err, res.Probes)
		return res.Loads
	}
	if res.Context != want {
		t.Errorf("%s: Tune = %d, exhaustive search = %d (probes %+v)", c, res.Context, want, res.Probes)
	}
	if testing.Verbose() && res.Loads >= 6 {
		t.Logf("%s: %d in %d loads: %s", c, want, res.Loads, probeTrace(res.Probes))
	}
	if res.Loads != len(res.Probes) || sim.Loads() > res.Loads {
		t.Errorf("%s: %d loads reported, %d probes, %d loads seen by the server", c, res.Loads, len(res.Probes), sim.Loads())
	}
	// The model was not loaded before, so it is not after.
	ps, err := client.ListRunning(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if m := findRunning(ps, c.model.Name); m != nil || res.Restored != "unloaded" {
		t.Errorf("%s: after the tune /api/ps lists %+v (restored %q), want it unloaded", c, m, res.Restored)
	}
	if res.Digest == "" || res.TrainedContext != c.model.TrainedContext || res.LargestFit != res.Context {
		t.Errorf("%s: result %+v lacks the digest, the trained context or the bracket", c, res)
	}
	return res.Loads
}

// probeTrace returns probes as "131072 spill 25.0/50.5G, 36864 fit…".
func probeTrace(ps []Probe) string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteString(", ")
		}
		switch {
		case p.Refused != "":
			fmt.Fprintf(&b, "%d refused", p.Context)
		case len(p.Evicted) > 0:
			fmt.Fprintf(&b, "%d evicted %d %.2fG", p.Context, len(p.Evicted), float64(p.Size)/1e9)
		case p.Fits():
			fmt.Fprintf(&b, "%d fit %.2fG", p.Context, float64(p.Size)/1e9)
		default:
			fmt.Fprintf(&b, "%d spill %.2f/%.2fG", p.Context, float64(p.SizeVRAM)/1e9, float64(p.Size)/1e9)
		}
	}
	return b.String()
}

// TestTuneMatrix is the acceptance test: over every GPU, model,
// parallel count and step of the simulator, the tune's answer equals the
// exhaustive search's, and it takes at most 4 loads on average.
func TestTuneMatrix(t *testing.T) {
	total, worst := 0, 0
	var worstCase matrixCase
	hist := map[int]int{}
	cases := matrix()
	for _, c := range cases {
		n := runCase(t, c)
		total += n
		hist[n]++
		if n > worst {
			worst, worstCase = n, c
		}
	}
	mean := float64(total) / float64(len(cases))
	t.Logf("%d tunes: mean %.2f loads, worst %d (%s); loads→tunes %v", len(cases), mean, worst, worstCase, hist)
	if mean > 4 {
		t.Errorf("mean %.2f loads per tune, want at most 4", mean)
	}
}

// BenchmarkTuneMatrix reports the loads per tune over the matrix as
// loads/op and the worst as worst-loads.
func BenchmarkTuneMatrix(b *testing.B) {
	cases := matrix()
	total, worst, n := 0, 0, 0
	for i := 0; i < b.N; i++ {
		c := cases[i%len(cases)]
		l := runCase(b, c)
		total += l
		worst = max(worst, l)
		n++
	}
	b.ReportMetric(float64(total)/float64(n), "loads/op")
	b.ReportMetric(float64(worst), "worst-loads")
}

// TestTuneFitsAtTrainedContext: a model that fits whole at its trained
// context takes one load.
func TestTuneFitsAtTrainedContext(t *testing.T) {
	gpu, _ := gpusim.LookupGPU("24GB")
	sim := gpusim.New(gpusim.Config{GPU: gpu})
	var seen []Probe
	res, err := Tune(context.Background(), simClient(t, sim), Options{
		Model:    "qwen2.5:0.5b",
		RAM:      64 << 30,
		Progress: func(p Probe) { seen = append(seen, p) },
	})
	if err != nil || res.Context != 32768 || res.Loads != 1 || len(seen) != 1 || sim.Loads() != 1 {
		t.Fatalf("Tune = %+v, %v; progress %v; want 32768 in one load", res, err, seen)
	}
	if p := seen[0]; p.Context != 32768 || !p.Fits() || p.Processor() != "100% GPU" || p.Loaded != 32768 {
		t.Errorf("probe %+v", p)
	}
}

func TestTuneDoesNotFit(t *testing.T) {
	tests := []struct {
		gpu     string
		refused bool // the load at 4096 needs more RAM than the host has
		says    string
	}{
		{"8GB", true, "server refused the load"},
		{"16GB", false, "the GPU holds only about 1"},
		{"mac16", false, "the GPU holds only about 1"},
	}
	for _, tt := range tests {
		t.Run(tt.gpu, func(t *testing.T) {
			gpu, _ := gpusim.LookupGPU(tt.gpu)
			sim := gpusim.New(gpusim.Config{GPU: gpu})
			res, err := Tune(context.Background(), simClient(t, sim), Options{Model: "llama3.1:70b", Step: 4096})
			var dnf *DoesNotFitError
			if !errors.As(err, &dnf) || !errors.Is(err, ErrDoesNotFit) {
				t.Fatalf("Tune = %+v, %v; want a DoesNotFitError", res, err)
			}
			size, _, _ := sim.Placement("llama3.1:70b", 4096, 1)
			if tt.refused {
				// The size is ctxfit's estimate, within a few percent.
				if dnf.Refused == "" || dnf.Size < size*95/100 || dnf.Size > size*105/100 {
					t.Errorf("error %+v, want a refusal and about the size at 4096 (%d)", dnf, size)
				}
			} else if dnf.Refused != "" || dnf.Size != size || dnf.GPU <= 0 || dnf.GPU >= gpu.VRAM {
				t.Errorf("error %+v, want the size at 4096 (%d) and what the GPU held (< %d)", dnf, size, gpu.VRAM)
			}
			for _, want := range []string{"llama3.1:70b needs 4", "GB at num_ctx 4096", tt.says, "try a smaller quantization", "or a smaller model"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("message %q lacks %q", err, want)
				}
			}
			if res.Context != 0 || res.LargestFit != 0 || res.SmallestSpill != 4096 {
				t.Errorf("result %+v", res)
			}
		})
	}
}

func TestTuneCPUOnly(t *testing.T) {
	none, _ := gpusim.LookupGPU("none")
	tests := []struct {
		model string
		gpu   ollama.GPUPresence
		loads int
	}{
		{"qwen2.5:0.5b", ollama.GPUUnknown, 1},
		{"qwen2.5-coder:7b", ollama.GPUUnknown, 1},
		{"gemma2:9b", ollama.GPUAbsent, 0},
		// The server refuses 128k of context for lack of RAM: the verdict
		// needs a load at the smallest context.
		{"llama3.1:8b-instruct-fp16", ollama.GPUUnknown, 2},
		{"deepseek-coder-v2:16b-lite-instruct-q6_K", ollama.GPUUnknown, 2},
	}
	for _, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			sim := gpusim.New(gpusim.Config{GPU: none})
			res, err := Tune(context.Background(), simClient(t, sim), Options{Model: tt.model, GPU: tt.gpu})
			says := "nothing in VRAM"
			if tt.gpu == ollama.GPUAbsent {
				says = "told this server has no GPU"
			}
			if !errors.Is(err, ErrCPUOnly) || !strings.Contains(err.Error(), says) {
				t.Fatalf("Tune = %+v, %v; want ErrCPUOnly saying %q", res, err, says)
			}
			if res.Loads > tt.loads || sim.Loads() > tt.loads {
				t.Errorf("said after %d loads (%+v, %d seen by the server), want %d", res.Loads, res.Probes, sim.Loads(), tt.loads)
			}
			// Nothing was loaded above the smallest context, and nothing
			// stays loaded.
			for _, p := range res.Probes {
				if p.Context > DefaultStep {
					t.Errorf("loaded at num_ctx %d on a server that might be CPU-only (RAM unknown)", p.Context)
				}
			}
			if ps, _ := simClient(t, sim).ListRunning(context.Background()); len(ps.Models) != 0 {
				t.Errorf("after the tune %+v is loaded, want nothing", ps.Models)
			}
		})
	}
}

// A tune refused on a server without a GPU names the commands to run
// there, with --host for a server other than the default one.
func TestTuneCPUOnlyNamesTheHost(t *testing.T) {
	none, _ := gpusim.LookupGPU("none")
	tests := []struct {
		name  string
		hints hint.Hints
		want  string
	}{
		{"default", hint.Hints{}, "`ctxfit bench gemma2:9b` measures the speed on the CPU (if the server does have a GPU now: `ctxfit status --set-gpu auto`)"},
		{"other host", hint.For(ollamahost.Parse("gpubox"), false),
			"`ctxfit bench gemma2:9b --host http://gpubox:11434` measures the speed on the CPU (if the server does have a GPU now: `ctxfit status --set-gpu auto --host http://gpubox:11434`)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := gpusim.New(gpusim.Config{GPU: none})
			_, err := Tune(context.Background(), simClient(t, sim), Options{Model: "gemma2:9b", GPU: ollama.GPUAbsent, Hints: tt.hints})
			if !errors.Is(err, ErrCPUOnly) || !strings.HasSuffix(err.Error(), tt.want) {
				t.Errorf("Tune: %v\nwant ErrCPUOnly ending in %q", err, tt.want)
			}
		})
	}
}

func TestTuneUnknownModel(t *testing.T) {
	gpu, _ := gpusim.LookupGPU("24GB")
	sim := gpusim.New(gpusim.Config{GPU: gpu})
	res, err := Tune(context.Background(), simClient(t, sim), Options{Model: "nosuch:7b"})
	if !errors.Is(err, ErrUnknownModel) || !strings.Contains(err.Error(), "ollama pull nosuch:7b") {
		t.Errorf("Tune = %v, want ErrUnknownModel telling to pull", err)
	}
	if res.Loads != 0 || sim.Loads() != 0 {
		t.Errorf("%d loads for an unknown model", res.Loads)
	}
}

// faultAfter passes requests to sim and sets fault on it once n requests
// have gone through (only counting paths that start with prefix).
type faultAfter struct {
	sim    *gpusim.Server
	prefix string
	n      int
	fault  gpusim.Fault

	mu   sync.Mutex
	seen int
}

func (f *faultAfter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	if strings.HasPrefix(r.URL.Path, f.prefix) {
		f.seen++
		if f.seen == f.n+1 {
			f.sim.SetFault(f.fault)
		}
	}
	f.mu.Unlock()
	f.sim.ServeHTTP(w, r)
}

func TestTuneServerFailures(t *testing.T) {
	gpu, _ := gpusim.LookupGPU("24GB")
	const model = "llama3.1:8b-instruct-fp16" // takes several loads here
	tests := []struct {
		name   string
		prefix string
		n      int
		fault  gpusim.Fault
		check  func(error) bool
		loads  int
	}{
		{"load error", "/api/generate", 1, gpusim.Fault{Status: 500},
			func(err error) bool { var le *LoadError; return errors.As(err, &le) && le.Context > 0 }, 1},
		{"server gone at a load", "/api/generate", 2, gpusim.Fault{Down: true},
			func(err error) bool { return errors.Is(err, ErrServerGone) }, 2},
		{"server gone at ps", "/api/ps", 3, gpusim.Fault{Down: true},
			func(err error) bool { return errors.Is(err, ErrServerGone) }, 2},
		{"server gone at start", "/", 0, gpusim.Fault{Down: true},
			func(err error) bool { return errors.Is(err, ErrServerGone) }, 0},
		{"load answer cut off", "/api/generate", 1, gpusim.Fault{Truncated: true},
			func(err error) bool { return strings.Contains(err.Error(), "unexpected answer") }, 1},
		{"not Ollama", "/api/ps", 1, gpusim.Fault{Malformed: true},
			func(err error) bool { return strings.Contains(err.Error(), "Ollama server") }, 0},
		{"huge answer", "/api/ps", 2, gpusim.Fault{Huge: 2 * ollama.MaxResponseBytes},
			func(err error) bool { return strings.Contains(err.Error(), "larger than") }, 1},
		{"nonsense sizes", "/api/ps", 1, gpusim.Fault{VRAMAboveSize: true},
			func(err error) bool { return strings.Contains(err.Error(), "makes no sense") }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := gpusim.New(gpusim.Config{GPU: gpu})
			client := simClient(t, &faultAfter{sim: sim, prefix: tt.prefix, n: tt.n, fault: tt.fault})
			res, err := Tune(context.Background(), client, Options{Model: model})
			if err == nil || !tt.check(err) {
				t.Fatalf("Tune = %+v, %v", res, err)
			}
			if res.Context != 0 || res.Loads != tt.loads {
				t.Errorf("result %+v after %v, want no answer and %d loads", res, err, tt.loads)
			}
		})
	}
}

// TestTuneInterrupted: cancelling between loads stops the tune and keeps
// the bracket proven so far.
func TestTuneInterrupted(t *testing.T) {
	gpu, _ := gpusim.LookupGPU("24GB")
	sim := gpusim.New(gpusim.Config{GPU: gpu})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := 0
	res, err := Tune(ctx, simClient(t, sim), Options{Model: "llama3.1:8b-instruct-fp16", Progress: func(Probe) {
		if n++; n == 2 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) || res.Loads != 2 || sim.Loads() != 2 {
		t.Fatalf("Tune = %+v, %v; want context.Canceled after 2 loads", res, err)
	}
	want := exhaustive(t, sim, mustModel(t, "llama3.1:8b-instruct-fp16"), DefaultStep, 1)
	if res.LargestFit > want || res.SmallestSpill != 0 && res.SmallestSpill <= want || res.LargestFit == 0 && res.SmallestSpill == 0 {
		t.Errorf("bracket [%d, %d] after 2 loads; the answer is %d", res.LargestFit, res.SmallestSpill, want)
	}
}

// TestTuneCancelDuringLoad: a load in flight is abandoned at once.
func TestTuneCancelDuringLoad(t *testing.T) {
	gpu, _ := gpusim.LookupGPU("24GB")
	sim := gpusim.New(gpusim.Config{GPU: gpu, LoadDelay: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err := Tune(ctx, simClient(t, sim), Options{Model: "qwen2.5:0.5b"})
	if !errors.Is(err, context.DeadlineExceeded) || res.Loads != 0 {
		t.Errorf("Tune = %+v, %v; want the deadline error and no completed load", res, err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("cancel took %v", d)
	}
}

// TestTuneBefore: the model's state before the tune is kept, for the
// speed comparison.
func TestTuneBefore(t *testing.T) {
	gpu, _ := gpusim.LookupGPU("mac32")
	sim := gpusim.New(gpusim.Config{GPU: gpu})
	const model = "llama3.1:8b-instruct-fp16"
	if err := sim.Load(model, 32768, 0); err != nil {
		t.Fatal(err)
	}
	res, err := Tune(context.Background(), simClient(t, sim), Options{Model: model + "", Step: 4096})
	if err != nil {
		t.Fatal(err)
	}
	if b := res.Before; b == nil || b.Context != 32768 || b.Fits() {
		t.Errorf("Before = %+v, want the spilled load at 32768", b)
	}
}

func TestTuneBadOptions(t *testing.T) {
	gpu, _ := gpusim.LookupGPU("24GB")
	client := simClient(t, gpusim.New(gpusim.Config{GPU: gpu}))
	for _, o := range []Options{
		{},
		{Model: "qwen2.5:0.5b", Step: -1},
		{Model: "qwen2.5:0.5b", Parallel: -2},
		{Model: "gemma2:9b", Step: 16384}, // trained for 8192
	} {
		if res, err := Tune(context.Background(), client, o); err == nil || res.Loads != 0 {
			t.Errorf("Tune(%+v) = %+v, %v; want an error before any load", o, res, err)
		}
	}
}

func mustModel(t testing.TB, name string) gpusim.Model {
	m, ok := gpusim.LookupModel(name)
	if !ok {
		t.Fatalf("no preset %s", name)
	}
	return m
}

func TestParseModelArch(t *testing.T) {
	tests := []struct {
		name   string
		info   map[string]any
		layers int
		ctx    int
		kv     float64
	}{
		{"llama3.1 8B: 128 KiB per token", map[string]any{
			"general.architecture": "llama", "llama.block_count": 32.0, "llama.context_length": 131072.0,
			"llama.embedding_length": 4096.0, "llama.attention.head_count": 32.0, "llama.attention.head_count_kv": 8.0,
		}, 32, 131072, 128 << 10},
		{"key and value lengths", map[string]any{
			"general.architecture": "deepseek2", "deepseek2.block_count": 27.0, "deepseek2.embedding_length": 2048.0,
			"deepseek2.attention.head_count": 16.0, "deepseek2.attention.head_count_kv": 16.0,
			"deepseek2.attention.key_length": 192.0, "deepseek2.attention.value_length": 128.0,
		}, 27, 0, 27 * 16 * (192 + 128) * 2},
		{"per-layer KV heads, some layers without attention", map[string]any{
			"general.architecture": "jamba", "jamba.block_count": 4.0, "jamba.embedding_length": 1024.0,
			"jamba.attention.head_count": 8.0, "jamba.attention.head_count_kv": []any{0.0, 2.0, 0.0, 2.0},
		}, 4, 0, 2 * 2 * 2 * 128 * 2},
		{"no KV heads given: one per head", map[string]any{
			"general.architecture": "gpt2", "gpt2.block_count": 2.0, "gpt2.embedding_length": 64.0, "gpt2.attention.head_count": 4.0,
		}, 2, 0, 2 * 4 * 2 * 16 * 2},
		{"nothing known", map[string]any{"general.architecture": 7.0}, 0, 0, 0},
		{"nil", nil, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := parseModelArch(tt.info)
			if a.layers != tt.layers || a.contextLength != tt.ctx || a.kvBytesPerToken != tt.kv {
				t.Errorf("parseModelArch = %+v, want %d layers, context %d, %v KV bytes per token", a, tt.layers, tt.ctx, tt.kv)
			}
		})
	}
}

// TestPlanExact drives the planner alone over random monotone servers: any
// size curve (steps, kinks, plateaus), any memory, wrong predictions. The
// answer must be the exhaustive search's, proven by a fit at it and a
// spill above it (with confirm, as a joint tune plans, the last load a fit
// at it), and the search must end.
func TestPlanExact(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	total, worst := 0, 0
	const cases = 2000
	defer func() { t.Logf("%d random servers: mean %.2f loads, worst %d", cases, float64(total)/cases, worst) }()
	for i := 0; i < cases; i++ {
		step := []int{256, 1024, 4096}[rng.Intn(3)]
		top := step * (1 + rng.Intn(160))
		layers := 1 + rng.Intn(80)
		// A random non-decreasing size per candidate.
		sizes := map[int]int64{}
		size := int64(rng.Intn(1 << 30))
		for c := step; c <= top; c += step {
			if rng.Intn(4) > 0 {
				size += int64(rng.Intn(64 << 20))
			}
			sizes[c] = size
		}
		budget := int64(rng.Intn(int(size + size/4 + 1)))
		want := 0
		for c := step; c <= top; c += step {
			if sizes[c] <= budget {
				want = c
			}
		}
		p := &tunePlan{step: step, max: top, layers: layers,
			slope: float64(rng.Intn(1 << 20)), kvSlope: float64(rng.Intn(1 << 19)), weights: float64(rng.Intn(1 << 32)),
			confirm: i%2 == 1}
		loads := 0
		for {
			c, done := p.next()
			if done {
				break
			}
			if loads++; loads > 24 || c < step || c > top || c%step != 0 {
				t.Fatalf("case %d: load %d at %d (step %d, max %d) budget %d probes %+v", i, loads, c, step, top, budget, p.probes)
			}
			pr := Probe{Context: c, Size: sizes[c], SizeVRAM: sizes[c]}
			switch {
			case sizes[c] > budget && rng.Intn(8) == 0:
				pr = Probe{Context: c, Refused: "model requires more system memory"}
			case sizes[c] > budget:
				pr.SizeVRAM = budget - int64(rng.Intn(int(budget/int64(layers)+1)))
				pr.SizeVRAM = max(pr.SizeVRAM, 0)
			}
			p.add(pr)
		}
		total += loads
		worst = max(worst, loads)
		got, _ := p.bracket()
		if got != want {
			t.Fatalf("case %d: answer %d, exhaustive %d (probes %+v)", i, got, want, p.probes)
		}
		if !provenAnswer(p, want) {
			t.Fatalf("case %d (confirm %v): %d is not proven by the loads (probes %+v)", i, p.confirm, want, p.probes)
		}
	}
}

// provenAnswer reports whether p's loads prove the answer want: a spill at
// the smallest context when want is 0, else a fit at want (with confirm,
// the last load) and a spill at want+step unless want is the largest
// candidate.
func provenAnswer(p *tunePlan, want int) bool {
	fit, spill := false, want == p.max
	for _, pr := range p.probes {
		switch {
		case pr.Context == want && pr.Fits():
			fit = true
		case pr.Context == want+p.step && !pr.Fits():
			spill = true
		}
	}
	if want == 0 {
		return spill
	}
	return fit && spill && (!p.confirm || p.lastFitAt(want))
}

// flakyServer answers like Ollama, but each load fits or spills at random,
// as if other models came and went.
type flakyServer struct {
	mu   sync.Mutex
	rng  *rand.Rand
	vram int64
	ctx  int
}

func (f *flakyServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.URL.Path {
	case "/api/show":
		fmt.Fprint(w, `{"model_info":{"general.architecture":"llama","llama.block_count":8,"llama.context_length":65536,
			"llama.embedding_length":1024,"llama.attention.head_count":8,"llama.attention.head_count_kv":8}}`)
	case "/api/tags":
		fmt.Fprint(w, `{"models":[]}`)
	case "/api/generate":
		var req api.GenerateRequest
		json.NewDecoder(r.Body).Decode(&req)
		f.ctx = int(jsonNumber(req.Options["num_ctx"]))
		f.vram = 1 << 30
		if f.rng.Intn(2) == 0 {
			f.vram /= 2
		}
		fmt.Fprint(w, `{"model":"m","done":true,"done_reason":"load"}`)
	case "/api/ps":
		fmt.Fprintf(w, `{"models":[{"name":"m:latest","model":"m:latest","size":%d,"size_vram":%d,"context_length":%d}]}`, 1<<30, f.vram, f.ctx)
	default:
		http.NotFound(w, r)
	}
}

// TestTuneFlakyServer: a server whose answers contradict each other ends
// the tune within MaxLoads, with an answer that a fit at it and a spill
// above it (or the trained context) support, or with ErrInconsistent.
func TestTuneFlakyServer(t *testing.T) {
	for seed := int64(0); seed < 20; seed++ {
		client := simClient(t, &flakyServer{rng: rand.New(rand.NewSource(seed))})
		// This server never unloads: do not wait for it.
		res, err := Tune(context.Background(), client, Options{Model: "m", GPU: ollama.GPUPresent, unloadWait: time.Millisecond})
		t.Logf("seed %d: %d loads, context %d, %v", seed, res.Loads, res.Context, err)
		switch {
		case res.Loads > MaxLoads:
			t.Errorf("seed %d: %d loads", seed, res.Loads)
		case err == nil:
			fit, spill := false, res.Context == cmp.Or(res.TrainedContext, UnknownTrainedContext)/res.Step*res.Step
			for _, pr := range res.Probes {
				fit = fit || pr.Context == res.Context && pr.Fits()
				spill = spill || pr.Context == res.Context+res.Step && !pr.Fits()
			}
			if !fit || !spill {
				t.Errorf("seed %d: answer %d, but the loads were %s", seed, res.Context, probeTrace(res.Probes))
			}
		case !errors.Is(err, ErrInconsistent) && !errors.Is(err, ErrDoesNotFit):
			t.Errorf("seed %d: %v", seed, err)
		}
	}
}

// TestTuneSafeFirstLoad: on a CPU-only server whose GPU is not known yet,
// the first load is at a context predicted to need at most half the RAM
// given, never at the model's trained context, and the tune refuses after
// it.
func TestTuneSafeFirstLoad(t *testing.T) {
	none, _ := gpusim.LookupGPU("none")
	const ram = 48 << 30 // 16 GB of weights, 128 KiB per token: 128k would need 32 GB
	sim := gpusim.New(gpusim.Config{GPU: none})
	res, err := Tune(context.Background(), simClient(t, sim), Options{Model: "llama3.1:8b-instruct-fp16", RAM: ram})
	if !errors.Is(err, ErrCPUOnly) {
		t.Fatalf("Tune = %+v, %v; want ErrCPUOnly", res, err)
	}
	if len(res.Probes) == 0 {
		t.Fatal("no load made")
	}
	for _, p := range res.Probes {
		size, _, _ := sim.Placement("llama3.1:8b-instruct-fp16", p.Context, 1)
		// Predicted at most half; the prediction may be a little off.
		if p.Context >= res.TrainedContext || size > ram*6/10 {
			t.Errorf("loaded at num_ctx %d (%d bytes) with %d bytes of RAM free; want about half of it at most", p.Context, size, int64(ram))
		}
	}
	if res.Probes[0].Context <= DefaultStep {
		t.Errorf("first load at num_ctx %d: the RAM given allows more than the smallest context", res.Probes[0].Context)
	}
	if res.Restored != "unloaded" {
		t.Errorf("restored %q, want unloaded", res.Restored)
	}
}

// TestTuneCheckLoad: when a first load put nothing in VRAM although its
// graph and one layer would not fit a small GPU, the load that tells
// whether the server has a GPU is the largest one any GPU would hold a
// layer of, not the smallest context: on a CPU-only server it says so as
// surely, and on a GPU it bounds the GPU closer (over the families, cold
// tunes of the simulator's physics took at most 5 loads instead of 6).
func TestTuneCheckLoad(t *testing.T) {
	tests := []struct {
		gpu      string
		cpuOnly  bool
		maxLoads int
	}{
		{"none", true, 2},
		{"8GB", false, 4},
	}
	const model, parallel = "qwen2.5-coder:7b", 4
	for _, tt := range tests {
		t.Run(tt.gpu, func(t *testing.T) {
			g, _ := gpusim.LookupGPU(tt.gpu)
			sim := gpusim.New(gpusim.Config{GPU: g, Parallel: parallel})
			res, err := Tune(context.Background(), simClient(t, sim), Options{Model: model, Parallel: parallel, RAM: 40 << 30})
			if got := errors.Is(err, ErrCPUOnly); got != tt.cpuOnly {
				t.Fatalf("Tune = %s, %v; want CPU-only %v", probeTrace(res.Probes), err, tt.cpuOnly)
			}
			if len(res.Probes) < 2 || res.Probes[0].SizeVRAM != 0 {
				t.Fatalf("loads %s: want a first load with nothing in VRAM, then one that tells", probeTrace(res.Probes))
			}
			check := res.Probes[1]
			if check.Context <= DefaultStep {
				t.Errorf("loads %s: the load that tells was at the smallest context", probeTrace(res.Probes))
			}
			if res.Loads > tt.maxLoads {
				t.Errorf("loads %s: want at most %d", probeTrace(res.Probes), tt.maxLoads)
			}
			if !tt.cpuOnly {
				m, _ := gpusim.LookupModel(model)
				if want := exhaustive(t, sim, m, DefaultStep, parallel); res.Context != want {
					t.Errorf("Tune = %d (%s), exhaustive %d", res.Context, probeTrace(res.Probes), want)
				}
			}
		})
	}
}

// TestTuneRestoresTheModel: a model loaded before the tune is loaded again
// at its context afterwards, whether the tune succeeds, fails or is
// cancelled during a load.
func TestTuneRestoresTheModel(t *testing.T) {
	gpu, _ := gpusim.LookupGPU("24GB")
	const model, before = "llama3.1:8b-instruct-fp16", 131072
	for _, tt := range []struct {
		name   string
		cancel bool
	}{{"success", false}, {"ctrl-c", true}} {
		t.Run(tt.name, func(t *testing.T) {
			sim := gpusim.New(gpusim.Config{GPU: gpu, LoadDelay: 200 * time.Millisecond})
			if err := sim.Load(model, before, gpusim.Forever); err != nil {
				t.Fatal(err)
			}
			client := simClient(t, sim)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			opts := Options{Model: model, GPU: ollama.GPUPresent}
			if tt.cancel {
				// Cancel while the second load is in flight.
				opts.Progress = func(Probe) { time.AfterFunc(50*time.Millisecond, cancel) }
			}
			res, err := Tune(ctx, client, opts)
			if tt.cancel != (err != nil) || tt.cancel && !errors.Is(err, context.Canceled) {
				t.Fatalf("Tune = %+v, %v", res, err)
			}
			want := fmt.Sprintf("reloaded at num_ctx %d", before)
			if res.Restored != want {
				t.Errorf("restored %q, want %q", res.Restored, want)
			}
			ps, err := client.ListRunning(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if m := findRunning(ps, model); m == nil || m.ContextLength != before {
				t.Errorf("after the tune /api/ps lists %+v, want %s at %d as before", m, model, before)
			} else if left := time.Until(m.ExpiresAt); left < 100*365*24*time.Hour {
				// It was loaded with keep_alive -1: it must not
				// expire after the server's default 5 minutes now.
				t.Errorf("after the tune %s expires in %s; it was kept loaded forever before", model, left.Round(time.Second))
			}
		})
	}
}

func TestKeepAliveUntil(t *testing.T) {
	now := time.Date(2026, 12, 2, 4, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name string
		exp  time.Time
		want *api.Duration
	}{
		{"unknown", time.Time{}, nil},
		{"kept forever", now.Add(time.Duration(math.MaxInt64)), &api.Duration{Duration: -1}},
		{"the rest of its keep-alive", now.Add(90*time.Minute + 400*time.Millisecond), &api.Duration{Duration: 90 * time.Minute}},
		{"about to expire", now.Add(10 * time.Second), nil},
		{"expired", now.Add(-time.Second), nil},
	} {
		got := keepAliveUntil(tt.exp, now)
		if (got == nil) != (tt.want == nil) || got != nil && got.Duration != tt.want.Duration {
			t.Errorf("%s: keepAliveUntil = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestOutputBytes(t *testing.T) {
	norm := api.Tensor{Name: "output_norm.weight", Type: "F32", Shape: []uint64{4096}}
	for _, tt := range []struct {
		name    string
		tensors []api.Tensor
		want    float64
	}{
		{"output and its norm", []api.Tensor{
			{Name: "token_embd.weight", Type: "Q4_K", Shape: []uint64{4096, 128256}},
			norm,
			{Name: "output.weight", Type: "Q6_K", Shape: []uint64{4096, 128256}},
			{Name: "blk.0.attn_q.weight", Type: "Q4_K", Shape: []uint64{4096, 4096}},
		}, 4096*4 + 4096/256*210*128256},
		{"tied to the token embeddings", []api.Tensor{
			{Name: "token_embd.weight", Type: "F16", Shape: []uint64{896, 151936}},
			{Name: "output_norm.weight", Type: "F32", Shape: []uint64{896}},
		}, 896*151936*2 + 896*4},
		{"a type Ollama's ggml does not parse", []api.Tensor{norm, {Name: "output.weight", Type: "IQ2_XXS", Shape: []uint64{4096, 128256}}}, 0},
		{"no tensors (an older server)", nil, 0},
	} {
		if got := outputBytes(tt.tensors); got != tt.want {
			t.Errorf("%s: outputBytes = %.0f, want %.0f", tt.name, got, tt.want)
		}
	}
	// The simulator's tensors say what its memory model places last.
	for _, m := range gpusim.Models() {
		if got, want := outputBytes(m.Tensors()), float64(m.OutputBytes); math.Abs(got-want) > 4*float64(m.EmbeddingLength) {
			t.Errorf("%s: outputBytes of the simulator's tensors = %.0f, want about %.0f", m.Name, got, want)
		}
	}
}

// TestPadHyps: two neighbours of one size show padding; the block sizes
// kept are those under which exactly the neighbours of one size share a
// block.
func TestPadHyps(t *testing.T) {
	pt := func(c int, gb float64) Probe { return Probe{Context: c, Size: int64(gb * (1 << 30))} }
	for _, tt := range []struct {
		name string
		pts  []Probe
		want []int
	}{
		{"no plateau", []Probe{pt(20480, 7), pt(24576, 8)}, nil},
		{"a plateau inside a 4096 block", []Probe{pt(29696, 24.92), pt(30720, 24.92), pt(33792, 25.99)}, []int{2048, 4096, 8192, 16384}},
		{"the point below ends the block", []Probe{pt(24576, 24.13), pt(26624, 25.76), pt(27648, 25.76), pt(33792, 29.01)}, []int{4096, 8192}},
		{"a plateau across 2048 blocks", []Probe{pt(22528, 32.27), pt(23552, 33.9), pt(24576, 33.9)}, []int{2048}},
	} {
		if got := padHyps(tt.pts, 1024); !slices.Equal(got, tt.want) {
			t.Errorf("%s: padHyps = %v, want %v", tt.name, got, tt.want)
		}
	}
	// Under a block size, a candidate in a measured point's block has its
	// size; others are predicted as without padding.
	p := &tunePlan{step: 1024, max: 32768, pad: 4096, probes: []Probe{pt(29696, 24.92), pt(30720, 24.92)}}
	if s, ok := p.paddedAt(p.points(), 32768); !ok || s != float64(pt(0, 24.92).Size) {
		t.Errorf("paddedAt(32768) = %v, %v; want the block's size", s, ok)
	}
	if _, ok := p.paddedAt(p.points(), 33792); ok {
		t.Error("paddedAt(33792): the next block has no measured size")
	}
}

// TestTuneSaysWhatItUnloaded: the other models Ollama unloads to make
// room for the tune's loads are named, since the tune does not put them
// back.
func TestTuneSaysWhatItUnloaded(t *testing.T) {
	gpu, _ := gpusim.LookupGPU("8GB")
	sim := gpusim.New(gpusim.Config{GPU: gpu})
	if err := sim.Load("qwen2.5:0.5b", 4096, gpusim.Forever); err != nil {
		t.Fatal(err)
	}
	res, err := Tune(context.Background(), simClient(t, sim), Options{Model: "qwen2.5-coder:7b", GPU: ollama.GPUPresent})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Unloaded, []string{"qwen2.5:0.5b"}) {
		t.Errorf("Unloaded = %v after %s; want qwen2.5:0.5b, which the tune's loads evicted", res.Unloaded, probeTrace(res.Probes))
	}
	// A model that stays loaded beside the tuned one is not named.
	sim = gpusim.New(gpusim.Config{GPU: gpu})
	if err := sim.Load("qwen2.5:0.5b", 4096, gpusim.Forever); err != nil {
		t.Fatal(err)
	}
	res, err = Tune(context.Background(), simClient(t, sim), Options{Model: "qwen2.5:0.5b", GPU: ollama.GPUPresent})
	if err != nil || len(res.Unloaded) != 0 {
		t.Errorf("tuning the only loaded model: Unloaded = %v, %v; want none", res.Unloaded, err)
	}
}
