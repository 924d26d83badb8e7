package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/ctxfit/ctxfit/internal/ollamahost"
	"github.com/ctxfit/ctxfit/internal/termtext"
	"github.com/ctxfit/ctxfit/ollama"
	"github.com/ctxfit/ctxfit/tune"
)

func runBench(ctx context.Context, e *env, args []string) error {
	fs := e.flags("bench")
	numCtx := fs.Int("context", 0, "load the model with this num_ctx `N` (default: the model's own default)")
	host := fs.String("host", "", "Ollama server `URL` (default $OLLAMA_HOST, else "+ollamahost.Default+")")
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	timeout := progressFlags(fs)
	tokens := fs.Int("tokens", tune.BenchTokens, "generate `T` tokens (fewer for a slow GPU)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `Usage: ctxfit bench MODEL [--context N] [--tokens T] [--host URL] [--json] [--load-timeout D] [--stall-timeout D]

Loads MODEL with num_ctx N, then times a short streamed generation:
time to first token, and tokens per second (eval_count / eval_duration).
The model stays loaded at N. A server that sends nothing for --load-timeout
(before the answer starts) or --stall-timeout (after) ends the bench.`)
		fs.PrintDefaults()
	}
	pos, err := parseOneArg(fs, args)
	if err != nil {
		return err
	}
	if *numCtx < 0 {
		fmt.Fprintf(e.stderr, "ctxfit bench: --context %d: use a positive number of tokens\n", *numCtx)
		return errUsage
	}
	if *tokens < 1 {
		fmt.Fprintf(e.stderr, "ctxfit bench: --tokens %d: use a positive number\n", *tokens)
		return errUsage
	}
	u := e.host(*host)
	res, err := tune.BenchTokensN(ctx, e.client(u), pos[0], *numCtx, *tokens, *timeout)
	switch {
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(e.stderr, "ctxfit bench: stopped.")
		return exitError(130)
	case err != nil:
		fmt.Fprintf(e.stderr, "ctxfit bench: %s\n", termtext.Clean(err.Error()))
		return exitError(1)
	}
	if *asJSON {
		return writeIndentedJSON(e.stdout, benchJSON{
			Model:             res.Model,
			Context:           res.Context,
			Size:              res.Size,
			SizeVRAM:          res.SizeVRAM,
			Processor:         res.Processor(),
			LoadSeconds:       res.Load.Seconds(),
			FirstTokenSeconds: res.FirstToken.Seconds(),
			TokensPerSecond:   res.TokensPerSecond,
			EvalCount:         res.EvalCount,
			EvalSeconds:       res.EvalDuration.Seconds(),
		})
	}
	ctxText := "its default num_ctx"
	if res.Context > 0 {
		ctxText = fmt.Sprintf("num_ctx %d", res.Context)
	}
	fmt.Fprintf(e.stdout, "%s at %s (%s): first token after %.2f s, %.1f tokens/s (%d tokens in %.2f s).\n",
		res.Model, ctxText, res.Processor(), res.FirstToken.Seconds(), res.TokensPerSecond, res.EvalCount, res.EvalDuration.Seconds())
	return nil
}

// progressFlags adds --load-timeout and --stall-timeout to fs: the
// progress timeout of loads and generations.
func progressFlags(fs *flag.FlagSet) *ollama.Progress {
	p := &ollama.Progress{}
	fs.DurationVar(&p.First, "load-timeout", ollama.DefaultFirstTimeout, "give up when a load or generation has not started answering after `D`")
	fs.DurationVar(&p.Stall, "stall-timeout", ollama.DefaultStallTimeout, "give up when the server, once answering, sends nothing for `D`")
	return p
}

// benchJSON is the shape of `ctxfit bench --json`.
type benchJSON struct {
	Model             string  `json:"model"`
	Context           int     `json:"context"`
	Size              int64   `json:"size"`
	SizeVRAM          int64   `json:"size_vram"`
	Processor         string  `json:"processor"`
	LoadSeconds       float64 `json:"load_seconds"`
	FirstTokenSeconds float64 `json:"first_token_seconds"`
	TokensPerSecond   float64 `json:"tokens_per_second"`
	EvalCount         int     `json:"eval_count"`
	EvalSeconds       float64 `json:"eval_seconds"`
}
