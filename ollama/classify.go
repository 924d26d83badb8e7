package ollama

import (
	"fmt"
	"math"
	"strings"
)

// State says where a loaded model's memory lives.
type State string

// The states of a loaded model, as ctxfit status and the JSON output spell them.
const (
	StateGPU     State = "gpu"     // 100% GPU
	StatePartial State = "partial" // split between CPU and GPU: layers were offloaded
	StateCPU     State = "cpu"     // 100% CPU
	StateUnknown State = "unknown" // sizes that make no sense (size_vram > size, size 0, negative)
)

// Classify returns the state of a model with the given total size and the
// part of it in VRAM, and the PROCESSOR text exactly as `ollama ps` prints it
// (cmd/cmd.go in Ollama): "100% CPU", "100% GPU", "Unknown" or "C%/G% CPU/GPU".
// Negative sizes, which Ollama never reports, are "Unknown". A size of 0
// with nothing in VRAM prints "100% CPU", as `ollama ps` does, but its
// state is unknown: a model that takes no memory cannot have spilled, and
// calling it spilled raised a warning (and a tune to run) about nothing.
func Classify(size, sizeVRAM int64) (State, string) {
	switch {
	case size < 0 || sizeVRAM < 0:
		return StateUnknown, "Unknown"
	case size == 0 && sizeVRAM == 0:
		return StateUnknown, "100% CPU"
	case sizeVRAM == 0:
		return StateCPU, "100% CPU"
	case sizeVRAM == size:
		return StateGPU, "100% GPU"
	case sizeVRAM > size || size == 0:
		return StateUnknown, "Unknown"
	default:
		cpu := math.Round(float64(size-sizeVRAM) / float64(size) * 100)
		return StatePartial, fmt.Sprintf("%d%%/%d%% CPU/GPU", int(cpu), int(100-cpu))
	}
}

// GPUPresence says whether an Ollama host has a GPU.
type GPUPresence string

// The values of GPUPresence.
const (
	GPUUnknown GPUPresence = "unknown"
	GPUPresent GPUPresence = "present"
	GPUAbsent  GPUPresence = "absent"
)

// ParseGPUPresence accepts "present", "absent" or "unknown" (any case).
func ParseGPUPresence(s string) (GPUPresence, error) {
	switch p := GPUPresence(strings.ToLower(strings.TrimSpace(s))); p {
	case GPUPresent, GPUAbsent, GPUUnknown:
		return p, nil
	}
	return GPUUnknown, fmt.Errorf("GPU presence %q: use present, absent or unknown", s)
}

// Spilled reports whether a model in state s has memory on the CPU that
// should be on the GPU: a partial split always, 100% CPU only on a host that
// has a GPU. On a CPU-only host nothing is spilled.
func Spilled(s State, gpu GPUPresence) bool {
	switch s {
	case StatePartial:
		return true
	case StateCPU:
		return gpu == GPUPresent
	}
	return false
}

// ModelKey returns the canonical form of an Ollama model name, so that
// "llama3.1" and "llama3.1:latest" compare equal. Case is kept: Ollama's
// names are case-insensitive, but users see them as written.
func ModelKey(name string) string {
	name = strings.TrimSpace(name)
	if name == "" {
		return ""
	}
	// The tag follows the last colon after the last slash (a registry host
	// may carry a port: "host:5000/ns/model").
	base := name[strings.LastIndex(name, "/")+1:]
	if !strings.Contains(base, ":") {
		name += ":latest"
	}
	return strings.ToLower(name)
}

// SameModel reports whether a and b name the same model (see ModelKey).
func SameModel(a, b string) bool { return ModelKey(a) == ModelKey(b) }
