package gpusim

import (
	"time"

	"github.com/ollama/ollama/api"
)

// The constants of the speed model (see the package documentation).
const (
	tokenOverhead    = 2 * time.Millisecond // kernel launches, sampling
	promptSpeedup    = 32                   // prompt tokens are processed in batches
	diskBandwidth    = 3e9                  // bytes/s read while loading
	runnerStart      = 500 * time.Millisecond
	scheduleOverhead = 5 * time.Millisecond // load_duration of a model already loaded
	defaultCPUBW     = 50e9
)

// tokenTime returns how long generating one token takes with the weights
// placed as p: every weight is read once, at the bandwidth of the memory
// it sits in.
func (g GPU) tokenTime(p placement) time.Duration {
	cpuBW := g.CPUBandwidth
	if cpuBW <= 0 {
		cpuBW = defaultCPUBW
	}
	secs := float64(p.weights-p.gpuWeights) / cpuBW
	if p.gpuWeights > 0 && g.Bandwidth > 0 {
		secs += float64(p.gpuWeights) / g.Bandwidth
	}
	return time.Duration(secs*float64(time.Second)) + tokenOverhead
}

// timings returns the metrics of a generation of evalTokens after
// promptTokens on r, which was just loaded when loaded is set.
func (g GPU) timings(r runner, promptTokens, evalTokens int, loaded bool) api.Metrics {
	per := g.tokenTime(r.place)
	m := api.Metrics{
		LoadDuration:       scheduleOverhead,
		PromptEvalCount:    promptTokens,
		PromptEvalDuration: time.Duration(promptTokens) * per / promptSpeedup,
		EvalCount:          evalTokens,
		EvalDuration:       time.Duration(evalTokens) * per,
	}
	if loaded {
		m.LoadDuration = runnerStart + time.Duration(float64(r.place.weights)/diskBandwidth*float64(time.Second))
	}
	m.TotalDuration = m.LoadDuration + m.PromptEvalDuration + m.EvalDuration + time.Millisecond
	return m
}
