// Package unified knows the GPU's share of an Apple Silicon Mac's unified
// memory: how much of it the GPU may wire (Metal's recommended working set,
// which `sysctl iogpu.wired_limit_mb` raises), how much context a higher
// limit buys a tuned model, and how to set that limit safely.
//
// Ollama places a model 100% on the GPU while it fits in that budget and
// spills past it, so on a Mac the largest context is bounded by the limit,
// not by the RAM. Ollama v0.17.4 reads the budget once, when it starts
// (discover/runner.go: "metal never updates free VRAM"), and logs it as
// `msg="inference compute" library=metal … total="21.3 GiB"`: after the limit
// changes, Ollama must be restarted before a new tune can use it.
package unified

import (
	"fmt"
	"math"

	"github.com/ollama/ollama/format"
)

const (
	mib = int64(1) << 20
	gib = int64(1) << 30
)

// Info is what a Mac says about its unified memory.
type Info struct {
	// RAM is the physical memory (hw.memsize) in bytes.
	RAM int64 `json:"ram_bytes"`
	// WiredLimitMB is iogpu.wired_limit_mb: the GPU's limit in MiB, or 0
	// for the macOS default (see DefaultBudget).
	WiredLimitMB int `json:"wired_limit_mb"`
}

// Budget returns the bytes the GPU may use: the wired limit when one is set,
// else the macOS default for this much RAM.
func (i Info) Budget() int64 {
	if i.WiredLimitMB > 0 {
		return int64(i.WiredLimitMB) * mib
	}
	return DefaultBudget(i.RAM)
}

// String describes the budget as `ctxfit status` shows it.
func (i Info) String() string {
	how := "the macOS default"
	if i.WiredLimitMB > 0 {
		how = fmt.Sprintf("iogpu.wired_limit_mb=%d", i.WiredLimitMB)
	}
	return fmt.Sprintf("GPU may use %s of %s unified memory (%s)",
		format.HumanBytes2(uint64(i.Budget())), format.HumanBytes2(uint64(i.RAM)), how)
}

// Short describes the budget in a few words, for the tray's server line:
// "GPU may use 21.3 GiB of 32.0 GiB".
func (i Info) Short() string {
	return fmt.Sprintf("GPU may use %s of %s", format.HumanBytes2(uint64(i.Budget())), format.HumanBytes2(uint64(i.RAM)))
}

// DefaultBudget returns Metal's recommended working set on a Mac with ram
// bytes of memory when iogpu.wired_limit_mb is 0: about 2/3 of it, 3/4 from
// 36 GiB up.
func DefaultBudget(ram int64) int64 {
	if ram >= 36*gib {
		return ram / 4 * 3
	}
	return ram / 3 * 2
}

// Reserve returns the memory ctxfit leaves to macOS and the user's other
// programs when it suggests a limit: 20% of the RAM, at least 8 GiB. macOS
// itself, the window server and a browser need about 6–8 GiB; with less the
// machine swaps and beachballs, which is slower than any spill.
func Reserve(ram int64) int64 {
	return max(8*gib, ram/5)
}

// MaxLimitMB returns the largest limit ctxfit suggests: the RAM less
// Reserve, in MiB; 0 when that is not more than the default.
func MaxLimitMB(ram int64) int {
	mb := int((ram - Reserve(ram)) / mib)
	if int64(mb)*mib <= DefaultBudget(ram) {
		return 0
	}
	return mb
}

// Fit is what a tune measured about one model.
type Fit struct {
	// Context is the largest context that stayed 100% on the GPU under
	// the budget the tune ran with.
	Context int
	// Step is the tune's granularity; suggestions are multiples of it.
	Step int
	// Trained is the model's trained context (0: unknown), which caps
	// every suggestion.
	Trained int
	// BytesPerToken is what one more token of context adds to the
	// model's size, measured from the tune's loads.
	BytesPerToken float64
}

// Option is one limit and what it buys.
type Option struct {
	// Label says where the limit comes from ("75% of RAM").
	Label string `json:"label"`
	// LimitMB is the value for iogpu.wired_limit_mb.
	LimitMB int `json:"wired_limit_mb"`
	// Budget is LimitMB in bytes.
	Budget int64 `json:"budget_bytes"`
	// Context is the context that should fit under it: an estimate from
	// the measured bytes per token, to be confirmed by a tune.
	Context int `json:"context"`
	// LeftForMacOS is what the limit leaves to the system.
	LeftForMacOS int64 `json:"left_for_macos_bytes"`
}

// Advise returns what a few larger limits would buy a model that fit at
// fit.Context under info's current budget: 75% of RAM and the RAM less
// Reserve, each only when it is above the current budget. It returns
// nothing when the tune measured no growth per token.
func Advise(info Info, fit Fit) []Option {
	if info.RAM <= 0 || fit.Context <= 0 || fit.BytesPerToken <= 0 {
		return nil
	}
	step := max(fit.Step, 1)
	cur := info.Budget()
	var out []Option
	add := func(label string, mb int) {
		budget := int64(mb) * mib
		if budget <= cur || slicesContainsLimit(out, mb) {
			return
		}
		extra := float64(budget - cur)
		ctx := fit.Context + int(math.Floor(extra/fit.BytesPerToken/float64(step)))*step
		if fit.Trained > 0 {
			ctx = min(ctx, fit.Trained/step*step)
		}
		out = append(out, Option{Label: label, LimitMB: mb, Budget: budget, Context: ctx, LeftForMacOS: info.RAM - budget})
	}
	add("75% of RAM", int(info.RAM*3/4/mib))
	if mb := MaxLimitMB(info.RAM); mb > 0 {
		add(fmt.Sprintf("RAM less %s for macOS", format.HumanBytes2(uint64(Reserve(info.RAM)))), mb)
	}
	return out
}

func slicesContainsLimit(opts []Option, mb int) bool {
	for _, o := range opts {
		if o.LimitMB == mb {
			return true
		}
	}
	return false
}

// CheckLimit says why ctxfit will not set mb without --force: a limit that
// leaves macOS less than Reserve, or more than the RAM. 0 (the default) is
// always fine.
func CheckLimit(info Info, mb int) error {
	switch {
	case mb < 0:
		return fmt.Errorf("iogpu.wired_limit_mb=%d: use 0 for the macOS default or a size in MiB", mb)
	case mb == 0:
		return nil
	case int64(mb)*mib >= info.RAM:
		return fmt.Errorf("iogpu.wired_limit_mb=%d is more than this Mac's %s of memory", mb, format.HumanBytes2(uint64(info.RAM)))
	case info.RAM-int64(mb)*mib < Reserve(info.RAM):
		return fmt.Errorf("iogpu.wired_limit_mb=%d leaves macOS only %s; keep at least %s (at most %d), or pass --force if you know this machine runs nothing else",
			mb, format.HumanBytes2(uint64(info.RAM-int64(mb)*mib)), format.HumanBytes2(uint64(Reserve(info.RAM))), MaxLimitMB(info.RAM))
	}
	return nil
}
