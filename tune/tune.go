package tune

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ollama/ollama/api"
	"github.com/ollama/ollama/format"
	"github.com/ollama/ollama/fs/ggml"

	"github.com/ctxfit/ctxfit/internal/hint"
	"github.com/ctxfit/ctxfit/ollama"
	"github.com/ctxfit/ctxfit/state"
)

// DefaultStep is the granularity of a tuned context when none is given.
const DefaultStep = 1024

// UnknownTrainedContext caps the search when /api/show does not give the
// model's trained context: the largest default context Ollama picks itself.
const UnknownTrainedContext = 262144

// Options says what to tune and how.
type Options struct {
	// Model is the Ollama model name, as `ollama run` takes it.
	Model string
	// Hints builds the ctxfit commands that errors name (with --host for
	// a server other than the default one); zero: without --host.
	Hints hint.Hints
	// Step is the granularity of the answer: a multiple of it. 0 means
	// DefaultStep.
	Step int
	// Parallel is the number of parallel request slots the server runs
	// (OLLAMA_NUM_PARALLEL). It only sharpens the first prediction, since no
	// API reports it; 0 means 1.
	Parallel int
	// KeepAlive is sent with every load; nil sends ollama.ProbeKeepAlive,
	// which tells a ctxfit that watches the server from another machine
	// that the loads are a tune's (a joint tune, whose set stays loaded as
	// tuned, sends the server's default). Whatever the loads ask, the tune
	// puts the model back as it found it, keep-alive included.
	KeepAlive *api.Duration
	// GPU is what is known about the server's GPU (Data.GPU). GPUAbsent
	// ends the tune with ErrCPUOnly before any load; GPUPresent never does.
	// GPUUnknown makes the first load one that cannot swap the machine
	// (see RAM) and decides by it: its compute graph and one layer need
	// less than any GPU holds (minGPU), or it is already the smallest
	// context; else the next load is at the largest context whose graph
	// and one layer any GPU would hold, to tell.
	GPU ollama.GPUPresence
	// RAM is the memory the server's machine can give the model without
	// swapping, when known (the server runs on this machine: its free
	// memory); 0 when not. On a server whose GPU is unknown the first load
	// is at the largest context predicted to need at most half of it, or
	// at the smallest context when RAM is 0 or nothing predicts the size:
	// on a CPU-only machine a first load at the model's full context could
	// push it into swap.
	RAM int64

	// unloadWait bounds the wait for the model to leave /api/ps after the
	// tune unloaded it; 0 means defaultUnloadWait (tests shorten it).
	unloadWait time.Duration
	// Starting, when set, is called once before the first load, when the
	// server answered and knows Model: a tune that ends before (an
	// unknown model, a server that does not answer) never calls it.
	Starting func()
	// Progress, when set, is called after each load of Model.
	Progress func(Probe)
	// Timeout is the progress timeout of each load: a server that sends
	// nothing for that long ends the tune with ollama.ErrStalled. Zero
	// fields mean ollama's defaults.
	Timeout ollama.Progress
	// HostGPU is what earlier tunes on this server measured of its GPU
	// (state.HostState.GPUBound), nil when nothing. It only chooses loads,
	// and only while the models loaded beside the tuned one are those it
	// was measured beside and the loads agree with it: the answer is
	// proven by loads alone.
	HostGPU *state.GPUBound
	// Companions, when set, make the tune joint: the answer is the
	// largest context at which Model and every companion, each at its own
	// context, are loaded 100% on the GPU at the same time. Models outside
	// the set are unloaded first. See joint.go.
	Companions []Companion
}

// Probe is one measured load: the context it asked for and what /api/ps
// reported afterwards.
type Probe struct {
	Context  int     `json:"context"`
	Size     int64   `json:"size"`
	SizeVRAM int64   `json:"size_vram"`
	Seconds  float64 `json:"seconds"`
	// Loaded is the context_length /api/ps reported; 0 from servers that
	// do not report it. Ollama clamps to the trained context and raises
	// small contexts of vision models to 2048.
	Loaded int `json:"loaded_context,omitempty"`
	// Refused is the server's error when it refused the load for lack of
	// system memory for the part that would not fit on the GPU: a spill
	// whose sizes are unknown.
	Refused string `json:"refused,omitempty"`
	// Evicted names the companions of a joint tune that this load
	// unloaded to make room; CompanionSpilled is set when one of them
	// stayed but moved (partly) onto the CPU. Either way the set did not
	// fit.
	Evicted          []string `json:"evicted,omitempty"`
	CompanionSpilled bool     `json:"companion_spilled,omitempty"`
	// ExpiresAt is when /api/ps said the model would unload, for the
	// model as the tune found it (Result.Before): restore keeps it.
	ExpiresAt time.Time `json:"-"`
}

// Fits reports whether the load was 100% on the GPU, beside every
// companion of a joint tune.
func (p Probe) Fits() bool {
	if p.Refused != "" || len(p.Evicted) > 0 || p.CompanionSpilled {
		return false
	}
	s, _ := ollama.Classify(p.Size, p.SizeVRAM)
	return s == ollama.StateGPU
}

// Processor returns the split as `ollama ps` prints it ("100% GPU",
// "38%/62% CPU/GPU"), or "refused" for a refused load.
func (p Probe) Processor() string {
	if p.Refused != "" {
		return "refused"
	}
	_, proc := ollama.Classify(p.Size, p.SizeVRAM)
	return proc
}

// Result is what a tune found. Tune returns it with its errors too, so
// that an interrupted or failed tune can still say what it had measured.
type Result struct {
	Model  string
	Digest string // from /api/ps; empty until the first load
	// Context is the answer: the largest multiple of Step, at most the
	// trained context, that loads 100% on the GPU. 0 until it is proven.
	Context        int
	Step           int
	Parallel       int
	TrainedContext int // from /api/show; 0 when it does not say
	Loads          int
	Probes         []Probe
	// Before is the model as /api/ps listed it before the tune, nil when it
	// was not loaded. Its Context is the context it ran with.
	Before *Probe
	// Restored says what Tune did to leave the model as it found it, once
	// it had loaded it at all: "reloaded at num_ctx N" (it was loaded at N
	// before), "unloaded" (it was not loaded, or at a context the server
	// did not report), or "could not …" with the reason. Empty when no
	// load was made.
	Restored string
	// Unloaded are the other models /api/ps listed before the tune and no
	// longer lists after it: Ollama unloaded them to make room for the
	// tune's loads. They load again on their next request. Empty for a
	// joint tune, which reloads its companions.
	Unloaded []string
	// LargestFit and SmallestSpill bracket the answer with what loads
	// proved so far; 0 when no load fit or none spilled.
	LargestFit, SmallestSpill int
	// GPU is what this tune's loads measured of the GPU's usable memory,
	// for later tunes on the server (Record keeps it); nil when they tell
	// nothing or the tune was joint.
	GPU *state.GPUBound
	// Companions are the models of a joint tune that run beside Model,
	// as /api/ps listed them last; nil for a tune of Model alone.
	Companions []CompanionLoad
	// CompanionLoads is how many of Loads loaded a companion.
	CompanionLoads int
}

// Errors a tune ends with, to be told apart with errors.Is.
var (
	// ErrUnknownModel: the server does not have the model.
	ErrUnknownModel = errors.New("model not found")
	// ErrCPUOnly: the server is known to have no GPU, or the first
	// load put nothing in VRAM.
	ErrCPUOnly = errors.New("the server runs models on the CPU only")
	// ErrServerGone: the server stopped answering.
	ErrServerGone = errors.New("the Ollama server stopped answering")
	// ErrBadAnswer: the server's answer was not what Ollama sends.
	ErrBadAnswer = errors.New("unexpected answer from the server")
	// ErrDoesNotFit: even the smallest context spills; the error is a
	// *DoesNotFitError with the sizes.
	ErrDoesNotFit = errors.New("the model does not fit on the GPU")
	// ErrInconsistent: the loads contradict each other (a larger context
	// fit where a smaller one spilled) until MaxLoads ran out.
	ErrInconsistent = errors.New("the server's answers are inconsistent")
)

// MaxLoads bounds a tune. The plan needs far fewer (at most about 2·log2 of
// the candidates even when its predictions are all wrong); only a server
// whose free memory changes while it is tuned could make it go on.
const MaxLoads = 40

// DoesNotFitError says that a model spills even at the smallest context.
type DoesNotFitError struct {
	Model   string
	Context int   // the smallest context tried
	Size    int64 // the model's size at that context
	// Refused is the server's error when it refused that load for lack of
	// RAM; Size is then ctxfit's estimate.
	Refused string
	// GPU is the most any load had in VRAM: the GPU holds at least that
	// much and less than Size. 0 when no layer ever fit.
	GPU int64
}

func (e *DoesNotFitError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s needs %s at num_ctx %d", e.Model, format.HumanBytes(e.Size), e.Context)
	switch {
	case e.GPU > 0:
		fmt.Fprintf(&b, " but the GPU holds only about %s of it", format.HumanBytes(e.GPU))
	case e.Refused == "":
		b.WriteString(" and not one of its layers fits on the GPU")
	}
	if e.Refused != "" {
		fmt.Fprintf(&b, " (an estimate: the server refused the load: %s)", e.Refused)
	}
	b.WriteString("; try a smaller quantization (a q4_K_M tag) or a smaller model")
	return b.String()
}

// Is makes errors.Is(err, ErrDoesNotFit) true.
func (e *DoesNotFitError) Is(target error) bool { return target == ErrDoesNotFit }

// LoadError is a load the server refused or failed.
type LoadError struct {
	Model   string
	Context int
	Err     error
}

func (e *LoadError) Error() string {
	return fmt.Sprintf("load %s at num_ctx %d: %v (see the Ollama server log)", e.Model, e.Context, e.Err)
}

func (e *LoadError) Unwrap() error { return e.Err }

// Tune finds the largest context, a multiple of opts.Step no larger than the
// model's trained context, at which opts.Model loads 100% on the GPU of the
// server behind client (beside opts.Companions, when given). It measures: every verdict comes from a real load
// and /api/ps; the model's architecture and the sizes measured only choose
// which contexts to load (see tunePlan).
//
// However it ends (an answer, an error, a cancelled ctx), a tune that
// loaded the model leaves it as it found it: reloaded at the context it
// ran with before, or unloaded when it was not loaded (Result.Restored
// says which). A caller that wants the model at the answer loads it there.
//
// Cancelling ctx stops the tune between loads (a load in flight is
// abandoned); the returned result then holds the bracket proven so far, and
// the error wraps ctx.Err().
func Tune(ctx context.Context, client *api.Client, opts Options) (res *Result, err error) {
	if opts.Step == 0 {
		opts.Step = DefaultStep
	}
	if opts.Parallel == 0 {
		opts.Parallel = 1
	}
	res = &Result{Model: opts.Model, Step: opts.Step, Parallel: opts.Parallel}
	switch {
	case opts.Model == "":
		return res, errors.New("no model given")
	case opts.Step < 1:
		return res, fmt.Errorf("step %d: use a positive number of tokens", opts.Step)
	case opts.Parallel < 1:
		return res, fmt.Errorf("parallel %d: use a positive number of slots", opts.Parallel)
	case opts.GPU == ollama.GPUAbsent:
		// Refuse before loading anything: a load at the model's full
		// context can push a CPU-only machine into swap.
		return res, fmt.Errorf("%w: ctxfit was told this server has no GPU, and tunes for one; "+
			"%s measures the speed on the CPU (if the server does have a GPU now: %s)",
			ErrCPUOnly, opts.Hints.Cmd("bench", opts.Model), opts.Hints.Cmd("status", "--set-gpu", "auto"))
	}

	ps, err := listRunning(ctx, client, opts.Timeout)
	if err != nil {
		return res, err
	}
	if m := findRunning(ps, opts.Model); m != nil {
		res.Before = &Probe{Context: m.ContextLength, Size: m.Size, SizeVRAM: m.SizeVRAM, Loaded: m.ContextLength, ExpiresAt: m.ExpiresAt}
		res.Digest = m.Digest
	}
	others := otherModels(ps, opts.Model)
	beside := besideKeys(others)

	sctx, cancel := opts.Timeout.Request(ctx, "show "+opts.Model)
	show, err := client.Show(sctx, &api.ShowRequest{Model: opts.Model})
	stalled := ollama.Stalled(sctx)
	cancel()
	if stalled != nil {
		return res, stalled
	}
	if err != nil {
		var se api.StatusError
		if errors.As(err, &se) && se.StatusCode == http.StatusNotFound {
			return res, fmt.Errorf("%w: %s (see `ollama list`, or `ollama pull %s`)", ErrUnknownModel, opts.Model, opts.Model)
		}
		return res, tuneServerError(ctx, "show "+opts.Model, err)
	}
	ma := parseModelArch(show.ModelInfo)
	ma.output = outputBytes(show.Tensors)
	res.TrainedContext = ma.contextLength
	// The weights' size sharpens the predictions; without it the tune
	// only takes a load or two more.
	weights := 0.0
	if tags, err := client.List(ctx); err == nil {
		for _, m := range tags.Models {
			if ollama.SameModel(m.Name, opts.Model) || ollama.SameModel(m.Model, opts.Model) {
				weights = float64(m.Size)
				res.Digest = cmp.Or(res.Digest, m.Digest)
			}
		}
	}
	p := newTunePlan(ma, opts.Step, opts.Parallel, weights)
	if p.max < opts.Step {
		return res, fmt.Errorf("%s was trained for %d tokens of context, less than the step %d: use a smaller --step", opts.Model, cmp.Or(ma.contextLength, UnknownTrainedContext), opts.Step)
	}

	if len(opts.Companions) > 0 {
		// A joint tune leaves the set loaded together, as tuned (see
		// tuneJoint); only a tune of the model alone puts it back.
		return tuneJoint(ctx, client, opts, res, p)
	}
	// What the server showed before the first load chooses loads too.
	if b := opts.HostGPU; b != nil && slices.Equal(b.Beside, beside) {
		p.setHostBound(float64(b.Lo), float64(b.Up))
	}
	priorBefore := func(first *Probe) {
		if pr, ok := beforePrior(res.Before, first, opts.Parallel); ok {
			p.addPrior(pr, len(beside) == 0)
		}
	}
	priorBefore(nil)
	defer func() {
		if lo, up := p.gpuBound(); lo > 0 || !math.IsInf(up, 1) {
			res.GPU = &state.GPUBound{Lo: int64(lo), MeasuredAt: time.Now().UTC(), Beside: beside}
			if !math.IsInf(up, 1) {
				res.GPU.Up = int64(up)
			}
		}
	}()

	attempted := false // a load was sent, so the model may have changed
	defer func() {
		switch {
		case !attempted:
		case errors.Is(err, ollama.ErrStalled) || errors.Is(err, ErrServerGone):
			res.Restored = "could not put it back: the server stopped answering"
		default:
			res.Restored = restore(ctx, client, opts.Model, res.Before, cmp.Or(opts.unloadWait, defaultUnloadWait), opts.Timeout)
			res.Unloaded = gone(ctx, client, others, opts.Timeout)
		}
	}()

	guard := gpuGuard{
		seen:   opts.GPU == ollama.GPUPresent || res.Before != nil && res.Before.SizeVRAM > 0,
		absent: opts.GPU == ollama.GPUAbsent,
		ram:    opts.RAM,
	}
	for {
		next, done := guard.next(p)
		if done {
			break
		}
		if err := ctx.Err(); err != nil {
			res.bracket(p)
			return res, fmt.Errorf("tune stopped after %d loads: %w", res.Loads, err)
		}
		if res.Loads == MaxLoads {
			res.bracket(p)
			return res, fmt.Errorf("%w: %d loads of %s did not settle, as if other models were loading meanwhile; try again when the server is idle", ErrInconsistent, res.Loads, opts.Model)
		}
		if !attempted && opts.Starting != nil {
			opts.Starting()
		}
		attempted = true
		pr, digest, err := loadProbe(ctx, client, opts.Model, next, probeKeepAlive(opts.KeepAlive), opts.Timeout)
		if err != nil {
			res.bracket(p)
			if ctx.Err() != nil {
				return res, fmt.Errorf("tune stopped during load %d: %w", res.Loads+1, ctx.Err())
			}
			return res, err
		}
		res.Loads++
		res.Probes = append(res.Probes, pr)
		res.Digest = cmp.Or(digest, res.Digest)
		p.add(pr)
		switch {
		case res.Loads == 1 && opts.Parallel > 1:
			priorBefore(&pr)
		case res.Loads == 1 && !reportsNumCtx(pr):
			p.priors = nil
		}
		res.bracket(p)
		if opts.Progress != nil {
			opts.Progress(pr)
		}

		if guard.after(p, pr) {
			return res, fmt.Errorf("%w: %s loaded with nothing in VRAM at num_ctx %d (size %s); "+
				"ctxfit tunes for a GPU (if this server has one, check that Ollama finds it: see its log)",
				ErrCPUOnly, opts.Model, pr.Context, format.HumanBytes(pr.Size))
		}
	}

	lo, _ := p.bracket()
	if lo == 0 {
		e := &DoesNotFitError{Model: opts.Model, Context: p.step, Size: -1}
		for _, pr := range p.probes {
			switch {
			case pr.Context == p.step && pr.Refused != "":
				e.Refused = pr.Refused
			case pr.Context == p.step:
				e.Size = pr.Size
			}
			e.GPU = max(e.GPU, pr.SizeVRAM)
		}
		if e.Size < 0 {
			e.Size = int64(p.weights)
			if s := p.sizeAt(p.step); !math.IsNaN(s) {
				e.Size = int64(s)
			}
		}
		return res, e
	}
	res.Context = lo
	return res, nil
}

// beforePrior returns the load before, the model as /api/ps listed it
// before the tune, as a load at the num_ctx it was asked for; false when
// that is not known. /api/ps reports the context in context_length, which
// some versions of Ollama multiply by the parallel slots: with one slot it
// is num_ctx either way; with more, the tune's first load (first, nil
// before it) shows how this server reports it.
func beforePrior(before, first *Probe, parallel int) (Probe, bool) {
	if before == nil || before.Context <= 0 || before.Size <= 0 {
		return Probe{}, false
	}
	pr := Probe{Context: before.Context, Size: before.Size, SizeVRAM: before.SizeVRAM, Loaded: before.Loaded}
	switch {
	case parallel <= 1:
		return pr, true
	case first == nil || first.Refused != "" || first.Loaded <= 0:
		return Probe{}, false
	case first.Loaded == first.Context:
		return pr, true
	case first.Loaded == first.Context*parallel && before.Context%parallel == 0:
		pr.Context /= parallel
		return pr, true
	}
	return Probe{}, false // clamped, or reported some other way
}

// reportsNumCtx reports whether the server listed the load first at the
// num_ctx it was asked for, or less (clamped to the trained context), as
// context_length in /api/ps. One that lists more (parallel slots ctxfit
// was not told of, or a raised minimum) did not list num_ctx before the
// tune either, so the model it showed then is no load at a known context.
func reportsNumCtx(first Probe) bool {
	return first.Loaded <= first.Context
}

// otherModels returns the name of every model in ps but model.
func otherModels(ps *api.ProcessResponse, model string) []string {
	if ps == nil {
		return nil
	}
	var names []string
	self := ollama.ModelKey(model)
	for _, m := range ps.Models {
		if ollama.ModelKey(cmp.Or(m.Model, m.Name)) != self {
			names = append(names, m.Name)
		}
	}
	return names
}

// besideKeys returns the ollama.ModelKey of each of names, sorted, each
// once; nil when there is none.
func besideKeys(names []string) []string {
	var keys []string
	for _, n := range names {
		if k := ollama.ModelKey(n); !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// safeContext returns the largest candidate context whose load p predicts
// to need at most half of ram, the smallest candidate when ram is 0 or
// nothing predicts the size.
func safeContext(p *tunePlan, ram int64) int {
	if ram <= 0 {
		return p.step
	}
	return largestPredicted(p, func(c int, size float64) bool { return size <= float64(ram)/2 })
}

// largestPredicted returns the largest candidate context up to which every
// candidate's predicted size satisfies ok, the smallest candidate when none
// does or nothing predicts the size.
func largestPredicted(p *tunePlan, ok func(c int, size float64) bool) int {
	largest := p.step
	for c := p.step; c <= p.max; c += p.step {
		s := p.sizeAt(c)
		if math.IsNaN(s) || !ok(c, s) {
			break
		}
		largest = c
	}
	return largest
}

// gpuGuard keeps a tune safe on a server whose GPU is not known yet: the
// first load is at a context that cannot swap the machine should it be
// CPU-only (see safeContext), and a load with nothing in VRAM either tells
// a CPU-only server (any GPU would have held a layer of it) or is followed
// by a load that tells (checkContext).
type gpuGuard struct {
	seen   bool  // a load had something in VRAM, or the caller knows a GPU is there
	absent bool  // the caller knows there is none
	ram    int64 // what the machine can give a load; 0 when unknown (a remote server)
	check  bool  // the next load is at checkContext
	loads  int
}

// next returns the context to load next from p, as the guard allows it.
func (g *gpuGuard) next(p *tunePlan) (ctx int, done bool) {
	ctx, done = p.next()
	if g.check {
		ctx, done = checkContext(p), false
		if p.probed(ctx) {
			ctx = p.step // a load there did not tell after all
		}
	}
	if !done && g.loads == 0 && !g.seen {
		ctx = min(ctx, safeContext(p, g.ram))
	}
	return ctx, done
}

// checkContext returns the largest candidate context whose load p
// predicts any GPU to hold a layer of, with room to spare (its graph and
// one layer in half of minGPU), so that nothing in VRAM there tells a
// CPU-only server as the smallest context would, while a GPU measures
// itself there better; the smallest candidate when nothing predicts.
func checkContext(p *tunePlan) int {
	return largestPredicted(p, func(c int, size float64) bool {
		return c == p.step || p.gpuFloor(Probe{Context: c, Size: int64(size)}) <= minGPU/2
	})
}

// after takes the load pr, which p has recorded, and reports whether it
// shows a CPU-only server.
func (g *gpuGuard) after(p *tunePlan, pr Probe) (cpuOnly bool) {
	g.loads++
	g.check = false
	switch {
	case pr.SizeVRAM > 0:
		g.seen = true
	case g.seen:
	case pr.Refused != "":
		// Too big for RAM, and no sign of a GPU yet: a smaller load
		// tells whether there is one.
		g.check = g.loads == 1 && !p.probed(p.step)
	case g.absent || pr.Context == p.step || p.gpuFloor(pr) < minGPU:
		// Any GPU would have held a layer of this load.
		return true
	default:
		// Nothing in VRAM, but this load's graph and one layer would
		// not fit a small GPU: ask where any GPU would.
		g.check = !p.probed(p.step)
	}
	return false
}

// restoreTimeout bounds the load or unload that puts a model back after a
// tune, which runs even when the tune's own context was cancelled.
const restoreTimeout = 5 * time.Minute

// restore leaves model as the tune found it: reloaded at before's context,
// or unloaded when it was not loaded (or at a context /api/ps did not
// report). It says what it did, for Result.Restored.
func restore(ctx context.Context, client *api.Client, model string, before *Probe, unloadWait time.Duration, timeout ollama.Progress) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), restoreTimeout)
	defer cancel()
	generate := func(req *api.GenerateRequest) error {
		wctx, progressed, stop := timeout.Watch(ctx, "restore "+model)
		defer stop()
		err := client.Generate(wctx, req, func(api.GenerateResponse) error { progressed(); return nil })
		if s := ollama.Stalled(wctx); s != nil {
			return s
		}
		return err
	}
	if before != nil && before.Context > 0 {
		req := &api.GenerateRequest{Model: model, Options: map[string]any{"num_ctx": before.Context},
			KeepAlive: keepAliveUntil(before.ExpiresAt, time.Now())}
		if err := generate(req); err != nil {
			return fmt.Sprintf("could not reload it at num_ctx %d: %v", before.Context, err)
		}
		return fmt.Sprintf("reloaded at num_ctx %d", before.Context)
	}
	zero := api.Duration{}
	req := &api.GenerateRequest{Model: model, KeepAlive: &zero}
	if err := generate(req); err != nil {
		return fmt.Sprintf("could not unload it: %v", err)
	}
	// Ollama answers before the runner is gone; wait for /api/ps to agree,
	// so that "unloaded" is true when the caller reads it.
	wctx, cancel := context.WithTimeout(ctx, unloadWait)
	defer cancel()
	for {
		ps, err := listRunning(wctx, client, timeout)
		if err == nil && findRunning(ps, model) == nil {
			return "unloaded"
		}
		select {
		case <-wctx.Done():
			return "unload asked for; /api/ps still lists it"
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// keepAliveUntil returns the keep_alive that makes a model reloaded at now
// unload when one that expires at exp would have: -1 for a model kept
// loaded for ever (Ollama lists it as expiring centuries ahead), else the
// time left. nil (the server's default) when exp is unknown or close.
func keepAliveUntil(exp, now time.Time) *api.Duration {
	if exp.IsZero() {
		return nil
	}
	switch left := exp.Sub(now); {
	case left > 100*365*24*time.Hour:
		return &api.Duration{Duration: -1}
	case left > time.Minute:
		return &api.Duration{Duration: ollama.NotProbeKeepAlive(left.Truncate(time.Second))}
	}
	return nil
}

// probeKeepAlive returns keepAlive, or ollama.ProbeKeepAlive for nil.
func probeKeepAlive(keepAlive *api.Duration) *api.Duration {
	if keepAlive != nil {
		return keepAlive
	}
	return &api.Duration{Duration: ollama.ProbeKeepAlive}
}

// gone returns the models of names that /api/ps no longer lists (none
// when it does not answer).
func gone(ctx context.Context, client *api.Client, names []string, timeout ollama.Progress) []string {
	if len(names) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), restoreTimeout)
	defer cancel()
	ps, err := listRunning(ctx, client, timeout)
	if err != nil {
		return nil
	}
	var out []string
	for _, n := range names {
		if findRunning(ps, n) == nil {
			out = append(out, n)
		}
	}
	return out
}

// defaultUnloadWait bounds the wait for an unloaded model to leave /api/ps.
const defaultUnloadWait = 10 * time.Second

// minGPU is the least memory a GPU worth tuning for lends Ollama. A load
// that put nothing in VRAM although its graph and one layer need less came
// from a CPU-only server.
const minGPU = 4 << 30

// bracket copies the tunePlan's proven bracket into the result.
func (r *Result) bracket(p *tunePlan) {
	lo, hi := p.bracket()
	r.LargestFit, r.SmallestSpill = lo, 0
	if hi <= p.max {
		r.SmallestSpill = hi
	}
}

// loadProbe loads model at num_ctx and returns what /api/ps says about it then.
// A load that makes no progress within timeout fails with ollama.ErrStalled.
func loadProbe(ctx context.Context, client *api.Client, model string, numCtx int, keepAlive *api.Duration, timeout ollama.Progress) (Probe, string, error) {
	start := time.Now()
	req := &api.GenerateRequest{
		Model:     model,
		Options:   map[string]any{"num_ctx": numCtx},
		KeepAlive: keepAlive,
	}
	done := false
	wctx, progressed, stop := timeout.Watch(ctx, fmt.Sprintf("load %s at num_ctx %d", model, numCtx))
	err := client.Generate(wctx, req, func(r api.GenerateResponse) error {
		progressed()
		done = done || r.Done
		return nil
	})
	stalled := ollama.Stalled(wctx)
	stop()
	if stalled != nil {
		return Probe{}, "", stalled
	}
	if err != nil {
		var se api.StatusError
		if errors.As(err, &se) {
			if se.StatusCode == http.StatusInternalServerError && strings.Contains(se.ErrorMessage, "requires more system memory") {
				// The part that would not fit on the GPU does not fit in
				// RAM either (llm/server.go): too big, a spill.
				return Probe{Context: numCtx, Seconds: time.Since(start).Seconds(), Refused: se.ErrorMessage}, "", nil
			}
			return Probe{}, "", &LoadError{Model: model, Context: numCtx, Err: err}
		}
		return Probe{}, "", tuneServerError(ctx, fmt.Sprintf("load %s at num_ctx %d", model, numCtx), err)
	}
	if !done {
		// api.Client stops reading a stream silently when it breaks.
		return Probe{}, "", fmt.Errorf("load %s at num_ctx %d: %w (the answer ended before the load was done)", model, numCtx, ErrServerGone)
	}
	pr := Probe{Context: numCtx, Seconds: time.Since(start).Seconds()}

	ps, err := listRunning(ctx, client, timeout)
	if err != nil {
		return Probe{}, "", err
	}
	m := findRunning(ps, model)
	if m == nil {
		return Probe{}, "", fmt.Errorf("%s is not listed by /api/ps right after loading it at num_ctx %d; is OLLAMA_KEEP_ALIVE 0?", model, numCtx)
	}
	pr.Size, pr.SizeVRAM, pr.Loaded = m.Size, m.SizeVRAM, m.ContextLength
	if s, _ := ollama.Classify(pr.Size, pr.SizeVRAM); s == ollama.StateUnknown {
		return Probe{}, "", fmt.Errorf("/api/ps reports %s loaded at num_ctx %d with size %d and size_vram %d, which makes no sense", model, numCtx, pr.Size, pr.SizeVRAM)
	}
	return pr, m.Digest, nil
}

// listRunning asks /api/ps, within timeout.Stall.
func listRunning(ctx context.Context, client *api.Client, timeout ollama.Progress) (*api.ProcessResponse, error) {
	rctx, cancel := timeout.Request(ctx, "list running models")
	defer cancel()
	ps, err := client.ListRunning(rctx)
	if s := ollama.Stalled(rctx); s != nil {
		return nil, s
	}
	if err != nil {
		return nil, tuneServerError(ctx, "list running models", err)
	}
	return ps, nil
}

// findRunning returns model's entry in ps, or nil.
func findRunning(ps *api.ProcessResponse, model string) *api.ProcessModelResponse {
	if ps == nil {
		return nil
	}
	for i, m := range ps.Models {
		if ollama.SameModel(m.Name, model) || ollama.SameModel(m.Model, model) {
			return &ps.Models[i]
		}
	}
	return nil
}

// tuneServerError wraps an error talking to the server: a dropped connection
// becomes ErrServerGone, a cancelled context stays what it is.
func tuneServerError(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", what, ctx.Err())
	}
	var se api.StatusError
	if errors.As(err, &se) {
		return fmt.Errorf("%s: the server answered %w", what, ollama.StatusError{StatusError: se})
	}
	if errors.Is(err, syscall.ECONNREFUSED) || strings.Contains(err.Error(), "connection refused") {
		// Nothing listens there: it may never have answered, so not
		// "stopped answering".
		return fmt.Errorf("%s: %w", what, refusedError{})
	}
	var ne net.Error
	var ue *url.Error
	if errors.As(err, &ne) || errors.As(err, &ue) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
		return fmt.Errorf("%s: %w (is `ollama serve` still running?): %v", what, ErrServerGone, err)
	}
	if errors.Is(err, ollama.ErrTooLarge) {
		return fmt.Errorf("%s: %w: %w", what, ErrBadAnswer, err) // it asks already
	}
	return fmt.Errorf("%s: %w (is this address an Ollama server?): %w", what, ErrBadAnswer, err)
}

// refusedError is a refused connection: ErrServerGone to errors.Is, in
// words that do not say the server answered before.
type refusedError struct{}

func (refusedError) Error() string {
	return "nothing answers at this address (connection refused); start Ollama with `ollama serve`, or check --host and OLLAMA_HOST"
}

func (refusedError) Is(target error) bool { return target == ErrServerGone }

// modelArch is what the tuner uses of a model's architecture.
type modelArch struct {
	layers          int
	heads           int
	contextLength   int
	kvBytesPerToken float64 // f16 K and V of one token in one slot
	output          float64 // see outputBytes; 0 when unknown
}

// slope predicts the bytes a load grows by per context token with parallel
// slots: the KV cache and, in the compute graph, the f32 attention scores
// of one batch (num_batch 512) against every cached token, two copies.
func (a modelArch) slope(parallel int) float64 {
	return (a.kvBytesPerToken + graphBytesPerToken*float64(a.heads)) * float64(parallel)
}

// graphBytesPerToken is the compute graph's growth per cached token and
// attention head: two f32 score matrices of a 512-token batch.
const graphBytesPerToken = 2 * 4 * 512

// parseModelArch reads /api/show's model_info. Missing keys leave zeros; the
// tuner then learns from measurements alone.
func parseModelArch(info map[string]any) modelArch {
	name, _ := info["general.architecture"].(string)
	key := func(k string) any { return info[name+"."+k] }
	var a modelArch
	a.layers = int(jsonNumber(key("block_count")))
	a.contextLength = int(jsonNumber(key("context_length")))

	emb := jsonNumber(key("embedding_length"))
	heads := perLayerValues(key("attention.head_count"), a.layers)
	for _, h := range heads {
		a.heads = max(a.heads, int(h))
	}
	kvHeads := perLayerValues(key("attention.head_count_kv"), a.layers)
	// A head's K is key_length wide and its V value_length, both
	// embedding_length / head_count when not given (fs/ggml in Ollama).
	keyLen := jsonNumber(key("attention.key_length"))
	valLen := jsonNumber(key("attention.value_length"))
	hasKV := key("attention.head_count_kv") != nil // else every head has its own K and V
	for l := 0; l < a.layers; l++ {
		kv := heads[l]
		if hasKV {
			kv = kvHeads[l]
		}
		k, v := keyLen, valLen
		if heads[l] > 0 {
			k = cmp.Or(k, emb/heads[l])
			v = cmp.Or(v, emb/heads[l])
		}
		a.kvBytesPerToken += kv * (k + v) * 2 // f16
	}
	return a
}

// outputBytes returns the bytes of the weights Ollama places on the GPU
// after every repeating layer, as its output layer (memoryLayerOutput in
// its llm/memory.go): output_norm and output, or the token embeddings
// where the output shares them. It reads /api/show's tensors; 0 when it
// lists none, or one of them has a type this version of Ollama's ggml
// package does not know.
func outputBytes(tensors []api.Tensor) float64 {
	size := func(name string) (float64, bool) {
		for _, t := range tensors {
			if t.Name != name {
				continue
			}
			kind, err := ggml.ParseTensorType(t.Type)
			if err != nil || len(t.Shape) == 0 {
				return 0, false
			}
			n := float64(kind.RowSize(t.Shape[0]))
			for _, d := range t.Shape[1:] {
				n *= float64(d)
			}
			return n, true
		}
		return 0, false
	}
	out, ok := size("output.weight")
	if !ok {
		if out, ok = size("token_embd.weight"); !ok {
			return 0
		}
	}
	norm, _ := size("output_norm.weight")
	return out + norm
}

// perLayerValues returns a per-layer value that model_info gives either as one
// number or as an array with one entry per layer.
func perLayerValues(v any, layers int) []float64 {
	out := make([]float64, layers)
	if arr, ok := v.([]any); ok {
		for i := range out {
			if i < len(arr) {
				out[i] = jsonNumber(arr[i])
			}
		}
		return out
	}
	n := jsonNumber(v)
	for i := range out {
		out[i] = n
	}
	return out
}

// jsonNumber converts a JSON number to float64; anything else is 0.
func jsonNumber(v any) float64 {
	switch n := v.(type) {
	case float64:
		return n
	case int:
		return float64(n)
	case int64:
		return float64(n)
	}
	return 0
}
