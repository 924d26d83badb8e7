package ollamatest

import (
	"slices"
	"strings"
	"testing"
)

func TestSweepLargestMonotone(t *testing.T) {
	fit := func(c int) Point { return Point{Context: c, Size: 10, SizeVRAM: 10} }
	spill := func(c int) Point { return Point{Context: c, Size: 20, SizeVRAM: 15} }
	cpu := func(c int) Point { return Point{Context: c, Size: 20} }
	tests := []struct {
		name     string
		points   []Point
		largest  int
		monotone bool
	}{
		{"boundary inside", []Point{fit(1), fit(2), spill(3), spill(4)}, 2, true},
		{"all fit", []Point{fit(1), fit(2)}, 2, true},
		{"none fits", []Point{spill(1), cpu(2)}, 0, true},
		{"fit above a spill", []Point{fit(1), spill(2), fit(3)}, 3, false},
		{"nothing in VRAM is no fit", []Point{{Context: 1}}, 0, true},
	}
	for _, tt := range tests {
		sw := Sweep{Points: tt.points}
		if got := sw.Largest(); got != tt.largest {
			t.Errorf("%s: Largest = %d, want %d", tt.name, got, tt.largest)
		}
		if got := sw.Monotone(); got != tt.monotone {
			t.Errorf("%s: Monotone = %v, want %v", tt.name, got, tt.monotone)
		}
	}
}

func TestSweepKey(t *testing.T) {
	base := GPUOptions{Engine: EngineLlamaCpp, Overhead: DefaultGPUOverhead}
	k := SweepKey(base, GPUShape, 4096)
	if k != SweepKey(base, GPUShape, 4096) {
		t.Error("SweepKey is not stable")
	}
	other := GPUShape
	other.Layers++
	for name, k2 := range map[string]string{
		"engine":   SweepKey(GPUOptions{Engine: EngineOllama, Overhead: DefaultGPUOverhead}, GPUShape, 4096),
		"overhead": SweepKey(GPUOptions{Engine: EngineLlamaCpp, Overhead: 1}, GPUShape, 4096),
		"shape":    SweepKey(base, other, 4096),
		"step":     SweepKey(base, GPUShape, 2048),
		"flash":    SweepKey(GPUOptions{Engine: EngineLlamaCpp, Overhead: DefaultGPUOverhead, FlashAttention: true}, GPUShape, 4096),
	} {
		if k2 == k {
			t.Errorf("a different %s gives the same key %s", name, k)
		}
	}
}

func TestGPUOptionsEnv(t *testing.T) {
	got := GPUOptions{Engine: EngineOllama, Overhead: 123}.Env()
	for _, want := range []string{"OLLAMA_VULKAN=1", "GGML_VK_VISIBLE_DEVICES=0", "OLLAMA_GPU_OVERHEAD=123", "OLLAMA_NEW_ENGINE=true"} {
		if !slices.Contains(got, want) {
			t.Errorf("Env() = %v, lacks %s", got, want)
		}
	}
	if env := (GPUOptions{Engine: EngineLlamaCpp}).Env(); !slices.Contains(env, "OLLAMA_NEW_ENGINE=false") {
		t.Errorf("the llama.cpp engine's env %v does not turn the new engine off", env)
	}
	if env := (GPUOptions{Engine: EngineLlamaCpp, FlashAttention: true}).Env(); !slices.Contains(env, "OLLAMA_FLASH_ATTENTION=1") {
		t.Errorf("the env %v with flash attention does not set OLLAMA_FLASH_ATTENTION=1", env)
	}
	if env := (GPUOptions{Engine: EngineLlamaCpp}).Env(); slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "OLLAMA_FLASH_ATTENTION=") }) {
		t.Errorf("the env %v without flash attention sets it (Ollama's default is auto)", env)
	}
}
