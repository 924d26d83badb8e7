// Package daemon is ctxfit running: for one Ollama server, the watcher of
// /api/ps, the keeper of client configs, the hub that owns every event, the
// tunes of every front-end, and the control API (package localapi) that the
// CLI talks to. The tray (package tray) is a view of a Daemon; `ctxfit run
// --headless` runs one without it.
//
// What belongs to one server lives in one Daemon, so that a process may
// later watch several servers with one Daemon each.
package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/ollama/ollama/api"
	"github.com/ollama/ollama/format"

	"github.com/ctxfit/ctxfit/clients"
	"github.com/ctxfit/ctxfit/hub"
	"github.com/ctxfit/ctxfit/internal/autostart"
	"github.com/ctxfit/ctxfit/internal/hint"
	"github.com/ctxfit/ctxfit/internal/logfile"
	"github.com/ctxfit/ctxfit/internal/ollamahost"
	"github.com/ctxfit/ctxfit/localapi"
	"github.com/ctxfit/ctxfit/metrics"
	"github.com/ctxfit/ctxfit/ollama"
	"github.com/ctxfit/ctxfit/state"
	"github.com/ctxfit/ctxfit/tune"
	"github.com/ctxfit/ctxfit/watch"
)

// Config says what a Daemon watches and where it keeps things.
type Config struct {
	Host   *url.URL
	Client *api.Client // talks to Host
	Store  *state.Store
	Logger *slog.Logger
	// Getenv reads the environment (client config locations,
	// OLLAMA_NUM_PARALLEL, the log directory).
	Getenv func(string) string
	// Socket is the control API's socket; "" serves no API.
	Socket string
	// Watch adjusts the watcher (tests shorten its intervals).
	Watch watch.Options
	// Fixer, when set, writes the client configs (the CLI's, which creates
	// derived models for /v1 clients); nil: a Fixer over Getenv and the
	// store's directory.
	Fixer *clients.Fixer
	// Target, when set, builds what the client configs should ask for from
	// the state (the CLI's, with the values of joint tunes); nil:
	// TunedTarget.
	Target func(*state.Data) clients.Target
	// Metrics, when set, is fed every update of the hub, every poll's
	// duration and every config fix.
	Metrics *metrics.Collector
	// GPUBudget returns the GPU's share of unified memory when Host is an
	// Apple Silicon Mac, else 0; recorded with each tune. nil: 0.
	GPUBudget func(ctx context.Context) int64
	// GPUShare describes the GPU's share of unified memory when Host is
	// an Apple Silicon Mac (hub.State.GPUShare), else ""; asked at start
	// and whenever the server answers again, since a restart of Ollama is
	// when a new iogpu.wired_limit_mb takes effect, and every
	// GPULimitInterval on a Mac. nil: never.
	GPUShare func(ctx context.Context) string
	// GPULimitInterval is how often the GPU's share is read again on an
	// Apple Silicon Mac (a restart of Ollama is not always seen: one that
	// takes less than a poll); 0: every 30 s.
	GPULimitInterval time.Duration
	// RAM returns the memory this machine can give a model without
	// swapping, for a tune of a server on this machine (its first load
	// must not swap it). nil: MemAvailable, else half the RAM.
	RAM func() int64
	// Headless reports whether no tray shows this daemon (`ctxfit run
	// --headless`): its messages then name commands (`ctxfit fix all`)
	// instead of tray items (Fix now). RunWithTray without a tray host
	// switches to headless too.
	Headless bool
	// HintEnv lists the environment assignments ("NAME=value") under which
	// this daemon reads the client configs, when they differ from the
	// user's (`ctxfit demo` points Continue at a folder of its own):
	// every command its messages name carries them, and so do the hints
	// of the commands that talk to it (localapi.Hello.Env).
	HintEnv []string
	// HintProg is the name ctxfit was started as, for the commands its
	// messages name; "" is "ctxfit". The demo sets it, so that what it
	// prints works as printed.
	HintProg string
}

// Daemon is ctxfit running for one Ollama server.
type Daemon struct {
	cfg     Config
	key     string
	hub     *hub.Hub
	watcher *watch.Watcher
	fixer   *clients.Fixer
	keeper  *clients.Keeper
	logger  *slog.Logger

	mu     sync.Mutex
	tuned  string                     // the tuned values last seen, to notice a new tune
	leases map[string]state.TuneLease // tunes known by their lease, by ModelKey
	probed map[string]probed          // tunes known by their loads (syncProbes), by ModelKey
	tunes  map[string]time.Time       // registered tunes by ModelKey: when each began
	fixes  []fixed                    // the keeper's recent fixes, for EndTune's answer
	// beside holds, by ModelKey, the models that keep unloading a model
	// (eviction thrash): its next tune from the tray leaves room for them.
	beside map[string][]tune.Companion
	// staleTold holds, by ModelKey, the GPU budget for which a tune
	// measured under another was last told out of date (see checkStale).
	staleTold map[string]int64
}

// followGPULimit reads the GPU's share of unified memory every
// GPULimitInterval while the host is an Apple Silicon Mac, and says so
// when a tune is out of date (checkStale). It ends at once elsewhere.
func (d *Daemon) followGPULimit(ctx context.Context) {
	every := cmp.Or(d.cfg.GPULimitInterval, 30*time.Second)
	if d.cfg.GPUBudget(ctx) <= 0 {
		return // not a Mac
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d.readGPULimit(ctx)
	}
}

// readGPULimit reads the GPU's share of unified memory again: the hub's
// GPUShare, and the tunes it makes out of date (checkStale).
func (d *Daemon) readGPULimit(ctx context.Context) {
	if d.cfg.GPUShare != nil {
		d.hub.SetGPUShare(d.cfg.GPUShare(ctx))
	}
	if d.cfg.GPUBudget != nil {
		d.checkStale(ctx)
	}
}

// staleSlack is how far apart two GPU budgets may be and still count as
// the same (Ollama's own reading of the limit rounds).
const staleSlack = 64 << 20

// checkStale publishes, once per model and budget, an EventTuneStale for
// every tune on this server measured under another GPU budget than the
// one cfg.GPUBudget reports now: on an Apple Silicon Mac whose GPU limit
// changed (`ctxfit gpu-limit set`), a re-tune finds the new largest
// context.
func (d *Daemon) checkStale(ctx context.Context) {
	budget := d.cfg.GPUBudget(ctx)
	data, err := d.cfg.Store.Load()
	if budget <= 0 || err != nil {
		return
	}
	for _, t := range data.Tuned {
		if t.Host != d.key || t.GPUBudget <= 0 || len(t.Companions) > 0 || max(t.GPUBudget-budget, budget-t.GPUBudget) <= staleSlack {
			continue
		}
		k := ollama.ModelKey(t.Model)
		d.mu.Lock()
		told := d.staleTold[k] == budget
		if d.staleTold == nil {
			d.staleTold = map[string]int64{}
		}
		d.staleTold[k] = budget
		d.mu.Unlock()
		if told {
			continue
		}
		d.hub.Publish(hub.Event{Event: watch.Event{Kind: hub.EventTuneStale, Model: t.Model, ContextLength: t.Context,
			Message: fmt.Sprintf("%s was tuned to %d with %s for the GPU, and the GPU may use %s now: run %s to find its largest context under the new limit (restart Ollama first if it still runs with the old one)",
				t.Model, t.Context, format.HumanBytes2(uint64(t.GPUBudget)), format.HumanBytes2(uint64(budget)), d.hub.Hints().Cmd("tune", t.Model))}})
	}
}

// hints returns how this daemon's messages name commands: with --host
// for its server, its HintEnv and HintProg, and tray items unless
// headless.
func (d *Daemon) hints(headless bool) hint.Hints {
	h := hint.For(d.cfg.Host, headless)
	if len(d.cfg.HintEnv) > 0 || d.cfg.HintProg != "" {
		h.Prefix = hint.Prefix(d.cfg.HintEnv, d.cfg.HintProg)
	}
	return h
}

// fixed is one fix the keeper made.
type fixed struct {
	at  time.Time
	rep clients.Report
}

// maxFixes bounds the fixes remembered for EndTune's answer.
const maxFixes = 64

// New returns the daemon of cfg.Host; Run starts it.
func New(cfg Config) *Daemon {
	if cfg.RAM == nil {
		cfg.RAM = func() int64 {
			if r := ollama.AvailableRAM(); r > 0 {
				return r
			}
			return ollama.TotalRAM() / 2
		}
	}
	if cfg.Getenv == nil {
		cfg.Getenv = os.Getenv
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	d := &Daemon{
		cfg:    cfg,
		key:    ollamahost.Key(cfg.Host),
		hub:    hub.New(cfg.Host.String(), nil),
		logger: cfg.Logger,
		leases: map[string]state.TuneLease{},
		probed: map[string]probed{},
		tunes:  map[string]time.Time{},
		beside: map[string][]tune.Companion{},
	}
	// Every command a message names repeats --host when the CLI's hints
	// would (hint.HostFlag), so that it reaches this server as given.
	d.hub.SetHints(d.hints(cfg.Headless))
	wo := cfg.Watch
	wo.OnUpdate = d.watched
	wo.Hints = d.hints(cfg.Headless)
	if m := cfg.Metrics; m != nil && wo.ObservePoll == nil {
		host := cfg.Host.String()
		wo.ObservePoll = func(dur time.Duration) { m.ObservePoll(host, dur) }
	}
	d.watcher = watch.New(cfg.Client, cfg.Host, cfg.Store, wo)
	d.fixer = cfg.Fixer
	if d.fixer == nil {
		d.fixer = &clients.Fixer{Env: clients.NewEnv(cfg.Getenv), StateDir: cfg.Store.Dir()}
	}
	d.keeper = &clients.Keeper{
		Fixer:   d.fixer,
		Target:  d.target,
		AutoFix: func() bool { return d.hub.State().Settings.AutoFix },
		Notify:  d.noticed,
		Checked: d.checked,
	}
	if data, err := cfg.Store.Load(); err == nil {
		d.hub.SetSettings(data.Settings)
		d.tuned = tunedKey(data, d.key)
	}
	return d
}

// Run watches Ollama and the client configs, logs every event and serves
// the control API until ctx ends.
func (d *Daemon) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	updates, stop := d.hub.Subscribe()
	defer stop()
	d.refreshClients()
	var wg sync.WaitGroup
	run := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	run(func() {
		// The watcher's events go through an EventLog, which writes no
		// repeat and at most a few lines per model a minute; the hub's own
		// (tunes, configs, settings) each as it comes.
		events := &watch.EventLog{Logger: d.logger}
		for u := range updates {
			for _, e := range u.Events {
				if e.Kind == watch.EventReachable {
					// Ollama reads the GPU limit when it starts: a
					// server that answers again may have a new one.
					go d.readGPULimit(ctx)
				}
				if hub.Own(e.Kind) {
					hub.LogEvent(d.logger, e)
				} else {
					events.Log(e.Event)
				}
			}
		}
	})
	run(func() {
		if err := d.keeper.Run(ctx); err != nil && ctx.Err() == nil {
			d.logger.Warn("not watching client configs; auto-fix works only after a tune or a click", "err", err)
		}
	})
	run(func() { d.followState(ctx) })
	if d.cfg.GPUBudget != nil {
		run(func() { d.followGPULimit(ctx) })
	}
	stopMetrics := func() {}
	if m := d.cfg.Metrics; m != nil {
		var metered <-chan hub.Update
		metered, stopMetrics = d.hub.Subscribe()
		run(func() { observe(m, metered) })
	}
	if d.cfg.Socket != "" {
		run(func() {
			err := localapi.Serve(ctx, d.cfg.Socket, localapi.Handler(d, d.cfg.Host.String(), d.cfg.HintEnv))
			if err != nil && ctx.Err() == nil {
				d.logger.Warn("no control API: `ctxfit` commands in a terminal work without this daemon (tunes leave a mark in the state instead)", "err", err)
			}
		})
	}
	d.watcher.Run(ctx)
	cancel()
	stop()
	stopMetrics()
	wg.Wait()
	return nil
}

// observe feeds the metrics collector from the hub: the snapshot, the
// watcher's events the hub kept (a tune's probe loads count as no load or
// spill), and the config fixes.
func observe(m *metrics.Collector, updates <-chan hub.Update) {
	for u := range updates {
		events := make([]watch.Event, 0, len(u.Events))
		for _, e := range u.Events {
			events = append(events, e.Event)
			if e.Kind == hub.EventConfigFixed {
				m.ConfigFixed(strings.ToLower(e.Client))
			}
		}
		m.Observe(watch.Update{Snapshot: u.Snapshot, Events: events})
	}
}

// watched is the watcher's one consumer: it runs for every poll, in order.
func (d *Daemon) watched(u watch.Update) {
	var began, ended []state.TuneLease
	if u.Data != nil {
		d.hub.SetSettings(u.Data.Settings)
		began, ended = d.syncLeases(u.Data)
	}
	for _, l := range began {
		by := "another ctxfit"
		if l.By != "" {
			by = l.By
		}
		d.hub.BeginTune(hub.Tune{Model: l.Model, By: by + ", seen by its lease", Started: l.Started, Lease: true})
	}
	probesBegan, probesEnded := d.syncProbes(u.Snapshot)
	for _, m := range probesBegan {
		d.hub.BeginTune(hub.Tune{Model: m, By: probedBy})
	}
	for _, e := range u.Events {
		if e.Kind != watch.EventEvictionThrash {
			continue
		}
		if _, tuning := d.hub.State().Tuning(e.Model); tuning {
			continue
		}
		var with []tune.Companion
		for _, c := range e.Companions {
			if comp, err := tune.ParseCompanion(c); err == nil {
				with = append(with, comp)
			}
		}
		d.mu.Lock()
		d.beside[ollama.ModelKey(e.Model)] = with
		d.mu.Unlock()
	}
	// Events of a model whose lease ended since the last poll are still
	// the tuner's: judge it by this snapshot, after the hub saw it.
	d.hub.Watched(u)
	for _, l := range ended {
		d.watcher.Forget(l.Model)
		d.hub.EndTune(l.Model, leaseResult(u.Data, d.key, l))
	}
	for _, m := range probesEnded {
		d.watcher.Forget(m)
		d.hub.EndTune(m, &hub.Event{Event: watch.Event{Kind: hub.EventTuneEnded, Model: m,
			Message: fmt.Sprintf("the tune of %s by ctxfit elsewhere is over (its loads stopped); its result is stored where it ran", m)}})
	}
	if u.Data != nil {
		if k := tunedKey(u.Data, d.key); d.setTuned(k) || len(ended) > 0 {
			// A tune stored its result (a CLI, with or without the API):
			// apply it now rather than at the next change of a config.
			go d.applyTune(context.Background())
		}
	}
}

// leaseResult is the event that ends a tune known by its lease: tuned when
// it stored a result after the lease began, tune_failed otherwise.
func leaseResult(data *state.Data, host string, l state.TuneLease) *hub.Event {
	e := &hub.Event{Event: watch.Event{Kind: hub.EventTuneFailed, Model: l.Model,
		Message: fmt.Sprintf("the tune of %s by %s ended without a result (stopped, or failed: its terminal says why)", l.Model, l.By)}}
	if data == nil {
		return e
	}
	if t, ok := data.TunedFor(host, l.Model, ""); ok && !t.MeasuredAt.Before(l.Started) {
		e.Kind, e.ContextLength = hub.EventTuned, t.Context
		e.Message = fmt.Sprintf("%s: num_ctx %d stays 100%% on the GPU (tuned by %s); %d loads.", l.Model, t.Context, l.By, t.Loads)
	}
	return e
}

func (d *Daemon) setTuned(k string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if k == d.tuned {
		return false
	}
	d.tuned = k
	return true
}

// syncLeases returns the leases that appeared and those that ended
// (removed or expired) since the last poll.
func (d *Daemon) syncLeases(data *state.Data) (began, ended []state.TuneLease) {
	live := map[string]state.TuneLease{}
	for _, l := range data.LiveLeases(d.key, time.Now()) {
		live[ollama.ModelKey(l.Model)] = l
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, l := range live {
		if _, known := d.leases[k]; !known {
			if _, registered := d.tunes[k]; registered {
				continue // its tuner talks to us as well
			}
			d.leases[k] = l
			began = append(began, l)
		}
	}
	for k, l := range d.leases {
		if _, ok := live[k]; !ok {
			delete(d.leases, k)
			ended = append(ended, l)
		}
	}
	return began, ended
}

// tunedKey sums up the tuned values of host, to notice a new tune.
func tunedKey(data *state.Data, host string) string {
	var b strings.Builder
	for _, t := range data.Tuned {
		if t.Host == host {
			fmt.Fprintf(&b, "%s=%d@%s;", t.Model, t.Context, t.MeasuredAt.Format(time.RFC3339Nano))
		}
	}
	return b.String()
}

// followState makes a change of state.json (a tune stored or a lease taken
// or dropped by another process) reach the hub at once instead of at the
// next poll.
func (d *Daemon) followState(ctx context.Context) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return
	}
	defer w.Close()
	dir := d.cfg.Store.Dir()
	os.MkdirAll(dir, 0o700)
	if err := w.Add(dir); err != nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-w.Events:
			if !ok {
				return
			}
			if filepath.Base(e.Name) == "state.json" && !e.Has(fsnotify.Chmod) {
				d.watcher.Kick()
			}
		case _, ok := <-w.Errors:
			if !ok {
				return
			}
		}
	}
}

// refreshClients reads what every client asks for, once at start.
func (d *Daemon) refreshClients() {
	for _, c := range clients.All() {
		d.refreshClient(c, false)
	}
}

// checked is the keeper's report after each look at c's config.
func (d *Daemon) checked(c clients.Client, held bool) {
	d.refreshClient(c, held)
}

func (d *Daemon) refreshClient(c clients.Client, held bool) {
	t, _ := d.target()
	files, asks, err := d.fixer.Asks(c, t)
	hc := hub.Client{Name: c.Name(), Path: files.Config, Installed: true, Asks: asks, Held: held}
	switch {
	case errors.Is(err, clients.ErrNotInstalled):
		hc.Installed, hc.Asks = false, nil
	case err != nil:
		hc.Error = err.Error()
	}
	d.hub.SetClient(hc)
}

// noticed turns what the keeper did or found into events.
func (d *Daemon) noticed(n clients.Notice) {
	hs := d.hub.Hints()
	e := hub.Event{Event: watch.Event{Kind: hub.EventConfigWarning, Message: n.Text(hs)}, Client: n.Client}
	switch n.Kind {
	case clients.NoticeFixed:
		e.Kind = hub.EventConfigFixed
		d.mu.Lock()
		d.fixes = append(d.fixes, fixed{time.Now(), *n.Report})
		if len(d.fixes) > maxFixes {
			d.fixes = d.fixes[len(d.fixes)-maxFixes:]
		}
		d.mu.Unlock()
	case clients.NoticeTooLarge:
		e.Message = tooLargeText(n.Asks) + ". " + hs.FixWrites(n.Client)
	}
	if len(n.Asks) > 0 {
		e.Model = n.Asks[0].Model
	} else if n.Report != nil && len(n.Report.Changes) > 0 {
		// The tray names the client and the model, not the file.
		e.Model, e.ContextLength = n.Report.Changes[0].Model, n.Report.Changes[0].NewContext
	}
	d.hub.Publish(e)
}

// tooLargeText says what entries ask and what fits: "Continue asks
// llama3.1:8b-instruct-fp16 131072; 25600 fits".
func tooLargeText(asks []clients.Ask) string {
	parts := make([]string, len(asks))
	for i, a := range asks {
		parts[i] = fmt.Sprintf("%s asks %s for %d tokens; %d fits", a.Client, a.Model, a.Context, a.Tuned)
	}
	return strings.Join(parts, "; ")
}

// target is what the client configs should ask for: the latest tuned value
// of each model on the watched server.
func (d *Daemon) target() (clients.Target, error) {
	data, err := d.cfg.Store.Load()
	if err != nil {
		return clients.Target{Host: d.cfg.Host}, err
	}
	if d.cfg.Target != nil {
		return d.cfg.Target(data), nil
	}
	return TunedTarget(data, d.cfg.Host), nil
}

// TunedTarget returns what a fix aims for: the latest tuned context of each
// model on host.
func TunedTarget(data *state.Data, host *url.URL) clients.Target {
	key := ollamahost.Key(host)
	var models []string
	seen := map[string]bool{}
	for _, t := range data.Tuned {
		if t.Host == key && !seen[ollama.ModelKey(t.Model)] {
			seen[ollama.ModelKey(t.Model)] = true
			models = append(models, t.Model)
		}
	}
	return clients.Target{Host: host, Models: models, Tuned: func(model string) (int, bool) {
		t, ok := data.TunedFor(key, model, "")
		return t.Context, ok && t.Context > 0
	}}
}

// Subscribe follows the hub: one update per change.
func (d *Daemon) Subscribe() (<-chan hub.Update, func()) { return d.hub.Subscribe() }

// State returns the hub's current state.
func (d *Daemon) State() hub.State { return d.hub.State() }

// BeginTune registers a tune that a front-end runs: until EndTune the
// watcher's events for model are the tuner's.
func (d *Daemon) BeginTune(model, by string) error {
	k := ollama.ModelKey(model)
	d.mu.Lock()
	if _, ok := d.tunes[k]; ok {
		d.mu.Unlock()
		return &hub.ErrTuning{Tune: hub.Tune{Model: model, By: "another front-end"}}
	}
	_, leased := d.leases[k]
	_, probing := d.probed[k]
	if leased || probing {
		// The same tuner left a lease before reaching us, or loads
		// marked as a tune's are still listed (another machine's tune,
		// or what one left): the hub knows a tune already, and this
		// one now ends through the API.
		delete(d.leases, k)
		delete(d.probed, k)
	}
	d.tunes[k] = time.Now()
	d.mu.Unlock()
	if leased || probing {
		d.hub.TuneProgress(model, "registered by "+by)
		return nil
	}
	if err := d.hub.BeginTune(hub.Tune{Model: model, By: by}); err != nil {
		d.mu.Lock()
		delete(d.tunes, k)
		d.mu.Unlock()
		return err
	}
	return nil
}

// TuneProgress records a tuner's latest line.
func (d *Daemon) TuneProgress(model, line string) { d.hub.TuneProgress(model, line) }

// EndTune ends a registered tune: it polls the watcher once more (the
// tuner's last load is still its own), judges the model afresh, and
// applies a successful result to every client at once (a result stored
// before the end, as the CLI does before its benchmark, was applied as
// soon as it was stored). It answers with every fix made since the tune
// began.
func (d *Daemon) EndTune(ctx context.Context, end localapi.TuneEnd) (localapi.TuneEnded, error) {
	k := ollama.ModelKey(end.Model)
	d.mu.Lock()
	began, ok := d.tunes[k]
	d.mu.Unlock()
	if !ok {
		return localapi.TuneEnded{}, fmt.Errorf("no tune of %s is registered", end.Model)
	}
	start := time.Now()
	d.watcher.Forget(end.Model)
	d.watcher.Poll(ctx)
	var result *hub.Event
	if end.Message != "" {
		kind := hub.EventTuned
		if end.Context <= 0 {
			kind = hub.EventTuneFailed
		}
		result = &hub.Event{Event: watch.Event{Kind: kind, Model: end.Model, ContextLength: end.Context, Message: end.Message}}
	}
	d.hub.EndTune(end.Model, result)
	d.mu.Lock()
	delete(d.tunes, k)
	d.mu.Unlock()
	var out localapi.TuneEnded
	if end.Context > 0 {
		d.applyTune(ctx)
		out.AutoFix = d.hub.State().Settings.AutoFix
		out.Tray = !d.cfg.Headless
		out.Fixed, out.TooLarge = []clients.Report{}, []clients.Ask{}
		d.mu.Lock()
		for _, f := range d.fixes {
			if !f.at.Before(began) {
				out.Fixed = append(out.Fixed, f.rep)
			}
		}
		d.mu.Unlock()
		// What is left of this tune's model (or set): entries that ask too
		// much for other models are not this tune's.
		asking := 0
		for _, c := range d.hub.State().Clients {
			for _, a := range c.Asks {
				if !tunedBy(a, end.Model) {
					continue
				}
				asking++
				if a.TooLarge() {
					out.TooLarge = append(out.TooLarge, a)
				}
			}
		}
		out.Asking = &asking
		d.logger.Info("tune applied", "model", end.Model, "fixed", len(out.Fixed), "still_too_large", len(out.TooLarge), "after", time.Since(start).Round(time.Millisecond).String())
	}
	return out, nil
}

// tunedBy reports whether a's tuned value comes from a tune of model: a
// asks for model, or for a model whose value was tuned beside it.
func tunedBy(a clients.Ask, model string) bool {
	return ollama.SameModel(a.Model, model) || slices.ContainsFunc(a.Beside, func(m string) bool { return ollama.SameModel(m, model) })
}

// applyTune brings every client in line with the tuned values: with
// auto-fix on it fixes every config asking for something else (those held
// after an undo aside); with it off the keeper warns about each that asks
// for more than fits.
func (d *Daemon) applyTune(ctx context.Context) {
	if data, err := d.cfg.Store.Load(); err == nil {
		d.setTuned(tunedKey(data, d.key))
	}
	for _, c := range clients.All() {
		d.keeper.CheckClient(ctx, c)
	}
}

// Tune runs a tune inside the daemon (the tray's Tune context), registered
// as any front-end's is.
func (d *Daemon) Tune(ctx context.Context, model string, progress func(string)) error {
	if err := d.BeginTune(model, "the tray"); err != nil {
		return err
	}
	end := localapi.TuneEnd{Model: model}
	defer func() { d.EndTune(context.WithoutCancel(ctx), end) }()
	parallel, err := tune.ParallelSlots(d.cfg.Getenv, false, 0, ollamahost.IsLocal(d.cfg.Host))
	if err != nil {
		end.Message = fmt.Sprintf("tuning %s failed: %v", model, err)
		return err
	}
	d.mu.Lock()
	with := d.beside[ollama.ModelKey(model)]
	d.mu.Unlock()
	// What is known of the server's GPU, as `ctxfit tune` reads it: the
	// user's answer, or a model seen in VRAM; not this machine's hardware,
	// a guess that a known-absent GPU would turn into a refusal.
	gpu := ollama.GPUUnknown
	var hostGPU *state.GPUBound
	if data, err := d.cfg.Store.Load(); err == nil {
		gpu = data.GPU(d.key, "")
		hostGPU = data.GPUBound(d.key)
	}
	opts := tune.Options{
		Model:      model,
		Hints:      d.hub.Hints(),
		Parallel:   parallel,
		GPU:        gpu,
		HostGPU:    hostGPU,
		Companions: with,
		Timeout:    ollama.Progress{NoFlags: true}, // the tray has no timeout flags
		Progress: func(p tune.Probe) {
			line := tune.ProbeLine(p)
			d.hub.TuneProgress(model, line)
			if progress != nil {
				progress(line)
			}
		},
	}
	if ollamahost.IsLocal(d.cfg.Host) {
		opts.RAM = d.cfg.RAM()
	}
	// tune.Tune puts the model back as it was before it returns, so the
	// deferred EndTune comes after the restoring reload: the daemon still
	// takes that load for the tuner's and warns about nothing.
	res, err := tune.Tune(ctx, d.cfg.Client, opts)
	if res != nil && res.Restored != "" {
		d.logger.Info("tune left the model as it was", "model", model, "restored", res.Restored)
	}
	if err != nil {
		end.Message = fmt.Sprintf("tuning %s failed: %v", model, err)
		if errors.Is(err, context.Canceled) {
			end.Message = fmt.Sprintf("tuning %s cancelled", model)
		}
		if b := tune.Bracket(res); b != "" {
			end.Message += "; " + b
		}
		return err
	}
	var budget int64
	if d.cfg.GPUBudget != nil {
		budget = d.cfg.GPUBudget(ctx)
	}
	if err := tune.Record(d.cfg.Store, d.key, res, budget); err != nil {
		end.Message = err.Error()
		return err
	}
	end.Context, end.Message = res.Context, tune.Summary(res)
	return nil
}

// Fix writes the tuned values into client's config now (the tray's Fix
// now), whatever the auto-fix setting.
func (d *Daemon) Fix(ctx context.Context, client string) error {
	c, err := clients.Lookup(client)
	if err != nil {
		return err
	}
	_, err = d.keeper.Fix(ctx, c)
	return err
}

// Set changes a setting now and persists it.
func (d *Daemon) Set(ctx context.Context, s localapi.Setting) (state.Settings, error) {
	var what string
	err := d.cfg.Store.Update(func(data *state.Data) error {
		switch s.Name {
		case "auto-fix":
			data.Settings.AutoFix = s.On
			what = "auto-fix (keep client configs fixed)"
		case "notifications":
			data.Settings.NotificationsOff = !s.On
			what = "desktop notifications"
		default:
			return fmt.Errorf("unknown setting %q; ctxfit has auto-fix and notifications", s.Name)
		}
		return nil
	})
	if err != nil {
		return state.Settings{}, err
	}
	data, err := d.cfg.Store.Load()
	if err != nil {
		return state.Settings{}, err
	}
	d.hub.SetSettings(data.Settings)
	d.hub.Publish(hub.Event{Event: watch.Event{Kind: hub.EventSettingChanged, Message: fmt.Sprintf("%s is now %s", what, onOff(s.On))}})
	if s.Name == "auto-fix" && s.On {
		go d.keeper.Check(context.WithoutCancel(ctx))
	}
	return data.Settings, nil
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// SetAutoFix turns auto-fix on or off (the tray's checkbox).
func (d *Daemon) SetAutoFix(on bool) error {
	_, err := d.Set(context.Background(), localapi.Setting{Name: "auto-fix", On: on})
	return err
}

// SetNotifications turns desktop notifications on or off.
func (d *Daemon) SetNotifications(on bool) error {
	_, err := d.Set(context.Background(), localapi.Setting{Name: "notifications", On: on})
	return err
}

// Undo restores client's config as it was before ctxfit's last fix, and
// holds it: auto-fix leaves it alone until the user changes it.
func (d *Daemon) Undo(ctx context.Context, client string) (localapi.Undone, error) {
	c, err := clients.Lookup(client)
	if err != nil {
		return localapi.Undone{}, &localapi.Error{Code: localapi.CodeBadRequest, Message: err.Error()}
	}
	u, err := d.keeper.Undo(ctx, c)
	switch {
	case errors.Is(err, clients.ErrNothingToUndo):
		return localapi.Undone{}, &localapi.Error{Code: localapi.CodeNothingToUndo, Message: err.Error()}
	case err != nil:
		return localapi.Undone{}, err
	}
	msg := fmt.Sprintf("%s: restored %s as it was before ctxfit's fix; auto-fix leaves it alone until you change it", c.Name(), u.Path)
	d.hub.Publish(hub.Event{Event: watch.Event{Kind: hub.EventConfigRestored, Message: msg}, Client: c.Name()})
	return localapi.Undone{Undone: *u, Held: true}, nil
}

// StartAtLogin reports whether the login service is installed and enabled.
func (d *Daemon) StartAtLogin() (bool, error) {
	m, err := autostart.New(autostart.Options{})
	if err != nil {
		return false, err
	}
	st, err := m.Status(context.Background())
	if err != nil {
		return false, err
	}
	return st.Installed && st.Enabled == autostart.Yes, nil
}

// SetStartAtLogin installs or removes the login service for the tray.
func (d *Daemon) SetStartAtLogin(on bool) error {
	m, err := autostart.New(autostart.Options{})
	if err != nil {
		return err
	}
	if on {
		return m.Install(context.Background())
	}
	return m.Uninstall(context.Background())
}

// LogPath returns ctxfit's log file.
func (d *Daemon) LogPath() string {
	p, err := logfile.DefaultPath(d.cfg.Getenv)
	if err != nil {
		return ""
	}
	return p
}

var _ localapi.Backend = (*Daemon)(nil)
