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

	"github.com/ctxfit/ctxfit/hub"
	"github.com/ctxfit/ctxfit/internal/logfile"
	"github.com/ctxfit/ctxfit/internal/ollamahost"
	"github.com/ctxfit/ctxfit/internal/termtext"
	"github.com/ctxfit/ctxfit/ollama"
	"github.com/ctxfit/ctxfit/state"
	"github.com/ctxfit/ctxfit/watch"
)

func runStatus(ctx context.Context, e *env, args []string) error {
	fs := e.flags("status")
	host := fs.String("host", "", "Ollama server `URL` (default $OLLAMA_HOST, else "+ollamahost.Default+")")
	asJSON := fs.Bool("json", false, "print one JSON object")
	setGPU := fs.String("set-gpu", "", "tell ctxfit whether this host has a GPU: present, absent, or auto to infer it again")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: ctxfit status [--host URL] [--json] [--set-gpu present|absent|auto]\n\nShows the Ollama server and each loaded model: size, CPU/GPU split, context length,\nstate, and the context that stays on the GPU when a tune found one.")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if hosts := e.rememberedHosts(); *host == "" && *setGPU == "" && len(hosts) > 1 {
		return e.statusAll(ctx, hosts, *asJSON)
	}
	u := e.host(*host)
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
	data, _ := store.Load()
	settings := state.Settings{}
	if data != nil {
		settings = data.Settings
	}
	if c, h := e.daemon(ctx, store, u, "status"); c != nil {
		if st, err := c.State(ctx); err == nil && st.Snapshot.Reachable {
			snap, tunes, settings, daemonPID = st.Snapshot, st.Tunes, st.Settings, h.PID
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
		return writeStatusJSON(e.stdout, snap, uj, settings, tunes)
	}
	if !snap.Reachable {
		fmt.Fprintln(e.stderr, termtext.Clean(snap.Error))
		return exitError(1)
	}
	writeStatus(e.stdout, snap, data, ollamahost.Key(u), e.local)
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
	fmt.Fprintf(e.stdout, "\nSettings: auto-fix %s, notifications %s (`ctxfit settings`).\n", onOff(settings.AutoFix), onOff(!settings.NotificationsOff))
	if daemonPID != 0 {
		fmt.Fprintf(e.stdout, "ctxfit is running for this server (pid %d).\n", daemonPID)
	} else {
		fmt.Fprintln(e.stdout, "ctxfit is not running for this server: `ctxfit run` watches it.")
	}
	if p, err := logfile.DefaultPath(e.getenv); err == nil {
		fmt.Fprintf(e.stdout, "Log: %s\n", p)
	}
	return nil
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

// statusJSON is the shape of `ctxfit status --json` for a reachable server.
type statusJSON struct {
	Host      string            `json:"host"`
	Reachable bool              `json:"reachable"`
	Version   string            `json:"version"`
	GPU       string            `json:"gpu"`
	Models    []watch.Model     `json:"models"`
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

// unreachableJSON is the shape of `ctxfit status --json` when no server answers.
type unreachableJSON struct {
	Host      string `json:"host"`
	Reachable bool   `json:"reachable"`
	Error     string `json:"error"`
}

func writeStatusJSON(w io.Writer, snap watch.Snapshot, uj *unifiedJSON, settings state.Settings, tunes []hub.Tune) error {
	if !snap.Reachable {
		if err := writeIndentedJSON(w, unreachableJSON{snap.Host, false, snap.Error}); err != nil {
			return err
		}
		return exitError(1)
	}
	models := snap.Models
	if models == nil {
		models = []watch.Model{}
	}
	if tunes == nil {
		tunes = []hub.Tune{}
	}
	return writeIndentedJSON(w, statusJSON{snap.Host, true, snap.Version, string(snap.GPU), models, uj,
		settingsBriefJSON{settings.AutoFix, !settings.NotificationsOff}, tunes})
}

func writeStatus(w io.Writer, snap watch.Snapshot, data *state.Data, hostKey string, local func(time.Time) time.Time) {
	// What the server says goes to the terminal escaped.
	snap.Version = termtext.Clean(snap.Version)
	snap.Models = slices.Clone(snap.Models)
	for i, m := range snap.Models {
		m.Name, m.Processor, m.RAMWarning = termtext.Clean(m.Name), termtext.Clean(m.Processor), termtext.Clean(m.RAMWarning)
		snap.Models[i] = m
	}
	version := snap.Version
	if version == "" {
		version = "unknown"
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
			if m.TunedContext != nil {
				tuned = fmt.Sprint(*m.TunedContext)
			}
			if len(m.TunedBeside) > 0 {
				tuned += " beside " + strings.Join(m.TunedBeside, ", ")
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
			hints = append(hints, m.RAMWarning)
		case m.Spilled && m.TunedContext != nil:
			hints = append(hints, fmt.Sprintf("%s spilled at context %d; %d stays on the GPU: `ctxfit fix all` writes it into your clients (`ctxfit clients` shows which ask for more).", m.Name, m.ContextLength, *m.TunedContext))
		case m.Spilled:
			hints = append(hints, fmt.Sprintf("%s spilled onto the CPU: `ctxfit tune %s` finds the largest context that stays on the GPU.", m.Name, m.Name))
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
	if data != nil {
		var tuned []string
		for _, t := range data.Tuned {
			if t.Host == hostKey {
				beside := ""
				for i, c := range t.Companions {
					beside += map[bool]string{true: " beside ", false: ", "}[i == 0] + fmt.Sprintf("%s at %d", termtext.Clean(c.Model), c.Context)
				}
				tuned = append(tuned, fmt.Sprintf("  %s: %d%s (step %d, parallel %d, measured %s)", termtext.Clean(t.Model), t.Context, beside, t.Step, t.Parallel, local(t.MeasuredAt).Format(time.DateTime)))
			}
		}
		if len(tuned) > 0 {
			fmt.Fprintf(w, "\nTuned on this server:\n%s\n", strings.Join(tuned, "\n"))
		}
	}
}
