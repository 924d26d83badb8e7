package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ollama/ollama/format"

	"github.com/ctxfit/ctxfit/internal/ollamahost"
	"github.com/ctxfit/ctxfit/internal/termtext"
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
	p, err := parallelSlots(e, given, *parallel, ollamahost.IsLocal(u))
	if err != nil {
		return usagef("%v", err)
	}
	key := ollamahost.Key(u)
	gpu := ollama.GPUUnknown
	if data, err := store.Load(); err == nil {
		gpu = data.GPU(key, "")
	}
	model := pos[0]
	if gpu == ollama.GPUAbsent {
		return failf(1, "%s has no GPU, as far as ctxfit knows, and tune finds the context that stays on one, so nothing was loaded. "+
			"%s measures the speed on the CPU; if the server has a GPU now, %s forgets the old answer",
			u, e.cmdline(u, "bench", model), e.cmdline(u, "status", "--set-gpu", "auto"))
	}

	client := e.client(u)
	pr := e.progress(*quiet, *progressFlag)
	var out io.Writer = e.stdout
	switch {
	case *asJSON && *quiet:
		out = io.Discard
	case *asJSON:
		out = e.stderr // stdout holds only the JSON
	}
	beside := ""
	if len(with) > 0 {
		beside = " beside " + companionList(with)
	}
	fmt.Fprintf(out, "Tuning %s%s on %s: step %d, %d parallel slot%s.\n", model, beside, u.Redacted(), *step, p, plural(p))
	n := 0
	opts := tune.Options{
		Model:      model,
		Step:       *step,
		Parallel:   p,
		GPU:        gpu,
		Timeout:    *timeout,
		Companions: with,
		Progress: func(probe tune.Probe) {
			n++
			pr.done()
			fmt.Fprintf(out, "  load %d: %s\n", n, probeLine(probe))
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
	if err != nil {
		return e.tuneFailed(u, res, err)
	}

	_, mac, isMac := e.unifiedInfo(ctx, u)
	var budget int64
	if isMac {
		budget = mac.Budget()
	}
	if err := storeTuned(store, key, res, budget); err != nil {
		return err
	}

	if *asJSON {
		return writeTuneJSON(e.stdout, u, res)
	}
	fmt.Fprintln(e.stdout, tuneSummary(res))
	if len(res.Companions) > 0 {
		// A speed comparison would reload the model beside its
		// companions and could unload them; the set stays as tuned.
		fmt.Fprintf(e.stdout, "Stored beside %s; %s writes it into the clients that use these models together.\n", companionLoads(res.Companions), e.cmdline(u, "fix", "all"))
		return nil
	}
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
	fmt.Fprintf(e.stdout, "Stored; %s writes it into your clients' configs.\n", e.cmdline(u, "fix", "all"))
	if isMac {
		if t, ok := tunedFor(store, key, res); ok {
			if advice := limitAdvice(e, u, mac, t); advice != "" {
				fmt.Fprint(e.stdout, "\n"+advice)
			}
		}
	}
	return nil
}

// tunedFor reads back what storeTuned stored for res.
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

// storeTuned remembers a finished tune of the server with host key; budget
// is the GPU's share of unified memory on an Apple Silicon host, else 0.
func storeTuned(store *state.Store, key string, res *tune.Result, budget int64) error {
	err := store.Update(func(d *state.Data) error {
		d.PutTuned(state.Tuned{
			Host:           key,
			Model:          res.Model,
			Digest:         res.Digest,
			Parallel:       res.Parallel,
			Context:        res.Context,
			Step:           res.Step,
			Loads:          res.Loads,
			TrainedContext: res.TrainedContext,
			MeasuredAt:     time.Now().UTC(),
			BytesPerToken:  bytesPerToken(res),
			GPUBudget:      budget,
			Companions:     storedCompanions(res.Companions),
		})
		d.Host(key).GPUSeen = true // the answer loaded into VRAM
		return nil
	})
	if err != nil {
		return fmt.Errorf("tuned %s to %d but could not store it: %w", res.Model, res.Context, err)
	}
	return nil
}

// storedCompanions returns the companions of a joint tune as the state keeps
// them: each at the context it ran with.
func storedCompanions(cs []tune.CompanionLoad) []state.Companion {
	var out []state.Companion
	for _, c := range cs {
		out = append(out, state.Companion{Model: c.Model, Context: cmp.Or(c.Loaded, c.Context)})
	}
	return out
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

// companionLoads returns "qwen2.5-coder:1.5b at num_ctx 4096 (1.2 GB)".
func companionLoads(cs []tune.CompanionLoad) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = fmt.Sprintf("%s at num_ctx %d (%s)", c.Model, cmp.Or(c.Loaded, c.Context), format.HumanBytes(c.Size))
	}
	return strings.Join(parts, ", ")
}

// parallelSlots returns the parallel slots to tune for: --parallel when
// given, else OLLAMA_NUM_PARALLEL when the server runs on this machine
// (where that environment is likely the server's too), else 1.
func parallelSlots(e *env, given bool, flagValue int, local bool) (int, error) {
	if given {
		if flagValue < 1 {
			return 0, fmt.Errorf("--parallel %d: use a positive number of slots", flagValue)
		}
		return flagValue, nil
	}
	if v := strings.TrimSpace(e.getenv("OLLAMA_NUM_PARALLEL")); local && v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, fmt.Errorf("OLLAMA_NUM_PARALLEL=%q: use a positive number, or pass --parallel", v)
		}
		return n, nil
	}
	return 1, nil
}

// probeLine describes one load: "num_ctx 32768: 25.8 GB, 8%/92% CPU/GPU, 2.1 s".
func probeLine(p tune.Probe) string {
	if p.Refused != "" {
		return fmt.Sprintf("num_ctx %d: refused by the server (%s), %.1f s", p.Context, termtext.Clean(p.Refused), p.Seconds)
	}
	line := fmt.Sprintf("num_ctx %d: %s, %s, %.1f s", p.Context, format.HumanBytes(p.Size), p.Processor(), p.Seconds)
	switch {
	case len(p.Evicted) > 0:
		line += "; " + strings.Join(p.Evicted, ", ") + " did not stay loaded beside it"
	case p.CompanionSpilled:
		line += "; a model beside it moved onto the CPU"
	}
	return line
}

func tuneSummary(res *tune.Result) string {
	var why string
	switch {
	case res.SmallestSpill > 0:
		why = fmt.Sprintf("%d spills", res.SmallestSpill)
	case res.TrainedContext > 0:
		why = fmt.Sprintf("the model's trained context is %d", res.TrainedContext)
	default:
		why = "the largest context tried"
	}
	if len(res.Companions) > 0 {
		if res.SmallestSpill > 0 {
			why = fmt.Sprintf("%d does not fit beside them", res.SmallestSpill)
		}
		return fmt.Sprintf("%s: num_ctx %d stays 100%% on the GPU beside %s (%s); %d load%s, %d of them of the companions.",
			res.Model, res.Context, companionLoads(res.Companions), why, res.Loads, plural(res.Loads), res.CompanionLoads)
	}
	return fmt.Sprintf("%s: num_ctx %d stays 100%% on the GPU (%s); %d load%s.", res.Model, res.Context, why, res.Loads, plural(res.Loads))
}

// tuneFailed explains a failed or interrupted tune, for main to print:
// status 130 after Ctrl-C, else 1. Nothing is stored.
func (e *env) tuneFailed(u *url.URL, res *tune.Result, err error) error {
	known := ""
	if k := bracketText(res); k != "" && res.Loads > 0 {
		known = " Known so far: " + k + "."
	}
	switch {
	case errors.Is(err, context.Canceled):
		return failf(130, "stopped after %d load%s; nothing stored.%s", res.Loads, plural(res.Loads), known)
	case errors.Is(err, tune.ErrDoesNotFit):
		return failf(1, "%v.", err)
	case errors.Is(err, tune.ErrCPUOnly):
		return failf(1, "%v. %s measures the speed on the CPU.", e.reprog(err.Error()), e.cmdline(u, "bench", res.Model))
	case errors.Is(err, tune.ErrUnknownModel):
		return failf(1, "%v", err)
	}
	if known != "" {
		known += " Nothing stored."
	}
	return failf(1, "%v%s", err, known)
}

// bracketText says what the loads proved: "num_ctx 16384 fits, 20480 spills".
func bracketText(res *tune.Result) string {
	switch {
	case res == nil:
		return ""
	case res.LargestFit > 0 && res.SmallestSpill > 0:
		return fmt.Sprintf("num_ctx %d fits, %d spills: the answer is %d or between them", res.LargestFit, res.SmallestSpill, res.LargestFit)
	case res.LargestFit > 0:
		return fmt.Sprintf("num_ctx %d fits; nothing larger was tried", res.LargestFit)
	case res.SmallestSpill > 0:
		return fmt.Sprintf("num_ctx %d spills; nothing smaller was tried", res.SmallestSpill)
	}
	return ""
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
	out := tuneJSON{u.String(), res.Model, res.Context, res.Step, res.Loads, res.TrainedContext, res.Parallel, []probeJSON{}, res.Restored, res.Companions, res.CompanionLoads}
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

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
