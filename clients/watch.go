package clients

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultDebounce is how long a file must stay quiet before Watch reports
// it: editors and Continue write in bursts (a temporary file, a rename, a
// chmod), and VS Code polls once a second, so 200 ms settles a burst and
// leaves time to fix the file before the client reads it.
const DefaultDebounce = 200 * time.Millisecond

// maxLinks bounds how many symlinks Watch follows from one path.
const maxLinks = 8

// Watch calls onChange(path) for each of paths whose file is created,
// written, replaced (renamed over), removed or re-pointed (a symlink), once
// the events for it have been quiet for debounce. It blocks until ctx is
// done and returns nil then; it returns an error only when it cannot watch
// at all. onChange runs on Watch's goroutine, one call at a time.
//
// A watch on a file is lost the first time an editor replaces it, so Watch
// watches directories and filters by name: the file's directory, or the
// nearest existing ancestor until the directory is created (a client
// installed after ctxfit); and for a symlinked file, the directories of
// every link on the way to the real file too, because writes to the target
// show only there.
func Watch(ctx context.Context, paths []string, debounce time.Duration, onChange func(path string)) error {
	return watch(ctx, paths, debounce, onChange, nil)
}

// watch is Watch, calling ready (when set) once the watches are in place.
func watch(ctx context.Context, paths []string, debounce time.Duration, onChange func(path string), ready func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch files: %w", err)
	}
	defer w.Close()
	if debounce <= 0 {
		debounce = DefaultDebounce
	}
	s := &watchSet{w: w, watched: map[string]bool{}}
	for _, p := range paths {
		if abs, err := filepath.Abs(p); err == nil {
			s.paths = append(s.paths, abs)
		}
	}
	s.sync()
	if ready != nil {
		ready()
	}

	fire := make(chan string)
	done := make(chan struct{})
	defer close(done)
	timers := map[string]*time.Timer{}
	defer func() {
		for _, t := range timers {
			t.Stop()
		}
	}()
	schedule := func(p string) {
		if t := timers[p]; t != nil {
			t.Reset(debounce)
			return
		}
		timers[p] = time.AfterFunc(debounce, func() {
			select {
			case fire <- p:
			case <-done:
			}
		})
	}

	for {
		select {
		case <-ctx.Done():
			return nil
		case p := <-fire:
			delete(timers, p)
			onChange(p)
		case e, ok := <-w.Events:
			if !ok {
				return nil
			}
			if e.Op == fsnotify.Chmod {
				continue
			}
			name := filepath.Clean(e.Name)
			hit := append([]string(nil), s.interest[name]...)
			if len(hit) == 0 {
				continue
			}
			if s.watched[name] && e.Has(fsnotify.Remove|fsnotify.Rename) {
				// A watched directory went: its watch went with it, and a
				// directory made again in its place needs a new one.
				s.w.Remove(name)
				delete(s.watched, name)
			}
			// A directory may have appeared or gone, or a link changed:
			// watch anew, and look at every path whose watches moved.
			hit = append(hit, s.sync()...)
			for _, p := range hit {
				schedule(p)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				// Events were lost: look at everything again.
				s.sync()
				for _, p := range s.paths {
					schedule(p)
				}
			}
		}
	}
}

// watchSet keeps the directory watches that cover a set of paths.
type watchSet struct {
	w        *fsnotify.Watcher
	paths    []string
	watched  map[string]bool     // directories being watched
	interest map[string][]string // a name whose events matter → the paths it affects
	dirOf    map[string][]string // the directories each path needs
}

// sync works out which directories the paths need now, adds and removes
// watches to match, and returns the paths whose directories changed (their
// file may have appeared with the directory). A directory made just before
// the watch on its parent was added sent its event to nobody, so sync looks
// again until the watches stop moving.
func (s *watchSet) sync() []string {
	var changed []string
	for i := 0; i < 16; i++ {
		c, added := s.syncOnce()
		changed = append(changed, c...)
		if !added {
			break
		}
	}
	return changed
}

// syncOnce is one round of sync; it reports whether it added a watch.
func (s *watchSet) syncOnce() (changed []string, added bool) {
	interest := map[string][]string{}
	need := map[string]bool{}
	dirOf := map[string][]string{}
	for _, p := range s.paths {
		var dirs []string
		for _, name := range chain(p) {
			dir := filepath.Dir(name)
			// The name itself, and its directory: its removal shows up in
			// its own watch, its creation in its parent's.
			interest[name] = append(interest[name], p)
			interest[dir] = append(interest[dir], p)
			// Until the directory exists, watch the nearest ancestor that
			// does, for the name that leads towards it.
			for child := name; ; {
				if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
					break
				}
				parent := filepath.Dir(dir)
				if parent == dir {
					break
				}
				child, dir = dir, parent
				interest[child] = append(interest[child], p)
			}
			interest[dir] = append(interest[dir], p) // its own removal
			need[dir] = true
			dirs = append(dirs, dir)
		}
		if s.dirOf != nil && fmt.Sprint(s.dirOf[p]) != fmt.Sprint(dirs) {
			changed = append(changed, p)
		}
		dirOf[p] = dirs
	}
	for dir := range need {
		if !s.watched[dir] {
			if err := s.w.Add(dir); err == nil {
				s.watched[dir] = true
				added = true
			}
		}
	}
	for dir := range s.watched {
		if !need[dir] {
			s.w.Remove(dir)
			delete(s.watched, dir)
		}
	}
	s.interest, s.dirOf = interest, dirOf
	return changed, added
}

// chain returns path and, when it is a symlink, every name the link leads
// through to the real file.
func chain(path string) []string {
	names := []string{path}
	for i := 0; i < maxLinks; i++ {
		target, err := os.Readlink(path)
		if err != nil {
			break
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(path), target)
		}
		path = filepath.Clean(target)
		names = append(names, path)
	}
	// A link inside a symlinked directory resolves only as a whole.
	if real, err := filepath.EvalSymlinks(names[0]); err == nil && real != names[len(names)-1] {
		names = append(names, real)
	}
	return names
}
