package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/ollama/ollama/format"

	"github.com/ctxfit/ctxfit/internal/ollamahost"
	"github.com/ctxfit/ctxfit/state"
	"github.com/ctxfit/ctxfit/unified"
)

// sysctlEnv names a sysctl program to use instead of the system's, and
// sudoEnv a sudo; tests point them at stubs.
const (
	sysctlEnv = "CTXFIT_SYSCTL"
	sudoEnv   = "CTXFIT_SUDO"
)

// unifiedSource returns how to read and set the GPU limit of the Mac that
// serves u: sysctl when u is this machine and it is an Apple Silicon Mac
// (or $CTXFIT_SYSCTL names a sysctl), the simulator's endpoint when u is a
// simulated Mac (ctxfit demo), else unified.ErrNotUnified.
func (e *env) unifiedSource(ctx context.Context, u *url.URL) (unified.Source, error) {
	if !ollamahost.IsLocal(u) {
		return nil, unified.ErrNotUnified
	}
	if p := e.getenv(sysctlEnv); p != "" || (runtime.GOOS == "darwin" && runtime.GOARCH == "arm64") {
		return unified.Sysctl{Sysctl: p, Sudo: e.getenv(sudoEnv), Stdin: os.Stdin, Stdout: e.stdout, Stderr: e.stderr}, nil
	}
	sim := unified.Simulated{Base: u}
	if _, err := sim.Read(ctx); err != nil {
		return nil, unified.ErrNotUnified
	}
	return sim, nil
}

// unifiedInfo reads the Mac behind u; ok is false for any other host.
func (e *env) unifiedInfo(ctx context.Context, u *url.URL) (unified.Source, unified.Info, bool) {
	src, err := e.unifiedSource(ctx, u)
	if err != nil {
		return nil, unified.Info{}, false
	}
	info, err := src.Read(ctx)
	if err != nil {
		return nil, unified.Info{}, false
	}
	return src, info, true
}

func runGPULimit(ctx context.Context, e *env, args []string) error {
	fs := e.flags("gpu-limit")
	host := fs.String("host", "", "Ollama server `URL` (default $OLLAMA_HOST, else "+ollamahost.Default+"); must be this Mac")
	// The help is in help.go, under "gpu-limit".
	dryRun := fs.Bool("dry-run", false, "print what would be run or written, change nothing")
	force := fs.Bool("force", false, "allow a limit that leaves macOS less than the reserve")
	asJSON := fs.Bool("json", false, "print the limit and what larger ones buy as one JSON object (gpu-limit alone)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if *asJSON && len(pos) > 0 {
		return usagef("--json goes with gpu-limit alone, which shows the limit; %s prints what it runs", pos[0])
	}
	u, err := e.host(*host)
	if err != nil {
		return err
	}
	src, err := e.unifiedSource(ctx, u)
	if err != nil {
		return fmt.Errorf("%s is %w: the GPU limit exists only on Apple Silicon, for a local Ollama", u.Redacted(), err)
	}
	info, err := src.Read(ctx)
	if err != nil {
		return err
	}
	if len(pos) == 0 && *asJSON {
		return writeIndentedJSON(e.stdout, gpuLimitOf(e, u, info))
	}
	if len(pos) == 0 {
		return showGPULimit(e, u, info)
	}
	sub, rest := pos[0], pos[1:]
	mb := 0
	switch sub {
	case "set", "persist":
		if len(rest) != 1 {
			return usagef("%s: give the limit in MiB, e.g. %d", sub, max(unified.MaxLimitMB(info.RAM), 0))
		}
		if mb, err = strconv.Atoi(rest[0]); err != nil {
			return usagef("%s: %q is not a number of MiB", sub, rest[0])
		}
		if err := unified.CheckLimit(info, mb); err != nil && !(*force && mb >= 0 && int64(mb)<<20 < info.RAM) {
			return err
		}
	case "undo":
		if len(rest) != 0 {
			return usagef("undo takes no argument")
		}
	default:
		return usagef("unknown subcommand %q: use set, persist or undo", sub)
	}

	if sub == "persist" || (sub == "undo" && !src.Restarts()) {
		if err := persistLimit(ctx, e, sub, mb, *dryRun); err != nil {
			return err
		}
	}
	if *dryRun {
		fmt.Fprintf(e.stdout, "Would run: sudo sysctl iogpu.wired_limit_mb=%d\n", mb)
		return nil
	}
	if err := src.SetLimit(ctx, mb); err != nil {
		return err
	}
	after := unified.Info{RAM: info.RAM, WiredLimitMB: mb}
	fmt.Fprintf(e.stdout, "iogpu.wired_limit_mb is now %d: the %s.\n", mb, after)
	if sub == "set" {
		fmt.Fprintf(e.stdout, "It lasts until the Mac restarts; %s keeps it.\n", e.cmdline(u, "gpu-limit", "persist", strconv.Itoa(mb)))
	}
	if src.Restarts() {
		fmt.Fprintln(e.stdout, "The simulated Ollama restarted with the new limit.")
	} else {
		fmt.Fprintln(e.stdout, "Restart Ollama so that it sees the new limit (quit and reopen the Ollama app, or `brew services restart ollama`).")
	}
	for _, t := range tunedOn(e, u) {
		fmt.Fprintf(e.stdout, "Then re-tune: %s\n", e.hint(u, "tune", t.Model))
	}
	return nil
}

// showGPULimit prints the Mac's GPU share, what Ollama last started with,
// and the advice for each model tuned there.
func showGPULimit(e *env, u *url.URL, info unified.Info) error {
	fmt.Fprintf(e.stdout, "The %s.\n", info)
	if home := e.getenv("HOME"); home != "" {
		if b, ok, _ := unified.OllamaBudgetFile(unified.OllamaLogPath(home)); ok && absDiff(b, info.Budget()) > 64<<20 {
			fmt.Fprintf(e.stdout, "Ollama last started with %s for the GPU (its log): restart Ollama to use the current limit.\n", format.HumanBytes2(uint64(b)))
		}
	}
	tuned := tunedOn(e, u)
	if len(tuned) == 0 {
		fmt.Fprintf(e.stdout, "Tune a model first (%s) to see what a larger limit buys.\n", e.hint(u, "tune", "MODEL"))
		return nil
	}
	for _, t := range tuned {
		io.WriteString(e.stdout, "\n"+limitAdvice(e, u, info, t))
	}
	return nil
}

// gpuLimitJSON is `ctxfit gpu-limit --json`: the values showGPULimit
// prints.
type gpuLimitJSON struct {
	Host         string `json:"host"`
	RAM          int64  `json:"ram_bytes"`      // the Mac's memory
	WiredLimitMB int    `json:"wired_limit_mb"` // iogpu.wired_limit_mb; 0 is the macOS default
	Budget       int64  `json:"budget_bytes"`   // what the GPU may use under it
	// OllamaBudget is what Ollama's log says it last started with, when
	// that differs from Budget (restart Ollama); 0 otherwise.
	OllamaBudget int64 `json:"ollama_budget_bytes"`
	// Reserve is the memory ctxfit keeps for macOS in what it suggests.
	Reserve int64               `json:"reserve_bytes"`
	Models  []gpuLimitModelJSON `json:"models"`
}

// gpuLimitModelJSON is one tuned model in gpuLimitJSON.
type gpuLimitModelJSON struct {
	Model          string  `json:"model"`
	Context        int     `json:"context"`
	TrainedContext int     `json:"trained_context"`
	BytesPerToken  float64 `json:"bytes_per_token"`
	// TunedBudget is the GPU's share when the tune ran; Stale says it
	// differs from the share now, so the model wants a re-tune and
	// Options is empty.
	TunedBudget int64 `json:"tuned_budget_bytes"`
	Stale       bool  `json:"stale"`
	// Options are the larger limits and the context each should fit.
	Options []unified.Option `json:"options"`
}

// gpuLimitOf gathers what showGPULimit says, for --json.
func gpuLimitOf(e *env, u *url.URL, info unified.Info) gpuLimitJSON {
	out := gpuLimitJSON{Host: u.String(), RAM: info.RAM, WiredLimitMB: info.WiredLimitMB, Budget: info.Budget(),
		Reserve: unified.Reserve(info.RAM), Models: []gpuLimitModelJSON{}}
	if home := e.getenv("HOME"); home != "" {
		if b, ok, _ := unified.OllamaBudgetFile(unified.OllamaLogPath(home)); ok && absDiff(b, info.Budget()) > 64<<20 {
			out.OllamaBudget = b
		}
	}
	for _, t := range tunedOn(e, u) {
		m := gpuLimitModelJSON{Model: t.Model, Context: t.Context, TrainedContext: t.TrainedContext, BytesPerToken: t.BytesPerToken,
			TunedBudget: t.GPUBudget, Options: []unified.Option{}}
		m.Stale = t.GPUBudget > 0 && absDiff(t.GPUBudget, info.Budget()) > 64<<20
		if !m.Stale {
			m.Options = append(m.Options, unified.Advise(info, unified.Fit{Context: t.Context, Step: t.Step, Trained: t.TrainedContext, BytesPerToken: t.BytesPerToken})...)
		}
		out.Models = append(out.Models, m)
	}
	return out
}

// limitAdvice says what larger limits buy the tuned model t, or that t was
// tuned under another limit.
func limitAdvice(e *env, u *url.URL, info unified.Info, t state.Tuned) string {
	var b strings.Builder
	if t.GPUBudget > 0 && absDiff(t.GPUBudget, info.Budget()) > 64<<20 {
		fmt.Fprintf(&b, "%s was tuned to %d with %s for the GPU; the limit changed since. Restart Ollama if you have not, then re-tune: %s\n",
			t.Model, t.Context, format.HumanBytes2(uint64(t.GPUBudget)), e.hint(u, "tune", t.Model))
		return b.String()
	}
	opts := unified.Advise(info, unified.Fit{Context: t.Context, Step: t.Step, Trained: t.TrainedContext, BytesPerToken: t.BytesPerToken})
	if len(opts) == 0 {
		if t.TrainedContext > 0 && t.Context >= t.TrainedContext {
			fmt.Fprintf(&b, "%s: %d is its whole trained context; a larger limit buys nothing.\n", t.Model, t.Context)
		}
		return b.String()
	}
	fmt.Fprintf(&b, "%s fits %d now. A larger GPU limit buys, by the sizes the tune measured (%s per token):\n",
		t.Model, t.Context, format.HumanBytes2(uint64(t.BytesPerToken)))
	for _, o := range opts {
		fmt.Fprintf(&b, "  iogpu.wired_limit_mb=%-6d (%s): about %d tokens, leaving %s to macOS\n",
			o.LimitMB, o.Label, o.Context, format.HumanBytes2(uint64(o.LeftForMacOS)))
	}
	last := opts[len(opts)-1]
	fmt.Fprintf(&b, "Apply one with `%s` (asks for your password; lasts until reboot), restart Ollama, then re-tune.\n",
		e.hint(u, "gpu-limit", "set", strconv.Itoa(last.LimitMB)))
	fmt.Fprintf(&b, "Keep at least %s for macOS: with less it swaps and stalls, which is slower than any spill.\n",
		format.HumanBytes2(uint64(unified.Reserve(info.RAM))))
	return b.String()
}

// tunedOn returns the models tuned on u, newest result per model.
func tunedOn(e *env, u *url.URL) []state.Tuned {
	_, data, err := e.state()
	if err != nil {
		return nil
	}
	key := ollamahost.Key(u)
	var out []state.Tuned
	for _, t := range data.Tuned {
		if t.Host != key {
			continue
		}
		if best, ok := data.TunedFor(key, t.Model, ""); ok && best.MeasuredAt.Equal(t.MeasuredAt) {
			out = append(out, best)
		}
	}
	return out
}

// persistLimit installs (persist) or removes (undo) the LaunchDaemon that
// sets the limit at boot, through sudo in this terminal.
func persistLimit(ctx context.Context, e *env, sub string, mb int, dryRun bool) error {
	sudo := e.getenv(sudoEnv)
	if sudo == "" {
		sudo = "sudo"
	}
	var cmds [][]string
	if sub == "persist" {
		plist := unified.Plist(mb)
		if dryRun {
			fmt.Fprintf(e.stdout, "Would write %s:\n%s\n", unified.PlistPath, plist)
			cmds = unified.PersistCommands("<that file>")
		} else {
			dir, err := os.MkdirTemp("", "ctxfit-plist")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			tmp := filepath.Join(dir, unified.PlistLabel+".plist")
			if err := os.WriteFile(tmp, plist, 0o644); err != nil {
				return err
			}
			// An older LaunchDaemon is unloaded first; it may not exist.
			_ = runSudo(ctx, e, sudo, unified.UnpersistCommands()[0], true)
			cmds = unified.PersistCommands(tmp)
		}
	} else {
		cmds = unified.UnpersistCommands()
	}
	for i, c := range cmds {
		if dryRun {
			fmt.Fprintf(e.stdout, "Would run: sudo %s\n", strings.Join(c, " "))
			continue
		}
		// Unloading a LaunchDaemon that is not loaded fails; that is fine.
		quiet := sub == "undo" && i == 0
		if err := runSudo(ctx, e, sudo, c, quiet); err != nil && !quiet {
			return err
		}
	}
	if !dryRun && sub == "undo" {
		fmt.Fprintf(e.stdout, "Removed %s.\n", unified.PlistPath)
	}
	return nil
}

func runSudo(ctx context.Context, e *env, sudo string, argv []string, quiet bool) error {
	cmd := exec.CommandContext(ctx, sudo, argv...)
	cmd.Stdin, cmd.Stdout = os.Stdin, e.stdout
	if !quiet {
		cmd.Stderr = e.stderr
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("sudo %s: %w", strings.Join(argv, " "), err)
	}
	return nil
}

func absDiff(a, b int64) int64 {
	if a > b {
		return a - b
	}
	return b - a
}
