package tune

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ollama/ollama/format"

	"github.com/ctxfit/ctxfit/internal/termtext"
	"github.com/ctxfit/ctxfit/state"
)

// ProbeLine describes one load: "num_ctx 32768: 25.8 GB, 8%/92% CPU/GPU, 2.1 s".
func ProbeLine(p Probe) string {
	if p.Refused != "" {
		return fmt.Sprintf("num_ctx %d: refused by the server (%s), %.1f s", p.Context, termtext.Clean(p.Refused), p.Seconds)
	}
	line := fmt.Sprintf("num_ctx %d: %s, %s, %.1f s", p.Context, format.HumanBytes(p.Size), p.Processor(), p.Seconds)
	switch {
	case len(p.Evicted) > 0:
		line += "; " + strings.Join(p.Evicted, ", ") + " did not stay loaded beside it"
	case p.CompanionSpilled:
		line += "; a model beside it moved onto the CPU"
	}
	return line
}

// CompanionLoads returns "qwen2.5-coder:1.5b at num_ctx 4096 (1.2 GB)".
func CompanionLoads(cs []CompanionLoad) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = fmt.Sprintf("%s at num_ctx %d (%s)", c.Model, cmp.Or(c.Loaded, c.Context), format.HumanBytes(c.Size))
	}
	return strings.Join(parts, ", ")
}

// Summary says what a tune found, in one sentence.
func Summary(res *Result) string {
	var why string
	switch {
	case res.SmallestSpill > 0:
		why = fmt.Sprintf("%d spills", res.SmallestSpill)
	case res.TrainedContext > 0:
		why = fmt.Sprintf("the model's trained context is %d", res.TrainedContext)
	default:
		why = "the largest context tried"
	}
	if len(res.Companions) > 0 {
		if res.SmallestSpill > 0 {
			why = fmt.Sprintf("%d does not fit beside them", res.SmallestSpill)
		}
		return fmt.Sprintf("%s: num_ctx %d stays 100%% on the GPU beside %s (%s); %d load%s, %d of them of the companions.",
			res.Model, res.Context, CompanionLoads(res.Companions), why, res.Loads, plural(res.Loads), res.CompanionLoads)
	}
	return fmt.Sprintf("%s: num_ctx %d stays 100%% on the GPU (%s); %d load%s.", res.Model, res.Context, why, res.Loads, plural(res.Loads))
}

// Bracket says what the loads proved: "num_ctx 16384 fits, 20480 spills".
func Bracket(res *Result) string {
	switch {
	case res == nil:
		return ""
	case res.LargestFit > 0 && res.SmallestSpill > 0:
		return fmt.Sprintf("num_ctx %d fits, %d spills: the answer is %d or between them", res.LargestFit, res.SmallestSpill, res.LargestFit)
	case res.LargestFit > 0:
		return fmt.Sprintf("num_ctx %d fits; nothing larger was tried", res.LargestFit)
	case res.SmallestSpill > 0:
		return fmt.Sprintf("num_ctx %d spills; nothing smaller was tried", res.SmallestSpill)
	}
	return ""
}

// Record remembers a finished tune of the server with host key; budget is
// the GPU's share of unified memory on an Apple Silicon host, else 0.
func Record(store *state.Store, key string, res *Result, budget int64) error {
	err := store.Update(func(d *state.Data) error {
		d.PutTuned(state.Tuned{
			Host:           key,
			Model:          res.Model,
			Digest:         res.Digest,
			Parallel:       res.Parallel,
			Context:        res.Context,
			Step:           res.Step,
			Loads:          res.Loads,
			TrainedContext: res.TrainedContext,
			MeasuredAt:     time.Now().UTC(),
			BytesPerToken:  BytesPerToken(res),
			GPUBudget:      budget,
			Companions:     storedCompanions(res.Companions),
		})
		h := d.Host(key)
		h.GPUSeen = true // the answer loaded into VRAM
		if res.GPU != nil && len(res.Companions) == 0 {
			b := h.GPUBound.Merge(*res.GPU)
			h.GPUBound = &b
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("tuned %s to %d but could not store it: %w", res.Model, res.Context, err)
	}
	return nil
}

// storedCompanions returns the companions of a joint tune as the state keeps
// them: each at the context it ran with.
func storedCompanions(cs []CompanionLoad) []state.Companion {
	var out []state.Companion
	for _, c := range cs {
		out = append(out, state.Companion{Model: c.Model, Context: cmp.Or(c.Loaded, c.Context)})
	}
	return out
}

// BytesPerToken returns the growth of the model's size per token of
// context, from the smallest and the largest probe; 0 when the probes do
// not tell.
func BytesPerToken(res *Result) float64 {
	var lo, hi *Probe
	for i := range res.Probes {
		p := &res.Probes[i]
		if p.Refused != "" || p.Size <= 0 {
			continue
		}
		if lo == nil || p.Context < lo.Context {
			lo = p
		}
		if hi == nil || p.Context > hi.Context {
			hi = p
		}
	}
	if lo == nil || hi == nil || hi.Context == lo.Context || hi.Size <= lo.Size {
		return 0
	}
	return float64(hi.Size-lo.Size) / float64(hi.Context-lo.Context)
}

// ParallelSlots returns the parallel slots to tune for: flagValue when
// given, else OLLAMA_NUM_PARALLEL when the server runs on this machine
// (where that environment is likely the server's too), else 1.
func ParallelSlots(getenv func(string) string, given bool, flagValue int, local bool) (int, error) {
	if given {
		if flagValue < 1 {
			return 0, fmt.Errorf("--parallel %d: use a positive number of slots", flagValue)
		}
		return flagValue, nil
	}
	if v := strings.TrimSpace(getenv("OLLAMA_NUM_PARALLEL")); local && v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, fmt.Errorf("OLLAMA_NUM_PARALLEL=%q: use a positive number, or pass --parallel", v)
		}
		return n, nil
	}
	return 1, nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
