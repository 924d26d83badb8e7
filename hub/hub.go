// Package hub is the one owner of ctxfit's events for one Ollama server.
// It merges what the watcher sees in /api/ps, what the config keeper does
// and finds, and the tunes any front-end runs, into one State, and sends
// every consumer (the tray, the log, control-API subscribers, metrics) one
// Update per change, carrying that whole state, so that no consumer reads
// anything again per event.
//
// While a model is being tuned the hub publishes no load, unload, context,
// spill or thrash event for it: those are the tuner's own probe loads. When
// the tune ends the hub judges the model afresh from the latest snapshot.
// Before it publishes a spill or reload thrash it names the clients behind
// it, from the client asks it holds.
package hub

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ctxfit/ctxfit/clients"
	"github.com/ctxfit/ctxfit/internal/fanout"
	"github.com/ctxfit/ctxfit/internal/hint"
	"github.com/ctxfit/ctxfit/ollama"
	"github.com/ctxfit/ctxfit/state"
	"github.com/ctxfit/ctxfit/watch"
)

// The kinds of event the hub adds to the watcher's.
const (
	EventTuneStarted    watch.EventKind = "tune_started"    // a front-end began a tune
	EventTuned          watch.EventKind = "tuned"           // a tune found the largest context that fits
	EventTuneFailed     watch.EventKind = "tune_failed"     // a tune failed or was cancelled
	EventTuneEnded      watch.EventKind = "tune_ended"      // a tune known only by its loads stopped loading; its result is elsewhere
	EventConfigFixed    watch.EventKind = "config_fixed"    // ctxfit rewrote a client's config
	EventConfigWarning  watch.EventKind = "config_warning"  // a client asks for too much, or its config cannot be fixed
	EventConfigRestored watch.EventKind = "config_restored" // an undo put a config back; auto-fix leaves it alone
	EventSettingChanged watch.EventKind = "setting_changed" // the user changed a setting
	// EventTuneStale: a stored tune was measured under another GPU budget
	// than the server has now (an Apple Silicon Mac whose GPU limit
	// changed): its context is out of date until a re-tune.
	EventTuneStale watch.EventKind = "tune_stale"
)

// Warning reports whether events of kind k are warnings: something the user
// should act on. Everything else is information.
func Warning(k watch.EventKind) bool {
	switch k {
	case watch.EventSpillStarted, watch.EventThrash, watch.EventEvictionThrash, watch.EventSwapRisk, watch.EventUnreachable,
		EventConfigWarning, EventTuneFailed:
		return true
	}
	return false
}

// Own reports whether events of kind k are the hub's own (tunes, configs,
// settings), not the watcher's.
func Own(k watch.EventKind) bool {
	switch k {
	case EventTuneStarted, EventTuned, EventTuneFailed, EventTuneEnded, EventConfigFixed, EventConfigWarning, EventConfigRestored, EventSettingChanged,
		EventTuneStale:
		return true
	}
	return false
}

// Event is one thing that happened: a watcher event, or one the hub added.
type Event struct {
	watch.Event
	// Client is the client the event is about (config events), "" else.
	Client string `json:"client,omitempty"`
}

// Tune is a tune in progress.
type Tune struct {
	Model   string    `json:"model"`
	By      string    `json:"by"`             // who runs it: "tray", "ctxfit tune (pid 12 on box)"
	Line    string    `json:"line,omitempty"` // the tuner's last progress line
	Started time.Time `json:"started"`
	// Lease is set when the tune is known only from its lease in the
	// shared state (a tuner that could not reach the daemon).
	Lease bool `json:"lease,omitempty"`
	// spilledAt is the context the model was loaded at, spilled, when
	// the tune began (0: not loaded, or not spilled). A tune puts the
	// model back as it found it; that spill was told already.
	spilledAt int
}

// Client is what one registered client's config asks for.
type Client struct {
	Name      string        `json:"name"`
	Path      string        `json:"path,omitempty"`
	Installed bool          `json:"installed"`
	Error     string        `json:"error,omitempty"`
	Asks      []clients.Ask `json:"asks"`
	// Held is set after an undo: auto-fix leaves the file alone until the
	// user changes it again.
	Held bool `json:"held"`
}

// State is everything ctxfit knows about one server at one moment.
type State struct {
	Snapshot watch.Snapshot `json:"snapshot"`
	Settings state.Settings `json:"settings"`
	Tunes    []Tune         `json:"tunes"`
	Clients  []Client       `json:"clients"`
	// GPUShare describes, on an Apple Silicon server, the GPU's share of
	// unified memory ("GPU may use 21.3 GiB of 32.0 GiB"); "" elsewhere.
	GPUShare string `json:"gpu_share,omitempty"`
}

// Tuning returns the running tune of model.
func (s State) Tuning(model string) (Tune, bool) {
	for _, t := range s.Tunes {
		if ollama.SameModel(t.Model, model) {
			return t, true
		}
	}
	return Tune{}, false
}

// TooLarge returns the client entries that ask model for more context than
// its tuned value, across every client.
func (s State) TooLarge(model string) []clients.Ask {
	var out []clients.Ask
	for _, c := range s.Clients {
		for _, a := range c.Asks {
			if ollama.SameModel(a.Model, model) && a.TooLarge() {
				out = append(out, a)
			}
		}
	}
	return out
}

// Client returns the state of the client called name.
func (s State) Client(name string) (Client, bool) {
	for _, c := range s.Clients {
		if strings.EqualFold(c.Name, name) {
			return c, true
		}
	}
	return Client{}, false
}

func (s State) clone() State {
	s.Snapshot.Models = slices.Clone(s.Snapshot.Models)
	s.Tunes = slices.Clone(s.Tunes)
	s.Clients = slices.Clone(s.Clients)
	return s
}

// Update is what a consumer receives for each change: the whole state after
// it, and the events (none when only the state changed).
type Update struct {
	State
	Events []Event `json:"events"`
}

// Hub merges and publishes. Create it with New; it is safe for concurrent
// use, and never waits for a consumer.
type Hub struct {
	host string
	now  func() time.Time

	mu    sync.Mutex
	st    State
	hints hint.Hints // the commands messages name (SetHints)
	subs  *fanout.Fanout[Update]
}

// New returns the hub of the server at host, its state empty until the
// first snapshot. now is the clock (nil: time.Now).
func New(host string, now func() time.Time) *Hub {
	if now == nil {
		now = time.Now
	}
	return &Hub{
		host: host, now: now,
		st:   State{Snapshot: watch.Snapshot{Host: host, GPU: ollama.GPUUnknown}, Tunes: []Tune{}, Clients: []Client{}},
		subs: fanout.New(mergeUpdates),
	}
}

// SetHints sets how the hub's messages name commands: with --host for a
// server other than the default one, and commands instead of tray items
// when no tray shows the daemon. The zero Hints (until SetHints) names
// commands without --host, beside the tray's items.
func (h *Hub) SetHints(hs hint.Hints) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hints = hs
}

// Hints returns what SetHints set.
func (h *Hub) Hints() hint.Hints {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hints
}

// State returns the current state.
func (h *Hub) State() State {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.st.clone()
}

// Watched takes in one poll of the watcher: the events of models being
// tuned are dropped, spills and thrash name their clients, and an update
// goes out when anything changed.
func (h *Hub) Watched(u watch.Update) {
	h.mu.Lock()
	defer h.mu.Unlock()
	changed := !sameSnapshot(h.st.Snapshot, u.Snapshot)
	h.st.Snapshot = u.Snapshot
	var events []Event
	for _, e := range u.Events {
		if e.Model != "" {
			if _, tuning := h.st.Tuning(e.Model); tuning {
				continue // the tuner's own load
			}
		}
		events = append(events, h.explain(Event{Event: e}))
	}
	if changed || len(events) > 0 {
		h.publish(events)
	}
}

// Publish sends events, stamped with the time and host when they lack
// them, to every consumer with the current state.
func (h *Hub) Publish(events ...Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.publish(events)
}

// SetSettings records the user's settings; consumers hear of a change.
func (h *Hub) SetSettings(s state.Settings) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !reflect.DeepEqual(s, h.st.Settings) {
		h.st.Settings = s
		h.publish(nil)
	}
}

// SetGPUShare records the GPU's share of unified memory (State.GPUShare);
// consumers hear of a change.
func (h *Hub) SetGPUShare(share string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if share != h.st.GPUShare {
		h.st.GPUShare = share
		h.publish(nil)
	}
}

// SetClient records what client c's config asks for now; consumers hear
// of a change.
func (h *Hub) SetClient(c Client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c.Asks == nil {
		c.Asks = []clients.Ask{}
	}
	i := slices.IndexFunc(h.st.Clients, func(o Client) bool { return o.Name == c.Name })
	switch {
	case i < 0:
		h.st.Clients = append(h.st.Clients, c)
		sort.Slice(h.st.Clients, func(i, j int) bool {
			return strings.ToLower(h.st.Clients[i].Name) < strings.ToLower(h.st.Clients[j].Name)
		})
	case reflect.DeepEqual(h.st.Clients[i], c):
		return
	default:
		h.st.Clients[i] = c
	}
	h.publish(nil)
}

// ErrTuning reports a second tune of a model already being tuned.
type ErrTuning struct{ Tune Tune }

func (e *ErrTuning) Error() string {
	return fmt.Sprintf("%s is already being tuned (by %s); wait for it, or cancel it there", e.Tune.Model, e.Tune.By)
}

// BeginTune records that t.Model is being tuned: from now on the watcher's
// events for it are the tuner's. It fails with *ErrTuning while another
// tune of the same model runs.
func (h *Hub) BeginTune(t Tune) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if o, ok := h.st.Tuning(t.Model); ok {
		return &ErrTuning{o}
	}
	if t.Started.IsZero() {
		t.Started = h.now()
	}
	for _, m := range h.st.Snapshot.Models {
		if ollama.SameModel(m.Name, t.Model) && m.Spilled {
			t.spilledAt = m.ContextLength
		}
	}
	h.st.Tunes = append(h.st.Tunes, t)
	msg := fmt.Sprintf("tuning %s (%s); ctxfit ignores its loads until the tune ends", t.Model, t.By)
	h.publish([]Event{{Event: watch.Event{Kind: EventTuneStarted, Model: t.Model, Message: msg}}})
	return nil
}

// TuneProgress records the tuner's latest line for model.
func (h *Hub) TuneProgress(model, line string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, t := range h.st.Tunes {
		if ollama.SameModel(t.Model, model) {
			if t.Line != line {
				h.st.Tunes[i].Line = line
				h.publish(nil)
			}
			return
		}
	}
}

// EndTune records that the tune of model ended, publishes result (a tuned
// or tune_failed event; nil for none) and judges the model afresh from the
// latest snapshot: a model that is spilled now is a spill to tell, unless
// it is the spill the tune began with, put back as it was. The
// caller polls the watcher before, so that the snapshot is fresh.
func (h *Hub) EndTune(model string, result *Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	i := slices.IndexFunc(h.st.Tunes, func(t Tune) bool { return ollama.SameModel(t.Model, model) })
	if i < 0 {
		return
	}
	before := h.st.Tunes[i].spilledAt
	h.st.Tunes = slices.Delete(h.st.Tunes, i, i+1)
	var events []Event
	if result != nil {
		events = append(events, *result)
	}
	for _, m := range h.st.Snapshot.Models {
		// The spill the tune found, put back as it was, is no new spill.
		restored := before > 0 && m.ContextLength == before
		if ollama.SameModel(m.Name, model) && m.Spilled && h.st.Snapshot.Reachable && !restored {
			events = append(events, h.explain(Event{Event: watch.SpillEvent(m, h.hints)}))
		}
	}
	h.publish(events)
}

// explain adds to a spill or thrash event the clients behind it.
func (h *Hub) explain(e Event) Event {
	switch e.Kind {
	case watch.EventSpillStarted:
		var parts []string
		for _, a := range h.st.TooLarge(e.Model) {
			parts = append(parts, a.String())
		}
		if len(parts) > 0 {
			e.Message += ". " + strings.Join(parts, "; ") + ". " + fixAdvice(h.st.Settings, h.hints)
		}
	case watch.EventThrash:
		if msg := h.thrashCulprits(e.Model); msg != "" {
			e.Message = msg
		}
	}
	return e
}

// fixAdvice says how to write the tuned value, by what the user can do,
// with the commands of hs.
func fixAdvice(s state.Settings, hs hint.Hints) string {
	if s.AutoFix {
		return "ctxfit keeps client configs fixed; a config it has not fixed was undone or changed by hand: " + hs.FixWrites("all")
	}
	return hs.FixWrites("all")
}

// thrashCulprits names the clients whose configs ask for different
// contexts for model, the cause of reload thrash.
func (h *Hub) thrashCulprits(model string) string {
	byClient := map[string]map[int]bool{}
	tuned := 0
	for _, c := range h.st.Clients {
		for _, a := range c.Asks {
			if !ollama.SameModel(a.Model, model) {
				continue
			}
			if byClient[a.Client] == nil {
				byClient[a.Client] = map[int]bool{}
			}
			byClient[a.Client][a.Context] = true
			tuned = max(tuned, a.Tuned)
		}
	}
	distinct := map[int]bool{}
	for _, ctxs := range byClient {
		for n := range ctxs {
			distinct[n] = true
		}
	}
	if len(byClient) < 2 || len(distinct) < 2 {
		return "" // no disagreement among the clients ctxfit knows
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
	fix := fmt.Sprintf("run %s, then %s gives them all the same context", h.hints.Cmd("tune", model), h.hints.Cmd("fix", "all"))
	if tuned > 0 {
		fix = fmt.Sprintf("%s gives them all %d, which stays on the GPU", h.hints.Cmd("fix", "all"), tuned)
	}
	return fmt.Sprintf("%s reloads because clients disagree: %s; %s.", model, strings.Join(parts, ", "), fix)
}

// publish sends one update; h.mu is held.
func (h *Hub) publish(events []Event) {
	for i := range events {
		if events[i].Time.IsZero() {
			events[i].Time = h.now()
		}
		if events[i].Host == "" {
			events[i].Host = h.host
		}
	}
	if events == nil {
		events = []Event{}
	}
	u := Update{State: h.st.clone(), Events: events}
	h.subs.Publish(u)
}

// sameSnapshot reports whether a and b show the same thing (their times
// aside).
func sameSnapshot(a, b watch.Snapshot) bool {
	a.Time, b.Time = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

// Subscribe returns a channel that receives an Update for each change, and
// a function that ends the subscription and closes the channel. A slow
// consumer never holds up the hub: past maxQueued waiting updates the
// oldest are merged into the next (their events kept).
func (h *Hub) Subscribe() (<-chan Update, func()) { return h.subs.Subscribe() }

// LogEvent writes e to logger, at warning level for Warning kinds.
func LogEvent(logger *slog.Logger, e Event) {
	level := slog.LevelInfo
	switch {
	case e.Kind == watch.EventError:
		level = slog.LevelError
	case Warning(e.Kind):
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{slog.String("event", string(e.Kind)), slog.String("host", e.Host)}
	if e.Model != "" {
		attrs = append(attrs, slog.String("model", e.Model))
	}
	if e.Client != "" {
		attrs = append(attrs, slog.String("client", e.Client))
	}
	if e.Processor != "" {
		attrs = append(attrs, slog.String("processor", e.Processor))
	}
	if e.ContextLength > 0 {
		attrs = append(attrs, slog.Int("context", e.ContextLength))
	}
	if e.PrevContextLength > 0 {
		attrs = append(attrs, slog.Int("prev_context", e.PrevContextLength))
	}
	if len(e.Contexts) > 0 {
		attrs = append(attrs, slog.Any("contexts", e.Contexts))
	}
	logger.LogAttrs(context.Background(), level, e.Message, attrs...)
}

// mergeUpdates folds an older update that a slow consumer has not read into
// the newer one: the newer state, and the events of both.
func mergeUpdates(older, newer Update) Update {
	newer.Events = append(slices.Clone(older.Events), newer.Events...)
	return newer
}
