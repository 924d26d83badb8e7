package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ollama/ollama/api"

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
	host := fs.String("host", "", hostUsage)
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	list := fs.Bool("list", false, "list the stored results for the server instead of tuning")
	allHosts := fs.Bool("all-hosts", false, "with --list: the results for every server")
	quiet := fs.Bool("quiet", false, "print no progress on stderr")
	progressFlag := fs.Bool("progress", false, "print progress on stderr even when it is not a terminal")
	timeout := progressFlags(fs)
	var with companionFlag
	fs.Var(&with, "with", "a model `OTHER[=CONTEXT]` that runs beside MODEL at CONTEXT (default: its own); repeat for more")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	u, err := e.host(*host)
	if err != nil {
		return err
	}
	store, err := e.store()
	if err != nil {
		return err
	}
	if *list {
		if len(pos) > 0 {
			return usagef("--list takes no model")
		}
		return listTuned(e, store, u, *allHosts, *asJSON)
	}
	if *allHosts {
		return usagef("--all-hosts goes with --list")
	}
	if len(pos) != 1 {
		return usagef("name one MODEL to tune (`ollama list` shows them), or use --list")
	}
	if *step < 1 {
		return usagef("--step %d: use a positive number of tokens, such as 1024 or 4096", *step)
	}

	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "parallel" })
	p, err := tune.ParallelSlots(e.getenv, given, *parallel, ollamahost.IsLocal(u))
	if err != nil {
		return usagef("%v", err)
	}
	key := ollamahost.Key(u)
	gpu := ollama.GPUUnknown
	var hostGPU *state.GPUBound
	if data, err := store.Load(); err == nil {
		gpu = data.GPU(key, "")
		hostGPU = data.GPUBound(key)
	}
	model := pos[0]
	if gpu == ollama.GPUAbsent {
		return failf(1, "%s has no GPU, as far as ctxfit knows, and tune finds the context that stays on one, so nothing was loaded. "+
			"%s measures the speed on the CPU; if the server has a GPU now, %s forgets the old answer",
			u, e.cmdline(u, "bench", model), e.cmdline(u, "status", "--set-gpu", "auto"))
	}

	client := e.client(u)
	if err := hung(ctx, client, u); err != nil {
		return err
	}
	pr := e.progress(*quiet, *progressFlag)
	var out io.Writer = e.stdout
	switch {
	case *asJSON && *quiet:
		out = io.Discard
	case *asJSON:
		out = e.stderr // stdout holds only the JSON
	}
	mark, err := e.beginTune(ctx, store, u, model)
	if err != nil {
		return failf(1, "%v", err)
	}
	ended := false
	endMark := func(n int, msg string) *localapi.TuneEnded {
		if ended {
			return nil
		}
		ended = true
		return mark.end(n, msg)
	}
	// A panic or an early return still ends the mark. tune.Tune has put
	// the model back before it returns, so the running ctxfit still knows
	// the restoring reload as the tuner's.
	defer endMark(0, "")
	beside := ""
	if len(with) > 0 {
		beside = " beside " + companionList(with)
	}
	// Said once the server answered and knows the model (see Starting).
	header := fmt.Sprintf("Tuning %s%s on %s: step %d, %d parallel slot%s.\n", model, beside, u.Redacted(), *step, p, plural(p))
	n := 0
	opts := tune.Options{
		Model:      model,
		Step:       *step,
		Parallel:   p,
		GPU:        gpu,
		HostGPU:    hostGPU,
		Timeout:    *timeout,
		Companions: with,
		Starting: func() {
			pr.done()
			io.WriteString(out, header)
			pr.start("load 1")
		},
		Progress: func(probe tune.Probe) {
			n++
			pr.done()
			line := tune.ProbeLine(probe)
			fmt.Fprintf(out, "  load %d: %s\n", n, line)
			mark.progress(line)
			pr.start(fmt.Sprintf("load %d", n+1))
		},
	}
	if ollamahost.IsLocal(u) {
		opts.RAM = e.localRAM()
	}
	pr.start("load 1")
	res, err := tune.Tune(ctx, client, opts)
	pr.done()
	if res != nil && res.Restored != "" {
		fmt.Fprintln(e.stderr, restoredLine(res))
	}
	if res != nil && len(res.Unloaded) > 0 {
		they := "they load"
		if len(res.Unloaded) == 1 {
			they = "it loads"
		}
		fmt.Fprintf(e.stderr, "To make room for the tune's loads Ollama unloaded %s; %s again on its next request.\n", strings.Join(res.Unloaded, ", "), they)
	}
	if err != nil {
		msg := fmt.Sprintf("tuning %s failed: %v", model, err)
		if errors.Is(err, context.Canceled) {
			msg = fmt.Sprintf("the tune of %s was stopped (Ctrl-C) after %d loads", model, res.Loads)
		}
		if b := tune.Bracket(res); b != "" {
			msg += "; " + b
		}
		endMark(0, msg)
		return e.tuneFailed(u, res, err)
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
		return writeTuneJSON(e.stdout, u, res)
	}
	fmt.Fprintln(e.stdout, tune.Summary(res))
	if len(res.Companions) > 0 {
		// A speed comparison would reload the model beside its
		// companions and could unload them; the set stays as tuned.
		fmt.Fprintf(e.stdout, "Stored beside %s; %s writes it into the clients that use these models together.\n", tune.CompanionLoads(res.Companions), e.cmdline(u, "fix", "all"))
		if done := endMark(res.Context, tune.Summary(res)); done != nil {
			printApplied(e, u, done)
		}
		return nil
	}
	// The benchmark loads the model at its old context again: still the
	// tuner's load, so the mark ends after it.
	pr.start("comparing the speed before and after")
	before, after, err := tune.BenchBeforeAfter(ctx, client, res, *timeout)
	pr.done()
	switch {
	case err != nil:
		fmt.Fprintf(e.stderr, "%s tune: comparing the speed before and after: %s\n", e.progOrDefault(), termtext.Clean(err.Error()))
	case before != nil:
		fmt.Fprintf(e.stdout, "Speed: %.1f tokens/s at num_ctx %d (%s), %.1f tokens/s at num_ctx %d (%s).\n",
			before.TokensPerSecond, before.Context, before.Processor(), after.TokensPerSecond, after.Context, after.Processor())
	}
	if done := endMark(res.Context, tune.Summary(res)); done != nil {
		printApplied(e, u, done)
	} else {
		fmt.Fprintf(e.stdout, "Stored; %s writes it into your clients' configs.\n", e.cmdline(u, "fix", "all"))
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

// localRAM returns the memory this machine can give a model without
// swapping: MemAvailable where the OS reports it, else half the RAM.
func (e *env) localRAM() int64 {
	if e.ram != nil {
		return e.ram()
	}
	if r := ollama.AvailableRAM(); r > 0 {
		return r
	}
	return ollama.TotalRAM() / 2
}

// restoredLine says how the tune left the model.
func restoredLine(res *tune.Result) string {
	switch {
	case res.Restored == "unloaded" && res.Before != nil:
		return fmt.Sprintf("%s unloaded: it was loaded before, at a context the server did not report.", res.Model)
	case res.Restored == "unloaded":
		return fmt.Sprintf("%s unloaded, as it was before the tune.", res.Model)
	case strings.HasPrefix(res.Restored, "reloaded"):
		return fmt.Sprintf("%s %s, as it was before the tune.", res.Model, res.Restored)
	}
	return fmt.Sprintf("%s: %s.", res.Model, res.Restored)
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

// tuneFailed explains a failed or interrupted tune, for main to print:
// status 130 after Ctrl-C, else 1. Nothing is stored.
func (e *env) tuneFailed(u *url.URL, res *tune.Result, err error) error {
	known := ""
	if k := tune.Bracket(res); k != "" && res.Loads > 0 {
		known = " Known so far: " + k + "."
	}
	switch {
	case errors.Is(err, context.Canceled):
		return failf(130, "stopped after %d load%s; nothing stored.%s", res.Loads, plural(res.Loads), known)
	case errors.Is(err, tune.ErrDoesNotFit):
		return failf(1, "%v.", err)
	case errors.Is(err, tune.ErrCPUOnly):
		// The tune forgets what it saw: without the setting, every model
		// on that CPU stays "spilled" (a Mac's Ollama in Docker has no
		// GPU while the Mac has one) and each tune loads again to learn it.
		return failf(1, "%v. %s measures the speed on the CPU; if the server has no GPU, %s tells ctxfit so: no spill warnings for its models on the CPU, and no load at the next tune.",
			e.reprog(err.Error()), e.cmdline(u, "bench", res.Model), e.cmdline(u, "status", "--set-gpu", "absent"))
	case errors.Is(err, tune.ErrUnknownModel):
		return failf(1, "%v", err)
	}
	if known != "" {
		known += " Nothing stored."
	}
	return failf(1, "%s%s", serverFailure(u, err), known)
}

// serverFailure words an error of a command that talks to the server at u:
// one about the server (an error answer, a dropped or refused connection,
// an answer that is not Ollama's, a stall) names the server first, as
// `ctxfit status` does, since a tune's or bench's own text does not.
func serverFailure(u *url.URL, err error) string {
	var se api.StatusError
	if errors.Is(err, tune.ErrServerGone) || errors.Is(err, tune.ErrBadAnswer) || errors.Is(err, ollama.ErrStalled) || errors.As(err, &se) {
		return fmt.Sprintf("Ollama at %s: %v", u.Redacted(), err)
	}
	return err.Error()
}

// tuneJSON is `ctxfit tune --json`.
type tuneJSON struct {
	Host           string      `json:"host"`
	Model          string      `json:"model"`
	Context        int         `json:"context"`
	Step           int         `json:"step"`
	Loads          int         `json:"loads"`
	TrainedContext int         `json:"trained_context"`
	Parallel       int         `json:"parallel"`
	Probes         []probeJSON `json:"probes"`
	Restored       string      `json:"restored"` // how the model was left: "unloaded", "reloaded at num_ctx N"; "" for a joint tune
	// Unloaded names the other models Ollama unloaded to make room for
	// the tune's loads; they load again on their next request.
	Unloaded []string `json:"unloaded,omitempty"`
	// Companions and CompanionLoads only for a joint tune (--with).
	Companions     []tune.CompanionLoad `json:"companions,omitempty"`
	CompanionLoads int                  `json:"companion_loads,omitempty"`
}

type probeJSON struct {
	Context   int      `json:"context"`
	Size      int64    `json:"size"`
	SizeVRAM  int64    `json:"size_vram"`
	Processor string   `json:"processor"`
	Seconds   float64  `json:"seconds"`
	Evicted   []string `json:"evicted,omitempty"`
}

func writeTuneJSON(w io.Writer, u *url.URL, res *tune.Result) error {
	out := tuneJSON{u.String(), res.Model, res.Context, res.Step, res.Loads, res.TrainedContext, res.Parallel, []probeJSON{}, res.Restored, res.Unloaded, res.Companions, res.CompanionLoads}
	for _, p := range res.Probes {
		out.Probes = append(out.Probes, probeJSON{p.Context, p.Size, p.SizeVRAM, p.Processor(), p.Seconds, p.Evicted})
	}
	return writeIndentedJSON(w, out)
}

// tuneListJSON is `ctxfit tune --list --json`.
type tuneListJSON struct {
	Host  string        `json:"host"` // "" with --all-hosts
	Tuned []state.Tuned `json:"tuned"`
}

// listTuned prints the stored results for the server at u, or for every
// server.
func listTuned(e *env, store *state.Store, u *url.URL, all, asJSON bool) error {
	data, err := store.Load()
	if err != nil {
		return err
	}
	out := tuneListJSON{Tuned: []state.Tuned{}}
	if !all {
		out.Host = u.String()
	}
	for _, t := range data.Tuned {
		if all || t.Host == ollamahost.Key(u) {
			out.Tuned = append(out.Tuned, t)
		}
	}
	if asJSON {
		return writeIndentedJSON(e.stdout, out)
	}
	if len(out.Tuned) == 0 {
		where := "on " + u.String()
		if all {
			where = "on any server"
		}
		fmt.Fprintf(e.stdout, "Nothing tuned %s yet: %s finds a model's largest context that stays on the GPU.\n", where, e.cmdline(u, "tune", "MODEL"))
		if !all && len(data.Tuned) > 0 {
			fmt.Fprintf(e.stdout, "Other servers have results: %s lists them.\n", e.cmdline(nil, "tune", "--list", "--all-hosts"))
		}
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "HOST\tMODEL\tCONTEXT\tSTEP\tPARALLEL\tLOADS\tTRAINED\tMEASURED\tBESIDE")
	for _, t := range out.Tuned {
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
func printApplied(e *env, u *url.URL, done *localapi.TuneEnded) {
	for _, r := range done.Fixed {
		fmt.Fprintf(e.stdout, "The running ctxfit fixed %s (%s).\n", r.Client, r.Path)
	}
	var asking []string // the clients that ask too much, in order
	for _, a := range done.TooLarge {
		fmt.Fprintf(e.stdout, "%s asks %s for %d tokens; %d fits.\n", a.Client, a.Model, a.Context, a.Tuned)
		if c := strings.ToLower(a.Client); !slices.Contains(asking, c) {
			asking = append(asking, c)
		}
	}
	fixCmd := e.cmdline(u, "fix", "all")
	if len(asking) == 1 {
		fixCmd = e.cmdline(u, "fix", asking[0])
	}
	switch {
	case len(done.TooLarge) > 0 && !done.AutoFix:
		tray := ""
		if done.Tray {
			tray = " (or Fix now in the tray)"
		}
		fmt.Fprintf(e.stdout, "Stored; %s%s writes it, or %s keeps every client fixed.\n", e.cmdline(u, "fix", "all"), tray, e.cmdline(u, "set", "auto-fix", "on"))
	case len(done.TooLarge) > 0:
		fmt.Fprintf(e.stdout, "Stored; auto-fix leaves those configs alone since you undid its fix: %s writes it.\n", fixCmd)
	case len(done.Fixed) == 0 && done.Asking != nil && *done.Asking == 0:
		fmt.Fprintf(e.stdout, "Stored; no client config ctxfit knows asks for this model (%s lists what each asks for).\n", e.cmdline(u, "clients"))
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
