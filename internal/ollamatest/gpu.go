package ollamatest

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Engine is the Ollama engine that runs a model. Ollama v0.17 runs most
// architectures, llama among them, with its llama.cpp runner unless
// OLLAMA_NEW_ENGINE is set; the two place the boundary between 100% GPU
// and a split at different contexts, so the GPU tests run both.
type Engine string

// The engines, named as the tests print them.
const (
	EngineLlamaCpp Engine = "llamacpp" // OLLAMA_NEW_ENGINE=false
	EngineOllama   Engine = "ollama"   // OLLAMA_NEW_ENGINE=true
)

// Engines lists both engines.
var Engines = []Engine{EngineLlamaCpp, EngineOllama}

// GPUOptions says how to start a server on the software GPU.
type GPUOptions struct {
	// Engine is the engine it runs models with.
	Engine Engine
	// Overhead is OLLAMA_GPU_OVERHEAD: bytes of the GPU's 2 GiB that
	// Ollama keeps free beyond its own minimum of 457 MiB. More overhead
	// moves the boundary to smaller contexts, whose loads are faster.
	Overhead int64
	// FlashAttention sets OLLAMA_FLASH_ATTENTION=1. Ollama v0.17.4 passes
	// it to both runners, but only the new engine's placement sees it (it
	// measures the graph it reserves); the llama.cpp runner's placement
	// is Ollama's estimate, which ignores flash attention for llama. Left
	// out of SweepKey's hash when false, so that the keys of sweeps
	// measured before it existed stay the same.
	FlashAttention bool `json:",omitempty"`
}

// DefaultGPUOverhead leaves about 570 MiB of lavapipe's 2 GiB to models:
// GPUShape then fits 100% at contexts up to about 12k tokens.
const DefaultGPUOverhead = 1 << 30

// Env returns the environment that starts Ollama on the software GPU with
// these options.
func (o GPUOptions) Env() []string {
	env := []string{
		"OLLAMA_VULKAN=1",
		// ggml skips Vulkan devices of type CPU, lavapipe's, unless listed.
		"GGML_VK_VISIBLE_DEVICES=0",
		"OLLAMA_GPU_OVERHEAD=" + strconv.FormatInt(o.Overhead, 10),
		"OLLAMA_NEW_ENGINE=" + strconv.FormatBool(o.Engine == EngineOllama),
	}
	if o.FlashAttention {
		env = append(env, "OLLAMA_FLASH_ATTENTION=1")
	}
	return env
}

// GPUStartTimeout bounds how long StartGPU waits for the server and its
// GPU discovery.
const GPUStartTimeout = 2 * time.Minute

// StartGPU starts Ollama with its Vulkan backend (scripts/ollama-vulkan-for-
// tests) on Mesa's lavapipe, a Vulkan driver that runs on the CPU: the
// real scheduler places layers on a "discrete" GPU of 2 GiB, of which
// opts.Overhead is reserved. It checks that Ollama found that GPU and stops
// the server when the test ends. Without the build it skips, or fails
// under $CTXFIT_REQUIRE_OLLAMA_VULKAN=1; without the software GPU (no Mesa
// Vulkan driver) it fails, since the build script installs it.
func StartGPU(tb testing.TB, opts GPUOptions) *Server {
	tb.Helper()
	if opts.Engine != EngineLlamaCpp && opts.Engine != EngineOllama {
		tb.Fatalf("StartGPU: engine %q; use EngineLlamaCpp or EngineOllama", opts.Engine)
	}
	bin := RequireVulkan(tb)
	ctx, cancel := context.WithTimeout(context.Background(), GPUStartTimeout)
	defer cancel()
	s, err := StartServerWith(ctx, bin, tb.TempDir(), Options{Env: opts.Env()})
	if err != nil {
		tb.Fatal(err)
	}
	s.cleanup(tb)
	gpu, err := s.waitGPU(ctx)
	if err != nil {
		tb.Fatalf("%v; is mesa-vulkan-drivers installed? (scripts/ollama-vulkan-for-tests installs it)", err)
	}
	tb.Logf("ollama %s engine on %s", opts.Engine, gpu)
	return s
}

// inferenceCompute matches Ollama's log line for a GPU it will use.
var inferenceCompute = regexp.MustCompile(`msg="inference compute".*library=(\S+).*total="([^"]+)"`)

// waitGPU waits for Ollama's log to report the Vulkan GPU and returns the
// line's description of it.
func (s *Server) waitGPU(ctx context.Context) (string, error) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		log := s.log.String()
		for _, line := range strings.Split(log, "\n") {
			m := inferenceCompute.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			if !strings.EqualFold(m[1], "Vulkan") {
				return "", fmt.Errorf("ollama found no Vulkan GPU, only %s (total %s)", m[1], m[2])
			}
			return "Vulkan, total " + m[2], nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("ollama reported no inference compute device: %w\n%s", ctx.Err(), s.LogTail(30))
		case <-s.exited:
			return "", fmt.Errorf("ollama exited: %v\n%s", s.cmd.ProcessState, s.LogTail(30))
		case <-tick.C:
		}
	}
}
