package tune

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ollama/ollama/api"

	"github.com/ctxfit/ctxfit/internal/gpusim"
)

// simPS returns what sim's /api/ps lists, without a listener.
func simPS(t testing.TB, sim *gpusim.Server) []api.ProcessModelResponse {
	t.Helper()
	rec := httptest.NewRecorder()
	sim.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/ps", nil))
	var ps api.ProcessResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &ps); err != nil {
		t.Fatalf("/api/ps: %v: %s", err, rec.Body)
	}
	return ps.Models
}

// jointFits loads the companions and then model at c on a fresh simulator
// and reports whether /api/ps then lists every one of them 100% on the GPU.
func jointFits(t testing.TB, cfg gpusim.Config, model string, c int, comps []Companion) bool {
	t.Helper()
	sim := gpusim.New(cfg)
	for _, m := range comps {
		if err := sim.Load(m.Model, m.Context, 0); err != nil {
			return false // refused for lack of RAM
		}
	}
	if err := sim.Load(model, c, 0); err != nil {
		return false
	}
	ps := simPS(t, sim)
	if len(ps) != len(comps)+1 {
		return false
	}
	for _, m := range ps {
		if m.Size != m.SizeVRAM {
			return false
		}
	}
	return true
}

// exhaustiveJoint returns the largest multiple of step up to the trained
// context at which the set fits together, trying every one; 0 when none does.
func exhaustiveJoint(t testing.TB, cfg gpusim.Config, m gpusim.Model, step int, comps []Companion) int {
	t.Helper()
	best := 0
	for c := step; c <= m.TrainedContext; c += step {
		if jointFits(t, cfg, m.Name, c, comps) {
			best = c
		}
	}
	return best
}

// jointCase is one joint tune of the matrix.
type jointCase struct {
	gpu   gpusim.GPU
	model gpusim.Model
	comps []Companion
}

func (c jointCase) String() string {
	parts := []string{c.gpu.Name, c.model.Name}
	for _, m := range c.comps {
		parts = append(parts, "+"+m.String())
	}
	return strings.Join(parts, "/")
}

// companionSets are the companions of the matrix: an autocomplete model, an
// embeddings-sized one, and both, at the contexts such clients ask for.
var companionSets = [][]Companion{
	{{Model: "qwen2.5:0.5b", Context: 2048}},
	{{Model: "qwen2.5-coder:7b", Context: 4096}},
	{{Model: "gemma2:9b", Context: 8192}},
	{{Model: "qwen2.5:0.5b", Context: 2048}, {Model: "qwen2.5-coder:7b", Context: 4096}},
	{{Model: "qwen2.5:0.5b"}, {Model: "gemma2:9b", Context: 4096}},
}

// jointMatrix returns every GPU preset × every preset model × every
// companion set that does not contain the model: sets of 2 and 3 models.
func jointMatrix() []jointCase {
	var cs []jointCase
	for _, g := range gpusim.GPUs() {
		for _, m := range gpusim.Models() {
		sets:
			for _, set := range companionSets {
				for _, c := range set {
					if c.Model == m.Name {
						continue sets
					}
				}
				cs = append(cs, jointCase{g, m, set})
			}
		}
	}
	return cs
}

// runJoint tunes c and checks the answer against the exhaustive joint
// search; it returns the loads, companions' included, and whether the set
// fits.
func runJoint(t testing.TB, c jointCase) (loads int, fits bool) {
	t.Helper()
	cfg := gpusim.Config{GPU: c.gpu}
	sim := gpusim.New(cfg)
	client := simClient(t, sim)
	res, err := Tune(context.Background(), client, Options{Model: c.model.Name, Companions: c.comps})
	if c.gpu.VRAM == 0 {
		if !errors.Is(err, ErrCPUOnly) {
			t.Errorf("%s: Tune = %d, %v; want ErrCPUOnly", c, res.Context, err)
		}
		return res.Loads, false
	}
	want := exhaustiveJoint(t, cfg, c.model, DefaultStep, c.comps)
	if want == 0 {
		var jd *JointDoesNotFitError
		var dnf *DoesNotFitError
		if !(errors.As(err, &jd) || errors.As(err, &dnf)) || !errors.Is(err, ErrDoesNotFit) || res.Context != 0 {
			t.Errorf("%s: Tune = %d, %v; the exhaustive search finds nothing that fits", c, res.Context, err)
		}
		return res.Loads, false
	}
	if err != nil {
		t.Errorf("%s: %v (probes %s)", c, err, probeTrace(res.Probes))
		return res.Loads, true
	}
	if res.Context != want {
		t.Errorf("%s: Tune = %d, exhaustive joint search = %d (probes %s)", c, res.Context, want, probeTrace(res.Probes))
	}
	if testing.Verbose() && res.Loads >= 8 {
		t.Logf("%s: %d in %d loads (%d of companions): %s", c, want, res.Loads, res.CompanionLoads, probeTrace(res.Probes))
	}
	// A load refused for lack of RAM counts here, not in the server.
	if sim.Loads() > res.Loads || res.Loads != len(res.Probes)+res.CompanionLoads {
		t.Errorf("%s: %d loads reported (%d probes, %d companions), the server saw %d", c, res.Loads, len(res.Probes), res.CompanionLoads, sim.Loads())
	}
	// The whole set stays loaded, the model at the answer, all on the GPU.
	ps := simPS(t, sim)
	if len(ps) != len(c.comps)+1 {
		t.Errorf("%s: after the tune /api/ps lists %d models, want %d", c, len(ps), len(c.comps)+1)
	}
	for _, m := range ps {
		if m.Size != m.SizeVRAM {
			t.Errorf("%s: after the tune %s is not whole on the GPU", c, m.Name)
		}
		if m.Name == c.model.Name && m.ContextLength != res.Context {
			t.Errorf("%s: after the tune %s runs at %d, want %d", c, m.Name, m.ContextLength, res.Context)
		}
	}
	if len(res.Companions) != len(c.comps) {
		t.Errorf("%s: result lists companions %+v", c, res.Companions)
	}
	for _, m := range res.Companions {
		if !m.Fits() || m.Loaded == 0 {
			t.Errorf("%s: companion %+v in the result", c, m)
		}
	}
	return res.Loads, true
}

// TestTuneJointMatrix: over every GPU preset, sets of 2 and 3 models give
// the exhaustive joint search's answer, the never-fits sets included.
func TestTuneJointMatrix(t *testing.T) {
	cs := jointMatrix()
	total, worst, fits, fitLoads := 0, 0, 0, 0
	var worstCase jointCase
	for _, c := range cs {
		n, fit := runJoint(t, c)
		total += n
		if n > worst {
			worst, worstCase = n, c
		}
		if fit {
			fits++
			fitLoads += n
		}
	}
	mean := float64(total) / float64(len(cs))
	t.Logf("%d joint tunes: mean %.2f loads (companions' included), worst %d (%s); the %d sets that fit: mean %.2f loads",
		len(cs), mean, worst, worstCase, fits, float64(fitLoads)/float64(max(fits, 1)))
	if fits < len(cs)/3 {
		t.Errorf("only %d of %d sets fit: the matrix tests too little", fits, len(cs))
	}
}

// BenchmarkTuneJoint reports the loads per joint tune over the matrix as
// loads/op (companions' loads included) and the worst as worst-loads.
func BenchmarkTuneJoint(b *testing.B) {
	cs := jointMatrix()
	total, worst := 0, 0
	for i := 0; i < b.N; i++ {
		l, _ := runJoint(b, cs[i%len(cs)])
		total += l
		worst = max(worst, l)
	}
	b.ReportMetric(float64(total)/float64(b.N), "loads/op")
	b.ReportMetric(float64(worst), "worst-loads")
}

// TestTuneJointNeverFits: sets that cannot share the GPU say so with their
// sizes and what would fit.
func TestTuneJointNeverFits(t *testing.T) {
	tests := []struct {
		name      string
		gpu       string
		maxLoaded int
		model     string
		comps     []Companion
		says      []string
	}{
		{
			name: "weights", gpu: "16GB", model: "llama3.1:8b-instruct-fp16",
			comps: []Companion{{Model: "qwen2.5-coder:7b", Context: 4096}},
			says: []string{"llama3.1:8b-instruct-fp16 at num_ctx 1024", "qwen2.5-coder:7b at num_ctx 4096", "do not stay on the GPU together",
				"loading them unloaded", "a smaller model or a smaller context for qwen2.5-coder:7b", "on the CPU", "num_gpu 0"},
		},
		{
			name: "companions alone", gpu: "8GB", model: "qwen2.5:0.5b",
			comps: []Companion{{Model: "qwen2.5-coder:7b", Context: 4096}, {Model: "gemma2:9b", Context: 4096}},
			says:  []string{"qwen2.5-coder:7b at num_ctx 4096", "gemma2:9b at num_ctx 4096", "do not stay on the GPU together", "smaller context for qwen2.5-coder:7b"},
		},
		{
			name: "too many models", gpu: "24GB", maxLoaded: 1, model: "qwen2.5-coder:7b",
			comps: []Companion{{Model: "qwen2.5:0.5b", Context: 2048}},
			says:  []string{"keeps fewer models loaded than 2", "OLLAMA_MAX_LOADED_MODELS=2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gpu, _ := gpusim.LookupGPU(tt.gpu)
			sim := gpusim.New(gpusim.Config{GPU: gpu, MaxLoaded: tt.maxLoaded})
			res, err := Tune(context.Background(), simClient(t, sim), Options{Model: tt.model, Companions: tt.comps})
			var jd *JointDoesNotFitError
			if !errors.As(err, &jd) || !errors.Is(err, ErrDoesNotFit) {
				t.Fatalf("Tune = %d, %v; want a JointDoesNotFitError", res.Context, err)
			}
			for _, want := range tt.says {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("message %q lacks %q", err, want)
				}
			}
			for _, c := range jd.Companions {
				if c.Size <= 0 {
					t.Errorf("companion %+v has no size", c)
				}
			}
			if res.Context != 0 || sim.Loads() > res.Loads {
				t.Errorf("result %+v; the server saw %d loads", res, sim.Loads())
			}
		})
	}
}

// TestTuneJointUnloadsOthers: a model outside the set is unloaded before
// the tune, and said so.
func TestTuneJointUnloadsOthers(t *testing.T) {
	gpu, _ := gpusim.LookupGPU("24GB")
	sim := gpusim.New(gpusim.Config{GPU: gpu})
	if err := sim.Load("gemma2:9b", 8192, 0); err != nil {
		t.Fatal(err)
	}
	comps := []Companion{{Model: "qwen2.5:0.5b", Context: 2048}}
	res, err := Tune(context.Background(), simClient(t, sim), Options{Model: "qwen2.5-coder:7b", Companions: comps})
	if err != nil {
		t.Fatal(err)
	}
	want := exhaustiveJoint(t, gpusim.Config{GPU: gpu}, mustModel(t, "qwen2.5-coder:7b"), DefaultStep, comps)
	if res.Context != want {
		t.Errorf("Tune = %d, want %d", res.Context, want)
	}
	for _, m := range simPS(t, sim) {
		if m.Name == "gemma2:9b" {
			t.Errorf("gemma2:9b is still loaded")
		}
	}
}

// TestTuneJointCompanionAtItsContext: a companion loaded at another
// context than it runs with is reloaded at its own before the first probe.
func TestTuneJointCompanionAtItsContext(t *testing.T) {
	gpu, _ := gpusim.LookupGPU("24GB")
	sim := gpusim.New(gpusim.Config{GPU: gpu})
	if err := sim.Load("qwen2.5-coder:7b", 32768, 0); err != nil {
		t.Fatal(err)
	}
	comps := []Companion{{Model: "qwen2.5-coder:7b", Context: 4096}}
	res, err := Tune(context.Background(), simClient(t, sim), Options{Model: "llama3.1:8b-instruct-fp16", Companions: comps})
	if err != nil {
		t.Fatal(err)
	}
	if want := exhaustiveJoint(t, gpusim.Config{GPU: gpu}, mustModel(t, "llama3.1:8b-instruct-fp16"), DefaultStep, comps); res.Context != want {
		t.Errorf("Tune = %d, want %d", res.Context, want)
	}
	for _, m := range simPS(t, sim) {
		if m.Name == "qwen2.5-coder:7b" && m.ContextLength != 4096 {
			t.Errorf("the companion runs at %d, want 4096", m.ContextLength)
		}
	}
	if res.Companions[0].Loaded != 4096 || res.CompanionLoads == 0 {
		t.Errorf("companions %+v after %d companion loads", res.Companions, res.CompanionLoads)
	}
}

func TestTuneJointBadOptions(t *testing.T) {
	sim := gpusim.New(gpusim.Config{GPU: gpusim.GPUs()[2]})
	client := simClient(t, sim)
	tests := []struct {
		comps []Companion
		says  string
	}{
		{[]Companion{{Model: "qwen2.5:0.5b"}, {Model: "qwen2.5:0.5b", Context: 2048}}, "given twice"},
		{[]Companion{{Model: "qwen2.5-coder:7b"}}, "cannot also run beside itself"},
		{[]Companion{{Model: ""}}, "no model name"},
		{[]Companion{{Model: "nosuch:1b"}}, "model not found"},
	}
	for _, tt := range tests {
		_, err := Tune(context.Background(), client, Options{Model: "qwen2.5-coder:7b", Companions: tt.comps})
		if err == nil || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("companions %+v: %v, want an error saying %q", tt.comps, err, tt.says)
		}
	}
}

func TestParseCompanion(t *testing.T) {
	tests := []struct {
		in   string
		want Companion
		err  bool
	}{
		{"qwen2.5-coder:1.5b", Companion{Model: "qwen2.5-coder:1.5b"}, false},
		{"qwen2.5-coder:1.5b=4096", Companion{Model: "qwen2.5-coder:1.5b", Context: 4096}, false},
		{" hf.co/x/y:Q4_K_M = 2048 ", Companion{Model: "hf.co/x/y:Q4_K_M", Context: 2048}, false},
		{"m=0", Companion{}, true},
		{"m=4k", Companion{}, true},
		{"m=-1", Companion{}, true},
		{"=4096", Companion{}, true},
	}
	for _, tt := range tests {
		got, err := ParseCompanion(tt.in)
		if (err != nil) != tt.err || (!tt.err && got != tt.want) {
			t.Errorf("ParseCompanion(%q) = %+v, %v", tt.in, got, err)
		}
		if !tt.err && fmt.Sprint(got) != strings.ReplaceAll(strings.ReplaceAll(strings.TrimSpace(tt.in), " = ", "="), " ", "") {
			t.Errorf("%+v prints as %q", got, got)
		}
	}
}

// TestTuneJointRefused: a model the server refuses for lack of RAM even at
// the smallest context, before any load showed a GPU, is told as too big
// for the memory, not as a CPU-only server; the companions, loaded alone,
// tell a server without a GPU.
func TestTuneJointRefused(t *testing.T) {
	for _, tt := range []struct {
		gpu  string
		want error
		says string
	}{
		{"8GB", ErrDoesNotFit, "the server refused the load: model requires more system memory"},
		{"none", ErrCPUOnly, "loaded with nothing in VRAM"},
	} {
		g, _ := gpusim.LookupGPU(tt.gpu)
		sim := gpusim.New(gpusim.Config{GPU: g})
		res, err := Tune(context.Background(), simClient(t, sim), Options{Model: "llama3.1:70b", Companions: []Companion{{Model: "qwen2.5:0.5b", Context: 2048}}})
		if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("%s: Tune = %v (loads %s); want %v saying %q", tt.gpu, err, probeTrace(res.Probes), tt.want, tt.says)
		}
	}
}
