package tune

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ctxfit/ctxfit/internal/gpusim"
	"github.com/ctxfit/ctxfit/internal/ollamatest"
)

// The physics families: ways real servers size a load and place it on the
// GPU that differ from the simulator's, which the tuner's predictions were
// first built on. Each family answers, for a model at a context on a GPU
// of a given usable size, what /api/ps would report (size, size_vram) or
// that the server refused the load. The tuner must be exact on every one
// and spend few loads on all of them, not just on one.

// physics is one family.
type physics struct {
	name     string
	ramShare float64 // see scheduler.ramShare; 0: the machine's RAM
	// place returns the load of m at context c with parallel slots on a
	// GPU that holds gpu bytes.
	place func(m gpusim.Model, c, parallel int, gpu int64) Probe
}

// scheduler is a configurable version of Ollama's placement: the whole
// load when it fits, else the compute graph and as many whole layers as
// fit beside it.
type scheduler struct {
	// graph returns the compute graph's bytes with tokens cached (context
	// × slots).
	graph func(m gpusim.Model, tokens float64) float64
	// kvPad rounds the KV cache's cells up to a multiple (llama.cpp pads
	// to 256); graphAlign rounds the graph up (allocators work in chunks).
	kvPad, graphAlign float64
	// outputFirst puts the output weights on the GPU before any repeating
	// layer, as one more unit of a different size.
	outputFirst bool
	// graphAlone keeps the graph on the GPU even when no layer fits, so
	// that size_vram can exceed the GPU.
	graphAlone bool
	// ramShare, when positive, is the system memory free for the part of
	// a load that is not on the GPU, as a share of the GPU: a larger part
	// is refused ("requires more system memory").
	ramShare float64
}

const famBatch = 512 // Ollama's num_batch

// linearGraph is llama.cpp's graph without flash attention: activations
// plus two f32 score matrices of a batch against every cached token.
func linearGraph(m gpusim.Model, t float64) float64 {
	return 4 * famBatch * (4*float64(m.EmbeddingLength) + 2*float64(m.HeadCount)*t)
}

// flashGraph is a graph that does not grow with the context (flash
// attention works in tiles).
func flashGraph(m gpusim.Model, _ float64) float64 {
	return 4 * famBatch * (4*float64(m.EmbeddingLength) + 2*float64(m.HeadCount)*256)
}

// sqrtGraph grows with the square root of the context; it equals the
// linear graph at 8192 tokens.
func sqrtGraph(m gpusim.Model, t float64) float64 {
	return 4 * famBatch * (4*float64(m.EmbeddingLength) + 2*float64(m.HeadCount)*math.Sqrt(t*8192))
}

// squareGraph grows with the square of the context; it equals the linear
// graph at 32768 tokens.
func squareGraph(m gpusim.Model, t float64) float64 {
	return 4 * famBatch * (4*float64(m.EmbeddingLength) + 2*float64(m.HeadCount)*t*t/32768)
}

func roundUpF(x, step float64) float64 {
	if step <= 0 {
		return x
	}
	return math.Ceil(x/step) * step
}

func (s scheduler) place(m gpusim.Model, c, parallel int, gpu int64) Probe {
	tokens := roundUpF(float64(c*parallel), s.kvPad)
	bpe := m.KVBytesPerElement
	if bpe <= 0 {
		bpe = 2
	}
	layerKV := math.Ceil(2 * float64(m.HeadCountKV) * float64(m.HeadDim()) * bpe * tokens)
	per := float64(m.LayerBytes) + layerKV
	graph := roundUpF(s.graph(m, tokens), s.graphAlign)
	out := float64(m.OutputBytes)
	size := float64(m.Layers)*per + out + graph
	g := float64(gpu)
	pr := Probe{Context: c, Size: int64(size)}
	if size <= g {
		pr.SizeVRAM = pr.Size
		return pr
	}
	free := g - graph
	var vram float64
	if s.outputFirst && free >= out+per {
		free -= out
		vram = out
	}
	k := 0.0
	if free >= per {
		k = math.Min(float64(m.Layers), math.Floor(free/per))
		vram += graph + k*per
	} else {
		vram = 0
		if s.graphAlone {
			vram = graph
		}
	}
	pr.SizeVRAM = int64(vram)
	if s.ramShare > 0 && size-vram > s.ramShare*g {
		return Probe{Context: c, Refused: "model requires more system memory"}
	}
	return pr
}

// ram returns the memory Tune is told the machine of c can give a load:
// the preset's RAM, or what the family leaves free for the part of a load
// off the GPU.
func (ph physics) ram(c famCase) int64 {
	if ph.ramShare > 0 {
		return int64(ph.ramShare * float64(c.gpu))
	}
	return c.ram
}

// simulatorPhysics is gpusim's own memory model, through its Placement.
func simulatorPhysics() physics {
	sims := map[int64]*gpusim.Server{}
	return physics{name: "simulator", place: func(m gpusim.Model, c, parallel int, gpu int64) Probe {
		sim := sims[gpu]
		if sim == nil {
			sim = gpusim.New(gpusim.Config{GPU: gpusim.GPU{Name: "fam", VRAM: gpu, RAM: 1 << 50, Bandwidth: 1e12, CPUBandwidth: 1e11}})
			sims[gpu] = sim
		}
		size, vram, err := sim.Placement(m.Name, c, parallel)
		if err != nil {
			panic(err)
		}
		return Probe{Context: c, Size: size, SizeVRAM: vram}
	}}
}

// families returns the physics the tuner is measured on.
func families() []physics {
	fam := func(name string, s scheduler) physics {
		return physics{name: name, ramShare: s.ramShare, place: s.place}
	}
	return []physics{
		simulatorPhysics(),
		fam("linear graph, kv pad 256", scheduler{graph: linearGraph, kvPad: 256}),
		fam("graph ∝ sqrt(ctx)", scheduler{graph: sqrtGraph, kvPad: 256}),
		fam("graph ∝ ctx²", scheduler{graph: squareGraph, kvPad: 256}),
		fam("constant graph (flash)", scheduler{graph: flashGraph, kvPad: 256}),
		fam("output layer first", scheduler{graph: linearGraph, kvPad: 256, outputFirst: true}),
		fam("padding steps", scheduler{graph: linearGraph, kvPad: 4096, graphAlign: 256 << 20}),
		fam("graph alone on GPU", scheduler{graph: linearGraph, kvPad: 256, graphAlone: true}),
		fam("sqrt graph alone, output first", scheduler{graph: sqrtGraph, kvPad: 256, graphAlone: true, outputFirst: true}),
		fam("refusals", scheduler{graph: linearGraph, kvPad: 256, ramShare: 0.5}),
	}
}

// famCase is one tune of one family.
type famCase struct {
	model    gpusim.Model
	gpu      int64 // usable bytes
	ram      int64 // the machine's RAM, as Tune is told it (Options.RAM)
	gpuName  string
	parallel int
	step     int
}

func (c famCase) String() string {
	return fmt.Sprintf("%s/%s/p%d/s%d", c.gpuName, c.model.Name, c.parallel, c.step)
}

// famCases returns the simulator's matrix (see matrix): every GPU preset
// with a GPU × every model preset × parallel 1/2/4 × step 1024/4096, so
// that the simulator family reproduces TestTuneMatrix and the others
// change only the physics.
func famCases() []famCase {
	var cs []famCase
	for _, c := range matrix() {
		cs = append(cs, famCase{c.model, c.gpu.VRAM, c.gpu.RAM, c.gpu.Name, c.parallel, c.step})
	}
	return cs
}

// modelInfo returns /api/show's model_info for m, as gpusim serves it.
func modelInfo(m gpusim.Model) map[string]any {
	a := m.Arch
	info := map[string]any{
		"general.architecture":         a,
		a + ".block_count":             float64(m.Layers),
		a + ".context_length":          float64(m.TrainedContext),
		a + ".embedding_length":        float64(m.EmbeddingLength),
		a + ".attention.head_count":    float64(m.HeadCount),
		a + ".attention.head_count_kv": float64(m.HeadCountKV),
	}
	if m.KeyLength > 0 {
		info[a+".attention.key_length"] = float64(m.KeyLength)
	}
	if m.ValueLength > 0 {
		info[a+".attention.value_length"] = float64(m.ValueLength)
	}
	return info
}

// famResult is what one tune over a family did.
type famResult struct {
	loads  int
	answer int // the tune's answer, 0 for "does not fit"
	want   int // the exhaustive search's
	probes []Probe
}

// newFamPlan returns the plan Tune makes for c.
func newFamPlan(c famCase) *tunePlan {
	ma := parseModelArch(modelInfo(c.model))
	ma.output = outputBytes(c.model.Tensors())
	return newTunePlan(ma, c.step, c.parallel, float64(c.model.Size()))
}

// A famStart is what the tuner knows before its first load: prep gives
// the plan its priors and returns the guard Tune would run it under (see
// gpuGuard), or reports false when the start does not apply to the case.
type famStart struct {
	name string
	prep func(ph physics, c famCase, p *tunePlan) (gpuGuard, bool)
}

// famStarts returns the starts each family is measured from: nothing
// known, on the machine that runs the server (the first tune there: its
// first load must not swap the machine, which might have no GPU); the
// model left spilled at a context a client asks for (the usual reason to
// tune, which Tune finds in /api/ps as Result.Before, with a GPU seen);
// and a GPU bound from an earlier tune of another model on the same host.
func famStarts() []famStart {
	return []famStart{
		{"cold", func(ph physics, c famCase, _ *tunePlan) (gpuGuard, bool) {
			return gpuGuard{ram: ph.ram(c)}, true
		}},
		{"after a spill", func(ph physics, c famCase, p *tunePlan) (gpuGuard, bool) {
			pr, ok := clientSpill(ph, c)
			if ok {
				p.addPrior(pr, true)
			}
			return gpuGuard{seen: true}, ok
		}},
		{"known host", func(ph physics, c famCase, p *tunePlan) (gpuGuard, bool) {
			lo, up, ok := hostBound(ph, c)
			if ok {
				p.setHostBound(lo, up)
			}
			return gpuGuard{seen: true}, ok
		}},
	}
}

// clientSpill returns the load a client left before the tune: the model at
// its trained context clamped to 32768, else to 131072, the first of them
// that spilled with something in VRAM; false when neither did.
func clientSpill(ph physics, c famCase) (Probe, bool) {
	for _, ctx := range []int{32768, 131072} {
		ctx = min(ctx, c.model.TrainedContext)
		pr := ph.place(c.model, ctx, c.parallel, c.gpu)
		if !pr.Fits() && pr.Refused == "" && pr.SizeVRAM > 0 {
			return pr, true
		}
	}
	return Probe{}, false
}

// hostBound returns the GPU bound a cold tune of another model on the same
// GPU (same physics, slots and step) learned, as Tune would store it: the
// first other model, in the presets' order after c's, whose tune bounded
// the GPU from above; false when none did.
func hostBound(ph physics, c famCase) (lo, up float64, ok bool) {
	models := gpusim.Models()
	at := 0
	for i, m := range models {
		if m.Name == c.model.Name {
			at = i
		}
	}
	for k := 1; k < len(models); k++ {
		o := c
		o.model = models[(at+k)%len(models)]
		p := newFamPlan(o)
		tuneFam(ph, o, p, gpuGuard{ram: ph.ram(o)})
		if lo, up := p.gpuBound(); !math.IsInf(up, 1) {
			return lo, up, true
		}
	}
	return 0, 0, false
}

// tuneFam runs the plan p over c under ph until it is done, as Tune runs
// it under the guard g, and returns the loads it made and whether the
// guard took the server for CPU-only (wrong: every family has a GPU).
func tuneFam(ph physics, c famCase, p *tunePlan, g gpuGuard) (loads int, cpuOnly bool) {
	for {
		x, done := g.next(p)
		if done {
			break
		}
		if loads++; loads > MaxLoads {
			break
		}
		pr := ph.place(c.model, x, c.parallel, c.gpu)
		p.add(pr)
		if g.after(p, pr) {
			return loads, true
		}
	}
	return loads, false
}

// runFamCase tunes c under ph with the tuner's plan, fed as Tune feeds it
// from start, and returns the loads and the answers; false when the start
// does not apply to c.
func runFamCase(ph physics, c famCase, start famStart) (famResult, bool) {
	p := newFamPlan(c)
	g, ok := start.prep(ph, c, p)
	if !ok {
		return famResult{}, false
	}
	want := 0
	for x := c.step; x <= p.max; x += c.step {
		if ph.place(c.model, x, c.parallel, c.gpu).Fits() {
			want = x
		}
	}
	var r famResult
	r.want = want
	loads, cpuOnly := tuneFam(ph, c, p, g)
	r.loads = loads
	r.probes = p.probes
	r.answer, _ = p.bracket()
	if cpuOnly || !provenAnswer(p, r.answer) {
		r.answer = -r.answer // not proven by the loads: wrong
	}
	return r, true
}

// famStats sums one family's tunes.
type famStats struct {
	name                string
	tunes, loads, worst int
	floor               int // the loads of a tuner that knew the answer beforehand
	wrong               int
	worstCase           string
	atMax, doesNotFit   int // answers at the trained context, and none
}

func (s famStats) mean() float64 { return float64(s.loads) / float64(s.tunes) }

// knownFloor returns the loads a tuner that knew the answer want would
// need to prove it: a fit at max, or a spill at the smallest context, or a
// spill at want+step and a fit at want.
func knownFloor(want, max, step int) int {
	if want == max || want == 0 {
		return 1
	}
	return 2
}

func runFamily(t testing.TB, ph physics, start famStart) famStats {
	st := famStats{name: ph.name}
	for _, c := range famCases() {
		r, ok := runFamCase(ph, c, start)
		if !ok {
			continue
		}
		st.tunes++
		st.loads += r.loads
		st.floor += knownFloor(r.want, c.model.TrainedContext/c.step*c.step, c.step)
		if r.loads > st.worst {
			st.worst, st.worstCase = r.loads, fmt.Sprintf("%s: %s", c, probeTrace(r.probes))
		}
		switch {
		case r.answer != r.want:
			st.wrong++
			t.Errorf("%s, %s start, %s: answer %d, exhaustive %d (%s)", ph.name, start.name, c, r.answer, r.want, probeTrace(r.probes))
		case r.want == 0:
			st.doesNotFit++
		case r.want == c.model.TrainedContext/c.step*c.step:
			st.atMax++
		}
	}
	return st
}

// famTable formats the per-family table.
func famTable(stats []famStats) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-32s %6s %6s %6s %6s %6s %8s %8s\n", "family", "tunes", "mean", "floor", "worst", "exact", "at max", "no fit")
	tot := famStats{name: "all"}
	for _, s := range append(stats, famStats{}) {
		if s.name == "" {
			s = tot
		} else {
			tot.tunes += s.tunes
			tot.loads += s.loads
			tot.floor += s.floor
			tot.worst = max(tot.worst, s.worst)
			tot.wrong += s.wrong
			tot.atMax += s.atMax
			tot.doesNotFit += s.doesNotFit
		}
		fmt.Fprintf(&b, "%-32s %6d %6.2f %6.2f %6d %5d%% %8d %8d\n", s.name, s.tunes, s.mean(), float64(s.floor)/float64(s.tunes), s.worst,
			100*(s.tunes-s.wrong)/s.tunes, s.atMax, s.doesNotFit)
	}
	return b.String()
}

// TestTuneFamilies runs the tuner over every physics family from each
// start (famStarts), as Tune runs it: it must be exact on each, and its
// load counts must not regress. Issue 15 asks for a mean of at most 2.2
// loads and a worst of 4. Every start meets the mean. The worst is 5 or 6
// in a few warm tunes of a thousand (walking down through spills that had
// every layer on the GPU under a graph that does not grow, padding steps,
// a host bound learned from refusals that bounds nothing) and up to 8
// cold: a cold tune knows nothing of the GPU, and when a load spills with
// nothing in VRAM it bounds the GPU only from above, so an answer below
// needs a load that measures the GPU (a spill with layers in VRAM, or the
// smallest context), then a spill above the answer and a fit at it. The
// families include the real scheduler's curves (runMeasured), replayed
// from every start. The bounds are today's figures, the means rounded up
// at the third decimal.
func TestTuneFamilies(t *testing.T) {
	bounds := map[string]struct {
		mean  float64
		worst int
	}{
		"cold":          {1.895, 8},
		"after a spill": {1.751, 5},
		"known host":    {1.501, 6},
	}
	ms := loadMeasured(t)
	for _, start := range famStarts() {
		var stats []famStats
		for _, ph := range families() {
			st := runFamily(t, ph, start)
			stats = append(stats, st)
			if testing.Verbose() {
				t.Logf("%s start, %s: worst %s", start.name, st.name, st.worstCase)
			}
		}
		// The known host start needs two curves of one server
		// configuration, so it may have no tune.
		if st := runMeasured(t, ms, start.name); st.tunes > 0 {
			stats = append(stats, st)
			if testing.Verbose() {
				t.Logf("%s start, %s: worst %s", start.name, st.name, st.worstCase)
			}
		}
		t.Logf("loads per tune by physics, %s start:\n%s", start.name, famTable(stats))
		loads, tunes, worst := 0, 0, 0
		for _, s := range stats {
			loads += s.loads
			tunes += s.tunes
			worst = max(worst, s.worst)
		}
		b := bounds[start.name]
		if mean := float64(loads) / float64(tunes); mean > b.mean || worst > b.worst {
			t.Errorf("%s start, over the families: mean %.3f loads, worst %d; want at most %.3f and %d", start.name, mean, worst, b.mean, b.worst)
		}
	}
}

// BenchmarkTuneFamilies reports the loads per tune over all families from
// a cold start.
func BenchmarkTuneFamilies(b *testing.B) {
	fams := families()
	cases := famCases()
	cold := famStarts()[0]
	total, worst, n := 0, 0, 0
	for i := 0; i < b.N; i++ {
		r, _ := runFamCase(fams[i%len(fams)], cases[(i/len(fams))%len(cases)], cold)
		total += r.loads
		worst = max(worst, r.loads)
		n++
	}
	b.ReportMetric(float64(total)/float64(n), "loads/op")
	b.ReportMetric(float64(worst), "worst-loads")
}

// measured is a load curve measured on Ollama's real scheduler: the GPU
// tests' exhaustive search (ollamatest.Sweep) on the software GPU, with the
// model's shape and the server's configuration, kept under
// testdata/realsched/ (written by TestMeasureRealSched) so that the tuner
// is measured on it without a server.
type measured struct {
	Engine  string `json:"engine"`
	Version string `json:"version"`
	Weights int64  `json:"weights"` // /api/tags size
	// Overhead is the server's OLLAMA_GPU_OVERHEAD and FlashAttention its
	// OLLAMA_FLASH_ATTENTION: with Engine, the server's configuration.
	Overhead       int64            `json:"overhead"`
	FlashAttention bool             `json:"flash_attention,omitempty"`
	Shape          ollamatest.Shape `json:"shape"`
	Sweep          ollamatest.Sweep `json:"sweep"`

	file string // the file's base name
}

// opts returns the server configuration m was measured on.
func (m measured) opts() ollamatest.GPUOptions {
	return ollamatest.GPUOptions{Engine: ollamatest.Engine(m.Engine), Overhead: m.Overhead, FlashAttention: m.FlashAttention}
}

// loadMeasured reads testdata/realsched/*.json and checks that each
// curve is whole and monotone and that its key names its configuration.
func loadMeasured(t testing.TB) []measured {
	files, _ := filepath.Glob(filepath.Join("testdata", "realsched", "*.json"))
	var out []measured
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var m measured
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		m.file = filepath.Base(f)
		sw := m.Sweep
		switch {
		case m.Overhead <= 0:
			t.Fatalf("%s: no overhead recorded; the replay groups curves by server configuration", f)
		case sw.Step <= 0 || len(sw.Points) != sw.Max/sw.Step:
			t.Fatalf("%s: %d points for a sweep to %d by %d", f, len(sw.Points), sw.Max, sw.Step)
		case !sw.Monotone():
			t.Fatalf("%s: not monotone (a fit above a spill); the tuner assumes it is", f)
		case m.Version == ollamatest.Version && sw.Key != ollamatest.SweepKey(m.opts(), m.Shape, sw.Step):
			t.Fatalf("%s: key %s does not name the recorded engine, overhead, flash attention, shape and step (want %s)",
				f, sw.Key, ollamatest.SweepKey(m.opts(), m.Shape, sw.Step))
		}
		for i, p := range sw.Points {
			if p.Context != (i+1)*sw.Step {
				t.Fatalf("%s: point %d at %d, want %d", f, i, p.Context, (i+1)*sw.Step)
			}
		}
		out = append(out, m)
	}
	if len(out) == 0 {
		t.Fatal("no measured curves in testdata/realsched (TestMeasureRealSched writes them)")
	}
	return out
}

// measuredSteps are the steps the replay tunes each curve at, where its
// sweep can answer.
var measuredSteps = []int{1024, 2048, 4096}

// plan returns the plan Tune makes for m's model at step, its range cut
// to the sweep's; false when the sweep did not load every multiple of
// step.
func (m measured) plan(step int) (*tunePlan, bool) {
	if step%m.Sweep.Step != 0 || m.Sweep.Max < step {
		return nil, false
	}
	sh := m.Shape
	info := map[string]any{
		"general.architecture":          "llama",
		"llama.block_count":             float64(sh.Layers),
		"llama.context_length":          float64(sh.ContextLength),
		"llama.embedding_length":        float64(sh.Embedding),
		"llama.attention.head_count":    float64(sh.Heads),
		"llama.attention.head_count_kv": float64(sh.KVHeads),
	}
	ma := parseModelArch(info)
	ma.output = outputBytes(sh.Tensors())
	p := newTunePlan(ma, step, 1, float64(m.Weights))
	p.max = min(p.max, m.Sweep.Max/step*step)
	return p, true
}

// load returns the sweep's load at context c; false when it has none.
func (m measured) load(c int) (Probe, bool) {
	if c <= 0 || c%m.Sweep.Step != 0 || c > m.Sweep.Max {
		return Probe{}, false
	}
	pt := m.Sweep.Points[c/m.Sweep.Step-1]
	return Probe{Context: c, Size: pt.Size, SizeVRAM: pt.SizeVRAM}, true
}

// replay runs p over m's sweep under the guard g, as Tune runs it, and
// returns the loads and whether the guard took the server for CPU-only
// (wrong: the software GPU is a GPU). A load the sweep did not make fails
// the test.
func (m measured) replay(t testing.TB, p *tunePlan, g gpuGuard) (loads int, cpuOnly bool) {
	for {
		c, done := g.next(p)
		if done {
			return loads, false
		}
		if loads++; loads > MaxLoads {
			return loads, false
		}
		pr, ok := m.load(c)
		if !ok {
			t.Fatalf("%s step %d: the tune loads %d, which the sweep did not (%s)", m.file, p.step, c, probeTrace(p.probes))
		}
		p.add(pr)
		if g.after(p, pr) {
			return loads, true
		}
	}
}

// measuredCold is the guard of a tune on the machine that measured the
// sweeps (24 GiB of RAM), before it has seen the GPU.
func measuredCold() gpuGuard { return gpuGuard{ram: 24 << 30} }

// measuredHostBound returns the GPU bound a cold tune at step of another
// curve measured on the same server configuration (engine, overhead,
// flash attention) learned, as Tune would store it: the first other curve,
// in the files' order after ms[i], whose tune bounded the GPU from above,
// as hostBound chooses for the simulated families; false when none did.
func measuredHostBound(t testing.TB, ms []measured, i, step int) (lo, up float64, ok bool) {
	for k := 1; k < len(ms); k++ {
		o := ms[(i+k)%len(ms)]
		if o.opts() != ms[i].opts() {
			continue
		}
		p, ok := o.plan(step)
		if !ok {
			continue
		}
		o.replay(t, p, measuredCold())
		if lo, up := p.gpuBound(); !math.IsInf(up, 1) {
			return lo, up, true
		}
	}
	return 0, 0, false
}

// runMeasured tunes each measured curve at each of measuredSteps that its
// sweep can answer, replaying the recorded loads, from start (see
// famStarts): cold, as Tune starts on the machine that measured it; after
// a spill, from the sweep's load at its largest context as the model left
// there by a client, when that spilled with something in VRAM; or from
// the GPU bound a tune of another curve on the same server configuration
// learned (measuredHostBound), when one did.
func runMeasured(t testing.TB, ms []measured, start string) famStats {
	st := famStats{name: "real scheduler (replayed)"}
	for i, m := range ms {
		for _, step := range measuredSteps {
			p, ok := m.plan(step)
			if !ok {
				continue
			}
			var g gpuGuard
			switch start {
			case "cold":
				g = measuredCold()
			case "after a spill":
				pr, _ := m.load(m.Sweep.Max)
				if pr.Fits() || pr.SizeVRAM <= 0 {
					continue
				}
				p.addPrior(pr, true)
				g = gpuGuard{seen: true}
			case "known host":
				lo, up, ok := measuredHostBound(t, ms, i, step)
				if !ok {
					continue
				}
				p.setHostBound(lo, up)
				g = gpuGuard{seen: true}
			default:
				t.Fatalf("runMeasured: unknown start %q", start)
			}
			want := 0
			for c := step; c <= p.max; c += step {
				if pr, _ := m.load(c); pr.Fits() {
					want = c
				}
			}
			loads, cpuOnly := m.replay(t, p, g)
			got, _ := p.bracket()
			if cpuOnly {
				got = -1 // wrong: the software GPU is a GPU
			}
			st.tunes++
			st.loads += loads
			st.floor += knownFloor(want, p.max, step)
			if loads > st.worst {
				st.worst, st.worstCase = loads, fmt.Sprintf("%s step %d: %s", m.file, step, probeTrace(p.probes))
			}
			switch {
			case got != want || !provenAnswer(p, want):
				st.wrong++
				t.Errorf("real scheduler, %s start, %s step %d: answer %d, exhaustive %d (%s)", start, m.file, step, got, want, probeTrace(p.probes))
			case want == 0:
				st.doesNotFit++
			case want == p.max:
				st.atMax++
			}
			if testing.Verbose() {
				t.Logf("real scheduler, %s start, %s step %d: %d loads, answer %d (%s)", start, m.file, step, loads, got, probeTrace(p.probes))
			}
		}
	}
	return st
}
