package gpusim_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/ollama/ollama/api"

	"github.com/ctxfit/ctxfit/internal/gpusim"
)

// A simulated 32 GB Mac keeps llama3.1 8B fp16 on the GPU at 24576 tokens
// of context but spills at 131072, as /api/ps shows it to any client.
func Example() {
	g, _ := gpusim.LookupGPU("mac32")
	sim := gpusim.New(gpusim.Config{GPU: g})
	addr, err := sim.Start("127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer sim.Close()
	base, _ := url.Parse(addr)
	client := api.NewClient(base, http.DefaultClient)

	ctx := context.Background()
	for _, numCtx := range []int{24576, 131072} {
		req := &api.GenerateRequest{Model: "llama3.1:8b-instruct-fp16", Options: map[string]any{"num_ctx": numCtx}}
		if err := client.Generate(ctx, req, func(api.GenerateResponse) error { return nil }); err != nil {
			panic(err)
		}
		ps, err := client.ListRunning(ctx)
		if err != nil {
			panic(err)
		}
		m := ps.Models[0]
		fmt.Printf("num_ctx %d: %.1f GiB, %.1f GiB on the GPU\n", m.ContextLength, float64(m.Size)/(1<<30), float64(m.SizeVRAM)/(1<<30))
	}
	fmt.Println("loads:", sim.Loads())
	// Output:
	// num_ctx 24576: 21.0 GiB, 21.0 GiB on the GPU
	// num_ctx 131072: 47.0 GiB, 20.6 GiB on the GPU
	// loads: 2
}
