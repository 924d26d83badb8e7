package clients

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/ctxfit/ctxfit/internal/atomicfile"
	"github.com/ctxfit/ctxfit/internal/filelock"
)

// Before each fix, the previous version of the config goes to
// <state>/backups/<client>/, listed in index.json there with the hash of
// what ctxfit wrote, newest last. Undo restores the newest one, but only
// while the config still holds what ctxfit wrote: later edits are never
// overwritten. The index then remembers the undo (what it put back), so
// that the next Undo can say plainly that nothing of ctxfit's is left to
// undo rather than call the version it restored a change.
//
// index.lock beside index.json is held (across processes) by every fix,
// undo and cleanup of the client, so that parallel fixes keep every entry.
// Entries are checked when read: a backup must be a plain file name in the
// backup directory and an entry's config must be the client's config, so
// that an edited index cannot make undo read or write other files. Clean
// removes what a killed ctxfit left: temporary files beside the configs and
// in the backup directory, and backups that no entry lists.

// ErrNothingToUndo reports that ctxfit has no fix of a client to undo:
// none was made, or the config no longer holds one (errors.Is matches the
// errors that say which).
var ErrNothingToUndo = errors.New("no fix to undo")

// nothingToUndo is an ErrNothingToUndo that says why in its own words.
type nothingToUndo struct{ msg string }

func (e *nothingToUndo) Error() string        { return e.msg }
func (e *nothingToUndo) Is(target error) bool { return target == ErrNothingToUndo }

// NothingToUndo returns an error that errors.Is matches with
// ErrNothingToUndo and that says msg, for a message that comes from
// elsewhere (a running ctxfit's answer).
func NothingToUndo(msg string) error { return &nothingToUndo{msg} }

// backupIndex is index.json in a client's backup directory.
type backupIndex struct {
	Backups []backupEntry `json:"backups"`
	// Undone is the fix the last Undo took back; it counts only while no
	// fix came after it (undoneLast).
	Undone *undoneEntry `json:"undone,omitempty"`
	// Contexts are the context values the client's fixes wrote, newest
	// last, at most maxWrote: a later fix raises them to a larger tuned
	// value, where it keeps a smaller one the user wrote (Input.Wrote).
	// Kept beyond the backups, which Keep bounds.
	Contexts []int `json:"contexts,omitempty"`
}

// maxWrote bounds backupIndex.Contexts.
const maxWrote = 64

// undoneEntry is what an Undo did, kept until the next fix.
type undoneEntry struct {
	Path     string    `json:"path"`     // the config restored
	FixedAt  time.Time `json:"fixed_at"` // when the fix that was undone was made
	At       time.Time `json:"at"`       // when it was undone
	Restored string    `json:"restored"` // SHA-256 of what the undo put back
}

type backupEntry struct {
	Path  string    `json:"path"`  // the config file, as the client names it
	File  string    `json:"file"`  // the backup, in the same directory as index.json
	Time  time.Time `json:"time"`  // when the fix was made
	Wrote string    `json:"wrote"` // SHA-256 of what the fix wrote
}

func (f *Fixer) backupDir(c Client) string {
	return filepath.Join(f.StateDir, "backups", strings.ToLower(c.Name()))
}

func (f *Fixer) keep() int {
	if f.Keep > 0 {
		return f.Keep
	}
	return 10
}

// lock takes c's backup lock, with ctx's deadline (or filelock's).
func (f *Fixer) lock(ctx context.Context, c Client) (*filelock.Held, error) {
	if f.StateDir == "" {
		return nil, errors.New("internal error: no state directory for backups")
	}
	h, err := filelock.Lock(ctx, filepath.Join(f.backupDir(c), "index.lock"))
	if err != nil {
		return nil, fmt.Errorf("wait for another ctxfit fixing %s: %w", c.Name(), err)
	}
	return h, nil
}

// backupName matches the name of a backup file: the fix's time, then the
// config's base name.
var backupName = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}\.[0-9]{9}Z-[^/\\]+$`)

// validate reports an index entry that could make ctxfit read or write
// outside the backup directory.
func (e backupEntry) validate() error {
	switch {
	case !backupName.MatchString(e.File) || !filepath.IsLocal(e.File) || filepath.Base(e.File) != e.File:
		return fmt.Errorf("backup %q is not a file of ctxfit's in the backup directory", e.File)
	case !filepath.IsAbs(e.Path) || filepath.Clean(e.Path) != e.Path:
		return fmt.Errorf("config %q is not a clean absolute path", e.Path)
	}
	return nil
}

func (f *Fixer) loadIndex(dir string) (*backupIndex, error) {
	idx := &backupIndex{}
	b, _, err := atomicfile.ReadRegular(filepath.Join(dir, "index.json"), maxConfig)
	if errors.Is(err, os.ErrNotExist) {
		return idx, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the list of backups: %w", err)
	}
	if err := json.Unmarshal(b, idx); err != nil {
		return nil, fmt.Errorf("the list of backups %s is damaged (move it away to start afresh): %w", filepath.Join(dir, "index.json"), err)
	}
	for i, e := range idx.Backups {
		if err := e.validate(); err != nil {
			return nil, fmt.Errorf("the list of backups %s was edited by hand: entry %d: %v; ctxfit uses none of it (move it away to start afresh)", filepath.Join(dir, "index.json"), i+1, err)
		}
	}
	return idx, nil
}

// wrote returns the contexts that c's fixes wrote (backupIndex.Contexts);
// none when the list of backups cannot be read.
func (f *Fixer) wrote(c Client) map[int]bool {
	if f.StateDir == "" {
		return nil
	}
	idx, err := f.loadIndex(f.backupDir(c))
	if err != nil || len(idx.Contexts) == 0 {
		return nil
	}
	m := make(map[int]bool, len(idx.Contexts))
	for _, n := range idx.Contexts {
		m[n] = true
	}
	return m
}

func (f *Fixer) saveIndex(dir string, idx *backupIndex) error {
	b, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, "index.json"), append(b, '\n'), 0o600)
}

// saveBackup stores src, the version of path that a fix is about to
// replace, and drops the oldest backups of path beyond Keep. The caller
// holds c's lock.
func (f *Fixer) saveBackup(c Client, path string, src []byte, wrote string, contexts []int) (string, error) {
	if f.StateDir == "" {
		return "", errors.New("internal error: no state directory for backups")
	}
	dir := f.backupDir(c)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create the backup directory: %w", err)
	}
	idx, err := f.loadIndex(dir)
	if err != nil {
		return "", err
	}
	now := time.Now().UTC()
	name := now.Format("20060102T150405.000000000Z") + "-" + filepath.Base(path)
	file := filepath.Join(dir, name)
	if err := atomicfile.WriteFile(file, src, 0o600); err != nil {
		return "", fmt.Errorf("back up %s: %w", path, err)
	}
	idx.Backups = append(idx.Backups, backupEntry{Path: path, File: name, Time: now, Wrote: wrote})
	for _, n := range contexts {
		if n > 0 && !slices.Contains(idx.Contexts, n) {
			idx.Contexts = append(idx.Contexts, n)
		}
	}
	if len(idx.Contexts) > maxWrote {
		idx.Contexts = idx.Contexts[len(idx.Contexts)-maxWrote:]
	}

	// Keep the newest backups of each file.
	n := 0
	for _, e := range idx.Backups {
		if e.Path == path {
			n++
		}
	}
	kept := idx.Backups[:0]
	for _, e := range idx.Backups {
		if e.Path == path && n > f.keep() {
			n--
			os.Remove(filepath.Join(dir, e.File))
			continue
		}
		kept = append(kept, e)
	}
	idx.Backups = kept
	if err := f.saveIndex(dir, idx); err != nil {
		os.Remove(file)
		return "", fmt.Errorf("record the backup of %s: %w", path, err)
	}
	return file, nil
}

// dropBackup forgets a backup whose fix was not written after all. The
// caller holds c's lock.
func (f *Fixer) dropBackup(c Client, file string) {
	dir := f.backupDir(c)
	idx, err := f.loadIndex(dir)
	if err != nil {
		return
	}
	for i, e := range idx.Backups {
		if filepath.Join(dir, e.File) == file {
			idx.Backups = append(idx.Backups[:i], idx.Backups[i+1:]...)
			if f.saveIndex(dir, idx) == nil {
				os.Remove(file)
			}
			return
		}
	}
}

// Undone says what Undo restored, or with UndoDryRun would restore.
type Undone struct {
	Path    string    `json:"path"`     // the config file restored
	FixedAt time.Time `json:"fixed_at"` // when the fix that was undone was made
	// Backup is the file of ctxfit's backup directory that holds the
	// version restored.
	Backup string `json:"backup"`
	// LaterUndone, when set, is when ctxfit's later fix (undone before)
	// was made: this undo went one fix further back, to before an earlier
	// fix whose values the config still held.
	LaterUndone time.Time `json:"later_undone,omitzero"`
	// Diff is the change from the config to the version restored, secrets
	// redacted (UndoDryRun only).
	Diff string `json:"diff,omitempty"`
	// Before and After are the config as it is and as the undo leaves it
	// (UndoDryRun only), for UndoChanges.
	Before, After []byte `json:"-"`
}

// Undo restores c's config as it was before ctxfit's last fix. It refuses,
// changing nothing, when the config was edited after that fix, and names the
// backup so that the user can copy it by hand. After an undo, another Undo
// goes one fix further back only when the config still holds exactly what
// that earlier fix wrote (consecutive fixes); otherwise the version the
// undo put back, or the user's edit of it, is not ctxfit's, and it reports
// ErrNothingToUndo, saying so.
func (f *Fixer) Undo(ctx context.Context, c Client) (*Undone, error) {
	return f.undo(ctx, c, false)
}

// UndoDryRun says what Undo would restore, with the diff, and writes
// nothing; it refuses as Undo would.
func (f *Fixer) UndoDryRun(ctx context.Context, c Client) (*Undone, error) {
	return f.undo(ctx, c, true)
}

func (f *Fixer) undo(ctx context.Context, c Client, dryRun bool) (*Undone, error) {
	dir := f.backupDir(c)
	held, err := f.lock(ctx, c)
	if err != nil {
		return nil, err
	}
	defer held.Unlock()
	files, err := c.Files(f.Env)
	if err != nil {
		return nil, err
	}
	for attempt := 0; attempt < maxAttempts; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		idx, err := f.loadIndex(dir)
		if err != nil {
			return nil, err
		}
		undone := idx.undoneLast()
		if len(idx.Backups) == 0 {
			if undone != nil {
				return nil, &nothingToUndo{fmt.Sprintf("nothing more to undo for %s: ctxfit's only fix of %s (made %s) was undone at %s, and ctxfit has fixed nothing since",
					c.Name(), undone.Path, when(undone.FixedAt), when(undone.At))}
			}
			return nil, &nothingToUndo{fmt.Sprintf("ctxfit has made no fix of %s to undo", c.Name())}
		}
		last := idx.Backups[len(idx.Backups)-1]
		if !slices.Contains(append([]string{files.Config}, files.Watch...), last.Path) {
			return nil, fmt.Errorf("the list of backups %s says ctxfit's last fix of %s was of %s, which is not %s's config; ctxfit restores nothing there (copy %s back by hand if you want it)",
				filepath.Join(dir, "index.json"), c.Name(), last.Path, c.Name(), filepath.Join(dir, last.File))
		}
		file := filepath.Join(dir, last.File)
		old, _, err := atomicfile.ReadRegular(file, maxConfig)
		if err != nil {
			return nil, fmt.Errorf("read the backup: %w", err)
		}
		real, err := filepath.EvalSymlinks(last.Path)
		if err != nil {
			return nil, fmt.Errorf("find %s: %w", last.Path, err)
		}
		cur, info, err := readConfig(c.Name(), last.Path, real)
		if err != nil {
			return nil, err
		}
		if atomicfile.Links(info) > 1 { // a read-only config was fixed with --force, so it may be restored
			return nil, f.writable(c, last.Path, real, info)
		}
		if hash(cur) != last.Wrote {
			if undone != nil {
				return nil, nothingMore(c, undone, last, hash(cur), file)
			}
			return nil, fmt.Errorf("%s changed after ctxfit's fix of %s, so ctxfit leaves it alone; the version before the fix is in %s — copy it back by hand if you want it",
				last.Path, last.Time.Local().Format("2006-01-02 15:04"), file)
		}
		u := &Undone{Path: last.Path, FixedAt: last.Time, Backup: file}
		if undone != nil {
			u.LaterUndone = undone.FixedAt
		}
		if dryRun {
			u.Diff = redactedDiff(c, last.Path, last.Path+" (restored)", cur, old)
			u.Before, u.After = cur, old
			return u, nil
		}
		p := &plan{files: Files{Config: last.Path}, real: real, mode: info.Mode().Perm(), src: cur}
		if _, err := f.replace(c, p, old, false); errors.Is(err, errChanged) {
			continue
		} else if err != nil {
			return nil, err
		}
		idx.Backups = idx.Backups[:len(idx.Backups)-1]
		idx.Undone = &undoneEntry{Path: last.Path, FixedAt: last.Time, At: time.Now().UTC(), Restored: hash(old)}
		if err := f.saveIndex(dir, idx); err != nil {
			return nil, fmt.Errorf("%s was restored, but the list of backups could not be updated: %w", last.Path, err)
		}
		os.Remove(file)
		u.Backup = ""
		return u, nil
	}
	return nil, fmt.Errorf("%s kept changing while ctxfit tried to restore it; try again", c.Name())
}

// undoneLast returns the undo recorded in the index when no fix came after
// it (the newest fix listed is older), else nil.
func (idx *backupIndex) undoneLast() *undoneEntry {
	u := idx.Undone
	if u == nil {
		return nil
	}
	if n := len(idx.Backups); n > 0 && !idx.Backups[n-1].Time.Before(u.At) {
		return nil
	}
	return u
}

// nothingMore is the answer of an Undo after an undo, when the config does
// not hold what the earlier fix (last) wrote: the version the undo put
// back, or an edit of it, is not ctxfit's to take back. It names the
// earlier backup for a user who wants it anyway.
func nothingMore(c Client, undone *undoneEntry, last backupEntry, cur, file string) error {
	state := "the file holds what that undo put back, not what ctxfit's earlier fix wrote, so going further back would also undo edits that are not ctxfit's"
	if cur != undone.Restored {
		state = "the file changed after that undo, and ctxfit leaves your edits alone"
	}
	return &nothingToUndo{fmt.Sprintf("nothing more to undo for %s: ctxfit's last fix of %s (made %s) was undone at %s, and %s. "+
		"The version from before ctxfit's earlier fix (made %s) is in %s — copy it back by hand only if you want to lose every edit made since",
		c.Name(), undone.Path, when(undone.FixedAt), when(undone.At), state, when(last.Time), file)}
}

// when formats a time of ctxfit's for messages: local time to the second.
func when(t time.Time) string { return t.Local().Format(time.DateTime) }

// Cleaned is one leftover that Clean dealt with.
type Cleaned struct {
	Path string `json:"path"` // the leftover
	// Kept is where Clean moved a leftover that may hold another program's
	// edit (in the backup directory); empty when the leftover was removed.
	Kept string `json:"kept,omitempty"`
}

// Clean deals with what a ctxfit killed in the middle of a fix left
// behind: its temporary files beside each client's config and in the backup
// directory, and backups that the index does not list. A ".tmp" beside a
// config holds (part of) a fix's new version and is removed. A ".swap" holds
// the new version, or, when the kill came after the swap, the version
// swapped out: it is removed when it holds what a listed fix wrote, a listed
// backup or the config's current content, and otherwise (another program's
// edit, swapped out at that moment) moved into the backup directory as
// recovered-<time>-<name>, never deleted. Clean holds each client's lock
// while it looks, so a fix running meanwhile is not disturbed.
func (f *Fixer) Clean(ctx context.Context, cs []Client) ([]Cleaned, error) {
	var done []Cleaned
	for _, c := range cs {
		files, err := c.Files(f.Env)
		if err != nil {
			continue
		}
		dir := f.backupDir(c)
		if _, err := os.Stat(dir); err != nil && files.Config == "" {
			continue // never fixed, nothing to clean
		}
		held, err := f.lock(ctx, c)
		if err != nil {
			return done, err
		}
		idx, idxErr := f.loadIndex(dir)
		if idxErr != nil {
			idx = &backupIndex{}
		}
		// What a leftover may hold without being anyone's only copy.
		known := map[string]bool{}
		for _, e := range idx.Backups {
			known[e.Wrote] = true
			if b, _, err := atomicfile.ReadRegular(filepath.Join(dir, e.File), maxConfig); err == nil {
				known[hash(b)] = true
			}
		}
		// Temporary files beside the config and where it may appear.
		names := map[string]bool{} // dir + "\x00" + base
		for _, p := range append([]string{files.Config}, files.Watch...) {
			if p == "" {
				continue
			}
			if b, _, err := atomicfile.ReadRegular(p, maxConfig); err == nil {
				known[hash(b)] = true
			}
			names[filepath.Dir(p)+"\x00"+filepath.Base(p)] = true
			if real, err := filepath.EvalSymlinks(p); err == nil {
				names[filepath.Dir(real)+"\x00"+filepath.Base(real)] = true
			}
		}
		for k := range names {
			d, base, _ := strings.Cut(k, "\x00")
			for _, p := range matching(d, func(name string) bool { return isTemp(name, base) }) {
				b, _, err := atomicfile.ReadRegular(p, maxConfig)
				if err == nil && isSwap(p) && !known[hash(b)] {
					kept := filepath.Join(dir, "recovered-"+time.Now().UTC().Format("20060102T150405.000000000Z")+"-"+base)
					if os.MkdirAll(dir, 0o700) == nil && atomicfile.WriteFile(kept, b, 0o600) == nil && os.Remove(p) == nil {
						done = append(done, Cleaned{Path: p, Kept: kept})
					}
					continue
				}
				if os.Remove(p) == nil {
					done = append(done, Cleaned{Path: p})
				}
			}
		}
		// The backup directory: temporary files and backups no entry lists.
		if idxErr == nil {
			listed := map[string]bool{}
			for _, e := range idx.Backups {
				listed[e.File] = true
			}
			for _, p := range matching(dir, func(name string) bool {
				return isTemp(name, "") || backupName.MatchString(name) && !listed[name]
			}) {
				if os.Remove(p) == nil {
					done = append(done, Cleaned{Path: p})
				}
			}
		}
		held.Unlock()
	}
	return done, nil
}

// isSwap reports whether a temporary file is one that a fix swapped, or was
// about to swap, with the config (".swap"): it may hold the config's
// previous content. A ".tmp" holds only what ctxfit was writing.
func isSwap(name string) bool {
	return strings.HasSuffix(strings.TrimSuffix(name, ".old"), ".swap")
}

// isTemp reports whether name is a temporary file of ctxfit's that replaces
// base (any file when base is ""): atomicfile.TempPattern, its ".swap"
// form, and the ".old" that a Windows swap leaves.
func isTemp(name, base string) bool {
	rest, ok := strings.CutPrefix(name, ".")
	if !ok {
		return false
	}
	if base != "" {
		if rest, ok = strings.CutPrefix(rest, base+".ctxfit-"); !ok {
			return false
		}
	} else if _, rest, ok = strings.Cut(rest, ".ctxfit-"); !ok {
		return false
	}
	rest = strings.TrimSuffix(rest, ".old")
	return (strings.HasSuffix(rest, ".tmp") || strings.HasSuffix(rest, ".swap")) && !strings.ContainsAny(rest, "/\\")
}

// matching returns the regular files in dir whose names match.
func matching(dir string, match func(string) bool) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		if e.Type().IsRegular() && match(e.Name()) {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}

// UndoChanges lists what restoring u (from UndoDryRun) changes in what
// c's entries for the models on t.Host ask for (Asks), matched by where
// they are: Old* is the config's value now, New* the restored one (0 for
// an entry the fix added, which the undo removes), and Derived the model
// name restored when it differs. Entries that ask for the same are left
// out, and so are values that do not change what an entry asks for (Zed's
// max_tokens under a context_window): u.Diff shows every byte.
func (f *Fixer) UndoChanges(c Client, u *Undone, t Target) []Change {
	in := func(src []byte) Input { return Input{Path: u.Path, Src: src, Getenv: f.Env.Getenv} }
	now, err1 := c.Asks(in(u.Before), t)
	then, err2 := c.Asks(in(u.After), t)
	if err1 != nil || err2 != nil {
		return nil
	}
	restored := map[string]Ask{}
	for _, a := range then {
		restored[a.Where] = a
	}
	var out []Change
	for _, a := range now {
		r, ok := restored[a.Where]
		if !ok {
			r = Ask{Model: a.Model} // added by the fix
		}
		if r.Context == a.Context && r.MaxTokens == a.MaxTokens && r.Model == a.Model {
			continue
		}
		ch := Change{Where: a.Where, Title: a.Title, Model: a.Model, OldContext: a.Context, NewContext: r.Context,
			OldMaxTokens: a.MaxTokens, NewMaxTokens: r.MaxTokens}
		if r.Model != a.Model {
			ch.Derived = r.Model
		}
		out = append(out, ch)
	}
	return out
}
