package tune

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/ollama/ollama/api"
	"github.com/ollama/ollama/format"

	"github.com/ctxfit/ctxfit/ollama"
)

// A joint tune finds the context of one model that leaves room for the
// models that run beside it: Continue's chat model beside its autocomplete
// model, aider's main model beside its weak model.
//
// Ollama's scheduler (server/sched.go, v0.17.4) places a model that is not
// loaded beside the loaded ones only when it fits whole in what they leave
// free; otherwise it unloads an idle model (the shortest keep_alive first)
// and tries again, and only on an empty GPU does it offload layers to the
// CPU. It also unloads one first when OLLAMA_MAX_LOADED_MODELS are loaded.
// So the probe of a joint tune loads the companions, then the model at the
// candidate context, and reads /api/ps: the candidate fits when every model
// of the set is listed, 100% on the GPU. A load that unloaded a companion
// proves only that the candidate's size exceeds what the companions leave
// free; its size_vram says nothing then, so the planner sees it as a
// spill with nothing in VRAM, and without a layer count, so that it draws
// no one-layer bound from it (the bound holds for offloads, not evictions).

// Companion is a model that runs beside the tuned one at its own context.
type Companion struct {
	Model string `json:"model"`
	// Context is the num_ctx its client sends; 0 sends none, so the
	// server loads it at the model's or the server's default.
	Context int `json:"context,omitempty"`
}

// String returns "model" or "model=context", as `ctxfit tune --with` takes it.
func (c Companion) String() string {
	if c.Context > 0 {
		return fmt.Sprintf("%s=%d", c.Model, c.Context)
	}
	return c.Model
}

// ParseCompanion reads "model" or "model=context": model names contain
// colons, never "=".
func ParseCompanion(s string) (Companion, error) {
	name, num, hasNum := strings.Cut(strings.TrimSpace(s), "=")
	c := Companion{Model: strings.TrimSpace(name)}
	if c.Model == "" {
		return c, fmt.Errorf("%q: give a model name, optionally with its context: qwen2.5-coder:1.5b=4096", s)
	}
	if hasNum {
		var n int
		if _, err := fmt.Sscan(strings.TrimSpace(num), &n); err != nil || n < 1 || fmt.Sprint(n) != strings.TrimSpace(num) {
			return c, fmt.Errorf("%q: the context after = must be a positive number of tokens, such as 4096", s)
		}
		c.Context = n
	}
	return c, nil
}

// CompanionLoad is a companion as /api/ps listed it during a joint tune.
type CompanionLoad struct {
	Companion
	// Loaded is the context_length /api/ps reported; 0 from servers that do
	// not report it.
	Loaded   int   `json:"loaded_context,omitempty"`
	Size     int64 `json:"size"`
	SizeVRAM int64 `json:"size_vram"`
}

// Fits reports whether the companion was 100% on the GPU.
func (c CompanionLoad) Fits() bool {
	s, _ := ollama.Classify(c.Size, c.SizeVRAM)
	return s == ollama.StateGPU
}

// JointDoesNotFitError says that a set of models cannot be loaded on the GPU
// together, even with the tuned model at the smallest context.
type JointDoesNotFitError struct {
	Model   string
	Context int   // the smallest context tried; 0 when the companions alone did not fit
	Size    int64 // the model's size at Context
	// Companions are the other models as they were last measured.
	Companions []CompanionLoad
	// Unloaded names the models a load unloaded to make room.
	Unloaded []string
	// GPU is the most the GPU was seen holding at once (a lower bound of
	// its size).
	GPU int64
	// Count reports whether the sizes would fit in GPU bytes: then what
	// stops them is the number of models the server keeps loaded.
	Count bool
}

func (e *JointDoesNotFitError) Error() string {
	var b strings.Builder
	parts := make([]string, 0, len(e.Companions)+1)
	total := int64(0)
	if e.Context > 0 {
		parts = append(parts, fmt.Sprintf("%s at num_ctx %d (%s)", e.Model, e.Context, format.HumanBytes(e.Size)))
		total += e.Size
	}
	for _, c := range e.Companions {
		parts = append(parts, fmt.Sprintf("%s at %s (%s)", c.Model, companionCtx(c), format.HumanBytes(c.Size)))
		total += c.Size
	}
	if len(parts) == 1 {
		fmt.Fprintf(&b, "%s does not stay whole on the GPU", parts[0])
	} else {
		fmt.Fprintf(&b, "%s do not stay on the GPU together: together %s", strings.Join(parts, " and "), format.HumanBytes(total))
	}
	if len(e.Unloaded) > 0 {
		fmt.Fprintf(&b, "; loading them unloaded %s", strings.Join(e.Unloaded, ", "))
	}
	if e.GPU > 0 {
		fmt.Fprintf(&b, "; the most the GPU held at once was %s", format.HumanBytes(e.GPU))
	}
	if e.Count {
		fmt.Fprintf(&b, ". Their sizes fit, so the server keeps fewer models loaded than %d: set OLLAMA_MAX_LOADED_MODELS=%d for `ollama serve`", len(parts), len(parts))
		return b.String()
	}
	if len(e.Companions) == 0 {
		return b.String()
	}
	small := e.Companions[0]
	for _, c := range e.Companions[1:] {
		if c.Size < small.Size {
			small = c
		}
	}
	b.WriteString(". What would fit: ")
	if e.GPU > 0 && e.Context > 0 && e.GPU > e.Size {
		fmt.Fprintf(&b, "companions of at most about %s beside %s (a smaller model or a smaller context for %s), ",
			format.HumanBytes(e.GPU-e.Size), e.Model, small.Model)
	} else {
		fmt.Fprintf(&b, "a smaller companion (a smaller model or a smaller context for %s), ", small.Model)
	}
	fmt.Fprintf(&b, "or %s on the CPU (num_gpu 0 in its request options, or `ollama create` a copy with PARAMETER num_gpu 0)", small.Model)
	return b.String()
}

// Is makes errors.Is(err, ErrDoesNotFit) true.
func (e *JointDoesNotFitError) Is(target error) bool { return target == ErrDoesNotFit }

func companionCtx(c CompanionLoad) string {
	switch {
	case c.Loaded > 0:
		return fmt.Sprintf("num_ctx %d", c.Loaded)
	case c.Context > 0:
		return fmt.Sprintf("num_ctx %d", c.Context)
	}
	return "its default context"
}

// joint is the state of a joint tune.
type joint struct {
	client *api.Client
	opts   Options
	res    *Result
	comps  []CompanionLoad
	// gpuMax is the most the GPU was seen holding at once.
	gpuMax   int64
	gpuSeen  bool
	unloaded []string
}

// tuneJoint is Tune for opts.Companions: p plans the model's loads, res
// holds what the caller already learnt.
func tuneJoint(ctx context.Context, client *api.Client, opts Options, res *Result, p *tunePlan) (*Result, error) {
	for i, c := range opts.Companions {
		switch {
		case strings.TrimSpace(c.Model) == "":
			return res, errors.New("a companion has no model name")
		case ollama.SameModel(c.Model, opts.Model):
			return res, fmt.Errorf("%s is the tuned model; it cannot also run beside itself", c.Model)
		case c.Context < 0:
			return res, fmt.Errorf("companion %s: context %d: use a positive number of tokens, or 0 for its default", c.Model, c.Context)
		}
		for _, o := range opts.Companions[:i] {
			if ollama.SameModel(o.Model, c.Model) {
				return res, fmt.Errorf("%s is given twice as a companion; one model runs at one context at a time", c.Model)
			}
		}
	}
	j := &joint{client: client, opts: opts, res: res}
	for _, c := range opts.Companions {
		j.comps = append(j.comps, CompanionLoad{Companion: c})
	}
	res.Companions = j.comps
	j.gpuSeen = opts.GPU == ollama.GPUPresent

	// Models outside the set would take room the set needs (or be evicted
	// in its place), so they go first.
	if err := j.unloadOthers(ctx); err != nil {
		return res, err
	}
	if opts.Starting != nil {
		opts.Starting()
	}
	p.confirm = true // the set stays loaded as tuned
	probes := 0
	var err error
	for {
		next, done := p.next()
		if done {
			break
		}
		if err := ctx.Err(); err != nil {
			res.bracket(p)
			return res, fmt.Errorf("tune stopped after %d loads: %w", res.Loads, err)
		}
		if probes == MaxLoads {
			res.bracket(p)
			return res, fmt.Errorf("%w: %d loads of %s beside %s did not settle, as if other models were loading meanwhile; try again when the server is idle",
				ErrInconsistent, probes, opts.Model, j.names())
		}
		// The first load, when no companion is loaded yet, goes first: on
		// the emptied GPU it measures what the GPU holds, and the
		// companions loaded after it either fit beside it or unload it. That
		// is a load fewer than loading them first, having it unload one,
		// and loading that one again.
		mainFirst := false
		if probes == 0 {
			if mainFirst, err = j.noneLoaded(ctx); err != nil {
				return res, err
			}
		}
		if !mainFirst {
			if err := j.loadCompanions(ctx); err != nil {
				res.bracket(p)
				return res, err
			}
		}
		pr, digest, err := loadProbe(ctx, client, opts.Model, next, opts.KeepAlive, opts.Timeout)
		if err != nil {
			res.bracket(p)
			if ctx.Err() != nil {
				return res, fmt.Errorf("tune stopped during load %d: %w", res.Loads+1, ctx.Err())
			}
			return res, err
		}
		probes++
		res.Loads++
		if digest != "" {
			res.Digest = digest
		}
		if mainFirst && pr.Refused == "" {
			for i := range j.comps {
				if err := j.loadCompanion(ctx, i); err != nil {
					res.bracket(p)
					return res, err
				}
			}
		}
		planned, err := j.measure(ctx, &pr)
		if err != nil {
			res.bracket(p)
			return res, err
		}
		res.Probes = append(res.Probes, pr)
		p.add(planned)
		res.bracket(p)
		if opts.Progress != nil {
			opts.Progress(pr)
		}
		if pr.SizeVRAM > 0 {
			j.gpuSeen = true
		}
		if !j.gpuSeen && pr.Refused == "" && (opts.GPU == ollama.GPUAbsent || pr.Context == p.step) {
			// (A load refused for lack of RAM says nothing of a GPU.)
			return res, fmt.Errorf("%w: %s and its companions loaded with nothing in VRAM; "+
				"ctxfit tunes for a GPU (if this server has one, check that Ollama finds it: see its log)", ErrCPUOnly, opts.Model)
		}
	}

	lo, _ := p.bracket()
	if lo > 0 {
		res.Context = lo
		return res, nil
	}
	// Not even the smallest context fits beside the companions.
	var last *Probe
	for i := range res.Probes {
		if res.Probes[i].Context == p.step {
			last = &res.Probes[i]
		}
	}
	if last != nil && last.Refused != "" {
		// The server had not the memory for it at the smallest context.
		if !j.gpuSeen {
			// No load showed a GPU yet: the companions, loaded alone,
			// tell whether there is one (ErrCPUOnly when not).
			if err := j.loadCompanions(ctx); err != nil && !errors.Is(err, ErrDoesNotFit) {
				return res, err
			}
		}
		e := &DoesNotFitError{Model: opts.Model, Context: p.step, Size: int64(p.weights), Refused: last.Refused}
		if s := p.sizeAt(p.step); !math.IsNaN(s) {
			e.Size = int64(s)
		}
		return res, e
	}
	if last != nil && len(last.Evicted) == len(j.comps) && !aloneFits(*last) {
		// Alone on the GPU and still spilling: the model itself is too big.
		return res, &DoesNotFitError{Model: opts.Model, Context: p.step, Size: last.Size, Refused: last.Refused, GPU: j.gpuMax}
	}
	e := &JointDoesNotFitError{Model: opts.Model, Context: p.step, Companions: j.comps, GPU: j.gpuMax}
	if last != nil {
		e.Size, e.Unloaded = last.Size, last.Evicted
	}
	e.Count = j.countLimited(e.Size)
	return res, e
}

// names lists the companions for messages.
func (j *joint) names() string {
	n := make([]string, len(j.comps))
	for i, c := range j.comps {
		n[i] = c.Model
	}
	return strings.Join(n, ", ")
}

// inSet reports whether the /api/ps entry m is the tuned model or a companion.
func (j *joint) inSet(m api.ProcessModelResponse) bool {
	if ollama.SameModel(m.Name, j.opts.Model) || ollama.SameModel(m.Model, j.opts.Model) {
		return true
	}
	return j.companion(m) >= 0
}

// companion returns the index of the companion m is, or -1.
func (j *joint) companion(m api.ProcessModelResponse) int {
	for i, c := range j.comps {
		if ollama.SameModel(m.Name, c.Model) || ollama.SameModel(m.Model, c.Model) {
			return i
		}
	}
	return -1
}

// unloadOthers unloads every loaded model outside the set.
func (j *joint) unloadOthers(ctx context.Context) error {
	ps, err := j.listRunning(ctx)
	if err != nil {
		return tuneServerError(ctx, "list running models", err)
	}
	for _, m := range ps.Models {
		if !j.inSet(m) {
			if err := unload(ctx, j.client, m.Name); err != nil {
				return err
			}
			j.unloaded = append(j.unloaded, m.Name)
		}
	}
	return nil
}

// unload asks the server to unload model (keep_alive 0 without a prompt).
func unload(ctx context.Context, client *api.Client, model string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err := client.Generate(ctx, &api.GenerateRequest{Model: model, KeepAlive: &api.Duration{}}, func(api.GenerateResponse) error { return nil })
	if err != nil {
		return tuneServerError(ctx, "unload "+model, err)
	}
	return nil
}

// resident returns the companions /api/ps lists at the context they were
// loaded with, by index.
func (j *joint) resident(ps *api.ProcessResponse) map[int]api.ProcessModelResponse {
	out := map[int]api.ProcessModelResponse{}
	for _, m := range ps.Models {
		i := j.companion(m)
		if i < 0 {
			continue
		}
		c := j.comps[i]
		want := cmp.Or(c.Loaded, c.Context) // before its first load, the context asked for
		if want > 0 && m.ContextLength > 0 && m.ContextLength != want {
			continue // loaded at another context (by a client, or before the tune)
		}
		out[i] = m
	}
	return out
}

// loadCompanions makes sure every companion is loaded at its context. When
// one is missing, the tuned model is unloaded first, so that the companion
// finds the room the set will share and does not evict another companion
// in its place.
func (j *joint) loadCompanions(ctx context.Context) error {
	ps, err := j.listRunning(ctx)
	if err != nil {
		return tuneServerError(ctx, "list running models", err)
	}
	have := j.resident(ps)
	for i, m := range have {
		j.note(i, m)
		if !j.comps[i].Fits() {
			// Partly on the CPU (loaded beside other models, say): on the
			// emptied GPU it may fit whole.
			delete(have, i)
		}
	}
	if len(have) == len(j.comps) {
		return nil
	}
	if findRunning(ps, j.opts.Model) != nil {
		if err := unload(ctx, j.client, j.opts.Model); err != nil {
			return err
		}
	}
	for i := range j.comps {
		if _, ok := have[i]; ok {
			continue
		}
		if err := j.loadCompanion(ctx, i); err != nil {
			return err
		}
	}
	// The companions alone must stay on the GPU together.
	if ps, err = j.listRunning(ctx); err != nil {
		return tuneServerError(ctx, "list running models", err)
	}
	have = j.resident(ps)
	var held int64
	fits := len(have) == len(j.comps)
	for i, m := range have {
		j.note(i, m)
		held += m.SizeVRAM
		fits = fits && j.comps[i].Fits()
	}
	j.gpuMax = max(j.gpuMax, held)
	if held > 0 {
		j.gpuSeen = true
	}
	if fits {
		return nil
	}
	if !j.gpuSeen && j.opts.GPU != ollama.GPUPresent {
		// Loaded first on an emptied server, any GPU would have held a
		// layer of a companion of this size.
		for _, c := range j.comps {
			if c.Size > 0 && c.Size < 4*minGPU {
				return fmt.Errorf("%w: %s loaded with nothing in VRAM at %s (size %s); "+
					"ctxfit tunes for a GPU (if this server has one, check that Ollama finds it: see its log)",
					ErrCPUOnly, c.Model, companionCtx(c), format.HumanBytes(c.Size))
			}
		}
	}
	e := &JointDoesNotFitError{Model: j.opts.Model, Companions: j.comps, GPU: j.gpuMax}
	var sum int64
	for i, c := range j.comps {
		if _, ok := have[i]; !ok {
			e.Unloaded = append(e.Unloaded, c.Model)
		}
		sum += c.Size
	}
	e.Count = len(have) < len(j.comps) && j.gpuMax >= sum
	return e
}

// loadCompanion loads companion i at its context and records what /api/ps
// says about it.
func (j *joint) loadCompanion(ctx context.Context, i int) error {
	c := &j.comps[i]
	req := &api.GenerateRequest{Model: c.Model, KeepAlive: j.opts.KeepAlive}
	if c.Context > 0 {
		req.Options = map[string]any{"num_ctx": c.Context}
	}
	done := false
	wctx, progressed, stop := j.opts.Timeout.Watch(ctx, fmt.Sprintf("load %s at num_ctx %d", c.Model, c.Context))
	err := j.client.Generate(wctx, req, func(r api.GenerateResponse) error {
		progressed()
		done = done || r.Done
		return nil
	})
	stalled := ollama.Stalled(wctx)
	stop()
	if stalled != nil {
		return stalled
	}
	if err != nil {
		var se api.StatusError
		if errors.As(err, &se) && se.StatusCode == http.StatusNotFound {
			return fmt.Errorf("%w: %s (see `ollama list`, or `ollama pull %s`)", ErrUnknownModel, c.Model, c.Model)
		}
		if errors.As(err, &se) {
			return &LoadError{Model: c.Model, Context: c.Context, Err: err}
		}
		return tuneServerError(ctx, "load companion "+c.Model, err)
	}
	if !done {
		return fmt.Errorf("load %s: %w (the answer ended before the load was done)", c.Model, ErrServerGone)
	}
	j.res.Loads++
	j.res.CompanionLoads++
	ps, err := j.listRunning(ctx)
	if err != nil {
		return tuneServerError(ctx, "list running models", err)
	}
	m := findRunning(ps, c.Model)
	if m == nil {
		return fmt.Errorf("%s is not listed by /api/ps right after loading it; is OLLAMA_KEEP_ALIVE 0?", c.Model)
	}
	j.note(i, *m)
	return nil
}

// note records what /api/ps said about companion i.
func (j *joint) note(i int, m api.ProcessModelResponse) {
	c := &j.comps[i]
	c.Size, c.SizeVRAM = m.Size, m.SizeVRAM
	if m.ContextLength > 0 {
		c.Loaded = m.ContextLength
	}
}

// measure reads /api/ps after the tuned model's load pr, fills in which
// companions it unloaded, and returns the probe the planner should see.
func (j *joint) measure(ctx context.Context, pr *Probe) (Probe, error) {
	if pr.Refused != "" {
		// Refused for lack of RAM: it did not fit beside them either.
		return *pr, nil
	}
	ps, err := j.listRunning(ctx)
	if err != nil {
		return Probe{}, tuneServerError(ctx, "list running models", err)
	}
	have := j.resident(ps)
	held := pr.SizeVRAM
	spilled := false
	if m := findRunning(ps, j.opts.Model); m == nil || m.ContextLength > 0 && pr.Loaded > 0 && m.ContextLength != pr.Loaded {
		// Loaded first, it was unloaded by a companion loaded after it:
		// the set does not fit, and pr measured it alone on the GPU.
		held = 0
		for _, c := range j.comps {
			pr.Evicted = append(pr.Evicted, c.Model)
		}
		for i, m := range have {
			j.note(i, m)
			held += m.SizeVRAM
		}
		j.gpuMax = max(j.gpuMax, held, pr.SizeVRAM)
		planned := *pr
		planned.Evicted = nil
		if pr.SizeVRAM >= pr.Size {
			planned.SizeVRAM, planned.Evicted = 0, []string{""}
		} else {
			planned.SizeVRAM = max(0, pr.SizeVRAM-j.companionBytes())
		}
		return planned, nil
	}
	for i, c := range j.comps {
		m, ok := have[i]
		if !ok {
			pr.Evicted = append(pr.Evicted, c.Model)
			continue
		}
		j.note(i, m)
		held += m.SizeVRAM
		spilled = spilled || !j.comps[i].Fits()
	}
	j.gpuMax = max(j.gpuMax, held)
	if held > 0 {
		j.gpuSeen = true
	}
	pr.CompanionSpilled = spilled && len(pr.Evicted) == 0
	planned := *pr
	planned.CompanionSpilled = false
	switch {
	case spilled:
		// Beside a companion pushed onto the CPU, its size_vram bounds
		// nothing.
		planned.SizeVRAM, planned.Evicted = 0, []string{""}
	case len(pr.Evicted) == len(j.comps) && pr.SizeVRAM < pr.Size:
		// Unloading the companions did not make room: it was offloaded
		// onto the emptied GPU, which thus holds size_vram and less than
		// one more layer. Ollama adds up the memory of loaded models, so
		// beside the companions the room is that less their bytes: an
		// offload the planner knows how to read.
		planned.SizeVRAM, planned.Evicted = max(0, pr.SizeVRAM-j.companionBytes()), nil
	case len(pr.Evicted) > 0:
		// Whole on the GPU once the companions had gone: only that it
		// did not fit beside them.
		planned.SizeVRAM = 0
	}
	return planned, nil
}

// countLimited reports whether the set's sizes, with the model at size,
// fit in what the GPU was seen holding, so that only the number of models
// kept loaded can have stopped them.
func (j *joint) countLimited(size int64) bool {
	sum := size
	for _, c := range j.comps {
		sum += c.Size
	}
	return size > 0 && sum <= j.gpuMax
}

// aloneFits reports whether the model of pr was 100% on the GPU, whatever
// became of its companions.
func aloneFits(pr Probe) bool {
	pr.Evicted, pr.CompanionSpilled = nil, false
	return pr.Fits()
}

// noneLoaded reports whether no companion is loaded.
func (j *joint) noneLoaded(ctx context.Context) (bool, error) {
	ps, err := j.listRunning(ctx)
	if err != nil {
		return false, tuneServerError(ctx, "list running models", err)
	}
	return len(j.resident(ps)) == 0, nil
}

// companionBytes returns what the companions take together, as last
// measured.
func (j *joint) companionBytes() int64 {
	var sum int64
	for _, c := range j.comps {
		sum += c.Size
	}
	return sum
}

// listRunning asks for /api/ps with the tune's status deadline.
func (j *joint) listRunning(ctx context.Context) (*api.ProcessResponse, error) {
	rctx, cancel := j.opts.Timeout.Request(ctx, "list running models")
	defer cancel()
	return j.client.ListRunning(rctx)
}
