package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/ctxfit/ctxfit/clients"
	"github.com/ctxfit/ctxfit/internal/autostart"
	"github.com/ctxfit/ctxfit/internal/logfile"
	"github.com/ctxfit/ctxfit/internal/ollamahost"
	"github.com/ctxfit/ctxfit/metrics"
	"github.com/ctxfit/ctxfit/ollama"
	"github.com/ctxfit/ctxfit/state"
	"github.com/ctxfit/ctxfit/tray"
	"github.com/ctxfit/ctxfit/tune"
	"github.com/ctxfit/ctxfit/watch"
)

// app is ctxfit running: the watcher of one Ollama server, the keeper of
// client configs, and the actions the tray offers. It implements
// tray.Backend; `ctxfit run --headless` uses it without a tray.
type app struct {
	env     *env
	host    *url.URL
	key     string
	client  *api.Client
	store   *state.Store
	watcher *watch.Watcher
	fixer   *clients.Fixer
	keeper  *clients.Keeper
	logger  *slog.Logger
	events  *watch.EventLog // the log of events, without repeats

	// metrics, when set, is fed every update, poll and fix.
	metrics *metrics.Collector

	mu     sync.Mutex
	tuning map[string]bool // models being tuned, by ModelKey
	// beside holds, by ModelKey, the models that keep unloading a model
	// (eviction thrash): its next tune leaves room for them.
	beside map[string][]tune.Companion
}

var _ tray.Backend = (*app)(nil)

func newApp(e *env, u *url.URL, store *state.Store, logger *slog.Logger, m *metrics.Collector) *app {
	a := &app{
		env:     e,
		host:    u,
		key:     ollamahost.Key(u),
		client:  e.client(u),
		store:   store,
		logger:  logger,
		events:  &watch.EventLog{Logger: logger},
		tuning:  map[string]bool{},
		metrics: m,
		beside:  map[string][]tune.Companion{},
	}
	var opts watch.Options
	if m != nil {
		host := u.String()
		opts.ObservePoll = func(d time.Duration) { m.ObservePoll(host, d) }
	}
	a.watcher = watch.New(a.client, u, store, opts)
	a.fixer = newFixer(e, store.Dir(), u)
	a.keeper = &clients.Keeper{
		Fixer:   a.fixer,
		Target:  a.target,
		AutoFix: func() bool { s, _ := a.Settings(); return s.AutoFix },
		Notify:  a.noticed,
	}
	return a
}

// run watches Ollama and the client configs and logs every event until ctx
// ends.
func (a *app) run(ctx context.Context) error {
	updates, cancel := a.watcher.Subscribe()
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		a.react(ctx, updates)
	}()
	go func() {
		defer wg.Done()
		if err := a.keeper.Run(ctx); err != nil && ctx.Err() == nil {
			a.logger.Warn("not watching client configs; auto-fix works only after a tune or a click", "err", err)
		}
	}()
	a.watcher.Run(ctx)
	cancel()
	wg.Wait()
	return nil
}

// react logs every event and adds what only the clients know: which client
// asks for the context that made a model spill, and which clients disagree
// when a model keeps reloading.
func (a *app) react(ctx context.Context, updates <-chan watch.Update) {
	for u := range updates {
		if a.metrics != nil {
			a.metrics.Observe(u)
		}
		for _, ev := range u.Events {
			a.events.Log(ev)
			switch ev.Kind {
			case watch.EventSpillStarted:
				if msg := a.spillCulprits(ev.Model); msg != "" {
					a.watcher.Publish(watch.Event{Kind: watch.EventConfigWarning, Model: ev.Model, Message: msg})
				}
			case watch.EventEvictionThrash:
				var with []tune.Companion
				for _, c := range ev.Companions {
					if comp, err := tune.ParseCompanion(c); err == nil {
						with = append(with, comp)
					}
				}
				a.mu.Lock()
				a.beside[ollama.ModelKey(ev.Model)] = with
				a.mu.Unlock()
			case watch.EventThrash:
				if msg := a.thrashCulprits(ev.Model); msg != "" {
					a.watcher.Publish(watch.Event{Kind: watch.EventConfigWarning, Model: ev.Model, Contexts: ev.Contexts, Message: msg})
				}
			}
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// spillCulprits names the client entries that ask for more than the tuned
// context of model: "Continue asks llama3.1:8b-instruct-fp16 for 131072
// tokens; 24576 stays on the GPU".
func (a *app) spillCulprits(model string) string {
	t, err := a.target()
	if err != nil {
		return ""
	}
	var parts []string
	for _, ask := range a.fixer.AllAsks(clients.All(), t) {
		if ollama.SameModel(ask.Model, model) && ask.TooLarge() {
			parts = append(parts, ask.String())
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return strings.Join(parts, "; ") + ". `ctxfit fix all`, or Fix in the tray, writes the tuned value."
}

// thrashCulprits names the clients whose configs ask for different
// contexts for model, the cause of reload thrash.
func (a *app) thrashCulprits(model string) string {
	t, err := a.target()
	if err != nil {
		return ""
	}
	byClient := map[string]map[int]bool{}
	for _, ask := range a.fixer.AllAsks(clients.All(), t) {
		if !ollama.SameModel(ask.Model, model) {
			continue
		}
		if byClient[ask.Client] == nil {
			byClient[ask.Client] = map[int]bool{}
		}
		byClient[ask.Client][ask.Context] = true
	}
	if len(byClient) < 2 {
		return ""
	}
	var parts []string
	for c, ctxs := range byClient {
		var ns []string
		for n := range ctxs {
			if n == 0 {
				ns = append(ns, "its default")
			} else {
				ns = append(ns, fmt.Sprint(n))
			}
		}
		sort.Strings(ns)
		parts = append(parts, fmt.Sprintf("%s asks for %s", c, strings.Join(ns, " and ")))
	}
	sort.Strings(parts)
	fix := fmt.Sprintf("run `ctxfit tune %s`, then `ctxfit fix all` gives them all the same context", model)
	if tu, ok := a.tuned(model); ok {
		fix = fmt.Sprintf("`ctxfit fix all` gives them all %d, which stays on the GPU", tu)
	}
	return fmt.Sprintf("%s reloads because clients disagree: %s; %s.", model, strings.Join(parts, ", "), fix)
}

// noticed turns what the keeper did or found into events for the tray and
// the log. The keeper calls it with its lock held; Publish never calls back.
func (a *app) noticed(n clients.Notice) {
	kind, msg := watch.EventConfigWarning, n.String()
	switch n.Kind {
	case clients.NoticeFixed:
		kind = watch.EventConfigFixed
		if a.metrics != nil {
			a.metrics.ConfigFixed(strings.ToLower(n.Client))
		}
	case clients.NoticeTooLarge:
		msg += fmt.Sprintf(". `ctxfit fix %s` (or Fix in the tray, or auto-fix) writes the tuned value", strings.ToLower(n.Client))
	}
	e := watch.Event{Kind: kind, Client: n.Client, Message: msg}
	if len(n.Asks) > 0 {
		e.Model = n.Asks[0].Model
	}
	if n.Kind == clients.NoticeFixed && n.Report != nil && len(n.Report.Changes) > 0 {
		// The tray names the client and the model, not the file.
		e.Model, e.ContextLength = n.Report.Changes[0].Model, n.Report.Changes[0].NewContext
	}
	a.watcher.Publish(e)
}

// target is what the client configs should ask for: the latest tuned value
// of each model on the watched server.
func (a *app) target() (clients.Target, error) {
	d, err := a.store.Load()
	if err != nil {
		return clients.Target{Host: a.host}, err
	}
	return tunedTarget(d, a.host, a.env.serverParallel(a.host)), nil
}

// tuned returns the tuned context of model on the watched server.
func (a *app) tuned(model string) (int, bool) {
	t, err := a.target()
	if err != nil {
		return 0, false
	}
	return t.Tuned(model)
}

// Subscribe implements tray.Backend.
func (a *app) Subscribe() (<-chan watch.Update, func()) { return a.watcher.Subscribe() }

// Snapshot implements tray.Backend.
func (a *app) Snapshot() watch.Snapshot { return a.watcher.Snapshot() }

// Tune finds and stores the largest context at which model stays on the
// GPU, then lets the keeper apply it (when auto-fix is on).
func (a *app) Tune(ctx context.Context, model string, progress func(string)) error {
	k := ollama.ModelKey(model)
	a.mu.Lock()
	if a.tuning[k] {
		a.mu.Unlock()
		return fmt.Errorf("%s is already being tuned", model)
	}
	a.tuning[k] = true
	with := a.beside[k]
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		delete(a.tuning, k)
		a.mu.Unlock()
	}()

	parallel, err := parallelSlots(a.env, false, 0, ollamahost.IsLocal(a.host))
	if err != nil {
		return err
	}
	a.logger.Info("tuning", "model", model, "parallel", parallel, "beside", companionList(with))
	// What is known of the server's GPU, as `ctxfit tune` reads it: the
	// user's answer, or a model seen in VRAM; not this machine's hardware,
	// a guess that a known-absent GPU would turn into a refusal.
	gpu := ollama.GPUUnknown
	if d, err := a.store.Load(); err == nil {
		gpu = d.GPU(a.key, "")
	}
	opts := tune.Options{
		Model:      model,
		Parallel:   parallel,
		GPU:        gpu,
		Companions: with,
		Progress: func(p tune.Probe) {
			line := probeLine(p)
			a.logger.Info("tune probe", "model", model, "probe", line)
			if progress != nil {
				progress(line)
			}
		},
	}
	if ollamahost.IsLocal(a.host) {
		opts.RAM = a.env.localRAM()
	}
	res, err := tune.Tune(ctx, a.client, opts)
	if res != nil && res.Restored != "" {
		a.logger.Info("tune left the model as it was", "model", model, "restored", res.Restored)
	}
	if err != nil {
		msg := fmt.Sprintf("tuning %s failed: %v", model, err)
		if res != nil {
			if b := bracketText(res); b != "" {
				msg += "; " + b
			}
		}
		a.watcher.Publish(watch.Event{Kind: watch.EventConfigWarning, Model: model, Message: msg})
		return err
	}
	var budget int64
	if _, mac, ok := a.env.unifiedInfo(ctx, a.host); ok {
		budget = mac.Budget()
	}
	if err := storeTuned(a.store, a.key, res, budget); err != nil {
		return err
	}
	a.watcher.Publish(watch.Event{Kind: watch.EventTuned, Model: res.Model, ContextLength: res.Context, Message: tuneSummary(res)})
	a.keeper.Check(ctx)
	return nil
}

func (a *app) continueClient() clients.Client {
	c, err := clients.Lookup("continue")
	if err != nil {
		panic("the Continue client is not registered: " + err.Error())
	}
	return c
}

// ClientContext reports what Continue asks for when it uses model.
func (a *app) ClientContext(model string) (string, int, bool) {
	t, _ := a.target()
	_, asks, err := a.fixer.Asks(a.continueClient(), t)
	if err != nil {
		return "", 0, false
	}
	for _, ask := range asks {
		if ollama.SameModel(ask.Model, model) {
			label := ask.Title
			if label == "" {
				label = "Continue"
			}
			return label, ask.Context, true
		}
	}
	return "", 0, false
}

// FixContinue writes the tuned values into Continue's config now.
func (a *app) FixContinue(ctx context.Context, model string) error {
	if _, ok := a.tuned(model); !ok {
		return fmt.Errorf("%s has no tuned context yet; tune it first", model)
	}
	_, err := a.keeper.Fix(ctx, a.continueClient())
	return err
}

// ContinueConfigPath returns Continue's active config file, "" when none.
func (a *app) ContinueConfigPath() string {
	f, err := a.continueClient().Files(a.fixer.Env)
	if err != nil {
		return ""
	}
	return f.Config
}

// Settings returns the user's choices.
func (a *app) Settings() (state.Settings, error) {
	d, err := a.store.Load()
	if err != nil {
		return state.Settings{}, err
	}
	return d.Settings, nil
}

// SetAutoFix turns auto-fix on or off; turning it on fixes the configs now.
func (a *app) SetAutoFix(on bool) error {
	err := a.store.Update(func(d *state.Data) error { d.Settings.AutoFix = on; return nil })
	if err == nil && on {
		go a.keeper.Check(context.Background())
	}
	return err
}

// SetNotifications turns desktop notifications on or off.
func (a *app) SetNotifications(on bool) error {
	return a.store.Update(func(d *state.Data) error { d.Settings.NotificationsOff = !on; return nil })
}

func (a *app) autostart() (*autostart.Manager, error) { return autostart.New(autostart.Options{}) }

// StartAtLogin reports whether the login service is installed and enabled.
func (a *app) StartAtLogin() (bool, error) {
	m, err := a.autostart()
	if err != nil {
		return false, err
	}
	ctx := context.Background()
	if err := m.Usable(ctx); err != nil {
		return false, err // the tray greys the item with this reason
	}
	st, err := m.Status(ctx)
	if err != nil {
		return false, err
	}
	return st.Installed && st.Enabled == autostart.Yes, nil
}

// SetStartAtLogin installs or removes the login service for the tray.
func (a *app) SetStartAtLogin(on bool) error {
	m, err := a.autostart()
	if err != nil {
		return err
	}
	if on {
		return m.Install(context.Background())
	}
	return m.Uninstall(context.Background())
}

// LogPath returns ctxfit's log file.
func (a *app) LogPath() string {
	p, err := logfile.DefaultPath(a.env.getenv)
	if err != nil {
		return ""
	}
	return p
}

// runWithTray shows the tray (on the calling goroutine, which must be the
// main one) while the app runs. Without a tray host it says so once and
// carries on as the headless watcher.
func (a *app) runWithTray(ctx context.Context, hostWait time.Duration) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.run(ctx) }()
	err := tray.Run(ctx, a, tray.Options{Logger: a.logger, HostWait: hostWait})
	if errors.Is(err, tray.ErrNoTray) {
		a.logger.Warn("no system tray here, so ctxfit carries on as the headless watcher (use `ctxfit run --headless` to skip the tray)", "reason", err.Error())
		return <-done
	}
	cancel() // Quit was chosen, or ctx ended
	<-done
	if ctx.Err() != nil && err == ctx.Err() {
		return nil
	}
	return err
}
