package clients

import (
	"bytes"
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

	"github.com/ctxfit/ctxfit/internal/atomicfile"
)

// Fixer does everything that touches a client's files: it reads the config,
// lets the client edit the bytes, checks the result, keeps a backup, and
// replaces the file atomically. A symlinked config (a dotfiles repository)
// stays a symlink and its target is written; the file keeps its mode. When
// the file changes between reading it and replacing it, Fixer starts over
// from the new content, so that neither edit is lost.
type Fixer struct {
	Env Env
	// StateDir is ctxfit's state directory; backups go under
	// StateDir/backups/<client>/.
	StateDir string
	// Keep is how many backups to keep per file; 0 means 10.
	Keep int

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

// maxAttempts bounds how often a fix starts over because someone else wrote
// the file meanwhile.
const maxAttempts = 5

// Fix rewrites c's config so that it asks for the values in t. With dryRun
// it only fills Report.Diff. A client without a config file is
// ErrNotInstalled; a config that does not parse is a *ParseError and stays
// untouched.
func (f *Fixer) Fix(ctx context.Context, c Client, t Target, dryRun bool) (*Report, error) {
	for attempt := 0; attempt < maxAttempts; attempt++ {
		p, err := f.plan(ctx, c, t)
		if err != nil {
			return nil, err
		}
		rep := &Report{Client: c.Name(), Path: p.files.Config, Changes: p.res.Changes, Warnings: p.res.Warnings, DryRun: dryRun}
		if len(p.res.Changes) == 0 {
			return rep, nil
		}
		if dryRun {
			rep.Diff = unifiedDiff(p.files.Config, p.files.Config+" (fixed)", p.src, p.res.Out)
			if r, ok := c.(diffRedacter); ok { // the file holds secrets: show only the changed values
				rep.Diff = r.redactDiff(rep.Diff)
			}
			return rep, nil
		}
		rep.Backup, err = f.replace(c, p, p.res.Out, true)
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
	info, err := os.Stat(real)
	if err != nil {
		return nil, fmt.Errorf("find %s's config: %w", c.Name(), err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file; ctxfit leaves it alone", files.Config)
	}
	src, err := os.ReadFile(real)
	if err != nil {
		return nil, fmt.Errorf("read %s's config: %w", c.Name(), err)
	}
	in := Input{Path: files.Config, Src: src, Overrides: readOverrides(files), Getenv: f.Env.Getenv}
	res, err := c.Edit(in, t)
	if err != nil {
		return nil, err
	}
	if len(res.Changes) > 0 {
		in.Src = res.Out
		again, err := c.Edit(in, t)
		if err != nil || len(again.Changes) > 0 {
			return nil, fmt.Errorf("internal error: ctxfit's fix of %s does not hold (%v); nothing was written", files.Config, err)
		}
	}
	return &plan{files: files, real: real, mode: info.Mode().Perm(), src: src, res: res}, nil
}

func readOverrides(files Files) map[string][]byte {
	m := map[string][]byte{}
	for _, p := range files.Overrides {
		if b, err := os.ReadFile(p); err == nil {
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
	src, err := os.ReadFile(files.Config)
	if err != nil {
		return files, nil, fmt.Errorf("read %s's config: %w", c.Name(), err)
	}
	asks, err := c.Asks(Input{Path: files.Config, Src: src, Overrides: readOverrides(files), Getenv: f.Env.Getenv}, t)
	return files, asks, err
}

// errChanged reports that the config changed after it was read.
var errChanged = errors.New("the file changed while ctxfit was writing it")

// replace writes content over p's file: a temporary file beside the real
// file, synced and given the file's mode, then — unless the file no longer
// holds p.src, which is errChanged — a backup of p.src when backup is set,
// then a rename over the file. It returns the backup's path.
func (f *Fixer) replace(c Client, p *plan, content []byte, backup bool) (saved string, err error) {
	dir := filepath.Dir(p.real)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(p.real)+".ctxfit-*.tmp")
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
	if f.beforeRename != nil {
		f.beforeRename(p.real)
	}
	now, err := os.ReadFile(p.real)
	if err != nil {
		return "", fmt.Errorf("re-read %s: %w", p.real, err)
	}
	if !bytes.Equal(now, p.src) {
		err = errChanged
		return "", err
	}
	if backup {
		if saved, err = f.saveBackup(c, p.files.Config, p.src, hash(content)); err != nil {
			return "", err
		}
	}
	if err = atomicfile.Rename(tmp.Name(), p.real); err != nil {
		if saved != "" {
			f.dropBackup(c, saved)
		}
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
