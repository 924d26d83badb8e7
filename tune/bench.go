package tune

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/ctxfit/ctxfit/ollama"
)

// BenchPrompt is what Bench asks the model; any model answers it at length.
const BenchPrompt = "Explain in a few paragraphs how a hash table works."

// BenchTokens is how many tokens Bench generates: enough for a stable
// rate, few enough to take seconds even partly on the CPU.
const BenchTokens = 64

// BenchResult is the speed of one short generation.
type BenchResult struct {
	Model string
	// Context is the context the model ran with (/api/ps's context_length,
	// else the one asked for; 0 for the model's default on old servers).
	Context int
	// Size and SizeVRAM are what /api/ps reported after the generation.
	Size, SizeVRAM int64
	// Load is how long the load before the timed generation took; about 0
	// when the model was already loaded with that context.
	Load time.Duration
	// FirstToken is the time from sending the prompt to receiving the
	// first token of the answer: what a user waits before text appears.
	FirstToken time.Duration
	// TokensPerSecond is eval_count / eval_duration as the server measured
	// them: the generation rate, without the prompt.
	TokensPerSecond float64
	EvalCount       int
	EvalDuration    time.Duration
	// EndedEarly reports that the server ended the answer without its
	// final message, before the tokens asked for: Ollama does so, without
	// an error, when a model repeats one token more than 30 times
	// (llm/server.go, "token repeat limit"). EvalCount and EvalDuration
	// are then ctxfit's own count of the streamed tokens and the time from
	// the first to the last.
	EndedEarly bool
}

// Processor returns the split as `ollama ps` prints it.
func (r *BenchResult) Processor() string {
	_, p := ollama.Classify(r.Size, r.SizeVRAM)
	return p
}

// Bench loads model with numCtx (0: the model's default), then times a short
// streamed generation. The model stays loaded at numCtx. A load or a
// generation that makes no progress within timeout fails with
// ollama.ErrStalled.
func Bench(ctx context.Context, client *api.Client, model string, numCtx int, timeout ollama.Progress) (*BenchResult, error) {
	return BenchTokensN(ctx, client, model, numCtx, BenchTokens, timeout)
}

// BenchTokensN is Bench generating tokens tokens instead of BenchTokens:
// fewer for a slow GPU, more for a steadier rate.
func BenchTokensN(ctx context.Context, client *api.Client, model string, numCtx, tokens int, timeout ollama.Progress) (*BenchResult, error) {
	return BenchPhases(ctx, client, model, numCtx, tokens, timeout, nil)
}

// The phases of a bench, as BenchPhases reports them.
const (
	PhaseLoad     = "loading"
	PhaseFirst    = "waiting for the first token"
	PhaseGenerate = "generating"
)

// BenchPhases is BenchTokensN, calling phase (when not nil) as each phase
// begins: PhaseLoad, PhaseFirst, PhaseGenerate.
func BenchPhases(ctx context.Context, client *api.Client, model string, numCtx, tokens int, timeout ollama.Progress, phase func(string)) (*BenchResult, error) {
	return bench(ctx, client, model, numCtx, tokens, nil, timeout, phase)
}

// bench is BenchPhases sending keepAlive with its requests (nil: the
// server's default).
func bench(ctx context.Context, client *api.Client, model string, numCtx, tokens int, keepAlive *api.Duration, timeout ollama.Progress, phase func(string)) (*BenchResult, error) {
	if phase == nil {
		phase = func(string) {}
	}
	res := &BenchResult{Model: model, Context: numCtx}
	opts := map[string]any{}
	if numCtx > 0 {
		opts["num_ctx"] = numCtx
	}

	phase(PhaseLoad)
	start := time.Now()
	wctx, progressed, stop := timeout.Watch(ctx, "load "+model)
	err := client.Generate(wctx, &api.GenerateRequest{Model: model, Options: opts, KeepAlive: keepAlive}, func(api.GenerateResponse) error { progressed(); return nil })
	stalled := ollama.Stalled(wctx)
	stop()
	if stalled != nil {
		return nil, fmt.Errorf("bench %s: %w", model, stalled)
	}
	if err != nil {
		return nil, benchError(ctx, model, "load", err)
	}
	res.Load = time.Since(start)

	genOpts := map[string]any{"num_predict": tokens, "temperature": 0, "seed": 1}
	for k, v := range opts {
		genOpts[k] = v
	}
	stream := true
	var final *api.GenerateResponse
	var streamed int              // tokens received, one per streamed message
	var firstAt, lastAt time.Time // when the first and the last token came
	phase(PhaseFirst)
	start = time.Now()
	wctx, progressed, stop = timeout.Watch(ctx, "generate with "+model)
	err = client.Generate(wctx, &api.GenerateRequest{Model: model, Prompt: BenchPrompt, Options: genOpts, Stream: &stream, KeepAlive: keepAlive}, func(r api.GenerateResponse) error {
		progressed()
		if r.Response != "" || r.Thinking != "" {
			streamed++
			lastAt = time.Now()
			if streamed == 1 {
				firstAt = lastAt
			}
		}
		if res.FirstToken == 0 && (r.Response != "" || r.Thinking != "") {
			res.FirstToken = time.Since(start)
			phase(PhaseGenerate)
		}
		if r.Done {
			final = &r
		}
		return nil
	})
	stalled = ollama.Stalled(wctx)
	stop()
	if stalled != nil {
		return nil, fmt.Errorf("bench %s: %w", model, stalled)
	}
	if err != nil {
		return nil, benchError(ctx, model, "generate", err)
	}
	switch {
	case final == nil && streamed >= 2 && lastAt.After(firstAt):
		// Ollama ends a stream this way when the model repeats itself
		// (see EndedEarly): the tokens that came still time the
		// generation, by this clock.
		res.EndedEarly = true
		res.EvalCount, res.EvalDuration = streamed-1, lastAt.Sub(firstAt)
	case final == nil:
		return nil, fmt.Errorf("bench %s: %w (the answer ended before it was done)", model, ErrServerGone)
	case final.EvalCount <= 0 || final.EvalDuration <= 0:
		return nil, fmt.Errorf("bench %s: the server reported no eval_count or eval_duration; is it Ollama?", model)
	default:
		res.EvalCount, res.EvalDuration = final.EvalCount, final.EvalDuration
	}
	if res.FirstToken == 0 {
		res.FirstToken = time.Since(start)
	}
	res.TokensPerSecond = float64(res.EvalCount) / res.EvalDuration.Seconds()

	ps, err := listRunning(ctx, client, timeout)
	if err != nil {
		return nil, err
	}
	if m := findRunning(ps, model); m != nil {
		res.Size, res.SizeVRAM = m.Size, m.SizeVRAM
		if m.ContextLength > 0 {
			res.Context = m.ContextLength
		}
	}
	return res, nil
}

func benchError(ctx context.Context, model, what string, err error) error {
	var se api.StatusError
	if errors.As(err, &se) && se.StatusCode == http.StatusNotFound {
		return fmt.Errorf("%w: %s (see `ollama list`, or `ollama pull %s`)", ErrUnknownModel, model, model)
	}
	if errors.As(err, &se) && strings.Contains(se.ErrorMessage, "requires more system memory") {
		// Ollama refused the load for lack of RAM: its log says no more
		// than this, and the way out is a smaller load.
		return wordedError{fmt.Sprintf("%s %s: %s; try a smaller --context, or a smaller model (a q4_K_M tag)", what, model, strings.TrimSpace(se.ErrorMessage)), err}
	}
	return tuneServerError(ctx, what+" "+model, err)
}

// BenchBeforeAfter measures what a tune paid off when the model had spilled
// before it: tokens per second at the context the model had then, and at
// the tuned context, measured in the reverse order so that the model ends
// loaded at its earlier context with what was left of its keep-alive, as
// Tune left it. The load at the tuned context is marked as the tune's (see
// ollama.ProbeKeepAlive). Both are nil when there is nothing to compare:
// the model was not loaded before, ran whole on the GPU, or already at the
// answer.
func BenchBeforeAfter(ctx context.Context, client *api.Client, res *Result, timeout ollama.Progress) (before, after *BenchResult, err error) {
	b := res.Before
	if b == nil || res.Context <= 0 || b.Context <= 0 || b.Context == res.Context {
		return nil, nil, nil
	}
	if s, _ := ollama.Classify(b.Size, b.SizeVRAM); s != ollama.StatePartial && s != ollama.StateCPU {
		return nil, nil, nil
	}
	// After first, so that the model ends at its earlier context, as the
	// tune left it.
	if after, err = bench(ctx, client, res.Model, res.Context, BenchTokens, probeKeepAlive(nil), timeout, nil); err != nil {
		return nil, nil, err
	}
	if before, err = bench(ctx, client, res.Model, b.Context, BenchTokens, keepAliveUntil(b.ExpiresAt, time.Now()), timeout, nil); err != nil {
		return nil, after, err
	}
	return before, after, nil
}

// wordedError is err in other words: errors.As and errors.Is still find
// what err wraps (the server's api.StatusError).
type wordedError struct {
	msg string
	err error
}

func (e wordedError) Error() string { return e.msg }
func (e wordedError) Unwrap() error { return e.err }
