package ollama

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"

	"github.com/ollama/ollama/format"
)

// DetectLocalGPU looks for a GPU that Ollama can use on this machine: an
// NVIDIA driver or nvidia-smi, an AMD ROCm device or rocm-smi, or Apple
// Silicon. It says GPUAbsent when it finds none of them.
func DetectLocalGPU() GPUPresence {
	if runtime.GOOS == "darwin" && runtime.GOARCH == "arm64" {
		return GPUPresent
	}
	for _, p := range []string{"/proc/driver/nvidia/gpus", "/dev/nvidia0", "/dev/kfd"} {
		if _, err := os.Stat(p); err == nil {
			return GPUPresent
		}
	}
	for _, tool := range []string{"nvidia-smi", "rocm-smi", "amd-smi"} {
		if _, err := exec.LookPath(tool); err == nil {
			return GPUPresent
		}
	}
	return GPUAbsent
}

// modelClass is a size class of model that users can pick instead.
type modelClass struct {
	name string
	q4   int64 // typical q4_K_M weights plus a modest context
}

var modelClasses = []modelClass{
	{"7–9B", 6 << 30},
	{"3–4B", 3 << 30},
	{"0.5–1.5B", 3 << 29},
}

// RAMWarning returns a warning when a model of size bytes, loaded at
// context ctx (0 when unknown), will not fit in a machine with ram bytes of
// memory (keeping 15% for the system and other programs), naming the
// budget it exceeds and the largest model class that would fit; "" when it
// fits. The budget is named because a model smaller than the RAM can still
// exceed it: "needs 24 GB but this machine has 25 GB" reads as a false alarm.
func RAMWarning(name string, size, ram int64, ctx int) string {
	budget := ram * 85 / 100
	if size <= budget {
		return ""
	}
	at, lower := "", ""
	if ctx > 0 {
		at, lower = fmt.Sprintf(" at context %d", ctx), "a smaller context or "
	}
	msg := fmt.Sprintf("%s needs %s%s, over the %s of RAM left for models (of %s): it will swap and answer very slowly.",
		name, format.HumanBytes(size), at, format.HumanBytes(budget), format.HumanBytes(ram))
	for _, c := range modelClasses {
		if c.q4 <= budget {
			return msg + fmt.Sprintf(" Use %sa %s model at q4_K_M (about %s), which fits; prefer q4_K_M over q8_0 or fp16.", lower, c.name, format.HumanBytes(c.q4))
		}
	}
	return msg + " No model class fits comfortably; close other programs or use a machine with more memory."
}
