package watch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ollama/ollama/api"
	"github.com/ollama/ollama/format"

	"github.com/ctxfit/ctxfit/internal/fanout"
	"github.com/ctxfit/ctxfit/internal/hint"
	"github.com/ctxfit/ctxfit/internal/ollamahost"
	"github.com/ctxfit/ctxfit/internal/termtext"
	"github.com/ctxfit/ctxfit/ollama"
	"github.com/ctxfit/ctxfit/state"
)

// Model is one loaded model as ctxfit sees it.
type Model struct {
	Name          string       `json:"name"`
	Digest        string       `json:"-"`
	Size          int64        `json:"size"`
	SizeVRAM      int64        `json:"size_vram"`
	Processor     string       `json:"processor"`      // as `ollama ps` prints it
	ContextLength int          `json:"context_length"` // 0 when the server does not say
	State         ollama.State `json:"state"`
	Spilled       bool         `json:"spilled"`
	TunedContext  *int         `json:"tuned_context"` // nil when no tune is known
	// TunedBeside names the models TunedContext leaves room for: the
	// other models of a joint tune that are loaded beside this one now.
	// Empty when TunedContext is the model's value alone.
	TunedBeside []string  `json:"tuned_beside,omitempty"`
	ExpiresAt   time.Time `json:"-"`
	// RAMWarning is set on a CPU-only host that is this machine when the
	// model will not fit in RAM; it says which smaller model would.
	RAMWarning string `json:"ram_warning,omitempty"`
}

// Snapshot is the state of one Ollama server at one moment.
type Snapshot struct {
	Host      string             `json:"host"`
	Reachable bool               `json:"reachable"`
	Error     string             `json:"error,omitempty"`
	Version   string             `json:"version,omitempty"`
	GPU       ollama.GPUPresence `json:"gpu"`
	Models    []Model            `json:"models"`
	Time      time.Time          `json:"-"`
}

// Spilled returns the models in s that spilled onto the CPU.
func (s Snapshot) Spilled() []Model {
	var out []Model
	for _, m := range s.Models {
		if m.Spilled {
			out = append(out, m)
		}
	}
	return out
}

// EventKind names what happened between two snapshots.
type EventKind string

// The kinds of Event.
const (
	EventReachable      EventKind = "reachable"       // the server answers (again)
	EventUnreachable    EventKind = "unreachable"     // no answer: down, wrong address, firewall
	EventError          EventKind = "error"           // an answer that is not what Ollama sends
	EventLoaded         EventKind = "loaded"          // a model appeared in /api/ps
	EventUnloaded       EventKind = "unloaded"        // a model left /api/ps
	EventContextChanged EventKind = "context_changed" // the same model reloaded with another context length
	EventSpillStarted   EventKind = "spill_started"   // a model moved (partly) onto the CPU
	EventSpillEnded     EventKind = "spill_ended"     // a loaded model is whole on the GPU again
	EventThrash         EventKind = "reload_thrash"   // clients disagree on num_ctx and keep reloading a model
	EventEvictionThrash EventKind = "eviction_thrash" // models that do not fit together keep unloading each other
	EventSwapRisk       EventKind = "swap_risk"       // a model on a CPU-only host does not fit in RAM
)

// Event is one thing that happened on the watched server.
type Event struct {
	Kind              EventKind `json:"kind"`
	Time              time.Time `json:"time"`
	Host              string    `json:"host"`
	Model             string    `json:"model,omitempty"`
	Processor         string    `json:"processor,omitempty"`
	Size              int64     `json:"size,omitempty"`
	ContextLength     int       `json:"context_length,omitempty"`
	PrevContextLength int       `json:"prev_context_length,omitempty"`
	Contexts          []int     `json:"contexts,omitempty"` // reload thrash: the lengths seen
	// Companions are, for eviction thrash, the models that keep unloading
	// Model (the largest) as `ctxfit tune Model --with` takes them:
	// "name=context". A joint tune of Model with them ends the thrash.
	Companions []string `json:"companions,omitempty"`
	Message    string   `json:"message"` // one line for people
	// Count is how many models a summary event stands for (a huge
	// /api/ps); 0 for an event about one model.
	Count int `json:"count,omitempty"`
}

// Update is what subscribers receive after each poll that changed something:
// the new snapshot and the events that led to it.
type Update struct {
	Snapshot Snapshot
	Events   []Event
	// Data is ctxfit's state as this poll read it (nil without a store or
	// when it could not be read), so that the one consumer that needs the
	// settings, the tuned values and the tune leases reads no file again.
	// It is shared (state.Store.Peek): read it, never modify it.
	Data *state.Data
}

// Options tune a Watcher; the zero value gives the defaults.
type Options struct {
	// ObservePoll, when set, is called after every request for /api/ps
	// with how long it took (the metrics' poll duration).
	ObservePoll  func(time.Duration)
	FastInterval time.Duration // while models are loaded or just changed; default 1 s
	// SteadyInterval is the poll interval once models have stayed loaded
	// unchanged for SteadyAfter; default twice FastInterval. A reload
	// takes a model out of /api/ps, which the next poll sees, and the
	// watcher then polls every FastInterval again, so a spill is still
	// seen within FastInterval of the end of any load that took longer
	// than SteadyInterval: a steady server costs half the polls.
	SteadyInterval time.Duration
	SteadyAfter    time.Duration // default 30 s
	// ReloadGrace is how long a model may be missing from /api/ps before it
	// counts as unloaded: Ollama lists a reloading model only once the new
	// load is done, which takes seconds to minutes. Default 2 minutes.
	ReloadGrace    time.Duration
	IdleInterval   time.Duration // while nothing is loaded; default 2.5 s
	MaxBackoff     time.Duration // ceiling while unreachable; default 30 s
	RequestTimeout time.Duration // per request; default RequestTimeout
	// Now is the clock; default time.Now.
	Now func() time.Time
	// LocalGPU reports GPU evidence from this machine's hardware; it is
	// consulted only when the host is this machine. Default DetectLocalGPU.
	LocalGPU func() ollama.GPUPresence
	// TotalRAM reports this machine's physical memory in bytes (0 when
	// unknown). Default TotalRAM.
	TotalRAM func() int64
	// OnUpdate, when set, receives every Update a subscriber would, in
	// poll order, synchronously from Poll (before Poll returns, and never
	// while another poll runs). The daemon's hub is fed this way, so that a
	// poll it asks for is judged before the poll returns.
	OnUpdate func(Update)
	// Hints builds the ctxfit commands that messages name; the daemon sets
	// it for its server (hint.For), so that each repeats --host for a
	// server other than the default one. Zero: commands without --host.
	Hints hint.Hints
}

func (o *Options) defaults() {
	if o.FastInterval <= 0 {
		o.FastInterval = time.Second
	}
	if o.IdleInterval <= 0 {
		o.IdleInterval = 2500 * time.Millisecond
	}
	if o.SteadyInterval <= 0 {
		o.SteadyInterval = 2 * o.FastInterval
	}
	if o.SteadyAfter <= 0 {
		o.SteadyAfter = 30 * time.Second
	}
	if o.ReloadGrace <= 0 {
		o.ReloadGrace = 2 * time.Minute
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = ollama.RequestTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.LocalGPU == nil {
		o.LocalGPU = ollama.DetectLocalGPU
	}
	if o.TotalRAM == nil {
		o.TotalRAM = ollama.TotalRAM
	}
}

// Thrash detection: this many loads of one model within thrashWindow, with
// at least two different context lengths, mean clients disagree on num_ctx.
// Eviction thrash: this many swaps of the same two models within
// thrashWindow, a swap being one model loaded while the other left /api/ps
// at most swapGap before (Ollama unloads the idle model, then loads).
const (
	thrashLoads  = 3
	thrashWindow = 10 * time.Minute
	thrashSwaps  = 3
	swapGap      = time.Minute
)

// Watcher polls one Ollama server's /api/ps and turns what it sees into
// snapshots and events. Create it with New and start it with Run.
type Watcher struct {
	client *api.Client
	host   *url.URL
	key    string
	store  *state.Store
	opts   Options
	local  ollama.GPUPresence // evidence from this machine, "" when the host is remote

	pollMu sync.Mutex    // one poll at a time, so that OnUpdate sees them in order
	kick   chan struct{} // Kick wakes Run for a poll now

	mu      sync.Mutex
	snap    Snapshot
	prev    map[string]Model  // models of the last successful poll, by ollama.ModelKey
	loads   map[string][]load // recent loads per model, for thrash detection
	thrash  map[string]time.Time
	ramWarn map[string]bool // swap risk already reported for this load
	// gone holds models that left /api/ps less than ReloadGrace ago. Ollama
	// takes a model out of /api/ps for the whole of a reload, so a model
	// that comes back in time was reloaded, not unloaded.
	gone    map[string]goneModel
	subs    *fanout.Fanout[Update]
	lastErr string
	// refused reports that the last poll found nothing listening at the
	// server's address: a stopped or restarting Ollama, which Run probes
	// for every FastInterval while it backs off.
	refused bool
	// swaps are the recent evictions seen, for eviction thrash; evicted
	// holds when each pair of models was last reported.
	swaps   []swap
	evicted map[[2]string]time.Time
}

type goneModel struct {
	Model
	since time.Time
	// swapped is set once a model loaded after it left: one swap per leave.
	swapped bool
}

// swap is one model loaded right after another left /api/ps.
type swap struct {
	at      time.Time
	in, out Model
}

type load struct {
	at  time.Time
	ctx int
}

// New returns a watcher of the server at host, talking through
// client. store may be nil (nothing is remembered, no tuned values shown).
func New(client *api.Client, host *url.URL, store *state.Store, opts Options) *Watcher {
	opts.defaults()
	w := &Watcher{
		client:  client,
		host:    host,
		key:     ollamahost.Key(host),
		store:   store,
		opts:    opts,
		prev:    map[string]Model{},
		gone:    map[string]goneModel{},
		loads:   map[string][]load{},
		thrash:  map[string]time.Time{},
		ramWarn: map[string]bool{},
		subs:    fanout.New(mergeUpdates),
		kick:    make(chan struct{}, 1),
		evicted: map[[2]string]time.Time{},
	}
	if ollamahost.IsLocal(host) {
		w.local = opts.LocalGPU()
	}
	w.snap = Snapshot{Host: host.String(), GPU: ollama.GPUUnknown}
	return w
}

// Host returns the address of the watched server.
func (w *Watcher) Host() *url.URL { return w.host }

// Snapshot returns the latest snapshot (an empty, unreachable one before the
// first poll finishes).
func (w *Watcher) Snapshot() Snapshot {
	w.mu.Lock()
	defer w.mu.Unlock()
	return cloneSnapshot(w.snap)
}

// Run polls until ctx is done: every FastInterval while something changed
// in the last SteadyAfter or a model is reloading, every SteadyInterval
// while models stay loaded unchanged, every IdleInterval while none is
// loaded, and with exponential backoff up to MaxBackoff while the server
// does not answer.
// While nothing listens at the server's address (Ollama stopped or
// restarting) it also tries a bare TCP connection every FastInterval and
// polls as soon as one succeeds, so that a server that comes back is seen
// within FastInterval, not at the end of a backoff of up to MaxBackoff.
// It returns ctx's error; failures of the server are events, not errors.
func (w *Watcher) Run(ctx context.Context) error {
	backoff := w.opts.FastInterval
	var changed time.Time // when a poll last saw a change
	for {
		u := w.Poll(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var wait time.Duration
		wait, backoff, changed = w.interval(u, backoff, changed, w.opts.Now())
		w.mu.Lock()
		probe := !u.Snapshot.Reachable && w.refused
		w.mu.Unlock()
		if err := w.sleep(ctx, wait, probe); err != nil {
			return err
		}
	}
}

// interval returns how long Run waits after the poll that gave u, the
// backoff for the next failure, and when a poll last saw a change.
func (w *Watcher) interval(u Update, backoff time.Duration, changed, now time.Time) (time.Duration, time.Duration, time.Time) {
	fast := w.opts.FastInterval
	switch {
	case !u.Snapshot.Reachable:
		return backoff, min(backoff*2, w.opts.MaxBackoff), changed
	case len(u.Events) > 0 || w.reloading():
		return fast, fast, now
	case len(u.Snapshot.Models) > 0 && now.Sub(changed) < w.opts.SteadyAfter:
		return fast, fast, changed
	case len(u.Snapshot.Models) > 0:
		return w.opts.SteadyInterval, fast, changed
	}
	return w.opts.IdleInterval, fast, changed
}

// Kick makes Run poll now instead of at its next tick; it never blocks.
func (w *Watcher) Kick() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Forget drops what the watcher remembers of model's recent loads, so that
// loads made on purpose (a tune's probes) count toward no reload thrash.
func (w *Watcher) Forget(model string) {
	k := ollama.ModelKey(model)
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.loads, k)
	delete(w.thrash, k)
}

// sleep waits for d, or until ctx ends (returning its error). With probe
// set it returns early once a TCP connection to the server succeeds,
// trying every FastInterval.
func (w *Watcher) sleep(ctx context.Context, d time.Duration, probe bool) error {
	t := time.NewTimer(d)
	defer t.Stop()
	var tick <-chan time.Time
	if probe && d > w.opts.FastInterval {
		k := time.NewTicker(w.opts.FastInterval)
		defer k.Stop()
		tick = k.C
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return nil
		case <-w.kick:
			return nil
		case <-tick:
			if w.listening(ctx) {
				return nil
			}
		}
	}
}

// listening reports whether something accepts TCP connections at the
// server's address, trying for at most FastInterval.
func (w *Watcher) listening(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, w.opts.FastInterval)
	defer cancel()
	addr := w.host.Host
	if w.host.Port() == "" {
		port := "80"
		if w.host.Scheme == "https" {
			port = "443"
		}
		addr = net.JoinHostPort(w.host.Hostname(), port)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// connRefused reports whether err says that nothing listens at the
// address (ECONNREFUSED; WSAECONNREFUSED, 10061, on Windows).
func connRefused(err error) bool {
	var errno syscall.Errno
	return errors.As(err, &errno) && (errno == syscall.ECONNREFUSED || errno == 10061)
}

// Poll asks the server once, updates the watcher's state, tells subscribers
// what changed, and returns the new snapshot with its events. `ctxfit
// status` is one Poll.
func (w *Watcher) Poll(ctx context.Context) Update {
	w.pollMu.Lock()
	defer w.pollMu.Unlock()
	u, told := w.poll(ctx)
	if told && w.opts.OnUpdate != nil {
		w.opts.OnUpdate(u)
	}
	return u
}

// poll is Poll under pollMu; told reports whether subscribers got u.
func (w *Watcher) poll(ctx context.Context) (u Update, told bool) {
	now := w.opts.Now()
	rctx, cancel := context.WithTimeout(ctx, w.opts.RequestTimeout)
	defer cancel()
	ps, err := w.client.ListRunning(rctx)
	if w.opts.ObservePoll != nil {
		w.opts.ObservePoll(w.opts.Now().Sub(now))
	}
	var version string
	if err == nil {
		w.mu.Lock()
		version = w.snap.Version
		reconnect := !w.snap.Reachable
		w.mu.Unlock()
		if reconnect || version == "" {
			if v, verr := w.client.Version(rctx); verr == nil {
				version = v
			}
		}
	}
	var data *state.Data
	if w.store != nil {
		// Peek: the file is parsed again only when it changed, since
		// this runs every second. A damaged state file must not stop the
		// watcher.
		data, _ = w.store.Peek()
	}
	if err == nil && data != nil {
		data = w.learnGPU(ps.Models, data, now)
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	w.refused = err != nil && connRefused(err)
	snap := Snapshot{Host: w.host.String(), Time: now, Version: version, GPU: w.local}
	if snap.GPU == "" {
		snap.GPU = ollama.GPUUnknown
	}
	if data != nil {
		snap.GPU = data.GPU(w.key, w.local)
	}
	var events []Event
	if err != nil {
		snap.Error = describe(err, w.host)
		snap.Version = w.snap.Version
		events = w.failed(snap, err, now)
	} else {
		snap.Reachable = true
		snap.Models = w.models(ps.Models, snap.GPU, data)
		events = w.diff(snap, now)
	}
	w.snap = snap
	u = Update{Snapshot: cloneSnapshot(snap), Events: events, Data: data}
	told = len(events) > 0 || err == nil
	if told {
		w.subs.Publish(u)
	}
	return u, told
}

// learnGPU records what /api/ps shows of the host's GPU, in one write and
// only when it changes the state: that there is one (a model in VRAM), and
// a narrower bound on its memory (state.HostState.GPUBound), which later
// tunes start from, from a model loaded alone: at 100% GPU its size fits,
// so the GPU lends at least that much; spilled, its size did not fit.
// (size_vram of a spill is no bound: some servers put a compute graph
// larger than the GPU on it.) The bound is a hint, not proof: a
// Modelfile's num_gpu can keep a model that would fit partly on the CPU,
// and the tuner drops a bound its loads contradict. data is shared (Peek),
// so learnGPU returns the state as read again after a write.
func (w *Watcher) learnGPU(ms []api.ProcessModelResponse, data *state.Data, now time.Time) *state.Data {
	seen := anyInVRAM(ms) && !gpuSeen(data.Hosts[w.key])
	n, narrows := aloneBound(ms, now)
	if narrows {
		old := data.GPUBound(w.key)
		b := old.Merge(n)
		narrows = old == nil || old.Lo != b.Lo || old.Up != b.Up || len(old.Beside) > 0
	}
	if !seen && !narrows {
		return data
	}
	if w.store.Update(func(d *state.Data) error {
		h := d.Host(w.key)
		h.GPUSeen = h.GPUSeen || seen
		if narrows {
			nb := h.GPUBound.Merge(n)
			h.GPUBound = &nb
		}
		return nil
	}) == nil {
		if again, err := w.store.Peek(); err == nil {
			return again
		}
	}
	return data
}

// aloneBound returns what a model loaded alone in ms says of the GPU's
// memory (see learnGPU); false when ms is not one model on the GPU.
func aloneBound(ms []api.ProcessModelResponse, now time.Time) (state.GPUBound, bool) {
	if len(ms) != 1 || ms[0].Size <= 0 || ms[0].SizeVRAM <= 0 {
		return state.GPUBound{}, false
	}
	n := state.GPUBound{MeasuredAt: now.UTC()}
	switch s, _ := ollama.Classify(ms[0].Size, ms[0].SizeVRAM); s {
	case ollama.StateGPU:
		n.Lo = ms[0].Size
	case ollama.StatePartial:
		n.Up = ms[0].Size
	default:
		return state.GPUBound{}, false
	}
	return n, true
}

func anyInVRAM(ms []api.ProcessModelResponse) bool {
	for _, m := range ms {
		if m.SizeVRAM > 0 {
			return true
		}
	}
	return false
}

// models classifies the models of one /api/ps answer.
func (w *Watcher) models(in []api.ProcessModelResponse, gpu ollama.GPUPresence, data *state.Data) []Model {
	out := make([]Model, 0, len(in))
	var ram int64
	if w.local != "" && gpu != ollama.GPUPresent {
		ram = w.opts.TotalRAM()
	}
	loaded := make([]string, 0, len(in))
	for _, p := range in {
		loaded = append(loaded, cmp.Or(p.Name, p.Model))
	}
	for _, p := range in {
		state, proc := ollama.Classify(p.Size, p.SizeVRAM)
		name := p.Name
		if name == "" {
			name = p.Model
		}
		m := Model{
			Name: name, Digest: p.Digest, Size: p.Size, SizeVRAM: p.SizeVRAM,
			Processor: proc, ContextLength: max(p.ContextLength, 0),
			State: state, Spilled: ollama.Spilled(state, gpu), ExpiresAt: p.ExpiresAt,
		}
		if data != nil {
			if t, ok := data.TunedFor(w.key, name, p.Digest); ok {
				c := t.Context
				m.TunedContext = &c
			}
			if t, ok := jointApplies(data, w.key, name, loaded); ok {
				c, _ := t.ContextFor(name)
				m.TunedContext = &c
				for _, o := range t.Set() {
					if !ollama.SameModel(o, name) {
						m.TunedBeside = append(m.TunedBeside, o)
					}
				}
			}
		}
		if ram > 0 && gpu != ollama.GPUPresent && state == ollama.StateCPU {
			m.RAMWarning = ollama.RAMWarning(name, p.Size, ram, m.ContextLength)
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// jointApplies returns the joint tune that applies to model while the
// models in loaded run: the one with the most models, all of them loaded,
// then the newest.
func jointApplies(data *state.Data, host, model string, loaded []string) (state.Tuned, bool) {
	var best state.Tuned
	found := false
	for _, t := range data.Tuned {
		if t.Host != host || !t.Joint() {
			continue
		}
		if _, in := t.ContextFor(model); !in {
			continue
		}
		all := true
		for _, m := range t.Set() {
			all = all && slices.ContainsFunc(loaded, func(l string) bool { return ollama.SameModel(l, m) })
		}
		if !all {
			continue
		}
		if !found || len(t.Companions) > len(best.Companions) ||
			len(t.Companions) == len(best.Companions) && t.MeasuredAt.After(best.MeasuredAt) {
			best, found = t, true
		}
	}
	return best, found
}

// failed records a failed poll and returns the events it causes: one
// unreachable or error event per distinct failure, not one per poll.
func (w *Watcher) failed(snap Snapshot, err error, now time.Time) []Event {
	kind := EventUnreachable
	if !isConnError(err) {
		kind = EventError
	}
	// lastErr is cleared whenever the server answers, so a failure after
	// an answer is always told, and a repeated failure only once.
	msg := snap.Error
	if msg != w.lastErr {
		w.lastErr = msg
		return []Event{{Kind: kind, Time: now, Host: snap.Host, Message: msg}}
	}
	return nil
}

// diff compares snap with the previous successful poll.
func (w *Watcher) diff(snap Snapshot, now time.Time) []Event {
	var events []Event
	add := func(e Event) {
		e.Time, e.Host = now, snap.Host
		events = append(events, e)
	}
	if !w.snap.Reachable {
		msg := fmt.Sprintf("Ollama at %s answers", snap.Host)
		if snap.Version != "" {
			msg += " (version " + snap.Version + ")"
		}
		add(Event{Kind: EventReachable, Message: msg})
		w.lastErr = ""
	}
	cur := make(map[string]Model, len(snap.Models))
	models := dedupe(snap.Models)
	for _, m := range models {
		cur[ollama.ModelKey(m.Name)] = m
	}
	for k, old := range w.prev {
		if _, ok := cur[k]; !ok {
			w.gone[k] = goneModel{Model: old, since: now}
		}
	}
	for _, m := range models {
		k := ollama.ModelKey(m.Name)
		old, was := w.prev[k]
		reloaded := false
		if g, ok := w.gone[k]; ok && !was {
			// Back within the grace window: a reload, not a new load.
			old, was, reloaded = g.Model, true, true
			delete(w.gone, k)
		}
		switch {
		case !was:
			add(Event{Kind: EventLoaded, Model: m.Name, Processor: m.Processor, Size: m.Size, ContextLength: m.ContextLength,
				Message: fmt.Sprintf("%s loaded: %s, %s%s", m.Name, format.HumanBytes(m.Size), m.Processor, ctxText(m.ContextLength))})
			w.noteLoad(k, m.ContextLength, now)
			delete(w.ramWarn, k)
		case m.ContextLength != old.ContextLength && m.ContextLength > 0 && old.ContextLength > 0:
			add(Event{Kind: EventContextChanged, Model: m.Name, Processor: m.Processor, Size: m.Size,
				ContextLength: m.ContextLength, PrevContextLength: old.ContextLength,
				Message: fmt.Sprintf("%s reloaded with context %d (was %d): %s, %s", m.Name, m.ContextLength, old.ContextLength, format.HumanBytes(m.Size), m.Processor)})
			w.noteLoad(k, m.ContextLength, now)
		case reloaded:
			w.noteLoad(k, m.ContextLength, now)
		}
		if m.Spilled && (!was || !old.Spilled) {
			add(SpillEvent(m, w.opts.Hints))
		}
		if was && old.Spilled && !m.Spilled {
			// "again" only for a model back on the GPU: "is Unknown
			// again" read as if the model had been unknown before.
			msg := fmt.Sprintf("%s is %s again%s", m.Name, m.Processor, ctxText(m.ContextLength))
			if m.State != ollama.StateGPU {
				msg = fmt.Sprintf("%s no longer shows a spill: %s%s", m.Name, m.Processor, ctxText(m.ContextLength))
				if m.State == ollama.StateUnknown {
					msg += fmt.Sprintf(" (the server reports sizes that make no sense: size %d, in VRAM %d)", m.Size, m.SizeVRAM)
				}
			}
			add(Event{Kind: EventSpillEnded, Model: m.Name, Processor: m.Processor, Size: m.Size, ContextLength: m.ContextLength, Message: msg})
		}
		if m.RAMWarning != "" && !w.ramWarn[k] {
			w.ramWarn[k] = true
			add(Event{Kind: EventSwapRisk, Model: m.Name, Size: m.Size, ContextLength: m.ContextLength, Message: m.RAMWarning})
		}
		if e, ok := w.checkThrash(k, m.Name, now); ok {
			add(e)
		}
		if !w.prevHas(k) {
			if e, ok := w.noteSwap(m, cur, now); ok {
				add(e)
			}
		}
	}
	for k, g := range w.gone {
		if now.Sub(g.since) >= w.opts.ReloadGrace {
			add(Event{Kind: EventUnloaded, Model: g.Name, ContextLength: g.ContextLength,
				Message: fmt.Sprintf("%s unloaded", g.Name)})
			delete(w.gone, k)
			delete(w.ramWarn, k)
		}
	}
	w.prev = cur
	return summarise(events)
}

// dedupe keeps one entry per model: a server that lists a model twice (seen
// with some proxies and old servers) would otherwise make the two entries
// take turns and flap the model's state at every poll. The entry kept is
// the same whatever the order: a spilled one first, then the larger, then
// the larger context.
func dedupe(ms []Model) []Model {
	best := make(map[string]int, len(ms))
	out := make([]Model, 0, len(ms))
	for _, m := range ms {
		k := ollama.ModelKey(m.Name)
		i, seen := best[k]
		if !seen {
			best[k] = len(out)
			out = append(out, m)
			continue
		}
		o := out[i]
		if better := cmp.Or(cmpBool(m.Spilled, o.Spilled), cmp.Compare(m.Size, o.Size), cmp.Compare(m.ContextLength, o.ContextLength), strings.Compare(o.Name, m.Name)); better > 0 {
			out[i] = m
		}
	}
	return out
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// Summaries: a poll whose events exceed maxEvents says each kind with more
// than summaryAfter events in one event, naming the first few models.
const (
	maxEvents    = 20
	summaryAfter = 3
	summaryNames = 5
)

// summarise shortens the events of one poll when a huge /api/ps (hundreds
// of models) would write hundreds of lines: one event per kind then, with a
// count and the first few names.
func summarise(events []Event) []Event {
	if len(events) <= maxEvents {
		return events
	}
	byKind := map[EventKind][]Event{}
	var order []EventKind
	for _, e := range events {
		if byKind[e.Kind] == nil {
			order = append(order, e.Kind)
		}
		byKind[e.Kind] = append(byKind[e.Kind], e)
	}
	out := make([]Event, 0, len(order))
	for _, k := range order {
		es := byKind[k]
		if len(es) <= summaryAfter {
			out = append(out, es...)
			continue
		}
		names := make([]string, 0, summaryNames)
		for _, e := range es[:min(len(es), summaryNames)] {
			names = append(names, termtext.Clean(e.Model))
		}
		more := ""
		if len(es) > summaryNames {
			more = fmt.Sprintf(" and %d more", len(es)-summaryNames)
		}
		out = append(out, Event{Kind: k, Time: es[0].Time, Host: es[0].Host, Count: len(es),
			Message: fmt.Sprintf("%d models %s: %s%s", len(es), summaryVerb[k], strings.Join(names, ", "), more)})
	}
	return out
}

// summaryVerb says what happened to the models of a summary.
var summaryVerb = map[EventKind]string{
	EventLoaded:         "loaded",
	EventUnloaded:       "unloaded",
	EventContextChanged: "reloaded with another context",
	EventSpillStarted:   "spilled onto the CPU",
	EventSpillEnded:     "back whole on the GPU",
	EventSwapRisk:       "will not fit in memory",
	EventThrash:         "keep reloading",
}

func (w *Watcher) prevHas(k string) bool {
	_, ok := w.prev[k]
	return ok
}

// noteSwap records that m appeared while models that left /api/ps shortly
// before are still gone, and reports eviction thrash once per window for
// a pair of models that swapped thrashSwaps times: they do not fit on the
// GPU together. cur is what /api/ps lists now.
func (w *Watcher) noteSwap(m Model, cur map[string]Model, now time.Time) (Event, bool) {
	keep := w.swaps[:0]
	for _, s := range w.swaps {
		if now.Sub(s.at) <= thrashWindow {
			keep = append(keep, s)
		}
	}
	w.swaps = keep
	var pairs [][2]string
	for k, g := range w.gone {
		if g.swapped || now.Sub(g.since) > swapGap || ollama.SameModel(g.Name, m.Name) {
			continue
		}
		g.swapped = true
		w.gone[k] = g
		w.swaps = append(w.swaps, swap{at: now, in: m, out: g.Model})
		pairs = append(pairs, pairKey(m.Name, g.Name))
	}
	slices.SortFunc(pairs, func(a, b [2]string) int { return strings.Compare(a[0]+a[1], b[0]+b[1]) })
	for _, p := range pairs {
		if t, ok := w.evicted[p]; ok && now.Sub(t) < thrashWindow {
			continue
		}
		var n int
		latest := map[string]Model{}
		for _, s := range w.swaps {
			if pairKey(s.in.Name, s.out.Name) == p {
				n++
				latest[ollama.ModelKey(s.in.Name)], latest[ollama.ModelKey(s.out.Name)] = s.in, s.out
			}
		}
		if n < thrashSwaps {
			continue
		}
		w.evicted[p] = now
		return evictionEvent(latest[p[0]], latest[p[1]], n, cur, w.opts.Hints), true
	}
	return Event{}, false
}

// pairKey returns the ModelKeys of a and b, sorted.
func pairKey(a, b string) [2]string {
	ka, kb := ollama.ModelKey(a), ollama.ModelKey(b)
	if kb < ka {
		ka, kb = kb, ka
	}
	return [2]string{ka, kb}
}

// evictionEvent describes n swaps of a and b, with what the GPU holds now,
// and names the joint tune that would end them: the larger model beside
// the smaller at the context it ran with, with the commands of h.
func evictionEvent(a, b Model, n int, cur map[string]Model, h hint.Hints) Event {
	big, small := a, b
	if small.Size > big.Size {
		big, small = small, big
	}
	with := small.Name
	if small.ContextLength > 0 {
		with = fmt.Sprintf("%s=%d", small.Name, small.ContextLength)
	}
	var holds []string
	for _, m := range cur {
		holds = append(holds, fmt.Sprintf("%s (%s, %s)", m.Name, format.HumanBytes(m.Size), m.Processor))
	}
	slices.Sort(holds)
	msg := fmt.Sprintf("%s (%s%s) and %s (%s%s) unloaded each other %d times in %s: they do not fit on the GPU together, so every switch between them reloads one. "+
		"The GPU now holds %s. %s finds the context that leaves room for both; then %s",
		big.Name, format.HumanBytes(big.Size), ctxText(big.ContextLength), small.Name, format.HumanBytes(small.Size), ctxText(small.ContextLength),
		n, thrashWindow, strings.Join(holds, ", "), h.Cmd("tune", big.Name, "--with", with), h.Cmd("fix", "all"))
	return Event{Kind: EventEvictionThrash, Model: big.Name, Size: big.Size, ContextLength: big.ContextLength,
		Companions: []string{with}, Message: msg}
}

// reloading reports whether a model left /api/ps recently and may be
// reloading, which keeps the watcher polling fast.
func (w *Watcher) reloading() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.gone) > 0
}

func (w *Watcher) noteLoad(k string, ctx int, now time.Time) {
	ls := append(w.loads[k], load{now, ctx})
	for len(ls) > 0 && now.Sub(ls[0].at) > thrashWindow {
		ls = ls[1:]
	}
	w.loads[k] = ls
}

// checkThrash reports reload thrash for model k once per window.
func (w *Watcher) checkThrash(k, name string, now time.Time) (Event, bool) {
	ls := w.loads[k]
	if len(ls) < thrashLoads {
		return Event{}, false
	}
	if t, ok := w.thrash[k]; ok && now.Sub(t) < thrashWindow {
		return Event{}, false
	}
	var ctxs []int
	for _, l := range ls {
		if l.ctx > 0 && !slices.Contains(ctxs, l.ctx) {
			ctxs = append(ctxs, l.ctx)
		}
	}
	if len(ctxs) < 2 {
		return Event{}, false
	}
	w.thrash[k] = now
	slices.Sort(ctxs)
	parts := make([]string, len(ctxs))
	for i, c := range ctxs {
		parts[i] = fmt.Sprint(c)
	}
	return Event{Kind: EventThrash, Model: name, Contexts: ctxs,
		Message: fmt.Sprintf("%s was reloaded %d times in %s with context lengths %s: two clients ask for different num_ctx, and every switch reloads the model. Give them the same context (%s)",
			name, len(ls), thrashWindow, strings.Join(parts, ", "), w.opts.Hints.Line("fix", "all"))}, true
}

func ctxText(n int) string {
	if n <= 0 {
		return ""
	}
	return fmt.Sprintf(", context %d", n)
}

// SpillEvent is the spill_started event for m (without time and host),
// naming the commands of h. The daemon uses it too, to judge a model
// afresh after a tune.
func SpillEvent(m Model, h hint.Hints) Event {
	return Event{Kind: EventSpillStarted, Model: m.Name, Processor: m.Processor, Size: m.Size, ContextLength: m.ContextLength,
		Message: spillText(m, h)}
}

func spillText(m Model, h hint.Hints) string {
	s := fmt.Sprintf("%s spilled onto the CPU: %s, %s%s", m.Name, format.HumanBytes(m.Size), m.Processor, ctxText(m.ContextLength))
	if m.TunedContext != nil {
		s += fmt.Sprintf("; %d stays on the GPU", *m.TunedContext)
	} else {
		s += fmt.Sprintf("; run %s to find the largest context that stays on the GPU", h.Cmd("tune", m.Name))
	}
	return s
}

// describe turns a failed request into a sentence that names the server and
// says what to do.
func describe(err error, host *url.URL) string {
	h := host.String()
	var se api.StatusError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("Ollama at %s did not answer in time; is the server overloaded, or is this the right address?", h)
	case isConnError(err):
		return fmt.Sprintf("cannot reach Ollama at %s: %v. Start it with `ollama serve`, or point ctxfit at it with --host or OLLAMA_HOST", h, unwrapNet(err))
	case errors.As(err, &se):
		if se.StatusCode == 404 {
			return fmt.Sprintf("%s answered 404 to /api/ps: this is not an Ollama server, or a very old one; check --host or OLLAMA_HOST", h)
		}
		return fmt.Sprintf("Ollama at %s answered %v", h, ollama.StatusError{StatusError: se})
	case errors.Is(err, ollama.ErrTooLarge):
		return fmt.Sprintf("unexpected answer from %s: %v", h, err) // it asks already
	}
	return fmt.Sprintf("unexpected answer from %s: %v; is this an Ollama server?", h, err)
}

func isConnError(err error) bool {
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &oe) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	// The api package flattens some transport errors into strings.
	s := err.Error()
	return strings.Contains(s, "connection refused") || strings.Contains(s, "EOF") && !strings.Contains(s, "unexpected EOF") ||
		strings.Contains(s, "no such host") || strings.Contains(s, "connection reset")
}

func unwrapNet(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err
	}
	return err
}

// Subscribe returns a channel that receives an Update after every poll that
// succeeded or produced events, and a function that ends the subscription
// and closes the channel. The watcher never waits for a subscriber.
func (w *Watcher) Subscribe() (<-chan Update, func()) { return w.subs.Subscribe() }

func cloneSnapshot(s Snapshot) Snapshot {
	s.Models = slices.Clone(s.Models)
	return s
}

// LogEvent writes e to logger, warnings and errors at their level. What the
// server supplied (model names, messages) is escaped (termtext.Clean).
func LogEvent(logger *slog.Logger, e Event) { logEvent(logger, e, 0, 0) }

func logEvent(logger *slog.Logger, e Event, repeated, suppressed int) {
	level := slog.LevelInfo
	switch e.Kind {
	case EventSpillStarted, EventThrash, EventEvictionThrash, EventSwapRisk, EventUnreachable:
		level = slog.LevelWarn
	case EventError:
		level = slog.LevelError
	}
	attrs := []slog.Attr{slog.String("event", string(e.Kind)), slog.String("host", termtext.Clean(e.Host))}
	if e.Model != "" {
		attrs = append(attrs, slog.String("model", termtext.Clean(e.Model)))
	}
	if e.Processor != "" {
		attrs = append(attrs, slog.String("processor", termtext.Clean(e.Processor)))
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
	if len(e.Companions) > 0 {
		attrs = append(attrs, slog.Any("companions", e.Companions))
	}
	if e.Count > 0 {
		attrs = append(attrs, slog.Int("models", e.Count))
	}
	if repeated > 0 {
		attrs = append(attrs, slog.Int("previous_repeated", repeated))
	}
	if suppressed > 0 {
		attrs = append(attrs, slog.Int("suppressed", suppressed))
	}
	logger.LogAttrs(context.Background(), level, termtext.Clean(e.Message), attrs...)
}

// EventLog writes events to a log without repeating itself. For the
// watcher's own events about the server's state (loaded, unloaded, context
// changed, spill started and ended, swap risk, reachable, unreachable,
// error): an event identical to the last one written about the same model
// (same kind and message) is counted instead of written, and the count goes
// with the next line about that model (previous_repeated=N); and a model
// whose state changes more than MaxPerMinute times in a minute gets no more
// lines until the minute is over, then one with the number left out
// (suppressed=N). What other parts of ctxfit publish (a tune, a config
// fixed or warned about, reload thrash, which has its own window) is
// written as it comes.
type EventLog struct {
	Logger *slog.Logger
	// MaxPerMinute is the most state lines about one model per minute; 0
	// means 20.
	MaxPerMinute int

	mu    sync.Mutex
	about map[string]*eventLine
}

// eventLine is what EventLog remembers about one model (or, for "", the
// server).
type eventLine struct {
	kind       EventKind
	msg        string
	repeated   int         // identical events since the last line
	times      []time.Time // lines within the last minute
	suppressed int         // events left out while over MaxPerMinute
}

// stateKinds are the events EventLog coalesces.
var stateKinds = map[EventKind]bool{
	EventLoaded: true, EventUnloaded: true, EventContextChanged: true, EventSpillStarted: true, EventSpillEnded: true,
	EventSwapRisk: true, EventReachable: true, EventUnreachable: true, EventError: true,
}

// Log writes e, or counts it (see EventLog).
func (l *EventLog) Log(e Event) {
	if !stateKinds[e.Kind] {
		logEvent(l.Logger, e, 0, 0)
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.about == nil || len(l.about) > 10000 {
		l.about = map[string]*eventLine{}
	}
	key := e.Host + "\x00" + ollama.ModelKey(e.Model)
	if e.Model == "" {
		key = e.Host
	}
	a := l.about[key]
	if a == nil {
		a = &eventLine{}
		l.about[key] = a
	}
	if a.kind == e.Kind && a.msg == e.Message {
		a.repeated++
		return
	}
	now := e.Time
	if now.IsZero() {
		now = time.Now()
	}
	for len(a.times) > 0 && now.Sub(a.times[0]) >= time.Minute {
		a.times = a.times[1:]
	}
	limit := l.MaxPerMinute
	if limit <= 0 {
		limit = 20
	}
	if len(a.times) >= limit {
		a.suppressed++
		return
	}
	repeated, suppressed := a.repeated, a.suppressed
	a.kind, a.msg, a.repeated, a.suppressed = e.Kind, e.Message, 0, 0
	a.times = append(a.times, now)
	logEvent(l.Logger, e, repeated, suppressed)
}

// gpuSeen reports whether a GPU was ever seen on the host h describes.
func gpuSeen(h *state.HostState) bool { return h != nil && h.GPUSeen }

// mergeUpdates folds an older update that a slow consumer has not read into
// the newer one: the newer state, and the events of both.
func mergeUpdates(older, newer Update) Update {
	newer.Events = append(slices.Clone(older.Events), newer.Events...)
	return newer
}
