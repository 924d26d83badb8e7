package watch

import (
	"context"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/ctxfit/ctxfit/internal/gpusim"
	"github.com/ctxfit/ctxfit/ollama"
)

// BenchmarkSpillDelay measures how long a spill takes to become an event:
// a watcher with default intervals watches a simulated 32 GB Mac whose
// model a client reloads, alternately at a context that spills and at one
// that fits. It reports the mean and worst delay from the reload finishing
// (the moment /api/ps shows it) to the spill_started event.
func BenchmarkSpillDelay(b *testing.B) {
	gpu, _ := gpusim.LookupGPU("mac32")
	sim := gpusim.New(gpusim.Config{GPU: gpu})
	addr, err := sim.Start("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	const model = "llama3.1:8b-instruct-fp16"
	sim.Load(model, 8192, gpusim.Forever)
	u, _ := url.Parse(addr)
	w := New(ollama.NewClient(u), u, nil, Options{LocalGPU: func() ollama.GPUPresence { return ollama.GPUPresent }})
	updates, cancel := w.Subscribe()
	defer cancel()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go w.Run(ctx)

	wait := func(kind EventKind) {
		for u := range updates {
			for _, e := range u.Events {
				if e.Kind == kind {
					return
				}
			}
		}
	}
	var delays []time.Duration
	b.ResetTimer()
	for b.Loop() {
		sim.Load(model, 131072, gpusim.Forever) // spills
		shown := time.Now()
		wait(EventSpillStarted)
		delays = append(delays, time.Since(shown))
		sim.Load(model, 8192, gpusim.Forever) // fits again
		wait(EventSpillEnded)
	}
	var sum time.Duration
	for _, d := range delays {
		sum += d
	}
	b.ReportMetric(float64(sum.Milliseconds())/float64(len(delays)), "mean-ms")
	b.ReportMetric(float64(slices.Max(delays).Milliseconds()), "worst-ms")
}
