package gpusim

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/ctxfit/ctxfit/unified"
	"github.com/ollama/ollama/api"
)

const (
	mib = int64(1) << 20
	gib = int64(1) << 30
)

// DiscreteReserve is what a discrete GPU keeps for itself (driver, CUDA
// context, Ollama's minimum free memory): a "24GB" preset lends Ollama
// 24 GiB less this.
const DiscreteReserve = 512 * mib

// GPU describes the accelerator of a simulated host.
type GPU struct {
	// Name is the preset's name ("24GB", "mac32", "none").
	Name string
	// VRAM is the budget of bytes usable by Ollama; 0 is a CPU-only host.
	VRAM int64
	// Unified reports whether the GPU shares system memory (Apple Silicon):
	// such hosts report size_vram against Metal's working set and never fail
	// a load for lack of system memory (macOS swaps instead).
	Unified bool
	// RAM is the host's system memory; 0 means unlimited.
	RAM int64
	// WiredLimitMB is a unified host's iogpu.wired_limit_mb: when set, VRAM
	// is that many MiB instead of the macOS default (see MacWithLimit).
	WiredLimitMB int
	// Bandwidth is the GPU's memory bandwidth in bytes per second, which
	// bounds token generation for layers on the GPU.
	Bandwidth float64
	// CPUBandwidth is the bandwidth at which the CPU reads the layers left
	// in system memory, in bytes per second.
	CPUBandwidth float64
}

// UnifiedBudget returns Metal's recommended working set on an Apple Silicon
// machine with ram bytes of memory: 2/3 of it, 3/4 from 36 GiB
// (unified.DefaultBudget).
func UnifiedBudget(ram int64) int64 { return unified.DefaultBudget(ram) }

// WithWiredLimit returns the unified GPU g with iogpu.wired_limit_mb set to
// mb: its budget becomes mb MiB, or the default for mb 0.
func (g GPU) WithWiredLimit(mb int) GPU {
	if !g.Unified {
		return g
	}
	g.WiredLimitMB = mb
	g.VRAM = unified.Info{RAM: g.RAM, WiredLimitMB: mb}.Budget()
	return g
}

// totalVRAM is the GPU's full size as Ollama reports it at start-up, which
// picks the default context.
func (g GPU) totalVRAM() int64 {
	if g.VRAM <= 0 {
		return 0
	}
	if g.Unified {
		return g.VRAM
	}
	return g.VRAM + DiscreteReserve
}

func discrete(name string, size, ram int64, bw float64) GPU {
	return GPU{Name: name, VRAM: size - DiscreteReserve, RAM: ram, Bandwidth: bw, CPUBandwidth: 60e9}
}

func mac(name string, ram int64, bw, cpu float64) GPU {
	return GPU{Name: name, VRAM: UnifiedBudget(ram), Unified: true, RAM: ram, Bandwidth: bw, CPUBandwidth: cpu}
}

// GPUs returns the GPU presets: discrete cards of 8, 16, 24 and 32 GiB,
// Apple Silicon Macs with 16 and 32 GiB of unified memory, and "none", a
// CPU-only host.
func GPUs() []GPU {
	return []GPU{
		discrete("8GB", 8*gib, 32*gib, 272e9),
		discrete("16GB", 16*gib, 32*gib, 448e9),
		discrete("24GB", 24*gib, 64*gib, 1008e9),
		discrete("32GB", 32*gib, 64*gib, 1792e9),
		mac("mac16", 16*gib, 100e9, 60e9),
		mac("mac32", 32*gib, 400e9, 100e9),
		{Name: "none", RAM: 32 * gib, CPUBandwidth: 50e9},
	}
}

// LookupGPU returns the GPU preset called name (case-insensitive).
func LookupGPU(name string) (GPU, bool) {
	for _, g := range GPUs() {
		if strings.EqualFold(g.Name, name) {
			return g, true
		}
	}
	return GPU{}, false
}

// Model describes a model the simulated server has pulled: the numbers
// /api/show reports and the sizes the memory model needs.
type Model struct {
	// Name is the model's name with its tag ("qwen2.5:0.5b").
	Name string
	// Arch is general.architecture, the prefix of the other model_info keys.
	Arch string
	// Family, ParameterSize and Quantization fill the details object.
	Family, ParameterSize, Quantization string
	// Digest is the manifest's digest, 64 hex digits; derived from Name when empty.
	Digest string
	// Layers is <arch>.block_count, the number of repeating layers.
	Layers int
	// EmbeddingLength, HeadCount and HeadCountKV are the attention shape.
	EmbeddingLength, HeadCount, HeadCountKV int
	// KeyLength and ValueLength are the head dimensions when the model sets
	// them (0 otherwise: EmbeddingLength / HeadCount).
	KeyLength, ValueLength int
	// TrainedContext is <arch>.context_length; loads are clamped to it.
	TrainedContext int
	// LayerBytes is the weight size of one repeating layer.
	LayerBytes int64
	// OutputBytes is the size of the output and token embedding weights.
	OutputBytes int64
	// KVBytesPerElement is the KV cache's element size: 2 for f16 (the
	// default when 0), about 1.06 for q8_0.
	KVBytesPerElement float64
	// NumCtx is the Modelfile's num_ctx parameter; 0 when it sets none.
	NumCtx int
}

// Size returns the model's weights in bytes, as /api/tags reports them.
func (m Model) Size() int64 { return int64(m.Layers)*m.LayerBytes + m.OutputBytes }

// Tensors returns the tensors /api/show lists for m, as f32 weights of
// the sizes its memory model places: one per repeating layer, and the
// token embeddings, which the output shares (so Ollama places them last,
// as the output layer).
func (m Model) Tensors() []api.Tensor {
	emb := uint64(max(m.EmbeddingLength, 1))
	f32 := func(name string, bytes int64) api.Tensor {
		return api.Tensor{Name: name, Type: "F32", Shape: []uint64{emb, uint64(bytes) / 4 / emb}}
	}
	ts := []api.Tensor{f32("token_embd.weight", m.OutputBytes)}
	for i := range m.Layers {
		ts = append(ts, f32(fmt.Sprintf("blk.%d.ffn_down.weight", i), m.LayerBytes))
	}
	return ts
}

// HeadDim returns the size of one attention head: KeyLength when the model
// sets it, else EmbeddingLength / HeadCount.
func (m Model) HeadDim() int {
	if m.KeyLength > 0 {
		return m.KeyLength
	}
	if m.HeadCount == 0 {
		return 0
	}
	return m.EmbeddingLength / m.HeadCount
}

func (m Model) digest() string {
	if m.Digest != "" {
		return m.Digest
	}
	sum := sha256.Sum256([]byte("gpusim:" + canonicalName(m.Name)))
	return hex.EncodeToString(sum[:])
}

// Models returns the model presets, modelled on the real ones: their layer
// counts, attention shapes, trained contexts and file sizes match what
// Ollama's library serves.
func Models() []Model {
	return []Model{
		{
			Name: "llama3.1:8b-instruct-fp16", Arch: "llama", Family: "llama", ParameterSize: "8.0B", Quantization: "F16",
			Layers: 32, EmbeddingLength: 4096, HeadCount: 32, HeadCountKV: 8, TrainedContext: 131072,
			LayerBytes: 436_256_768, OutputBytes: 2_101_362_688, // 16.06 GB
		},
		{
			Name: "deepseek-coder-v2:16b-lite-instruct-q6_K", Arch: "deepseek2", Family: "deepseek2", ParameterSize: "15.7B", Quantization: "Q6_K",
			Layers: 27, EmbeddingLength: 2048, HeadCount: 16, HeadCountKV: 16, KeyLength: 192, ValueLength: 128, TrainedContext: 163840,
			LayerBytes: 509_479_104, OutputBytes: 344_064_000, // 14.1 GB
		},
		{
			Name: "qwen2.5:0.5b", Arch: "qwen2", Family: "qwen2", ParameterSize: "494.03M", Quantization: "Q4_K_M",
			Layers: 24, EmbeddingLength: 896, HeadCount: 14, HeadCountKV: 2, TrainedContext: 32768,
			LayerBytes: 10_549_094, OutputBytes: 144_643_072, // 398 MB
		},
		{
			Name: "llama3.1:70b", Arch: "llama", Family: "llama", ParameterSize: "70.6B", Quantization: "Q4_K_M",
			Layers: 80, EmbeddingLength: 8192, HeadCount: 64, HeadCountKV: 8, TrainedContext: 131072,
			LayerBytes: 513_344_124, OutputBytes: 1_452_883_968, // 42.5 GB
		},
		{
			Name: "qwen2.5-coder:7b", Arch: "qwen2", Family: "qwen2", ParameterSize: "7.6B", Quantization: "Q4_K_M",
			Layers: 28, EmbeddingLength: 3584, HeadCount: 28, HeadCountKV: 4, TrainedContext: 32768,
			LayerBytes: 140_337_608, OutputBytes: 753_634_494, // 4.7 GB
		},
		{
			Name: "gemma2:9b", Arch: "gemma2", Family: "gemma2", ParameterSize: "9.2B", Quantization: "Q4_0",
			Layers: 42, EmbeddingLength: 3584, HeadCount: 16, HeadCountKV: 8, KeyLength: 256, ValueLength: 256, TrainedContext: 8192,
			LayerBytes: 111_678_867, OutputBytes: 752_640_000, // 5.4 GB
		},
	}
}

// LookupModel returns the model preset called name, compared as Ollama
// compares names (case-insensitive, "latest" when no tag is given).
func LookupModel(name string) (Model, bool) {
	ms := Models()
	i := slices.IndexFunc(ms, func(m Model) bool { return canonicalName(m.Name) == canonicalName(name) })
	if i < 0 {
		return Model{}, false
	}
	return ms[i], true
}

// canonicalName returns the key under which name is found: its short name
// (see shortName) lowercased, as Ollama's names are case-insensitive.
func canonicalName(name string) string {
	if strings.TrimSpace(name) == "" {
		return ""
	}
	return strings.ToLower(shortName(name))
}

// shortName returns name as Ollama displays it: with its tag, ":latest"
// included, and the default registry and namespace left out.
func shortName(name string) string {
	name = strings.TrimSpace(name)
	name = strings.TrimPrefix(name, "registry.ollama.ai/")
	name = strings.TrimPrefix(name, "library/")
	if !strings.Contains(name[strings.LastIndex(name, "/")+1:], ":") {
		name += ":latest"
	}
	return name
}
