package tune

import (
	"math"
	"sort"
)

// tunePlan decides which context the tuner loads next. It keeps every
// measured probe and derives two things from them: a bracket of contexts that loads
// have proven (the largest that fit, the smallest that spilled), which alone
// decides the answer, and a prediction of where in that bracket the boundary
// lies, which only chooses the next load.
//
// The prediction models the size of a load as a piecewise-linear function of
// the context (measured points, extended with the slope measured between the
// nearest two, or with the KV cache's bytes per token from the model's
// architecture while only one is known) and the GPU's usable memory as an
// interval: a fit proves it holds at least that load's size; a spill proves
// it holds at least the spilled load's size_vram and less than its size, and
// suggests less than size_vram plus one more layer, since Ollama offloads
// whole layers. With the memory spread over that interval (see capShare),
// each candidate answer gets a probability, and a small dynamic program
// picks the load that minimises the expected number of loads still needed
// (with confirm, counting the rule that the last load must be a fit at the
// answer). While the interval is wide, scout picks loads
// that narrow it instead, and when predictions keep failing the plan falls
// back to bisection.
type tunePlan struct {
	step, max int // candidate contexts are step, 2·step, …, max
	// confirm asks for the last load to be a fit at the answer, for a
	// joint tune, which leaves the set loaded as tuned. A tune of one
	// model puts it back as it found it whatever it loaded last (see
	// restore), so the order of the fit at the answer and the spill
	// above it does not matter there, and asking for it costs a load
	// whenever the fit came first.
	confirm bool
	layers  int     // transformer blocks; 0 when unknown
	slope   float64 // predicted bytes per context token; 0 when unknown
	kvSlope float64 // predicted KV cache bytes per context token, all layers
	weights float64 // the model's weights in bytes (/api/tags); 0 when unknown
	output  float64 // the weights placed after the repeating layers; 0 when unknown
	pad     int     // the block size predictions assume (see predict); 0: none
	probes  []Probe // in the order they were loaded

	// expect is the range of answers the prediction allowed when it chose
	// the last load, if expecting. A load that rules the whole range out
	// is a surprise; after maxSurprises the predictions are not trusted and
	// the plan falls back to bisection, so that a server unlike the model
	// costs a logarithmic number of loads.
	expect    [2]int
	expecting bool
	surprises int
	// scouted is the number of answers the prediction allowed when scout
	// chose the last load, 0 when it did not; a scout that fails to halve
	// them is a surprise too.
	scouted int
	// widths holds the number of unproven candidates each time next chose
	// a load.
	widths []int

	// What was known before the first load (see usePrior): evidence that
	// chooses loads but never proves an answer. priors are loads the
	// server made before the tune (the model as /api/ps listed it);
	// hostLo and hostUp bound the GPU's usable memory as earlier tunes on
	// this host measured it (hostUp +Inf when unbounded). Once the tune's
	// own loads contradict the GPU bounds they give, priorsOff drops them
	// for good. (A failed prediction is no contradiction: it counts as a
	// surprise, like any other; the sizes, not the memory, were wrong.)
	priors         []priorProbe
	hostLo, hostUp float64
	hasHost        bool
	priorsOff      bool
}

// priorProbe is a load the server made before the tune. alone says no
// other model was loaded beside it: only then does its spill bound the
// GPU from above (with others loaded, the server may free their memory
// for the tune's loads).
type priorProbe struct {
	Probe
	alone bool
}

// addPrior records pr, a load measured before the tune, as a prior.
func (p *tunePlan) addPrior(pr Probe, alone bool) {
	if pr.Context <= 0 || pr.Size <= 0 || pr.Refused != "" {
		return
	}
	p.priors = append(p.priors, priorProbe{pr, alone})
}

// setHostBound records that earlier tunes on this host found its GPU's
// usable memory in [lo, up) (up <= 0: no upper bound), as a prior.
func (p *tunePlan) setHostBound(lo, up float64) {
	if up <= 0 {
		up = math.Inf(1)
	}
	if lo < 0 || up <= lo {
		return
	}
	p.hostLo, p.hostUp, p.hasHost = lo, up, true
}

// usePrior reports whether the priors still count.
func (p *tunePlan) usePrior() bool {
	return !p.priorsOff && (len(p.priors) > 0 || p.hasHost)
}

// newTunePlan returns the plan for a model of architecture ma tuned at
// multiples of step with parallel slots; weights is the model's size in
// /api/tags, 0 when unknown.
func newTunePlan(ma modelArch, step, parallel int, weights float64) *tunePlan {
	limit := ma.contextLength
	if limit <= 0 {
		limit = UnknownTrainedContext
	}
	return &tunePlan{
		step:    step,
		max:     limit / step * step,
		layers:  ma.layers,
		slope:   ma.slope(parallel),
		kvSlope: ma.kvBytesPerToken * float64(parallel),
		weights: weights,
		output:  ma.output,
	}
}

// maxSurprises is how many wrong predictions the plan tolerates.
const maxSurprises = 2

// The dynamic program plans over windows of up to scoutOutcomes possible
// answers. Wider windows are narrowed by scout while it applies (see
// scouting), else planned too up to maxDPOutcomes (slower), else split at
// their median.
const (
	scoutOutcomes = 8
	maxDPOutcomes = 48
)

// add records a measured load.
func (p *tunePlan) add(pr Probe) {
	p.probes = append(p.probes, pr)
	if p.expecting {
		lo, hi := p.bracket()
		if hi-p.step < p.expect[0] || lo > p.expect[1] {
			p.surprises++
		}
	}
	p.expecting = false
}

// bracket returns the largest context proven to fit (0 when none) and the
// smallest proven to spill (max+step when none).
func (p *tunePlan) bracket() (lo, hi int) {
	lo, hi = 0, p.max+p.step
	for _, pr := range p.probes {
		if pr.Fits() {
			lo = max(lo, pr.Context)
		} else {
			hi = min(hi, pr.Context)
		}
	}
	return lo, hi
}

// probed reports whether a load at context c was made.
func (p *tunePlan) probed(c int) bool {
	for _, pr := range p.probes {
		if pr.Context == c {
			return true
		}
	}
	return false
}

// settled reports whether the fit proven at c needs no reload: without
// confirm any fit does; with it, only the most recent load.
func (p *tunePlan) settled(c int) bool {
	return !p.confirm || p.lastFitAt(c)
}

// lastFitAt reports whether the most recent load was a fit at context c.
func (p *tunePlan) lastFitAt(c int) bool {
	if len(p.probes) == 0 {
		return false
	}
	last := p.probes[len(p.probes)-1]
	return last.Context == c && last.Fits()
}

// next returns the context to load next, or done when the loads so far
// decide the answer: the largest proven fit lo (0 when even the smallest
// candidate spilled) with lo+step proven to spill or lo == max, and, with
// confirm and lo > 0, the last load a fit at lo.
func (p *tunePlan) next() (ctx int, done bool) {
	if len(p.probes) == 0 && !p.usePrior() {
		return p.max, false // a fit here ends the tune in one load
	}
	lo, hi := p.bracket()
	if lo >= hi {
		// A fit above a spill: the server is not monotone (something else
		// took or freed memory meanwhile). Trust the newest evidence by
		// keeping only probes that agree with the last one.
		p.probes = consistentProbes(p.probes)
		lo, hi = p.bracket()
	}
	n := (hi-lo)/p.step - 1 // unproven candidates strictly between lo and hi
	if n <= 0 {
		if lo == 0 || p.settled(lo) {
			return 0, true
		}
		return lo, false // with confirm: reload the answer, the set stays there
	}
	cands := make([]int, n)
	for i := range cands {
		cands[i] = lo + (i+1)*p.step
	}
	thr, prob := p.predict(cands)
	if p.surprises < maxSurprises {
		refused := len(p.probes) > 0 && p.probes[len(p.probes)-1].Refused != "" // a risk scout took knowingly
		if p.scouted > 0 && !refused && 2*window(prob) > p.scouted {
			p.surprises++
		}
	}
	p.scouted = 0
	// Whatever the predictions say, three loads must at least halve the
	// bracket; when they did not, the next load bisects it, so that a
	// server unlike every shape costs a logarithmic number of loads.
	// While priors bound the GPU (and the loads agree with them), fits
	// that climb towards the boundary they predict are progress even
	// when the bracket above stays wide: the rule waits, and surprises
	// still fall back to a uniform plan.
	p.widths = append(p.widths, n)
	if w := p.widths; !p.usePrior() && len(w) >= 4 && 2*w[len(w)-1] > w[len(w)-4] {
		return cands[medianOutcome(uniform(n+1), 0, n)-1], false
	}
	if p.surprises >= maxSurprises {
		prob = uniform(n + 1)
	}
	return p.choose(cands, thr, prob, lo), false
}

// window returns the number of outcomes from the first to the last with a
// non-zero probability.
func window(prob []float64) int {
	first, last := 0, len(prob)-1
	for first < last && prob[first] == 0 {
		first++
	}
	for last > first && prob[last] == 0 {
		last--
	}
	return last - first + 1
}

// uniform returns n equal probabilities.
func uniform(n int) []float64 {
	prob := make([]float64, n)
	for j := range prob {
		prob[j] = 1 / float64(n)
	}
	return prob
}

// consistentProbes drops the probes that contradict the newest one: fits
// above a newer spill and spills below a newer fit.
func consistentProbes(probes []Probe) []Probe {
	last := probes[len(probes)-1]
	var keep []Probe
	for _, pr := range probes {
		switch {
		case last.Fits() && !pr.Fits() && pr.Context <= last.Context:
		case !last.Fits() && pr.Fits() && pr.Context >= last.Context:
		default:
			keep = append(keep, pr)
		}
	}
	return keep
}

// prior returns the probability of each outcome j = 0…len(thr), given the
// predicted sizes thr of the candidates: outcome 0 means the first
// candidate spills (the answer is the bracket's lower end), outcome j>0
// means candidate j-1 is the answer. Without a usable prediction it is
// uniform.
func (p *tunePlan) prior(thr []float64) []float64 {
	n := len(thr)
	prob := make([]float64, n+1)
	lo, up, ok := p.capacity()
	if ok {
		// Outcome j holds when size(cands[j-1]) <= capacity < size(cands[j]).
		prev := math.Inf(-1)
		total := 0.0
		for j := 0; j <= n; j++ {
			upper := math.Inf(1)
			if j < n {
				upper = thr[j]
			}
			if math.IsNaN(upper) {
				ok = false
				break
			}
			a, b := math.Max(prev, lo), math.Min(upper, up)
			if b > a {
				prob[j] = capShare(a, b, lo, up)
				total += prob[j]
			}
			prev = math.Max(prev, upper)
		}
		if ok && total > 0 {
			for j := range prob {
				prob[j] /= total
			}
			return prob
		}
	}
	return uniform(n + 1)
}

// A shape is a hypothesis about how a load's compute graph grows with the
// context: servers differ (llama.cpp's graph grows linearly without flash
// attention and hardly at all with it; other engines and backends grow
// it by other laws), and the tuner must not depend on one. Each shape
// predicts the size of a load as weights + KV cache + graph·f(context),
// fitted to the loads measured nearest.
type shape struct {
	f     func(c float64) float64 // the graph's growth; nil: it does not grow
	prior float64
}

var shapes = []shape{
	{f: func(c float64) float64 { return c }, prior: 0.4},
	{f: nil, prior: 0.2},
	{f: math.Sqrt, prior: 0.2},
	{f: func(c float64) float64 { return c * c }, prior: 0.2},
}

// joint reports whether a load of a joint tune lost a companion: its
// verdict then follows from the companions' sizes too, which the shapes do
// not model, so the plan keeps to its own prediction.
func (p *tunePlan) joint() bool {
	for _, pr := range p.probes {
		if len(pr.Evicted) > 0 || pr.CompanionSpilled {
			return true
		}
	}
	return false
}

// shapeSizeAt predicts the size at context c under shape sh from the
// measured points pts (sorted by context), leaving out the one at index
// skip (-1: none). It is NaN when the points do not suffice.
func (p *tunePlan) shapeSizeAt(sh shape, pts []Probe, skip, c int) float64 {
	var use []Probe
	for i, pr := range pts {
		if i != skip {
			use = append(use, pr)
		}
	}
	kv := p.kvSlope
	if kv <= 0 || len(use) == 0 {
		return math.NaN()
	}
	if s, ok := p.paddedAt(use, c); ok {
		return s
	}
	// The two points nearest to c, around it when there are.
	i := sort.Search(len(use), func(i int) bool { return use[i].Context >= c })
	var a, b Probe
	switch {
	case len(use) == 1:
		a = use[0]
	case i == 0:
		a, b = use[0], use[1]
	case i == len(use):
		a, b = use[len(use)-2], use[len(use)-1]
	default:
		a, b = use[i-1], use[i]
	}
	x := float64(c)
	if sh.f == nil {
		near := a
		if b.Context != 0 && abs(b.Context-c) < abs(a.Context-c) {
			near = b
		}
		return float64(near.Size) + kv*(x-float64(near.Context))
	}
	var base, g float64
	if b.Context == 0 {
		// One point: the base is the weights.
		if p.weights <= 0 {
			return math.NaN()
		}
		base = p.weights
		g = (float64(a.Size) - base - kv*float64(a.Context)) / sh.f(float64(a.Context))
	} else {
		fa, fb := sh.f(float64(a.Context)), sh.f(float64(b.Context))
		g = (float64(b.Size-a.Size) - kv*float64(b.Context-a.Context)) / (fb - fa)
		base = float64(a.Size) - kv*float64(a.Context) - g*fa
	}
	g = max(g, 0)
	return base + kv*x + g*sh.f(x)
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// shapeWeights returns how much to trust each shape: its prior times how
// well it predicted each measured point from the others (from one other,
// through the weights: a shape through the weights and one load already
// tells a graph that grows with the square of the context from one that
// does not grow).
func (p *tunePlan) shapeWeights(pts []Probe) []float64 {
	w := make([]float64, len(shapes))
	total := 0.0
	for k, sh := range shapes {
		w[k] = sh.prior
		if len(pts) >= 2 {
			for i, pr := range pts {
				pred := p.shapeSizeAt(sh, pts, i, pr.Context)
				if math.IsNaN(pred) {
					continue
				}
				e := (pred - float64(pr.Size)) / (0.01 * float64(pr.Size))
				w[k] *= math.Exp(-e * e / 2)
			}
		}
		total += w[k]
	}
	if total <= 0 {
		for k := range w {
			w[k] = shapes[k].prior
		}
		return w
	}
	for k := range w {
		w[k] /= total
	}
	return w
}

// mixedPrior returns the outcome probabilities (see prior) mixed over the
// shapes, with thr, the plan's own prediction, as the linear one.
func (p *tunePlan) mixedPrior(cands []int, thr []float64) []float64 {
	pts := p.points()
	if len(pts) == 0 || p.kvSlope <= 0 {
		return p.prior(thr)
	}
	w := p.shapeWeights(pts)
	mix := make([]float64, len(cands)+1)
	for k, sh := range shapes {
		if w[k] < 1e-6 {
			continue
		}
		t := thr
		if k > 0 || len(pts) == 1 {
			t = make([]float64, len(cands))
			for i, c := range cands {
				t[i] = p.shapeSizeAt(sh, pts, -1, c)
			}
			if k == 0 {
				// The plan's own prediction and the linear shape through
				// the weights, half each.
				for i := range t {
					if !math.IsNaN(thr[i]) {
						t[i] = (t[i] + thr[i]) / 2
					}
				}
			}
		}
		pr := p.prior(t)
		for j := range mix {
			mix[j] += w[k] * pr[j]
		}
	}
	return mix
}

// maxGPU is the most memory the plan takes a GPU to have when no load
// bounds it from above (an H200's 141 GB; a 192 GB Mac, whose GPU may use
// three quarters of it): with the memory taken log-uniform below it (see
// capShare), a tune whose loads all fitted expects the answer at the
// trained context about as often as it is there, where counting every
// candidate alike made it climb there in small steps. Over the physics
// families: cold 2.00 → 1.89 loads (1.87 to 1.93 for any top from 64 GiB
// to 1 TiB); the simulator's matrix through Tune 1.82 → 1.78.
const maxGPU = 192 << 30

// capacity returns the interval [lo, up) in which the GPU's usable memory
// lies according to the probes, narrowed by the priors while they agree
// with the probes, and whether there is one.
func (p *tunePlan) capacity() (lo, up float64, ok bool) {
	lo, up, soft := p.evidence(p.probes, nil)
	if p.usePrior() {
		var plo, pup float64
		var psoft []float64
		pp := make([]Probe, len(p.priors))
		alone := make([]bool, len(p.priors))
		for i, q := range p.priors {
			pp[i], alone[i] = q.Probe, q.alone
		}
		plo, pup, psoft = p.evidence(pp, alone)
		if p.hasHost {
			plo, pup = math.Max(plo, p.hostLo), math.Min(pup, p.hostUp)
		}
		if l, u := math.Max(lo, plo), math.Min(up, pup); u > l {
			lo, up = l, u
			soft = append(soft, psoft...)
		} else {
			p.priorsOff = true // the loads disagree: the GPU changed
		}
	}
	if math.IsInf(up, 1) {
		// Nothing bounds the GPU from above: it holds at most what the
		// largest GPUs Ollama runs on hold, not "any size alike".
		up = maxGPU
	}
	if math.IsInf(up, 1) || up <= lo {
		return 0, 0, false
	}
	for _, s := range soft {
		if s > lo { // a bound below proven memory was a wrong guess
			up = math.Min(up, s)
		}
	}
	return lo, up, true
}

// gpuBound returns what the tune's own loads prove of the GPU's usable
// memory, lo (0 when nothing), and what they suggest as its upper end,
// up (+Inf when nothing): the bound a later tune on the same host may
// start from (setHostBound).
func (p *tunePlan) gpuBound() (lo, up float64) {
	lo, up, soft := p.evidence(p.probes, nil)
	for _, s := range soft {
		if s > lo {
			up = math.Min(up, s)
		}
	}
	return lo, up
}

// evidence returns the bounds of the GPU's memory that the loads probes
// give: a hard lower one, a hard upper one (+Inf when none) and the soft
// upper ones of spills with layers in VRAM. alone, when not nil, says for
// each load whether it was alone on the server; one that was not gives a
// lower bound only.
func (p *tunePlan) evidence(probes []Probe, alone []bool) (lo, up float64, soft []float64) {
	up = math.Inf(1)
	for i, pr := range probes {
		if pr.Fits() {
			lo = math.Max(lo, float64(pr.Size))
			continue
		}
		if pr.Refused != "" {
			// Too big for the host's memory: smaller than the predicted
			// size, if there is a prediction.
			if s := p.sizeAt(pr.Context); !math.IsNaN(s) {
				up = math.Min(up, s)
			}
			continue
		}
		if !p.graphOnly(pr) {
			lo = math.Max(lo, float64(pr.SizeVRAM))
		}
		if alone != nil && !alone[i] {
			continue
		}
		up = math.Min(up, float64(pr.Size))
		if s := p.spillBound(pr); s > 0 {
			soft = append(soft, s)
		}
	}
	return lo, up, soft
}

// layerMargin widens the one-layer bound of a spill: the layer's size is
// an estimate, and a bound too tight is worse than one too loose.
const layerMargin = 1.25

// spillBound estimates an upper bound of the GPU's memory from the spilled
// load pr, or returns 0 or +Inf when it has none. Ollama puts the compute
// graph and as many whole layers as fit on the GPU, so one more layer did
// not fit: the memory is less than size_vram plus a layer, or, with nothing
// in VRAM, less than the graph plus a layer.
func (p *tunePlan) spillBound(pr Probe) float64 {
	layer := p.layerAt(pr)
	switch {
	case layer <= 0 || len(pr.Evicted) > 0:
		// An eviction of a joint tune's companion is not an offload.
		return 0
	case pr.SizeVRAM > 0 && !p.graphOnly(pr):
		if p.capped(pr) {
			// Every repeating layer was on the GPU and only the output
			// weights were not: what did not fit was the output, and
			// the GPU holds less than size_vram plus the output, which
			// is no more than the load's size says.
			return 0
		}
		return float64(pr.SizeVRAM) + layer*layerMargin
	}
	return p.gpuFloor(pr)
}

// capped reports whether the spilled load pr had every repeating layer on
// the GPU, only the output weights off it: what stayed on the CPU is less
// than the output and half a layer.
func (p *tunePlan) capped(pr Probe) bool {
	if p.output <= 0 {
		return false
	}
	return float64(pr.Size-pr.SizeVRAM) < p.output+p.layerAt(pr)/2
}

// graphOnly reports whether the spilled load pr had no layer in VRAM,
// only its compute graph, which some servers put on the GPU even when it
// alone is larger than the GPU: its size_vram then says nothing of the
// GPU's memory. It is so when what stayed on the CPU is about all the
// weights and the KV cache.
func (p *tunePlan) graphOnly(pr Probe) bool {
	if pr.SizeVRAM <= 0 {
		return true
	}
	if p.weights <= 0 || p.kvSlope <= 0 || p.layers <= 0 {
		return false
	}
	cpu := float64(pr.Size - pr.SizeVRAM)
	layers := p.weights + p.kvSlope*float64(pr.Context)
	return cpu > layers-p.layerAt(pr)/2
}

// layerAt estimates the size of one layer in the load pr, its weights and
// its KV cache, erring on the large side; 0 when the layer count is unknown.
func (p *tunePlan) layerAt(pr Probe) float64 {
	if p.layers <= 0 {
		return 0
	}
	if p.weights > 0 && p.kvSlope > 0 {
		// Without the output's size, the weights' share includes the
		// embeddings and output weights, which are not per layer: a
		// little too much, as intended.
		return (p.weights - p.output + p.kvSlope*float64(pr.Context)) / float64(p.layers)
	}
	// The share of the whole load: more so, with the graph's share.
	return float64(pr.Size) / float64(p.layers)
}

// gpuFloor estimates the least GPU memory that would have put something of
// the load pr in VRAM: its compute graph and one layer; +Inf when the
// sizes needed are unknown.
func (p *tunePlan) gpuFloor(pr Probe) float64 {
	if p.weights <= 0 || p.kvSlope <= 0 || p.layers <= 0 {
		return math.Inf(1)
	}
	graph := float64(pr.Size) - p.weights - p.kvSlope*float64(pr.Context)
	return max(graph, 0) + p.layerAt(pr)
}

// sizeAt predicts the size of a load at context c: linear between the
// nearest measured contexts around it, extended beyond them with the slope
// of the nearest two or, with one measurement, the predicted slope; with
// none, the weights plus the predicted slope. It is NaN when nothing is
// known.
func (p *tunePlan) sizeAt(c int) float64 {
	pts := p.points()
	if s, ok := p.paddedAt(pts, c); ok {
		return s
	}
	switch len(pts) {
	case 0:
		if p.weights <= 0 || p.slope <= 0 {
			return math.NaN()
		}
		return p.weights + p.slope*float64(c)
	case 1:
		if p.slope <= 0 {
			return math.NaN()
		}
		return float64(pts[0].Size) + p.slope*float64(c-pts[0].Context)
	}
	i := sort.Search(len(pts), func(i int) bool { return pts[i].Context >= c })
	outside := i == 0 || i == len(pts)
	switch {
	case i < len(pts) && pts[i].Context == c:
		return float64(pts[i].Size)
	case i == 0:
		i = 1
	case i == len(pts):
		i = len(pts) - 1
	}
	a, b := pts[i-1], pts[i]
	k := float64(b.Size-a.Size) / float64(b.Context-a.Context)
	if outside && k <= 0 && p.slope > 0 {
		// Two loads of one size: a padded block of the KV cache or of
		// the graph, which ends somewhere beyond them.
		k = p.slope
		if c < a.Context {
			return float64(a.Size) + k*float64(c-a.Context)
		}
		return float64(b.Size) + k*float64(c-b.Context)
	}
	return float64(a.Size) + k*float64(c-a.Context)
}

// predict returns the predicted size of each candidate and the outcome
// probabilities (see prior), mixed over the shapes and, when the sizes
// show padding, over the block sizes that agree with them.
func (p *tunePlan) predict(cands []int) (thr, prob []float64) {
	thr = make([]float64, len(cands))
	for i, c := range cands {
		thr[i] = p.sizeAt(c)
	}
	outcomes := func(thr []float64) []float64 {
		if p.joint() {
			return p.prior(thr)
		}
		return p.mixedPrior(cands, thr)
	}
	hyps := padHyps(p.points(), p.step)
	if len(hyps) == 0 {
		return thr, outcomes(thr)
	}
	prob = make([]float64, len(cands)+1)
	total := 0.0
	for _, b := range hyps {
		total += 1 / float64(b)
	}
	for _, b := range hyps {
		p.pad = b
		t := make([]float64, len(cands))
		for i, c := range cands {
			t[i] = p.sizeAt(c)
		}
		w := 1 / float64(b) / total
		for j, q := range outcomes(t) {
			prob[j] += w * q
		}
	}
	p.pad = 0
	return thr, prob
}

// Padding: some servers round the context (or the compute graph) up to a
// block, so that the size is a step function of the context: every
// context in a block (start, end] of B tokens, B a power of two, loads
// the same size. Two measured neighbours of one size show it; which B the
// server uses is not known, so each B that agrees with every measured
// pair (one size exactly when in one block) is a hypothesis, and predict
// mixes their predictions, a block twice as large half as likely (the
// smallest block that explains the sizes is the likeliest). Measured over
// the padding family: warm tunes over 4 loads 12 → 8, no family worse.

// padHyps returns the block sizes that agree with the measured points
// pts (sorted by context), none when no two neighbours have one size.
func padHyps(pts []Probe, step int) []int {
	plateau := 0
	for i := 1; i < len(pts); i++ {
		if pts[i].Size == pts[i-1].Size {
			plateau = max(plateau, pts[i].Context-pts[i-1].Context)
		}
	}
	if plateau == 0 {
		return nil
	}
	var hyps []int
	for b := 2 * step; b <= 8*(plateau+step); b *= 2 {
		ok := true
		for i := 1; i < len(pts) && ok; i++ {
			same := (pts[i].Context+b-1)/b == (pts[i-1].Context+b-1)/b
			ok = same == (pts[i].Size == pts[i-1].Size)
		}
		if ok {
			hyps = append(hyps, b)
		}
	}
	return hyps
}

// paddedAt returns the size at context c when blocks are p.pad tokens:
// that of a measured point in c's block; false when there is none (or no
// padding is assumed).
func (p *tunePlan) paddedAt(pts []Probe, c int) (float64, bool) {
	if p.pad <= 0 {
		return 0, false
	}
	blk := (c + p.pad - 1) / p.pad
	for _, q := range pts {
		if (q.Context+p.pad-1)/p.pad == blk {
			return float64(q.Size), true
		}
	}
	return 0, false
}

// points returns one measured size per context, sorted by context, the
// newest winning; refused loads measured nothing.
func (p *tunePlan) points() []Probe {
	by := map[int]Probe{}
	if !p.priorsOff {
		for _, q := range p.priors {
			by[q.Context] = q.Probe
		}
	}
	for _, pr := range p.probes {
		if pr.Refused == "" {
			by[pr.Context] = pr
		}
	}
	pts := make([]Probe, 0, len(by))
	for _, pr := range by {
		pts = append(pts, pr)
	}
	sort.Slice(pts, func(i, j int) bool { return pts[i].Context < pts[j].Context })
	return pts
}

// choose returns the candidate to load next given the outcome probabilities.
// It plans over the window of outcomes the prediction allows; outcomes
// outside it are not expected, and when one happens the next call plans
// again from the new evidence.
func (p *tunePlan) choose(cands []int, thr, prob []float64, lo int) int {
	n := len(cands)
	first, last := 0, n
	for first < n && prob[first] == 0 {
		first++
	}
	for last > first && prob[last] == 0 {
		last--
	}
	// Predictions from one measured size lean on the predicted slope,
	// which may be off; only those from measured slopes are held to account.
	measured := len(p.points()) >= 2
	if last-first < n && measured { // a prediction, not the whole bracket
		p.expect, p.expecting = [2]int{lo + first*p.step, lo + last*p.step}, true
	}
	if p.scouting() && last-first+1 > scoutOutcomes && p.surprises < maxSurprises {
		if c, ok := p.scout(cands, thr); ok {
			if measured {
				p.scouted = last - first + 1
			}
			return c
		}
	}
	if last-first+1 > maxDPOutcomes {
		return cands[medianOutcome(prob, first, last)-1]
	}
	cum := make([]float64, len(prob)+1)
	for j, q := range prob {
		cum[j+1] = cum[j] + q
	}
	s := planSolver{
		cum:     cum,
		noneOK:  lo == 0,
		lastFit: p.settled(lo),
		confirm: p.confirm,
		memo:    map[planState]float64{},
	}
	low := lowUnknown
	if first == 0 {
		low = lowKnown
		if s.lastFit {
			low = lowLast
		}
	}
	_, k := s.cost(planState{first, last, low, last == n})
	return cands[k]
}

// scouting reports whether choose may scout: only while a load the server
// made before the tune (a spill at a client's context, usually far above
// the answer) informs the plan. Measured over the physics families
// (tune_families_test.go), scouting from the tune's own loads or from a
// host's bound costs more loads than planning the window directly, or
// splitting it at its median: its guess of how much a spill will tell is
// too often wrong on servers unlike the simulator.
func (p *tunePlan) scouting() bool {
	return len(p.priors) > 0 && !p.priorsOff
}

// medianOutcome returns the outcome k in (first, last] that splits the probability
// of [first, last] most evenly into [first, k) and [k, last]: loading
// cands[k-1] tells the two halves apart.
func medianOutcome(prob []float64, first, last int) int {
	total := 0.0
	for j := first; j <= last; j++ {
		total += prob[j]
	}
	acc := 0.0
	for k := first + 1; k <= last; k++ {
		acc += prob[k-1]
		if acc >= total/2 {
			return k
		}
	}
	return last
}

// What is proven about the fit just below a window of outcomes.
const (
	lowUnknown = iota // not loaded yet
	lowKnown          // proven to fit, but not the last load (with confirm)
	lowLast           // proven to fit by the last load, or by any without confirm
)

// planState is a window [a, b] of outcomes still possible, what is proven at
// its lower end (the candidate under outcome a fits) and whether the
// candidate above outcome b is proven to spill.
type planState struct {
	a, b int
	low  int
	high bool
}

// planSolver is a memoised dynamic program over states: the expected number of
// loads left when loading optimally.
type planSolver struct {
	cum     []float64 // cum[j] is the probability of outcomes before j
	noneOK  bool      // outcome 0 with nothing fitting ends the tune (does not fit)
	lastFit bool
	confirm bool // see tunePlan.confirm
	memo    map[planState]float64
}

// cost returns the expected loads left in st and the candidate index
// (outcome k loads cands[k-1]) to load first.
func (s *planSolver) cost(st planState) (float64, int) {
	if st.a == st.b {
		// Prove the spill above, and load the answer unless it is
		// proven (with confirm, last: after that spill, a fit proven
		// before is no longer the last load).
		c, k := 0.0, -1
		low := st.low
		if !st.high {
			c, k = 1, st.a // cands[a] is the candidate above outcome a
			if s.confirm && low == lowLast {
				low = lowKnown
			}
		}
		if low != lowLast && !(st.a == 0 && s.noneOK) {
			if k < 0 {
				k = st.a - 1
			}
			c++
		}
		return c, k
	}
	if c, ok := s.memo[st]; ok {
		return c, -2 // only the top level needs the move
	}
	total := s.sum(st.a, st.b)
	pOf := func(a, b int) float64 {
		if total <= 0 {
			return float64(b-a+1) / float64(st.b-st.a+1)
		}
		return s.sum(a, b) / total
	}
	demote := st.low
	if s.confirm && demote == lowLast {
		demote = lowKnown
	}
	best, move := math.Inf(1), -1
	if !st.high {
		// Prove the spill above the window first: with confirm, the
		// answer's fit can then be the last load.
		above, _ := s.cost(planState{st.a, st.b, demote, true})
		best, move = 1+above, st.b
	}
	for k := st.a + 1; k <= st.b; k++ {
		fit, _ := s.cost(planState{k, st.b, lowLast, st.high})
		spill, _ := s.cost(planState{st.a, k - 1, demote, true})
		if c := 1 + pOf(k, st.b)*fit + pOf(st.a, k-1)*spill; c < best-1e-12 {
			best, move = c, k-1
		}
	}
	s.memo[st] = best
	return best, move
}

// sum returns the probability of outcomes a…b.
func (s *planSolver) sum(a, b int) float64 { return s.cum[b+1] - s.cum[a] }

// scout picks a load for a wide window: the one expected to leave the
// fewest possible answers, counting that a spill with something in VRAM
// pins the memory down to within one layer, that a spill with nothing in
// VRAM tells little, and that a server which refused a load for lack of
// RAM may refuse others nearly as big, which tells nothing.
func (p *tunePlan) scout(cands []int, thr []float64) (int, bool) {
	lo, up, ok := p.capacity()
	if !ok || p.layers <= 0 || p.weights <= 0 || p.kvSlope <= 0 || !sort.Float64sAreSorted(thr) {
		return 0, false // also when a prediction is NaN
	}
	// count returns how many outcomes the capacity range [a, b) allows:
	// outcome j needs thr[j-1] <= capacity < thr[j].
	count := func(a, b float64) float64 {
		if b <= a {
			return 0
		}
		first := sort.Search(len(thr), func(i int) bool { return thr[i] > a })
		last := sort.SearchFloat64s(thr, b)
		return float64(last - first + 1)
	}
	// The free RAM is taken as log-uniform between its bounds (memory
	// sizes are spread out by factors), from 1 GiB when nothing better is
	// known.
	ramLo, ramHi := p.ramBounds()
	ramLo = math.Max(ramLo, 1<<30)
	refuse := func(cpu float64) float64 {
		if math.IsInf(ramHi, 1) || cpu <= ramLo || ramHi <= ramLo {
			return 0
		}
		return math.Min(1, math.Log(cpu/ramLo)/math.Log(ramHi/ramLo))
	}
	cost := func(n float64) float64 { return math.Log2(n + 1) }
	best, bestC := math.Inf(1), 0
	for i, c := range cands {
		s := thr[i]
		if s <= lo || s >= up {
			continue // the prediction already knows how this load ends
		}
		layer := p.layerAt(Probe{Context: c, Size: int64(s)})
		gl := p.gpuFloor(Probe{Context: c, Size: int64(s)})
		below := cost(count(lo, math.Min(s, up))) // a refusal only says: below c
		pFit := capShare(math.Max(s, lo), up, lo, up)
		score := pFit * cost(count(math.Max(s, lo), up))
		// A spill with layers in VRAM leaves the answers within one layer
		// above its size_vram; one with every layer on the GPU (capped),
		// those between its size less the output and its size.
		cb := s - p.output
		if a, b := math.Max(gl, lo), math.Min(cb, up); b > a {
			r := refuse(s - (a+b)/2)
			score += capShare(a, b, lo, up) * ((1-r)*cost(count(a, math.Min(b, a+layer))) + r*below)
		}
		if a, b := math.Max(math.Max(cb, gl), lo), math.Min(s, up); b > a {
			r := refuse(s - (a+b)/2)
			score += capShare(a, b, lo, up) * ((1-r)*cost(count(a, b)) + r*below)
		}
		if b := math.Min(gl, up); b > lo {
			r := refuse(s)
			score += capShare(lo, b, lo, up) * ((1-r)*cost(count(lo, b)) + r*below)
		}
		if score < best-1e-9 {
			best, bestC = score, c
		}
	}
	return bestC, bestC > 0
}

// ramBounds returns what the loads say about the system memory the server
// had free for the part of a model that is not on the GPU: at least the
// largest such part it took, less than the smallest it refused (+Inf when
// it refused none).
func (p *tunePlan) ramBounds() (lo, hi float64) {
	hi = math.Inf(1)
	for _, pr := range p.probes {
		switch {
		case pr.Refused != "":
			if s := p.sizeAt(pr.Context); !math.IsNaN(s) {
				hi = math.Min(hi, s)
			}
		default:
			lo = math.Max(lo, float64(pr.Size-pr.SizeVRAM))
		}
	}
	if hi <= lo {
		hi = math.Inf(1)
	}
	return lo, hi
}

// capShare returns the probability that the GPU's memory, known to lie in
// [lo, up), lies in [a, b). Within one layer (after a spill) it is about
// uniform; across a wide range it is taken log-uniform, as memory sizes
// come in factors (8, 12, 16, 24 GB…), from 1 GiB.
func capShare(a, b, lo, up float64) float64 {
	a, b = math.Max(a, lo), math.Min(b, up)
	if b <= a {
		return 0
	}
	const floor = 1 << 30
	l := func(x float64) float64 { return math.Log(math.Max(x, floor)) }
	if l(up) <= l(lo) {
		return (b - a) / (up - lo)
	}
	return (l(b) - l(a)) / (l(up) - l(lo))
}
