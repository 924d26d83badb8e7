package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ollama/ollama/format"

	"github.com/ctxfit/ctxfit/clients"
	"github.com/ctxfit/ctxfit/hub"
	"github.com/ctxfit/ctxfit/internal/logfile"
	"github.com/ctxfit/ctxfit/internal/ollamahost"
	"github.com/ctxfit/ctxfit/internal/termtext"
	"github.com/ctxfit/ctxfit/ollama"
	"github.com/ctxfit/ctxfit/state"
	"github.com/ctxfit/ctxfit/tune"
	"github.com/ctxfit/ctxfit/watch"
)

func runStatus(ctx context.Context, e *env, args []string) error {
	fs := e.flags("status")
	host := fs.String("host", "", hostUsage)
	asJSON := fs.Bool("json", false, "print one JSON object")
	setGPU := fs.String("set-gpu", "", "tell ctxfit whether this host has a GPU: present, absent, or auto to infer it again")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected %q; status takes only flags", fs.Arg(0))
	}
	if hosts := e.rememberedHosts(); *host == "" && *setGPU == "" && len(hosts) > 1 {
		return e.statusAll(ctx, hosts, *asJSON)
	}
	u, err := e.host(*host)
	if err != nil {
		return err
	}
	store, err := e.store()
	if err != nil {
		return err
	}
	if *setGPU != "" {
		if err := setGPUPresence(store, u, *setGPU); err != nil {
			return err
		}
	}
	// With a daemon running for the server, its state is the answer: the
	// same snapshot the tray shows, and the tunes in progress. Without
	// one, a poll of our own.
	var snap watch.Snapshot
	var tunes []hub.Tune
	var daemonPID int
	var daemonState *hub.State
	data, _ := store.Load()
	if data == nil {
		data = &state.Data{}
	}
	parallel := e.serverParallel(u)
	settings := data.Settings
	if c, h := e.daemon(ctx, store, u, "status"); c != nil {
		if st, err := c.State(ctx); err == nil && st.Snapshot.Reachable {
			snap, tunes, settings, daemonPID = st.Snapshot, st.Tunes, st.Settings, h.PID
			daemonState = &st
		}
	}
	if daemonPID == 0 {
		w := watch.New(e.client(u), u, store, watch.Options{})
		snap = w.Poll(ctx).Snapshot
	}
	_, mac, isMac := e.unifiedInfo(ctx, u)
	if *asJSON {
		var uj *unifiedJSON
		if isMac {
			uj = &unifiedJSON{mac.RAM, mac.WiredLimitMB, mac.Budget()}
		}
		return writeStatusJSON(e.stdout, snap, data, ollamahost.Key(u), parallel, uj, settings, tunes)
	}
	if !snap.Reachable {
		return failf(1, "%s", snap.Error)
	}
	e.writeStatus(e.stdout, u, snap, data, parallel, daemonState)
	// Entries whose context is not a number: the running ctxfit's view of
	// the configs, else our own reading of them.
	var asks []clients.Ask
	if daemonState != nil {
		for _, c := range daemonState.Clients {
			asks = append(asks, c.Asks...)
		}
	} else {
		asks = newFixer(e, store.Dir(), u).AllAsks(clients.All(), tunedTarget(data, u, parallel))
	}
	first := true
	for _, a := range asks {
		if a.NotNumber == "" {
			continue
		}
		if first {
			fmt.Fprintln(e.stdout)
			first = false
		}
		fmt.Fprintf(e.stdout, "warning: %s\n", a.NotNumberText())
	}
	if isMac {
		fmt.Fprintf(e.stdout, "\nApple Silicon: the %s; `%s` says what more would buy.\n", mac, e.hint(u, "gpu-limit"))
		for _, t := range tunedOn(e, u) {
			if t.GPUBudget > 0 && absDiff(t.GPUBudget, mac.Budget()) > 64<<20 {
				fmt.Fprintf(e.stdout, "%s was tuned with %s for the GPU; restart Ollama if you have not, then re-tune: %s\n",
					t.Model, format.HumanBytes2(uint64(t.GPUBudget)), e.hint(u, "tune", t.Model))
			}
		}
	}
	for _, t := range tunes {
		fmt.Fprintf(e.stdout, "\nTuning %s (%s): %s\n", t.Model, t.By, t.Line)
	}
	fmt.Fprintf(e.stdout, "\nSettings: auto-fix %s, notifications %s (%s).\n", onOffText(settings.AutoFix), onOffText(!settings.NotificationsOff), e.cmdline(nil, "settings"))
	if daemonPID != 0 {
		fmt.Fprintf(e.stdout, "ctxfit is running for this server (pid %d).\n", daemonPID)
	} else {
		fmt.Fprintf(e.stdout, "ctxfit is not running for this server: %s watches it.\n", e.cmdline(u, "run"))
	}
	if p, err := logfile.DefaultPath(e.getenv); err == nil {
		fmt.Fprintf(e.stdout, "Log: %s\n", p)
	}
	return nil
}

// hostUsage is the help of every --host flag.
const hostUsage = "Ollama server `URL`: host, host:port, :port or http://host:port (default $OLLAMA_HOST, else " + ollamahost.Default + ")"

// serverParallel returns the server's parallel slots when ctxfit can know
// them: OLLAMA_NUM_PARALLEL (else 1) for a server on this machine; 0 for a
// remote one, whose slots no API reports.
func (e *env) serverParallel(u *url.URL) int {
	if !ollamahost.IsLocal(u) {
		return 0
	}
	p, err := tune.ParallelSlots(e.getenv, false, 0, true)
	if err != nil {
		return 0
	}
	return p
}

func setGPUPresence(store *state.Store, u *url.URL, value string) error {
	var p ollama.GPUPresence
	if value != "auto" {
		var err error
		if p, err = ollama.ParseGPUPresence(value); err != nil || p == ollama.GPUUnknown {
			return fmt.Errorf("--set-gpu %q: use present, absent or auto", value)
		}
	}
	return store.Update(func(d *state.Data) error {
		h := d.Host(ollamahost.Key(u))
		h.GPU = p
		if p == "" {
			h.GPUSeen = false
		}
		return nil
	})
}

// statusJSON is `ctxfit status --json`. An unreachable server has
// reachable false and error set, and ctxfit exits 1.
type statusJSON struct {
	Host      string            `json:"host"`
	Reachable bool              `json:"reachable"`
	Error     string            `json:"error,omitempty"`
	Version   string            `json:"version"`
	GPU       string            `json:"gpu"`
	Models    []statusModelJSON `json:"models"`
	Tuned     []state.Tuned     `json:"tuned"`             // every result stored for this server
	Unified   *unifiedJSON      `json:"unified,omitempty"` // Apple Silicon hosts only
	Settings  settingsBriefJSON `json:"settings"`
	Tunes     []hub.Tune        `json:"tunes"` // running now, as a running ctxfit knows them
}

type settingsBriefJSON struct {
	AutoFix       bool `json:"auto_fix"`
	Notifications bool `json:"notifications"`
}

// unifiedJSON is an Apple Silicon host's GPU share of unified memory.
type unifiedJSON struct {
	RAM          int64 `json:"ram_bytes"`
	WiredLimitMB int   `json:"wired_limit_mb"`
	GPUBudget    int64 `json:"gpu_budget_bytes"`
}

// statusModelJSON is one loaded model in `ctxfit status --json`.
type statusModelJSON struct {
	Model     string `json:"model"`
	Size      int64  `json:"size"`
	SizeVRAM  int64  `json:"size_vram"`
	Processor string `json:"processor"`
	Context   int    `json:"context"` // as loaded; 0 when the server does not say
	State     string `json:"state"`
	Spilled   bool   `json:"spilled"`
	// Tuned is the tuned context that applies (what fix writes); 0 when
	// none. TunedParallel is the parallel slots it was measured for.
	Tuned         int    `json:"tuned"`
	TunedParallel int    `json:"tuned_parallel"`
	RAMWarning    string `json:"ram_warning,omitempty"`
}

func writeStatusJSON(w io.Writer, snap watch.Snapshot, data *state.Data, key string, parallel int, uj *unifiedJSON, settings state.Settings, tunes []hub.Tune) error {
	if tunes == nil {
		tunes = []hub.Tune{}
	}
	out := statusJSON{Host: snap.Host, Reachable: snap.Reachable, Error: snap.Error, Version: snap.Version,
		GPU: string(snap.GPU), Models: []statusModelJSON{}, Tuned: []state.Tuned{}, Unified: uj,
		Settings: settingsBriefJSON{settings.AutoFix, !settings.NotificationsOff}, Tunes: tunes}
	for _, m := range snap.Models {
		j := statusModelJSON{Model: m.Name, Size: m.Size, SizeVRAM: m.SizeVRAM, Processor: m.Processor,
			Context: m.ContextLength, State: string(m.State), Spilled: m.Spilled, RAMWarning: m.RAMWarning}
		if t, ok := data.TunedForParallel(key, m.Name, m.Digest, parallel); ok {
			j.Tuned, j.TunedParallel = t.Context, t.Parallel
		}
		if len(m.TunedBeside) > 0 && m.TunedContext != nil {
			j.Tuned = *m.TunedContext // the joint tune of what is loaded now
			if t, ok := data.TunedSet(key, append([]string{m.Name}, m.TunedBeside...)); ok {
				j.TunedParallel = t.Parallel
			}
		}
		out.Models = append(out.Models, j)
	}
	for _, t := range data.Tuned {
		if t.Host == key {
			out.Tuned = append(out.Tuned, t)
		}
	}
	if err := writeIndentedJSON(w, out); err != nil {
		return err
	}
	if !snap.Reachable {
		return exitError(1)
	}
	return nil
}

// asked reports whether a client config the daemon knows asks for model.
func asked(st *hub.State, model string) bool {
	for _, c := range st.Clients {
		for _, a := range c.Asks {
			if ollama.SameModel(a.Model, model) {
				return true
			}
		}
	}
	return false
}

// writeStatus prints snap; st, the running daemon's state (nil without
// one), says which clients still ask a spilled model for too much.
func (e *env) writeStatus(w io.Writer, u *url.URL, snap watch.Snapshot, data *state.Data, parallel int, st *hub.State) {
	hostKey := ollamahost.Key(u)
	// What the server says goes to the terminal escaped.
	snap.Version = termtext.Clean(snap.Version)
	snap.Models = slices.Clone(snap.Models)
	for i, m := range snap.Models {
		m.Name, m.Processor, m.RAMWarning = termtext.Clean(m.Name), termtext.Clean(m.Processor), termtext.Clean(m.RAMWarning)
		snap.Models[i] = m
	}
	version := snap.Version
	if version == "" {
		version = "(version unknown)" // "Ollama unknown at …" read as an unknown server
	}
	gpu := map[ollama.GPUPresence]string{ollama.GPUPresent: "GPU present", ollama.GPUAbsent: "no GPU (CPU only)", ollama.GPUUnknown: "GPU unknown"}[snap.GPU]
	fmt.Fprintf(w, "Ollama %s at %s, %s\n", version, snap.Host, gpu)
	if len(snap.Models) == 0 {
		fmt.Fprintln(w, "No model loaded.")
	} else {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
		fmt.Fprintln(tw, "NAME\tSIZE\tPROCESSOR\tCONTEXT\tSTATE\tTUNED")
		for _, m := range snap.Models {
			ctx, tuned, state := "?", "-", string(m.State)
			if m.ContextLength > 0 {
				ctx = fmt.Sprint(m.ContextLength)
			}
			if t, ok := data.TunedForParallel(hostKey, m.Name, m.Digest, parallel); ok {
				tuned = fmt.Sprint(t.Context)
				m.TunedContext = &t.Context
			}
			if len(m.TunedBeside) > 0 && m.TunedContext != nil {
				// The joint tune of what is loaded now applies (the
				// watcher chose it), whether or not one alone exists.
				tuned = fmt.Sprintf("%d beside %s", *m.TunedContext, strings.Join(m.TunedBeside, ", "))
			}
			if m.Spilled {
				state += ", spilled"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", m.Name, format.HumanBytes(m.Size), m.Processor, ctx, state, tuned)
		}
		tw.Flush()
	}
	var hints []string
	for _, m := range snap.Models {
		switch {
		case m.RAMWarning != "":
			hints = append(hints, e.reprog(m.RAMWarning))
		case m.Spilled && m.TunedContext != nil && st != nil && !asked(st, m.Name):
			// No client ctxfit knows names the model: nothing was fixed,
			// and whatever loaded it (a /v1 client, Open WebUI, a script)
			// asks for the same context again.
			hints = append(hints, fmt.Sprintf("%s spilled at context %d; %d stays on the GPU, but no client config ctxfit knows asks for this model, so whatever loaded it will ask for %d again: %s creates a copy with the tuned context to select there.", m.Name, m.ContextLength, *m.TunedContext, m.ContextLength, e.cmdline(u, "fix", "ollama", m.Name)))
		case m.Spilled && m.TunedContext != nil && st != nil && len(st.TooLarge(m.Name)) == 0:
			// The clients are fixed already; the model still runs at the
			// context it was loaded with until a client asks again.
			hints = append(hints, fmt.Sprintf("%s still runs at context %d, loaded before its clients were fixed; they ask for at most %d now, so its next request reloads it on the GPU (or %s unloads it now).", m.Name, m.ContextLength, *m.TunedContext, "`ollama stop "+m.Name+"`"))
		case m.Spilled && m.TunedContext != nil:
			hints = append(hints, fmt.Sprintf("%s spilled at context %d; %d stays on the GPU: %s writes it into your clients (%s shows which ask for more).", m.Name, m.ContextLength, *m.TunedContext, e.cmdline(u, "fix", "all"), e.cmdline(u, "clients")))
		case m.Spilled:
			hints = append(hints, fmt.Sprintf("%s spilled onto the CPU: %s finds the largest context that stays on the GPU.", m.Name, e.cmdline(u, "tune", m.Name)))
		case m.State == ollama.StateUnknown:
			hints = append(hints, fmt.Sprintf("%s: the server reports sizes that make no sense (size %d, in VRAM %d).", m.Name, m.Size, m.SizeVRAM))
		}
	}
	if len(hints) > 0 {
		fmt.Fprintln(w)
		for _, h := range hints {
			fmt.Fprintln(w, h)
		}
	}
	var tuned []string
	for _, t := range data.Tuned {
		if t.Host != hostKey {
			continue
		}
		beside := ""
		for i, c := range t.Companions {
			beside += map[bool]string{true: " beside ", false: ", "}[i == 0] + fmt.Sprintf("%s at %d", termtext.Clean(c.Model), c.Context)
		}
		line := fmt.Sprintf("  %s: %d%s (step %d, parallel %d, measured %s)", termtext.Clean(t.Model), t.Context, beside, t.Step, t.Parallel, e.local(t.MeasuredAt).Format(time.DateTime))
		if n := tunedCount(data, hostKey, t.Model); n > 1 && !t.Joint() {
			if a, _ := data.TunedForParallel(hostKey, t.Model, "", parallel); a.Parallel == t.Parallel && a.Digest == t.Digest && a.MeasuredAt.Equal(t.MeasuredAt) {
				line += " ← applies: " + appliesWhy(parallel)
			}
		}
		tuned = append(tuned, line)
	}
	if len(tuned) > 0 {
		fmt.Fprintf(w, "\nTuned on this server:\n%s\n", strings.Join(tuned, "\n"))
	}
}

// tunedCount returns how many results of model tuned alone are stored for host.
func tunedCount(d *state.Data, host, model string) int {
	n := 0
	for _, t := range d.Tuned {
		if t.Host == host && ollama.SameModel(t.Model, model) && !t.Joint() {
			n++
		}
	}
	return n
}

// appliesWhy says why one of several tuned values is the one fix writes.
func appliesWhy(parallel int) string {
	if parallel > 0 {
		return fmt.Sprintf("the server runs %d parallel slot%s (OLLAMA_NUM_PARALLEL), and fix writes this one", parallel, plural(parallel))
	}
	return "the latest; the server's parallel slots are unknown (remote), and fix writes this one"
}
