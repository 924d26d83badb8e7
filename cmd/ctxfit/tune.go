package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ctxfit/ctxfit/internal/ollamahost"
	"github.com/ctxfit/ctxfit/internal/termtext"
	"github.com/ctxfit/ctxfit/localapi"
	"github.com/ctxfit/ctxfit/ollama"
	"github.com/ctxfit/ctxfit/state"
	"github.com/ctxfit/ctxfit/tune"
)

func runTune(ctx context.Context, e *env, args []string) error {
	fs := e.flags("tune")
	step := fs.Int("step", tune.DefaultStep, "the answer is a multiple of `N` tokens (4096 for the cautious)")
	parallel := fs.Int("parallel", 0, "the server's parallel slots `P` (OLLAMA_NUM_PARALLEL); default: $OLLAMA_NUM_PARALLEL for a server on this machine, else 1")
	host := fs.String("host", "", "Ollama server `URL` (default $OLLAMA_HOST, else "+ollamahost.Default+")")
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	list := fs.Bool("list", false, "list the stored results instead of tuning")
	timeout := progressFlags(fs)
	var with companionFlag
	fs.Var(&with, "with", "a model `OTHER[=CONTEXT]` that runs beside MODEL at CONTEXT (default: its own); repeat for more")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `Usage: ctxfit tune MODEL [--with OTHER[=CONTEXT]]... [--step N] [--parallel P] [--host URL] [--json]
       ctxfit tune --list [--json]

Finds the largest context length, a multiple of --step and at most the
model's trained context, at which MODEL loads 100% on the server's GPU,
with a few real loads. The model stays loaded at that context; the result
is stored for ctxfit status and ctxfit fix. Ctrl-C stops between loads; a
server that sends nothing for --load-timeout (before a load's answer) or
--stall-timeout (after) stops the tune.

With --with, the answer leaves room for the models that run beside MODEL
(a chat model's autocomplete model): every one of them stays loaded, 100%
on the GPU, at the same time, so that switching between them reloads
nothing. Other loaded models are unloaded first. Both answers are kept:
ctxfit fix writes the one for the models a client uses together.`)
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	store, err := e.store()
	if err != nil {
		return err
	}
	if *list {
		if len(pos) > 0 {
			fmt.Fprintln(e.stderr, "ctxfit tune: --list takes no model")
			return errUsage
		}
		return listTuned(e, store, *asJSON)
	}
	if len(pos) != 1 {
		fs.Usage()
		return errUsage
	}
	if *step < 1 {
		fmt.Fprintf(e.stderr, "ctxfit tune: --step %d: use a positive number of tokens, such as 1024 or 4096\n", *step)
		return errUsage
	}

	u := e.host(*host)
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "parallel" })
	p, err := tune.ParallelSlots(e.getenv, given, *parallel, ollamahost.IsLocal(u))
	if err != nil {
		fmt.Fprintf(e.stderr, "ctxfit tune: %s\n", termtext.Clean(err.Error()))
		return errUsage
	}
	key := ollamahost.Key(u)
	gpu := ollama.GPUUnknown
	if data, err := store.Load(); err == nil {
		gpu = data.GPU(key, "")
	}

	client := e.client(u)
	progress := e.stdout
	if *asJSON {
		progress = e.stderr // stdout holds only the JSON
	}
	model := pos[0]
	mark, err := e.beginTune(ctx, store, u, model)
	if err != nil {
		fmt.Fprintf(e.stderr, "ctxfit tune: %v\n", err)
		return exitError(1)
	}
	ended := false
	endMark := func(n int, msg string) *localapi.TuneEnded {
		if ended {
			return nil
		}
		ended = true
		return mark.end(n, msg)
	}
	defer endMark(0, "") // a panic or an early return still ends the mark
	beside := ""
	if len(with) > 0 {
		beside = " beside " + companionList(with)
	}
	fmt.Fprintf(progress, "Tuning %s%s on %s: step %d, %d parallel slot%s.\n", model, beside, u.Redacted(), *step, p, plural(p))
	n := 0
	res, err := tune.Tune(ctx, client, tune.Options{
		Model:      model,
		Step:       *step,
		Parallel:   p,
		GPU:        gpu,
		Timeout:    *timeout,
		Companions: with,
		Progress: func(pr tune.Probe) {
			n++
			line := tune.ProbeLine(pr)
			fmt.Fprintf(progress, "  load %d: %s\n", n, line)
			mark.progress(line)
		},
	})
	if err != nil {
		msg := fmt.Sprintf("tuning %s failed: %v", model, err)
		if b := tune.Bracket(res); b != "" {
			msg += "; " + b
		}
		endMark(0, msg)
		return tuneFailed(e, res, err)
	}

	_, mac, isMac := e.unifiedInfo(ctx, u)
	var budget int64
	if isMac {
		budget = mac.Budget()
	}
	if err := tune.Record(store, key, res, budget); err != nil {
		endMark(0, err.Error())
		return err
	}

	if *asJSON {
		endMark(res.Context, tune.Summary(res))
		return writeTuneJSON(e.stdout, res)
	}
	fmt.Fprintln(e.stdout, tune.Summary(res))
	if len(res.Companions) > 0 {
		// A speed comparison would reload the model beside its
		// companions and could unload them; the set stays as tuned.
		fmt.Fprintf(e.stdout, "Stored beside %s; `ctxfit fix all` writes it into the clients that use these models together.\n", tune.CompanionLoads(res.Companions))
		if done := endMark(res.Context, tune.Summary(res)); done != nil {
			printApplied(e, done)
		}
		return nil
	}
	// The benchmark loads the model at its old context again: still the
	// tuner's load, so the mark ends after it.
	before, after, err := tune.BenchBeforeAfter(ctx, client, res, *timeout)
	switch {
	case err != nil:
		fmt.Fprintf(e.stderr, "ctxfit tune: comparing the speed before and after: %s\n", termtext.Clean(err.Error()))
	case before != nil:
		fmt.Fprintf(e.stdout, "Speed: %.1f tokens/s at num_ctx %d (%s), %.1f tokens/s at num_ctx %d (%s).\n",
			before.TokensPerSecond, before.Context, before.Processor(), after.TokensPerSecond, after.Context, after.Processor())
	}
	if done := endMark(res.Context, tune.Summary(res)); done != nil {
		printApplied(e, done)
	} else {
		fmt.Fprintf(e.stdout, "Stored; `ctxfit fix all` writes it into your clients' configs.\n")
	}
	if isMac {
		if t, ok := tunedFor(store, key, res); ok {
			if advice := limitAdvice(e, u, mac, t); advice != "" {
				fmt.Fprint(e.stdout, "\n"+advice)
			}
		}
	}
	return nil
}

// tunedFor reads back what tune.Record stored for res.
func tunedFor(store *state.Store, key string, res *tune.Result) (state.Tuned, bool) {
	data, err := store.Load()
	if err != nil {
		return state.Tuned{}, false
	}
	return data.TunedFor(key, res.Model, res.Digest)
}

// companionFlag collects the repeatable --with OTHER[=CONTEXT].
type companionFlag []tune.Companion

func (f *companionFlag) String() string { return companionList(*f) }

func (f *companionFlag) Set(s string) error {
	c, err := tune.ParseCompanion(s)
	if err != nil {
		return err
	}
	*f = append(*f, c)
	return nil
}

// companionList returns "a=4096, b".
func companionList(cs []tune.Companion) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.String()
	}
	return strings.Join(parts, ", ")
}

// tuneFailed explains a failed or interrupted tune and returns the exit
// status: 130 after Ctrl-C, else 1. Nothing is stored.
func tuneFailed(e *env, res *tune.Result, err error) error {
	var dnf *tune.DoesNotFitError
	switch {
	case errors.Is(err, context.Canceled):
		fmt.Fprintf(e.stderr, "ctxfit tune: stopped after %d load%s; nothing stored.\n", res.Loads, plural(res.Loads))
		if k := tune.Bracket(res); k != "" {
			fmt.Fprintf(e.stderr, "Known so far: %s.\n", k)
		}
		return exitError(130)
	case errors.As(err, &dnf), errors.Is(err, tune.ErrDoesNotFit):
		fmt.Fprintf(e.stderr, "ctxfit tune: %s.\n", termtext.Clean(err.Error()))
	case errors.Is(err, tune.ErrCPUOnly), errors.Is(err, tune.ErrUnknownModel):
		fmt.Fprintf(e.stderr, "ctxfit tune: %s\n", termtext.Clean(err.Error()))
	default:
		fmt.Fprintf(e.stderr, "ctxfit tune: %s\n", termtext.Clean(err.Error()))
		if k := tune.Bracket(res); k != "" && res.Loads > 0 {
			fmt.Fprintf(e.stderr, "Known so far: %s. Nothing stored.\n", k)
		}
	}
	return exitError(1)
}

// tuneJSON is the shape of `ctxfit tune --json`, as the issue gives it.
type tuneJSON struct {
	Model          string      `json:"model"`
	Context        int         `json:"context"`
	Step           int         `json:"step"`
	Loads          int         `json:"loads"`
	TrainedContext int         `json:"trained_context"`
	Parallel       int         `json:"parallel"`
	Probes         []probeJSON `json:"probes"`
	// Companions and CompanionLoads only for a joint tune (--with).
	Companions     []tune.CompanionLoad `json:"companions,omitempty"`
	CompanionLoads int                  `json:"companion_loads,omitempty"`
}

type probeJSON struct {
	Context  int      `json:"context"`
	Size     int64    `json:"size"`
	SizeVRAM int64    `json:"size_vram"`
	Evicted  []string `json:"evicted,omitempty"`
}

func writeTuneJSON(w io.Writer, res *tune.Result) error {
	out := tuneJSON{res.Model, res.Context, res.Step, res.Loads, res.TrainedContext, res.Parallel, []probeJSON{}, res.Companions, res.CompanionLoads}
	for _, p := range res.Probes {
		out.Probes = append(out.Probes, probeJSON{p.Context, p.Size, p.SizeVRAM, p.Evicted})
	}
	return writeIndentedJSON(w, out)
}

// listTuned prints the stored results, all hosts.
func listTuned(e *env, store *state.Store, asJSON bool) error {
	data, err := store.Load()
	if err != nil {
		return err
	}
	if asJSON {
		tuned := data.Tuned
		if tuned == nil {
			tuned = []state.Tuned{}
		}
		return writeIndentedJSON(e.stdout, tuned)
	}
	if len(data.Tuned) == 0 {
		fmt.Fprintln(e.stdout, "Nothing tuned yet: `ctxfit tune MODEL` finds a model's largest context that stays on the GPU.")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "HOST\tMODEL\tCONTEXT\tSTEP\tPARALLEL\tLOADS\tTRAINED\tMEASURED\tBESIDE")
	for _, t := range data.Tuned {
		trained := "?"
		if t.TrainedContext > 0 {
			trained = strconv.Itoa(t.TrainedContext)
		}
		beside := "alone"
		if t.Joint() {
			parts := make([]string, len(t.Companions))
			for i, c := range t.Companions {
				parts[i] = fmt.Sprintf("%s=%d", c.Model, c.Context)
			}
			beside = strings.Join(parts, ", ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", t.Host, t.Model, t.Context, t.Step, t.Parallel, t.Loads, trained, e.local(t.MeasuredAt).Format(time.DateTime), beside)
	}
	return tw.Flush()
}

// printApplied says what the running ctxfit did with a tune's result.
func printApplied(e *env, done *localapi.TuneEnded) {
	for _, r := range done.Fixed {
		fmt.Fprintf(e.stdout, "The running ctxfit fixed %s (%s).\n", r.Client, r.Path)
	}
	seen := map[string]bool{}
	for _, a := range done.TooLarge {
		fmt.Fprintf(e.stdout, "%s asks %s %d; %d fits.\n", a.Client, a.Model, a.Context, a.Tuned)
		seen[a.Client] = true
	}
	switch {
	case len(done.TooLarge) > 0 && !done.AutoFix:
		fmt.Fprintln(e.stdout, "Stored; `ctxfit fix all` (or Fix now in the tray) writes it, or `ctxfit set auto-fix on` keeps every client fixed.")
	case len(done.TooLarge) > 0:
		fmt.Fprintln(e.stdout, "Stored; auto-fix leaves those configs alone since you undid its fix: `ctxfit fix CLIENT` writes it.")
	case len(done.Fixed) == 0:
		fmt.Fprintln(e.stdout, "Stored; every client config ctxfit knows already asks for no more than that.")
	default:
		fmt.Fprintln(e.stdout, "Stored.")
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
