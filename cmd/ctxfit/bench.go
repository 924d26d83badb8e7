package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"

	"github.com/ollama/ollama/api"

	"github.com/ctxfit/ctxfit/internal/ollamahost"
	"github.com/ctxfit/ctxfit/ollama"
	"github.com/ctxfit/ctxfit/tune"
)

func runBench(ctx context.Context, e *env, args []string) error {
	fs := e.flags("bench")
	numCtx := fs.Int("context", 0, "load the model with this num_ctx `N` (default: the model's own default)")
	host := fs.String("host", "", hostUsage)
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	quiet := fs.Bool("quiet", false, "print no progress on stderr")
	progressFlag := fs.Bool("progress", false, "print progress on stderr even when it is not a terminal")
	timeout := progressFlags(fs)
	tokens := fs.Int("tokens", tune.BenchTokens, "generate `T` tokens (fewer for a slow GPU)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("name one MODEL to bench (`ollama list` shows them)")
	}
	if *numCtx < 0 {
		return usagef("--context %d: use a positive number of tokens", *numCtx)
	}
	if *tokens < 1 {
		return usagef("--tokens %d: use a positive number", *tokens)
	}
	u, err := e.host(*host)
	if err != nil {
		return err
	}
	client := e.client(u)
	if err := hung(ctx, client, u); err != nil {
		return err
	}
	pr := e.progress(*quiet, *progressFlag)
	res, err := tune.BenchPhases(ctx, client, pos[0], *numCtx, *tokens, *timeout, pr.start)
	pr.done()
	switch {
	case errors.Is(err, context.Canceled):
		return failf(130, "stopped.")
	case errors.Is(err, tune.ErrUnknownModel):
		return failf(1, "%v", err)
	case err != nil:
		return failf(1, "%s", serverFailure(u, err))
	}
	// On the CPU the question is whether the model fits in RAM, as
	// status warns for a CPU-only host: a model that swaps is far slower
	// than the rate of a short bench suggests.
	ramWarning := ""
	if res.SizeVRAM == 0 && res.Size > 0 && ollamahost.IsLocal(u) {
		total := ollama.TotalRAM
		if e.totalRAM != nil {
			total = e.totalRAM
		}
		if ram := total(); ram > 0 {
			ramWarning = e.reprog(ollama.RAMWarning(res.Model, res.Size, ram, res.Context))
		}
	}
	if *asJSON {
		return writeIndentedJSON(e.stdout, benchJSON{
			RAMWarning:        ramWarning,
			Host:              u.String(),
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
			EndedEarly:        res.EndedEarly,
		})
	}
	ctxText := "its default num_ctx"
	if res.Context > 0 {
		ctxText = fmt.Sprintf("num_ctx %d", res.Context)
	}
	fmt.Fprintf(e.stdout, "%s at %s (%s): first token after %.2f s, %.1f tokens/s (%d tokens in %.2f s).\n",
		res.Model, ctxText, res.Processor(), res.FirstToken.Seconds(), res.TokensPerSecond, res.EvalCount, res.EvalDuration.Seconds())
	if res.EndedEarly {
		fmt.Fprintf(e.stdout, "Ollama ended the answer after %d of %d tokens without its timings (it does so when a model repeats one token over and over), so the rate is timed here, from the first token to the last.\n",
			res.EvalCount+1, *tokens)
	}
	if ramWarning != "" {
		fmt.Fprintln(e.stdout, ramWarning)
	}
	return nil
}

// hung returns an error when the server at u accepts connections but does
// not tell its version within ollama.RequestTimeout: without this check a
// bench's load waited for --load-timeout (10 minutes) and a tune's first
// request for --stall-timeout to say so. Ollama answers /api/version at
// once, also while it loads a model. Other errors are left to the command.
func hung(ctx context.Context, client *api.Client, u *url.URL) error {
	vctx, cancel := context.WithTimeout(ctx, ollama.RequestTimeout)
	defer cancel()
	if _, err := client.Version(vctx); err != nil && ctx.Err() == nil && errors.Is(vctx.Err(), context.DeadlineExceeded) {
		return failf(1, "Ollama at %s did not answer within %s (its version, which it tells at once even while it loads a model); is the server hung or overloaded, or is this the right address?",
			u.Redacted(), ollama.RequestTimeout)
	}
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

// benchJSON is `ctxfit bench --json`.
type benchJSON struct {
	Host              string  `json:"host"`
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
	EndedEarly        bool    `json:"ended_early,omitempty"`
	RAMWarning        string  `json:"ram_warning,omitempty"`
}
