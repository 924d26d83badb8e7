package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ctxfit/ctxfit/internal/atomicfile"
	"github.com/ctxfit/ctxfit/internal/ollamahost"
	"github.com/ctxfit/ctxfit/ollama"
)

// StateDirEnv names the environment variable that moves ctxfit's state
// directory (tests and portable installs use it).
const StateDirEnv = "CTXFIT_STATE_DIR"

// DefaultStateDir returns where ctxfit keeps its state: $CTXFIT_STATE_DIR,
// else ctxfit/ under the user's configuration directory (~/.config on Linux,
// ~/Library/Application Support on macOS, %AppData% on Windows).
func DefaultStateDir(getenv func(string) string) (string, error) {
	if d := getenv(StateDirEnv); d != "" {
		return d, nil
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find a directory for ctxfit's state (set %s): %w", StateDirEnv, err)
	}
	return filepath.Join(d, "ctxfit"), nil
}

// Data is everything ctxfit remembers between runs.
type Data struct {
	Settings Settings              `json:"settings"`
	Hosts    map[string]*HostState `json:"hosts,omitempty"` // keyed by ollamahost.Key
	Tuned    []Tuned               `json:"tuned,omitempty"`
	// Leases mark tunes running in a process that could not tell a running
	// ctxfit about them (no control API: another user, another machine
	// sharing the state, an older daemon), so that the daemon takes the
	// probe loads for what they are.
	Leases []TuneLease `json:"tune_leases,omitempty"`
}

// TuneLease marks one running tune. The tuner renews it while it works and
// removes it when done; one whose tuner died expires by itself.
type TuneLease struct {
	Host    string    `json:"host"` // ollamahost.Key
	Model   string    `json:"model"`
	By      string    `json:"by"` // who tunes: "ctxfit tune (pid 1234 on box)"
	Started time.Time `json:"started"`
	Expires time.Time `json:"expires"`
}

// PutLease records l, replacing a lease for the same host and model.
func (d *Data) PutLease(l TuneLease) {
	d.DropLease(l.Host, l.Model)
	d.Leases = append(d.Leases, l)
}

// DropLease removes the lease for model on host, and every expired one.
func (d *Data) DropLease(host, model string) {
	now := time.Now()
	kept := d.Leases[:0]
	for _, l := range d.Leases {
		if (l.Host == host && ollama.SameModel(l.Model, model)) || !l.Expires.After(now) {
			continue
		}
		kept = append(kept, l)
	}
	d.Leases = kept
	if len(d.Leases) == 0 {
		d.Leases = nil
	}
}

// LiveLeases returns the leases on host that have not expired at now.
func (d *Data) LiveLeases(host string, now time.Time) []TuneLease {
	var out []TuneLease
	for _, l := range d.Leases {
		if l.Host == host && l.Expires.After(now) {
			out = append(out, l)
		}
	}
	return out
}

// Settings are the user's choices, shared by the tray and the CLI.
type Settings struct {
	// AutoFix makes ctxfit rewrite client configs with the tuned values
	// after each tune and whenever a watched config changes.
	AutoFix bool `json:"auto_fix"`
	// NotificationsOff silences desktop notifications (the log still has
	// every event).
	NotificationsOff bool `json:"notifications_off"`
	// MetricsAddr is where `ctxfit run` serves Prometheus metrics
	// (HOST:PORT); empty means not at all.
	MetricsAddr string `json:"metrics_addr,omitempty"`
	// WatchHosts lists the Ollama servers `ctxfit run` and `ctxfit status`
	// watch when neither --host nor OLLAMA_HOST names one (set by `ctxfit
	// run --host A --host B`); empty means the default server alone.
	WatchHosts []string `json:"watch_hosts,omitempty"`
}

// HostState is what ctxfit knows about one Ollama server.
type HostState struct {
	// GPUSeen is set once any model on this host had size_vram > 0.
	GPUSeen bool `json:"gpu_seen,omitempty"`
	// GPU is the user's own answer ("present" or "absent"); it beats
	// everything ctxfit infers. Empty when the user said nothing.
	GPU ollama.GPUPresence `json:"gpu,omitempty"`
	// GPUBound is what the tunes on this host measured of the GPU's
	// usable memory; nil until one did. The tuner takes it as a hint for
	// choosing its loads, never as proof: the user may have changed
	// OLLAMA_GPU_OVERHEAD or closed a program that used VRAM since.
	GPUBound *GPUBound `json:"gpu_bound,omitempty"`
}

// GPUBound bounds the GPU memory an Ollama server lends a model: at least
// Lo bytes (a load of that size ran 100% on the GPU, or that much of a
// spilled one did) and probably less than Up (a load of that size spilled,
// or one more layer would not fit); Up is 0 when unbounded.
type GPUBound struct {
	Lo int64 `json:"lo"`
	Up int64 `json:"up,omitempty"`
	// MeasuredAt is when the last tune that changed it ran.
	MeasuredAt time.Time `json:"measured_at"`
	// Beside is the ollama.ModelKey of each other model loaded on the
	// server when it was measured, sorted; empty when there were none.
	// Their memory was not the tuned model's to take.
	Beside []string `json:"beside,omitempty"`
}

// Merge returns the bound after a newer measurement n: n where the two
// disagree or were measured beside different models (the GPU changed),
// else their intersection.
func (b *GPUBound) Merge(n GPUBound) GPUBound {
	if b == nil || !slices.Equal(b.Beside, n.Beside) {
		return n
	}
	lo, up := max(b.Lo, n.Lo), b.Up
	switch {
	case up == 0:
		up = n.Up
	case n.Up > 0:
		up = min(up, n.Up)
	}
	if up > 0 && up <= lo {
		return n
	}
	return GPUBound{Lo: lo, Up: up, MeasuredAt: n.MeasuredAt, Beside: n.Beside}
}

// Tuned is the result of one tune: the largest context, a multiple of Step,
// at which Model loaded 100% on the GPU of Host with Parallel slots.
type Tuned struct {
	Host           string    `json:"host"` // ollamahost.Key
	Model          string    `json:"model"`
	Digest         string    `json:"digest,omitempty"`
	Parallel       int       `json:"parallel"`
	Context        int       `json:"context"`
	Step           int       `json:"step"`
	Loads          int       `json:"loads"`
	TrainedContext int       `json:"trained_context,omitempty"`
	MeasuredAt     time.Time `json:"measured_at"`
	// BytesPerToken is what one more token of context added to the
	// model's size in the tune's loads; 0 when fewer than two sizes were
	// measured. It lets ctxfit say what a larger GPU budget would buy.
	BytesPerToken float64 `json:"bytes_per_token,omitempty"`
	// GPUBudget is, on an Apple Silicon host, the GPU's share of unified
	// memory when the tune ran (see package unified); 0 elsewhere. A tune
	// made under another budget is out of date.
	GPUBudget int64 `json:"gpu_budget,omitempty"`
	// Companions are the models that ran beside Model during a joint
	// tune, each at its context: Context is then the largest at which the
	// whole set stays on the GPU together. Empty for a tune of Model alone.
	Companions []Companion `json:"companions,omitempty"`
}

// Companion is a model that ran beside a jointly tuned one.
type Companion struct {
	Model string `json:"model"`
	// Context is the num_ctx it ran with (as /api/ps reported it when it
	// did); its clients should ask for this one.
	Context int `json:"context"`
}

// Joint reports whether t is the result of a joint tune.
func (t Tuned) Joint() bool { return len(t.Companions) > 0 }

// Set returns the models of t: Model and its companions.
func (t Tuned) Set() []string {
	set := []string{t.Model}
	for _, c := range t.Companions {
		set = append(set, c.Model)
	}
	return set
}

// ContextFor returns the context t gives model: Context for Model, the
// companion's own context for a companion; false when model is not in t.
func (t Tuned) ContextFor(model string) (int, bool) {
	if ollama.SameModel(t.Model, model) {
		return t.Context, true
	}
	for _, c := range t.Companions {
		if ollama.SameModel(c.Model, model) {
			return c.Context, true
		}
	}
	return 0, false
}

// SetKey returns the key of a set of models: their ollama.ModelKey, sorted
// and joined by " + ", each once. The order of the models and the spelling
// of their names do not matter.
func SetKey(models []string) string {
	keys := make([]string, 0, len(models))
	for _, m := range models {
		k := ollama.ModelKey(m)
		if k != "" && !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return strings.Join(keys, " + ")
}

// TunedFor returns the most recent tuned value for model alone on host. A
// result measured for the same digest is preferred over one for an older
// digest of the same name; digest may be empty when it is not known.
// Joint tunes are left out: see TunedSet.
func (d *Data) TunedFor(host, model, digest string) (Tuned, bool) {
	var best Tuned
	found := false
	for _, t := range d.Tuned {
		if t.Host != host || !ollama.SameModel(t.Model, model) || t.Joint() {
			continue
		}
		better := !found ||
			(digest != "" && t.Digest == digest && best.Digest != digest) ||
			((digest == "" || (t.Digest == digest) == (best.Digest == digest)) && t.MeasuredAt.After(best.MeasuredAt))
		if better {
			best, found = t, true
		}
	}
	return best, found
}

// TunedForParallel is TunedFor among the results measured with parallel
// slots, when there is one; else TunedFor's answer, whatever its slots.
// parallel 0 means the server's slots are unknown: TunedFor. A server with
// more slots needs more memory per context token, so a result measured for
// other slots fits only approximately.
func (d *Data) TunedForParallel(host, model, digest string, parallel int) (Tuned, bool) {
	if parallel > 0 {
		sub := Data{}
		for _, t := range d.Tuned {
			if t.Parallel == parallel {
				sub.Tuned = append(sub.Tuned, t)
			}
		}
		if t, ok := sub.TunedFor(host, model, digest); ok {
			return t, true
		}
	}
	return d.TunedFor(host, model, digest)
}

// TunedSet returns the most recent joint tune on host of exactly the
// models in set (two or more, in any order, whichever of them was tuned),
// and false when there is none.
func (d *Data) TunedSet(host string, set []string) (Tuned, bool) {
	key := SetKey(set)
	var best Tuned
	found := false
	for _, t := range d.Tuned {
		if t.Host != host || !t.Joint() || SetKey(t.Set()) != key {
			continue
		}
		if !found || t.MeasuredAt.After(best.MeasuredAt) {
			best, found = t, true
		}
	}
	return best, found
}

// PutTuned records t, replacing an earlier result for the same host, model,
// digest, parallel count and companions.
func (d *Data) PutTuned(t Tuned) {
	if i := d.tunedIndex(t); i >= 0 {
		d.Tuned[i] = t
		return
	}
	d.Tuned = append(d.Tuned, t)
	sort.SliceStable(d.Tuned, func(i, j int) bool {
		if d.Tuned[i].Host != d.Tuned[j].Host {
			return d.Tuned[i].Host < d.Tuned[j].Host
		}
		return d.Tuned[i].Model < d.Tuned[j].Model
	})
}

// Host returns the state of host, creating it when missing.
func (d *Data) Host(host string) *HostState {
	if d.Hosts == nil {
		d.Hosts = map[string]*HostState{}
	}
	h := d.Hosts[host]
	if h == nil {
		h = &HostState{}
		d.Hosts[host] = h
	}
	return h
}

// GPUBound returns what tunes measured of host's GPU memory, nil when
// nothing.
func (d *Data) GPUBound(host string) *GPUBound {
	if h := d.Hosts[host]; h != nil {
		return h.GPUBound
	}
	return nil
}

// GPU returns what ctxfit knows about host's GPU: the user's setting, else
// present when a model was once seen in VRAM there, else local (the evidence
// from this machine's own hardware, GPUUnknown when host is remote).
func (d *Data) GPU(host string, local ollama.GPUPresence) ollama.GPUPresence {
	if h := d.Hosts[host]; h != nil {
		if h.GPU == ollama.GPUPresent || h.GPU == ollama.GPUAbsent {
			return h.GPU
		}
		if h.GPUSeen {
			return ollama.GPUPresent
		}
	}
	if local == "" {
		return ollama.GPUUnknown
	}
	return local
}

// Store keeps Data in state.json under a directory. It is safe for use by
// several goroutines; separate processes (the tray and a `ctxfit tune` in a
// terminal) each re-read the file on every access and replace it atomically,
// so the last writer of a field wins and no reader sees a torn file.
type Store struct {
	dir string
	mu  sync.Mutex

	// What Peek read last (nil: nothing, or an Update since), and the
	// file it read it from: Peek reads the file again only when it
	// changed.
	peeked   *Data
	peekInfo fs.FileInfo // nil: no file then
	peekAt   time.Time
}

// peekMaxAge bounds how long Peek trusts an unchanged file's size, time and
// identity: a file system with coarse timestamps could show two writes of
// the same size in one tick, and a freed file ID can be reused at once.
const peekMaxAge = 30 * time.Second

// OpenStore returns the store in dir. Nothing is read or created until used.
func OpenStore(dir string) *Store { return &Store{dir: dir} }

// Dir returns the store's directory; other state (backups, logs) lives there too.
func (s *Store) Dir() string { return s.dir }

func (s *Store) path() string { return filepath.Join(s.dir, "state.json") }

// Load reads the current data. A missing file is empty data, not an error.
func (s *Store) Load() (*Data, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.load()
}

// Peek returns the current data as Load does, for readers that look every
// second (the watcher): it reads and parses the file again only when its
// size, modification time or identity changed, this Store wrote it, or
// peekMaxAge passed. The Data is shared by every caller of Peek: read it,
// never modify it (use Update to change the state).
func (s *Store) Peek() (*Data, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	info, err := os.Stat(s.path())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read ctxfit state: %w", err)
	}
	now := time.Now()
	if s.peeked != nil && now.Sub(s.peekAt) < peekMaxAge && sameFile(info, s.peekInfo) {
		return s.peeked, nil
	}
	d, err := s.load()
	if err != nil {
		s.peeked = nil
		return nil, err
	}
	s.peeked, s.peekInfo, s.peekAt = d, info, now
	return d, nil
}

// sameFile reports whether a and b (nil: no file) describe the same
// unchanged file.
func sameFile(a, b fs.FileInfo) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime()) && a.Mode() == b.Mode()
}

func (s *Store) load() (*Data, error) {
	d := &Data{}
	b, _, err := atomicfile.ReadRegular(s.path(), 0) // never blocks on a FIFO
	if errors.Is(err, os.ErrNotExist) {
		return d, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read ctxfit state: %w", err)
	}
	if err := json.Unmarshal(b, d); err != nil {
		return nil, fmt.Errorf("ctxfit state %s is damaged (move it away to start afresh): %w", s.path(), err)
	}
	d.canonicalHosts()
	return d, nil
}

// canonicalHosts rewrites every host key to ollamahost.CanonicalKey and
// merges what older versions stored under two keys for one server (such as
// "http://:18434" beside "http://127.0.0.1:18434"): the GPU facts are
// combined, and of two tuned values for one model, digest and parallel
// count the later one is kept.
func (d *Data) canonicalHosts() {
	if len(d.Hosts) > 0 {
		hosts := make(map[string]*HostState, len(d.Hosts))
		for k, h := range d.Hosts {
			if h == nil {
				continue
			}
			k = ollamahost.CanonicalKey(k)
			o := hosts[k]
			if o == nil {
				hosts[k] = h
				continue
			}
			o.GPUSeen = o.GPUSeen || h.GPUSeen
			if o.GPU == "" {
				o.GPU = h.GPU
			}
			if b := h.GPUBound; b != nil && (o.GPUBound == nil || b.MeasuredAt.After(o.GPUBound.MeasuredAt)) {
				o.GPUBound = b
			}
		}
		d.Hosts = hosts
	}
	tuned := d.Tuned
	d.Tuned = nil
	for _, t := range tuned {
		t.Host = ollamahost.CanonicalKey(t.Host)
		if i := d.tunedIndex(t); i >= 0 {
			if t.MeasuredAt.After(d.Tuned[i].MeasuredAt) {
				d.Tuned[i] = t
			}
			continue
		}
		d.PutTuned(t)
	}
}

// tunedIndex returns the index of the result PutTuned(t) would replace, or -1.
func (d *Data) tunedIndex(t Tuned) int {
	for i, o := range d.Tuned {
		if o.Host == t.Host && ollama.SameModel(o.Model, t.Model) && o.Digest == t.Digest && o.Parallel == t.Parallel &&
			SetKey(o.Set()) == SetKey(t.Set()) {
			return i
		}
	}
	return -1
}

// Update loads the data, lets fn change it and saves it atomically. Nothing
// is written when fn returns an error.
func (s *Store) Update(fn func(*Data) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.load()
	if err != nil {
		return err
	}
	if err := fn(d); err != nil {
		return err
	}
	s.peeked = nil // a Peek now reads the file again, even if it looks the same
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return fmt.Errorf("encode ctxfit state: %w", err)
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("create ctxfit state directory: %w", err)
	}
	return atomicfile.WriteFile(s.path(), append(b, '\n'), 0o600)
}
