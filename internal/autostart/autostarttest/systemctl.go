// Package autostarttest provides a fake systemctl for testing code that
// installs ctxfit's systemd user unit, on any Linux, with or without
// systemd.
package autostarttest

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// script imitates `systemctl --user` for ctxfit.service: it records each
// call, enables and disables by making and removing the .wants links as
// systemctl does, keeps the unit's state in a file, and fails the listed
// actions the way systemctl does without a user manager (enable after
// making its links, as the real one does).
const script = `#!/bin/sh
echo "$*" >> "$FAKE_SYSTEMCTL_DIR/calls"
action=""
for a in "$@"; do case "$a" in --*) ;; *) action="$a"; break;; esac; done
dir="$HOME/.config/systemd/user"
unit="$dir/ctxfit.service"
fail() { case " $FAKE_SYSTEMCTL_FAIL " in *" $action "*) echo "Failed to connect to bus: No medium found" >&2; exit 1;; esac; }
[ "$action" = enable ] || fail
state=$(cat "$FAKE_SYSTEMCTL_DIR/state" 2>/dev/null || echo inactive)
case "$action" in
enable)
	[ -f "$unit" ] || { echo "Failed to enable unit: Unit file ctxfit.service does not exist." >&2; exit 1; }
	target=$(sed -n 's/^WantedBy=//p' "$unit")
	mkdir -p "$dir/$target.wants" && ln -sf "$unit" "$dir/$target.wants/ctxfit.service"
	fail;; # as systemctl: the links are made before the reload over the bus fails
disable)
	rm -f "$dir"/*.wants/ctxfit.service;;
daemon-reload|show-environment) ;;
start)
	[ -f "$unit" ] || { echo "Failed to start ctxfit.service: Unit ctxfit.service not found." >&2; exit 5; }
	echo active > "$FAKE_SYSTEMCTL_DIR/state";;
stop)
	[ -f "$unit" ] || [ "$state" = active ] || { echo "Failed to stop ctxfit.service: Unit ctxfit.service not loaded." >&2; exit 5; }
	echo inactive > "$FAKE_SYSTEMCTL_DIR/state";;
is-enabled)
	if ls "$dir"/*.wants/ctxfit.service >/dev/null 2>&1; then echo enabled; exit 0; fi
	[ -f "$unit" ] && { echo disabled; exit 1; }
	echo "Failed to get unit file state for ctxfit.service: No such file or directory" >&2; exit 1;;
is-active)
	echo "$state"; [ "$state" = active ] && exit 0; exit 3;;
*)
	echo "fake systemctl: unknown action $action" >&2; exit 1;;
esac
`

// Systemctl is a fake systemctl first on PATH, with a temporary HOME.
type Systemctl struct {
	// Home is the temporary home directory, also in $HOME.
	Home string
	dir  string
	t    testing.TB
}

// NewSystemctl puts a fake systemctl first on PATH and points HOME at an
// empty directory, for the rest of the test (it uses t.Setenv, so the test
// cannot be parallel). It needs /bin/sh.
func NewSystemctl(t testing.TB) *Systemctl {
	t.Helper()
	root := t.TempDir()
	s := &Systemctl{Home: filepath.Join(root, "home"), dir: filepath.Join(root, "bin"), t: t}
	for _, d := range []string{s.Home, s.dir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(s.dir, "systemctl"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", s.Home)
	t.Setenv("PATH", s.dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("FAKE_SYSTEMCTL_DIR", s.dir)
	t.Setenv("FAKE_SYSTEMCTL_FAIL", "")
	return s
}

// Fail makes the given actions (enable, is-active, ...) fail from now on as
// they do without a user manager; no actions makes all succeed again.
func (s *Systemctl) Fail(actions ...string) {
	s.t.Setenv("FAKE_SYSTEMCTL_FAIL", strings.Join(actions, " "))
}

// Calls returns the argument lists of the calls made since the last Calls,
// one string each, e.g. "--user start ctxfit.service".
func (s *Systemctl) Calls() []string {
	s.t.Helper()
	p := filepath.Join(s.dir, "calls")
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		s.t.Fatal(err)
	}
	os.Remove(p)
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// UnitPath returns where the user unit belongs.
func (s *Systemctl) UnitPath() string {
	return filepath.Join(s.Home, ".config", "systemd", "user", "ctxfit.service")
}

// Files lists the files and links under Home, relative to it, with
// slashes, and the empty directories with a trailing slash (a failed
// install must not leave an empty graphical-session.target.wants/).
func (s *Systemctl) Files() []string {
	s.t.Helper()
	var files []string
	err := filepath.WalkDir(s.Home, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(s.Home, p)
		if !d.IsDir() {
			files = append(files, filepath.ToSlash(rel))
			return nil
		}
		if ents, err := os.ReadDir(p); err == nil && len(ents) == 0 && rel != "." {
			files = append(files, filepath.ToSlash(rel)+"/")
		}
		return nil
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return files
}
