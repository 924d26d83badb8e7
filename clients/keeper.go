package clients

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ctxfit/ctxfit/internal/hint"
)

// Keeper keeps clients' configs asking for the tuned values. It watches
// every client's files (see Watch); when one changes on disk and auto-fix is
// on, it puts the tuned values back, and when auto-fix is off it warns about
// entries that ask for more than stays on the GPU.
//
// It never loops: it knows its own writes by their content hash, never
// rewrites a file that is already right, and when something keeps reverting
// a file (more than 3 times in a minute) it leaves the file alone for
// BackOff and says so.
type Keeper struct {
	Fixer *Fixer
	// Clients are the clients to keep fixed; nil means All().
	Clients []Client
	// Target returns the values to keep: the latest tuned value of each
	// model on the watched host. It is called for each check, so that a new
	// tune applies at once.
	Target func() (Target, error)
	// AutoFix reports whether to fix files (true) or only warn; nil means
	// always fix. It is read for each check, so the setting can change
	// while Run runs.
	AutoFix func() bool
	// Notify receives what Keeper did or found; nil discards it. It is
	// called with Keeper's lock held: it must not call back into Keeper.
	Notify func(Notice)
	// Checked, when set, is called after each look at c's config, whatever
	// came of it, so that a cache of what clients ask stays current
	// without re-reading every config on every event. held reports whether
	// Keeper leaves the file alone after an Undo. It is called with
	// Keeper's lock held: it must not call back into Keeper.
	Checked func(c Client, held bool)
	// Debounce is how long a file must be quiet before it is checked; 0
	// means DefaultDebounce.
	Debounce time.Duration
	// BackOff is how long Keeper leaves a file alone after a fight with
	// another writer; 0 means 10 minutes.
	BackOff time.Duration

	mu    sync.Mutex
	files map[string]*keptFile // by client name

	ready func() // called once the watches are in place (tests wait for it)
}

// keptFile is what Keeper remembers about one client's config.
type keptFile struct {
	wrote  string      // hash of what Keeper last wrote
	fixes  []time.Time // when Keeper put the values back after a revert, within the last minute
	paused time.Time   // Keeper leaves the file alone until then
	warned string      // the last "asks for more" warning, so it is said once
	nan    string      // the last "not a number" warning, so it is said once
	failed string      // the content and error of the last failure, so it is said once
	// held is the hash of what an Undo put back: Keeper leaves the file
	// alone while it holds exactly that, and keeps it fixed again once the
	// user changes it.
	held string
}

// The limits of a fight: more than maxReverts reverts within revertWindow
// makes Keeper back off.
const (
	maxReverts   = 3
	revertWindow = time.Minute
)

// NoticeKind says what a Notice reports.
type NoticeKind string

// The kinds of Notice.
const (
	NoticeFixed     NoticeKind = "fixed"      // a config was rewritten with the tuned values
	NoticeTooLarge  NoticeKind = "too-large"  // with auto-fix off, entries ask for more than the tuned context
	NoticeBackedOff NoticeKind = "backed-off" // something keeps reverting a config; Keeper leaves it alone for now
	NoticeFailed    NoticeKind = "failed"     // a config could not be read or fixed
	NoticeRecovered NoticeKind = "recovered"  // a version left by a killed fix was kept in the backup directory
	// NoticeNotNumber: entries whose context value is not a number, which
	// a fix leaves alone (Asks: the entries, Ask.NotNumber set).
	NoticeNotNumber NoticeKind = "not-a-number"
)

// Notice is one thing Keeper did or found, for the tray and the log.
type Notice struct {
	Kind   NoticeKind
	Client string
	Path   string
	Report *Report // NoticeFixed: what changed
	Asks   []Ask   // NoticeTooLarge: the entries that ask for too much
	Err    error   // NoticeFailed
	Until  time.Time
	// Recovered is where NoticeRecovered kept what was at Path.
	Recovered string
}

// String says what happened in one line, secrets redacted (Redact), naming
// the tray's items and commands without --host (Text with zero Hints).
func (n Notice) String() string { return n.Text(hint.Hints{}) }

// Text is String with the commands of h: a daemon for another server than
// the default one, or one without a tray, says what to run there.
func (n Notice) Text(h hint.Hints) string { return Redact(n.string(h)) }

func (n Notice) string(h hint.Hints) string {
	switch n.Kind {
	case NoticeFixed:
		var parts []string
		for _, c := range n.Report.Changes {
			part := fmt.Sprintf("%s → context %d", c.Label(), c.NewContext)
			if c.NewMaxTokens > 0 && c.NewMaxTokens != c.OldMaxTokens {
				part += fmt.Sprintf(", max tokens %d", c.NewMaxTokens)
			}
			parts = append(parts, part)
		}
		return fmt.Sprintf("%s: fixed %s: %s", n.Client, n.Path, strings.Join(parts, "; "))
	case NoticeTooLarge:
		parts := make([]string, len(n.Asks))
		for i, a := range n.Asks {
			parts[i] = a.String()
		}
		return strings.Join(parts, "; ")
	case NoticeNotNumber:
		parts := make([]string, len(n.Asks))
		for i, a := range n.Asks {
			parts[i] = a.NotNumberText()
		}
		return strings.Join(parts, "; ")
	case NoticeRecovered:
		return fmt.Sprintf("%s: a version of a config that another program wrote while a ctxfit was stopped in the middle of a fix was at %s; ctxfit kept it in %s — compare it with the config and keep what you want", n.Client, n.Path, n.Recovered)
	case NoticeBackedOff:
		return fmt.Sprintf("%s: something keeps changing %s back (more than %d times in a minute); ctxfit leaves it alone until %s — fix it by hand, or %s when that program is done",
			n.Client, n.Path, maxReverts, n.Until.Format("15:04"), h.UseFix(n.Client))
	}
	return fmt.Sprintf("%s: %v", n.Client, n.Err)
}

// why says what made Keeper look at a client's config.
type why int

const (
	changedOnDisk why = iota // the watcher saw the file change
	recheck                  // a new tune or setting: look again
	userAsked                // the user asked for a fix
)

// Run cleans what a killed ctxfit left (Fixer.Clean), watches every
// client's files, checks each client once, and then checks each file that
// changes, until ctx is done.
func (k *Keeper) Run(ctx context.Context) error {
	// What a killed ctxfit left: temporary files, unlisted backups.
	cleaned, err := k.Fixer.Clean(ctx, k.clients())
	k.mu.Lock()
	if err != nil {
		k.notify(Notice{Kind: NoticeFailed, Client: "ctxfit", Err: err})
	}
	for _, c := range cleaned {
		if c.Kept != "" {
			k.notify(Notice{Kind: NoticeRecovered, Client: "ctxfit", Path: c.Path, Recovered: c.Kept})
		}
	}
	k.mu.Unlock()
	byPath := map[string][]Client{}
	var paths []string
	for _, c := range k.clients() {
		f, err := c.Files(k.Fixer.Env)
		if err != nil {
			k.mu.Lock()
			k.notify(Notice{Kind: NoticeFailed, Client: c.Name(), Err: err})
			k.mu.Unlock()
			continue
		}
		for _, p := range f.Watch {
			abs, err := filepath.Abs(p)
			if err != nil {
				continue
			}
			if byPath[abs] == nil {
				paths = append(paths, abs)
			}
			byPath[abs] = append(byPath[abs], c)
		}
	}
	onChange := func(p string) {
		for _, c := range byPath[p] {
			k.check(ctx, c, changedOnDisk)
		}
	}
	// Check once the watches are in place, so that no change slips between.
	return watch(ctx, paths, k.Debounce, onChange, func() {
		k.Check(ctx)
		if k.ready != nil {
			k.ready()
		}
	})
}

// Check looks at every client's config now: after a tune, or when auto-fix
// was switched on. It fixes or warns as a change on disk would, but does not
// count as a revert.
func (k *Keeper) Check(ctx context.Context) {
	for _, c := range k.clients() {
		k.check(ctx, c, recheck)
	}
}

// CheckClient looks at c's config now, as Check does for every client, and
// returns what it wrote (nil when it wrote nothing or only warned).
func (k *Keeper) CheckClient(ctx context.Context, c Client) *Report {
	rep, _ := k.check(ctx, c, recheck)
	return rep
}

// Fix fixes c's config now, whatever the auto-fix setting, even while
// Keeper backs off from it or holds it after an undo (the user's "Fix
// now"), and returns what changed.
func (k *Keeper) Fix(ctx context.Context, c Client) (*Report, error) {
	return k.check(ctx, c, userAsked)
}

// Undo restores c's config as it was before ctxfit's last fix (Fixer.Undo)
// and leaves it alone from then on, auto-fix or not, until its content
// changes again: the user's undo sticks until the user edits the file.
func (k *Keeper) Undo(ctx context.Context, c Client) (*Undone, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	u, err := k.Fixer.Undo(ctx, c)
	if err != nil {
		return nil, err
	}
	st := k.file(c)
	if b, err := os.ReadFile(u.Path); err == nil {
		st.held, st.warned, st.wrote = hash(b), "", ""
	}
	if k.Checked != nil {
		k.Checked(c, st.held != "")
	}
	return u, nil
}

// file returns what Keeper remembers of c's config; k.mu is held.
func (k *Keeper) file(c Client) *keptFile {
	if k.files == nil {
		k.files = map[string]*keptFile{}
	}
	st := k.files[c.Name()]
	if st == nil {
		st = &keptFile{}
		k.files[c.Name()] = st
	}
	return st
}

func (k *Keeper) clients() []Client {
	if k.Clients != nil {
		return k.Clients
	}
	return All()
}

func (k *Keeper) notify(n Notice) {
	if k.Notify != nil {
		k.Notify(n)
	}
}

// check looks at c's config for the given reason and fixes it or warns.
func (k *Keeper) check(ctx context.Context, c Client, reason why) (*Report, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	st := k.file(c)
	if k.Checked != nil {
		defer func() { k.Checked(c, st.held != "") }()
	}
	var sum string // the content's hash, once read
	fail := func(path string, err error) (*Report, error) {
		if key := sum + err.Error(); reason != userAsked && key != st.failed {
			st.failed = key
			k.notify(Notice{Kind: NoticeFailed, Client: c.Name(), Path: path, Err: err})
		}
		return nil, err
	}

	files, err := c.Files(k.Fixer.Env)
	if err != nil {
		return fail("", err)
	}
	if files.Config == "" {
		if reason == userAsked {
			return nil, fmt.Errorf("%s has no config file: %w", c.Name(), ErrNotInstalled)
		}
		return nil, nil
	}
	src, _, err := readConfig(c.Name(), files.Config, files.Config)
	if errors.Is(err, os.ErrNotExist) && reason == changedOnDisk {
		return nil, nil // gone between the event and now; its return is another event
	}
	if err != nil {
		return fail(files.Config, err)
	}
	sum = hash(src)
	if reason == changedOnDisk && sum == st.wrote {
		return nil, nil // Keeper's own write
	}
	switch {
	case st.held == "":
	case reason == userAsked || sum != st.held:
		st.held = "" // the user asked for a fix, or changed the file after the undo
	default:
		return nil, nil // as the undo left it: leave it alone
	}
	t, err := k.Target()
	if err != nil {
		return fail(files.Config, err)
	}

	// Entries whose context is not a number: said once per content,
	// whether or not auto-fix is on, since no fix changes them.
	in := Input{Path: files.Config, Src: src, Overrides: readOverrides(files), V1Readers: files.V1Readers, Getenv: k.Fixer.Env.Getenv, Wrote: k.Fixer.wrote(c)}
	ct, _, _ := t.forClient(c, in)
	asks, asksErr := c.Asks(in, ct)
	var nan []Ask
	for _, a := range asks {
		if a.NotNumber != "" {
			nan = append(nan, a)
		}
	}
	if key := fmt.Sprint(nan); key != st.nan {
		st.nan = key
		if len(nan) > 0 {
			k.notify(Notice{Kind: NoticeNotNumber, Client: c.Name(), Path: files.Config, Asks: nan})
		}
	}

	auto := k.AutoFix == nil || k.AutoFix()
	if !auto && reason != userAsked {
		if asksErr != nil {
			return fail(files.Config, asksErr)
		}
		var over []Ask
		for _, a := range asks {
			if a.TooLarge() {
				over = append(over, a)
			}
		}
		n := Notice{Kind: NoticeTooLarge, Client: c.Name(), Path: files.Config, Asks: over}
		if key := fmt.Sprint(over); key != st.warned {
			st.warned = key
			if len(over) > 0 {
				k.notify(n)
			}
		}
		return nil, nil
	}

	now := time.Now()
	if reason == userAsked {
		st.paused, st.fixes = time.Time{}, nil
	} else if now.Before(st.paused) {
		return nil, nil
	}
	p, err := k.Fixer.plan(ctx, c, t)
	if err != nil {
		return fail(files.Config, err)
	}
	if len(p.res.Changes) == 0 {
		return &Report{Client: c.Name(), Path: files.Config, Warnings: p.res.Warnings}, nil
	}
	if reason == changedOnDisk && st.wrote != "" && sum != st.wrote {
		// Someone put back what Keeper had fixed.
		recent := st.fixes[:0]
		for _, at := range st.fixes {
			if now.Sub(at) < revertWindow {
				recent = append(recent, at)
			}
		}
		st.fixes = append(recent, now)
		if len(st.fixes) > maxReverts {
			st.paused = now.Add(k.backOff())
			k.notify(Notice{Kind: NoticeBackedOff, Client: c.Name(), Path: files.Config, Until: st.paused})
			return nil, nil
		}
	}
	rep, err := k.Fixer.Fix(ctx, c, t, false)
	if err != nil {
		return fail(files.Config, err)
	}
	st.failed = ""
	if rep.Written {
		st.wrote, st.warned = rep.sum, ""
		k.notify(Notice{Kind: NoticeFixed, Client: c.Name(), Path: rep.Path, Report: rep})
	}
	return rep, nil
}

func (k *Keeper) backOff() time.Duration {
	if k.BackOff > 0 {
		return k.BackOff
	}
	return 10 * time.Minute
}
