// Command gpusim serves the GPU simulator on its own, for benchmarks and
// for trying ctxfit by hand against hardware this machine does not have:
//
//	go run ./internal/cmd/gpusim --gpu 24GB --load qwen2.5:0.5b=32768 --load llama3.1:8b-instruct-fp16=2048
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/ctxfit/ctxfit/internal/gpusim"
)

// loads collects repeated --load MODEL=CTX flags.
type loads [][2]string

func (l *loads) String() string { return fmt.Sprint(*l) }

func (l *loads) Set(s string) error {
	m, c, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("--load %q: want MODEL=CONTEXT", s)
	}
	*l = append(*l, [2]string{m, c})
	return nil
}

func main() {
	gpu := flag.String("gpu", "24GB", "GPU preset: "+presetNames())
	listen := flag.String("listen", "127.0.0.1:0", "`address` to listen on")
	parallel := flag.Int("parallel", 1, "OLLAMA_NUM_PARALLEL of the simulated server")
	maxLoaded := flag.Int("max-loaded", 0, "OLLAMA_MAX_LOADED_MODELS of the simulated server (0: Ollama's default, 3)")
	var ls loads
	flag.Var(&ls, "load", "load `MODEL=CONTEXT` at start (repeatable)")
	flag.Parse()
	if err := run(*gpu, *listen, *parallel, *maxLoaded, ls); err != nil {
		fmt.Fprintln(os.Stderr, "gpusim:", err)
		os.Exit(1)
	}
}

func run(gpuName, listen string, parallel, maxLoaded int, ls loads) error {
	g, ok := gpusim.LookupGPU(gpuName)
	if !ok {
		return fmt.Errorf("no GPU preset %q; choose one of %s", gpuName, presetNames())
	}
	sim := gpusim.New(gpusim.Config{GPU: g, Parallel: parallel, MaxLoaded: maxLoaded})
	url, err := sim.Start(listen)
	if err != nil {
		return err
	}
	defer sim.Close()
	for _, l := range ls {
		n, err := strconv.Atoi(l[1])
		if err != nil {
			return fmt.Errorf("--load %s=%s: the context must be a number", l[0], l[1])
		}
		if err := sim.Load(l[0], n, gpusim.Forever); err != nil {
			return err
		}
	}
	fmt.Println(url)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return nil
}

func presetNames() string {
	var names []string
	for _, g := range gpusim.GPUs() {
		names = append(names, g.Name)
	}
	return strings.Join(names, ", ")
}
