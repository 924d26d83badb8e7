package clients

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/ctxfit/ctxfit/clients/edit"

	"github.com/ctxfit/ctxfit/internal/atomicfile"
)

// Fixer does everything that touches a client's files: it reads the config,
// lets the client edit the bytes, checks the result, keeps a backup, and
// replaces the file atomically. A symlinked config (a dotfiles repository)
// stays a symlink and its target is written; the file keeps its mode.
//
// No other program's write is lost: the new version is swapped in and what
// came out is compared with what was read in the same step
// (atomicfile.Replace; its doc says what each system guarantees), and on a
// difference the other version is put back and Fixer starts over from it.
// The backup is written before the swap. Fixer reads regular files only (a
// FIFO, device, socket or directory at a config path is named and skipped,
// and never blocks), leaves a config deleted during a fix deleted
// (ErrDeleted), refuses a config with several hard links (replacing one name
// would split them: ErrHardLinked) and, unless Force, a read-only one
// (ErrReadOnly).
type Fixer struct {
	Env Env
	// StateDir is ctxfit's state directory; backups go under
	// StateDir/backups/<client>/.
	StateDir string
	// Keep is how many backups to keep per file; 0 means 10.
	Keep int
	// Force fixes a config that has no write permission (its mode stays).
	Force bool
	// Derive, when set, makes sure the Ollama server has the derived model
	// a change selects (Change.Derived: a copy of model with num_ctx =
	// context) and returns its name; Fix calls it for each such change
	// before writing, and writes nothing when it fails. Without it a fix
	// that selects a derived model fails, rather than naming a model the
	// server may lack.
	Derive func(ctx context.Context, model string, context int) (string, error)

	// beforeRename, when set, runs after the new content is in its temporary
	// file and before the config is re-read and replaced. Tests race a writer
	// there.
	beforeRename func(path string)
}

// Report is what a fix did, or would do with DryRun.
type Report struct {
	Client   string   `json:"client"`
	Path     string   `json:"path"`
	Changes  []Change `json:"changes"`
	Warnings []string `json:"warnings,omitempty"`
	DryRun   bool     `json:"dry_run,omitempty"`
	Diff     string   `json:"diff,omitempty"`   // unified diff, for a dry run
	Backup   string   `json:"backup,omitempty"` // where the replaced version was saved
	Written  bool     `json:"written"`

	sum string // hash of the content written, so that a watcher knows its own write
}

// ErrDeleted reports a config that was deleted while ctxfit was fixing it;
// ctxfit leaves it deleted.
var ErrDeleted = errors.New("deleted while ctxfit was fixing it; ctxfit left it deleted")

// ErrReadOnly reports a config without write permission; `ctxfit fix
// --force` (Fixer.Force) fixes it anyway.
var ErrReadOnly = errors.New("read-only")

// ErrHardLinked reports a config with more than one name (hard link).
// Replacing it would give the changed version to one name only, so ctxfit
// refuses.
var ErrHardLinked = errors.New("hard-linked")

// ErrNotRegular reports a config path that holds no regular file (a FIFO, a
// device, a socket, a directory); ctxfit skips it.
var ErrNotRegular = atomicfile.ErrNotRegular

// maxConfig is the largest config ctxfit reads.
const maxConfig = 16 << 20

// skipError is a message that wraps err without repeating its text.
type skipError struct {
	msg string
	err error
}

func (e *skipError) Error() string { return e.msg }
func (e *skipError) Unwrap() error { return e.err }

// readConfig reads a config file, path, reached through the name shown
// (the same path, or a symlink to it): a regular file only, never blocking
// on a FIFO. The error names the file and what it is.
func readConfig(client, shown, path string) ([]byte, fs.FileInfo, error) {
	b, info, err := atomicfile.ReadRegular(path, maxConfig)
	if path != shown {
		shown += " (a link to " + path + ")"
	}
	switch {
	case errors.Is(err, atomicfile.ErrNotRegular):
		return nil, info, &skipError{fmt.Sprintf("%s's config %s is %s, not a regular file; ctxfit reads only regular files and skips it", client, shown, atomicfile.Kind(info.Mode())), ErrNotRegular}
	case errors.Is(err, atomicfile.ErrTooLarge):
		return nil, info, fmt.Errorf("%s's config %s is too large for a config file; ctxfit skips it: %w", client, shown, err)
	case err != nil:
		return nil, info, fmt.Errorf("read %s's config: %w", client, err)
	}
	return b, info, nil
}

// maxAttempts bounds how often a fix starts over because someone else wrote
// the file meanwhile.
const maxAttempts = 5

// Fix rewrites c's config so that it asks for the values in t. With dryRun
// it only fills Report.Diff. A client without a config file is
// ErrNotInstalled; a config that does not parse is a *ParseError and stays
// untouched.
func (f *Fixer) Fix(ctx context.Context, c Client, t Target, dryRun bool) (*Report, error) {
	var deriveErr error // why the derived models could not be created
	for attempt := 0; attempt < maxAttempts; attempt++ {
		p, err := f.plan(ctx, c, t)
		if err != nil {
			return nil, err
		}
		rep := &Report{Client: c.Name(), Path: p.files.Config, Changes: p.res.Changes, Warnings: p.res.Warnings, DryRun: dryRun}
		if deriveErr != nil {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("the config keeps its model names, because %v; %s through /v1 runs at the server's own context until `ctxfit fix %s` runs again with the server up",
				deriveErr, c.Name(), strings.ToLower(c.Name())))
		}
		if len(p.res.Changes) == 0 {
			return rep, nil
		}
		if dryRun {
			// Redacted whole before the diff, so that a hunk that starts
			// inside a secret's block scalar hides it too.
			rep.Diff = redactedDiff(c, p.files.Config, p.files.Config+" (fixed)", p.src, p.res.Out)
			return rep, nil
		}
		if err := f.derive(ctx, p.res.Changes); err != nil {
			// Write the context values without selecting derived models:
			// the client's own budget is still right, and the models can
			// be selected once the server is reachable.
			deriveErr, t.Derive = err, nil
			continue
		}
		held, err := f.lock(ctx, c)
		if err != nil {
			return nil, err
		}
		rep.Backup, err = f.replace(c, p, p.res.Out, true)
		held.Unlock()
		if errors.Is(err, errChanged) {
			continue
		}
		if err != nil {
			return nil, err
		}
		rep.Written, rep.sum = true, hash(p.res.Out)
		return rep, nil
	}
	return nil, fmt.Errorf("%s kept changing while ctxfit tried to fix it; try again when the program that writes it is done", c.Name())
}

// redactedDiff is the unified diff from before to after that a dry run
// shows, secrets redacted: the texts are redacted whole before the diff,
// so that a hunk that starts inside a secret's block scalar hides it too,
// and a client whose file holds secrets shows only the changed values.
func redactedDiff(c Client, aName, bName string, before, after []byte) string {
	d := edit.Diff(aName, bName, []byte(Redact(string(before))), []byte(Redact(string(after))))
	if r, ok := c.(diffRedacter); ok {
		d = r.redactDiff(d)
	}
	return Redact(d)
}

// derive creates the derived models that changes select.
func (f *Fixer) derive(ctx context.Context, changes []Change) error {
	for _, ch := range changes {
		if ch.Derived == "" || ch.Derived == ch.Model {
			continue
		}
		if f.Derive == nil {
			return fmt.Errorf("internal error: the fix selects %s, and ctxfit has no way to create it here; run `ctxfit fix ollama %s` first", ch.Derived, ch.Model)
		}
		name, err := f.Derive(ctx, ch.Model, ch.NewContext)
		if err != nil {
			return fmt.Errorf("create %s, which the fixed config selects, so nothing was written: %w", ch.Derived, err)
		}
		if name != ch.Derived {
			return fmt.Errorf("internal error: ctxfit created %s, but the fix selects %s; nothing was written", name, ch.Derived)
		}
	}
	return nil
}

// plan is a fix worked out but not written.
type plan struct {
	files Files
	real  string // the config with symlinks resolved
	mode  fs.FileMode
	src   []byte
	res   Result
}

// plan reads c's config and edits it in memory, checking that the result
// needs no further fixing (it parses and holds the new values).
func (f *Fixer) plan(ctx context.Context, c Client, t Target) (*plan, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	files, err := c.Files(f.Env)
	if err != nil {
		return nil, err
	}
	if files.Config == "" {
		return nil, fmt.Errorf("%s has no config file (looked for %s): %w", c.Name(), strings.Join(files.Watch, ", "), ErrNotInstalled)
	}
	real, err := filepath.EvalSymlinks(files.Config)
	if err != nil {
		return nil, fmt.Errorf("find %s's config: %w", c.Name(), err)
	}
	src, info, err := readConfig(c.Name(), files.Config, real)
	if err != nil {
		return nil, err
	}
	if err := f.writable(c, files.Config, real, info); err != nil {
		return nil, err
	}
	in := Input{Path: files.Config, Src: src, Overrides: readOverrides(files), V1Readers: files.V1Readers, Getenv: f.Env.Getenv, Wrote: f.wrote(c)}
	t, _, setWarns := t.forClient(c, in)
	res, err := c.Edit(in, t)
	if err != nil {
		return nil, err
	}
	res.Warnings = append(setWarns, res.Warnings...)
	if len(res.Changes) > 0 {
		in.Src = res.Out
		again, err := c.Edit(in, t)
		if err != nil || len(again.Changes) > 0 {
			return nil, fmt.Errorf("internal error: ctxfit's fix of %s does not hold (%v); nothing was written", files.Config, err)
		}
	}
	return &plan{files: files, real: real, mode: info.Mode().Perm(), src: src, res: res}, nil
}

// writable returns an error when ctxfit must not replace the config real
// (reached as shown): it has several hard links, or, unless Force, no write
// permission.
func (f *Fixer) writable(c Client, shown, real string, info fs.FileInfo) error {
	if n := atomicfile.Links(info); n > 1 {
		return fmt.Errorf("%s has %d hard links (names); replacing it would leave the other names with the old content, so ctxfit leaves it alone: make the other names symbolic links (ln -sf %s OTHER) and run ctxfit again: %w", shown, n, real, ErrHardLinked)
	}
	if info.Mode().Perm()&0o200 == 0 && !f.Force {
		return fmt.Errorf("%s is read-only (mode %#o), so someone may want it unchanged; ctxfit leaves it alone: run `ctxfit fix %s --force` to fix it anyway (it stays read-only): %w", shown, info.Mode().Perm(), strings.ToLower(c.Name()), ErrReadOnly)
	}
	return nil
}

func readOverrides(files Files) map[string][]byte {
	m := map[string][]byte{}
	for _, p := range files.Overrides {
		if b, _, err := atomicfile.ReadRegular(p, maxConfig); err == nil {
			m[p] = b
		}
	}
	return m
}

// Asks reads c's config and reports what each entry for t.Host asks for.
func (f *Fixer) Asks(c Client, t Target) (Files, []Ask, error) {
	files, err := c.Files(f.Env)
	if err != nil {
		return files, nil, err
	}
	if files.Config == "" {
		return files, nil, fmt.Errorf("%s has no config file: %w", c.Name(), ErrNotInstalled)
	}
	src, _, err := readConfig(c.Name(), files.Config, files.Config)
	if err != nil {
		return files, nil, err
	}
	in := Input{Path: files.Config, Src: src, Overrides: readOverrides(files), V1Readers: files.V1Readers, Getenv: f.Env.Getenv, Wrote: f.wrote(c)}
	t, g, _ := t.forClient(c, in)
	asks, err := c.Asks(in, t)
	for i := range asks {
		asks[i].Beside = g.beside(asks[i].Model)
	}
	return files, asks, err
}

// errChanged reports that the config changed after it was read.
var errChanged = errors.New("the file changed while ctxfit was writing it")

// replace writes content over p's file: a temporary file beside the real
// file, synced and given the file's mode; then, when backup is set, a backup
// of p.src; then atomicfile.Replace, which puts it in place only if the file
// still holds p.src at that instant (else errChanged, and the backup is
// dropped). A file deleted meanwhile stays deleted (ErrDeleted). It returns
// the backup's path. Callers hold the client's backup lock.
func (f *Fixer) replace(c Client, p *plan, content []byte, backup bool) (saved string, err error) {
	dir := filepath.Dir(p.real)
	tmp, err := os.CreateTemp(dir, atomicfile.TempPattern(filepath.Base(p.real)))
	if err != nil {
		return "", fmt.Errorf("write beside %s: %w", p.real, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(content); err != nil {
		return "", fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err = tmp.Chmod(p.mode); err != nil && runtime.GOOS != "windows" {
		return "", fmt.Errorf("set the mode of %s: %w", tmp.Name(), err)
	}
	if err = tmp.Sync(); err != nil {
		return "", fmt.Errorf("sync %s: %w", tmp.Name(), err)
	}
	if err = tmp.Close(); err != nil {
		return "", fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if backup {
		var contexts []int
		for _, ch := range p.res.Changes {
			if ch.NewContext != ch.OldContext { // a context kept as the user's is not ctxfit's
				contexts = append(contexts, ch.NewContext)
			}
		}
		if saved, err = f.saveBackup(c, p.files.Config, p.src, hash(content), contexts); err != nil {
			return "", err
		}
	}
	// Complete and backed up: from here the temporary file is a ".swap",
	// which after the swap holds what was in the config. A ctxfit killed
	// here leaves it, and Clean must not delete another program's edit.
	swap := strings.TrimSuffix(tmp.Name(), ".tmp") + ".swap"
	if err = os.Rename(tmp.Name(), swap); err != nil {
		if saved != "" {
			f.dropBackup(c, saved)
		}
		return "", fmt.Errorf("write beside %s: %w", p.real, err)
	}
	if f.beforeRename != nil {
		f.beforeRename(p.real)
	}
	err = atomicfile.Replace(p.real, swap, p.src)
	if err != nil && saved != "" {
		f.dropBackup(c, saved)
	}
	switch {
	case errors.Is(err, atomicfile.ErrChanged):
		return "", errChanged
	case errors.Is(err, atomicfile.ErrGone):
		return "", fmt.Errorf("%s was %w", p.files.Config, ErrDeleted)
	case err != nil:
		return "", err
	}
	atomicfile.SyncDir(dir)
	return saved, nil
}

func hash(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// AllAsks returns what every entry of every installed client asks for
// (Asks for each), skipping clients that are not installed or whose config
// cannot be read. The tray uses it to name the client behind a spill
// ("Continue asks llama3.1:8b for 131072 tokens; 24576 stays on the GPU")
// and to offer a fix when an entry Differs.
func (f *Fixer) AllAsks(clients []Client, t Target) []Ask {
	var all []Ask
	for _, c := range clients {
		if _, asks, err := f.Asks(c, t); err == nil {
			all = append(all, asks...)
		}
	}
	return all
}
