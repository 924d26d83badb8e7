package clients

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ctxfit/ctxfit/internal/atomicfile"
)

// Before each fix, the previous version of the config goes to
// <state>/backups/<client>/, listed in index.json there with the hash of
// what ctxfit wrote, newest last. Undo restores the newest one, but only
// while the config still holds what ctxfit wrote: later edits are never
// overwritten.

// ErrNothingToUndo reports that ctxfit has no fix of a client to undo.
var ErrNothingToUndo = errors.New("no fix to undo")

// backupIndex is index.json in a client's backup directory.
type backupIndex struct {
	Backups []backupEntry `json:"backups"`
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

func (f *Fixer) loadIndex(dir string) (*backupIndex, error) {
	idx := &backupIndex{}
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if errors.Is(err, os.ErrNotExist) {
		return idx, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the list of backups: %w", err)
	}
	if err := json.Unmarshal(b, idx); err != nil {
		return nil, fmt.Errorf("the list of backups %s is damaged (move it away to start afresh): %w", filepath.Join(dir, "index.json"), err)
	}
	return idx, nil
}

func (f *Fixer) saveIndex(dir string, idx *backupIndex) error {
	b, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, "index.json"), append(b, '\n'), 0o600)
}

// saveBackup stores src, the version of path that a fix is about to
// replace, and drops the oldest backups of path beyond Keep.
func (f *Fixer) saveBackup(c Client, path string, src []byte, wrote string) (string, error) {
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

// dropBackup forgets a backup whose fix was not written after all.
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

// Undone says what Undo restored.
type Undone struct {
	Path    string    `json:"path"`     // the config file restored
	FixedAt time.Time `json:"fixed_at"` // when the fix that was undone was made
}

// Undo restores c's config as it was before ctxfit's last fix. It refuses,
// changing nothing, when the config was edited after that fix, and names the
// backup so that the user can copy it by hand. Each Undo goes one fix
// further back.
func (f *Fixer) Undo(ctx context.Context, c Client) (*Undone, error) {
	dir := f.backupDir(c)
	for attempt := 0; attempt < maxAttempts; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		idx, err := f.loadIndex(dir)
		if err != nil {
			return nil, err
		}
		if len(idx.Backups) == 0 {
			return nil, fmt.Errorf("ctxfit has made no fix of %s to undo: %w", c.Name(), ErrNothingToUndo)
		}
		last := idx.Backups[len(idx.Backups)-1]
		file := filepath.Join(dir, last.File)
		old, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read the backup: %w", err)
		}
		real, err := filepath.EvalSymlinks(last.Path)
		if err != nil {
			return nil, fmt.Errorf("find %s: %w", last.Path, err)
		}
		info, err := os.Stat(real)
		if err != nil {
			return nil, err
		}
		cur, err := os.ReadFile(real)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", last.Path, err)
		}
		if hash(cur) != last.Wrote {
			return nil, fmt.Errorf("%s changed after ctxfit's fix of %s, so ctxfit leaves it alone; the version before the fix is in %s — copy it back by hand if you want it",
				last.Path, last.Time.Local().Format("2006-01-02 15:04"), file)
		}
		p := &plan{files: Files{Config: last.Path}, real: real, mode: info.Mode().Perm(), src: cur}
		if _, err := f.replace(c, p, old, false); errors.Is(err, errChanged) {
			continue
		} else if err != nil {
			return nil, err
		}
		idx.Backups = idx.Backups[:len(idx.Backups)-1]
		if err := f.saveIndex(dir, idx); err != nil {
			return nil, fmt.Errorf("%s was restored, but the list of backups could not be updated: %w", last.Path, err)
		}
		os.Remove(file)
		return &Undone{Path: last.Path, FixedAt: last.Time}, nil
	}
	return nil, fmt.Errorf("%s kept changing while ctxfit tried to restore it; try again", c.Name())
}
