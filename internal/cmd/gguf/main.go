// Command gguf writes a llama model with random weights, of a shape given
// by flags, for trying the real Ollama scheduler on hardware where no
// model can be downloaded (scripts/cuda-check):
//
//	go run ./internal/cmd/gguf --layers 24 --embedding 2048 --heads 16 --kv-heads 8 --ff 2816 -o model.gguf
//
// With no flags it writes ollamatest.GPUShape, the software GPU tests' model.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/ctxfit/ctxfit/internal/ollamatest"
)

func main() {
	sh := ollamatest.GPUShape
	flag.IntVar(&sh.Layers, "layers", sh.Layers, "repeating layers")
	flag.IntVar(&sh.Embedding, "embedding", sh.Embedding, "embedding width")
	flag.IntVar(&sh.Heads, "heads", sh.Heads, "attention heads")
	flag.IntVar(&sh.KVHeads, "kv-heads", sh.KVHeads, "KV heads")
	flag.IntVar(&sh.FeedForward, "ff", sh.FeedForward, "feed-forward width")
	flag.IntVar(&sh.ContextLength, "context", sh.ContextLength, "trained context")
	flag.BoolVar(&sh.F32, "f32", sh.F32, "f32 weights (else f16)")
	flag.StringVar(&sh.Name, "name", sh.Name, "general.name")
	out := flag.String("o", "model.gguf", "output `file`")
	flag.Parse()
	if sh.Layers < 1 || sh.Heads < 1 || sh.KVHeads < 1 || sh.Embedding%sh.Heads != 0 || sh.Heads%sh.KVHeads != 0 {
		fmt.Fprintln(os.Stderr, "gguf: need layers ≥ 1, embedding divisible by heads, heads divisible by kv-heads")
		os.Exit(2)
	}
	if err := ollamatest.WriteModel(*out, sh); err != nil {
		fmt.Fprintln(os.Stderr, "gguf:", err)
		os.Exit(1)
	}
	fmt.Printf("%s: %d layers, KV cache %d bytes per token\n", *out, sh.Layers, sh.KVBytesPerToken())
}
