package autostart

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// stubSystemctl imitates `systemctl --user` for ctxfit.service: it records
// each call in $STUB_DIR/calls, enables and disables by making and removing
// the .wants links as systemctl does, keeps the unit's state in
// $STUB_DIR/state, and fails the actions listed in $STUB_FAIL the way
// systemctl does without a user manager.
const stubSystemctl = `#!/bin/sh
echo "$*" >> "$STUB_DIR/calls"
action=""
for a in "$@"; do case "$a" in --*) ;; *) action="$a"; break;; esac; done
dir="$HOME/.config/systemd/user"
unit="$dir/ctxfit.service"
case " $STUB_FAIL " in *" $action "*) echo "Failed to connect to bus: No medium found" >&2; exit 1;; esac
state=$(cat "$STUB_DIR/state" 2>/dev/null || echo inactive)
case "$action" in
enable)
	[ -f "$unit" ] || { echo "Failed to enable unit: Unit file ctxfit.service does not exist." >&2; exit 1; }
	target=$(sed -n 's/^WantedBy=//p' "$unit")
	mkdir -p "$dir/$target.wants" && ln -sf "$unit" "$dir/$target.wants/ctxfit.service";;
disable)
	rm -f "$dir"/*.wants/ctxfit.service;;
daemon-reload) ;;
start)
	[ -f "$unit" ] || { echo "Failed to start ctxfit.service: Unit ctxfit.service not found." >&2; exit 5; }
	echo active > "$STUB_DIR/state";;
stop)
	[ -f "$unit" ] || [ "$state" = active ] || { echo "Failed to stop ctxfit.service: Unit ctxfit.service not loaded." >&2; exit 5; }
	echo inactive > "$STUB_DIR/state";;
is-enabled)
	if ls "$dir"/*.wants/ctxfit.service >/dev/null 2>&1; then echo enabled; exit 0; fi
	[ -f "$unit" ] && { echo disabled; exit 1; }
	echo "Failed to get unit file state for ctxfit.service: No such file or directory" >&2; exit 1;;
is-active)
	echo "$state"; [ "$state" = active ] && exit 0; exit 3;;
*)
	echo "stub systemctl: unknown action $action" >&2; exit 1;;
esac
`

// systemdEnv is a temporary HOME with a ctxfit binary and a stub systemctl
// first on PATH.
type systemdEnv struct {
	home, stub, exe string
}

func newSystemdEnv(t *testing.T) *systemdEnv {
	t.Helper()
	root := t.TempDir()
	e := &systemdEnv{
		home: filepath.Join(root, "home"),
		stub: filepath.Join(root, "stub"),
		exe:  filepath.Join(root, "opt", "ctx fit", "ctxfit"),
	}
	for _, d := range []string{e.home, e.stub, filepath.Dir(e.exe)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(e.stub, "systemctl"), []byte(stubSystemctl), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", e.home)
	t.Setenv("PATH", e.stub+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("STUB_DIR", e.stub)
	t.Setenv("STUB_FAIL", "")
	return e
}

func (e *systemdEnv) manager(t *testing.T, headless bool) *Manager {
	t.Helper()
	m, err := New(Options{Executable: e.exe, Headless: headless})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// calls returns and forgets the systemctl calls made so far.
func (e *systemdEnv) calls(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.stub, "calls"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(e.stub, "calls"))
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func (e *systemdEnv) unitPath() string {
	return filepath.Join(e.home, ".config", "systemd", "user", "ctxfit.service")
}

// files lists the files and links under HOME, relative to it.
func (e *systemdEnv) files(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(e.home, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(e.home, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

const (
	unitFile    = ".config/systemd/user/ctxfit.service"
	trayLink    = ".config/systemd/user/graphical-session.target.wants/ctxfit.service"
	defaultLink = ".config/systemd/user/default.target.wants/ctxfit.service"
)

func TestSystemdCalls(t *testing.T) {
	type step struct {
		do       string // install, uninstall, start, stop
		headless bool
	}
	tests := []struct {
		name      string
		before    []step
		fail      string // actions the stub fails
		step      step
		wantErr   bool
		wantCalls []string
		wantFiles []string
	}{
		{
			name:      "install",
			step:      step{do: "install"},
			wantCalls: []string{"enable --user ctxfit.service", "daemon-reload --user"},
			wantFiles: []string{unitFile, trayLink},
		},
		{
			name:      "install headless",
			step:      step{do: "install", headless: true},
			wantCalls: []string{"enable --user ctxfit.service", "daemon-reload --user"},
			wantFiles: []string{unitFile, defaultLink},
		},
		{
			name:      "install again enables only",
			before:    []step{{do: "install"}},
			step:      step{do: "install"},
			wantCalls: []string{"--user enable ctxfit.service"},
			wantFiles: []string{unitFile, trayLink},
		},
		{
			name:   "switch to headless replaces unit and link",
			before: []step{{do: "install"}},
			step:   step{do: "install", headless: true},
			wantCalls: []string{
				"disable --user ctxfit.service", "daemon-reload --user",
				"enable --user ctxfit.service", "daemon-reload --user",
			},
			wantFiles: []string{unitFile, defaultLink},
		},
		{
			name:      "start",
			before:    []step{{do: "install"}},
			step:      step{do: "start"},
			wantCalls: []string{"--user start ctxfit.service"},
			wantFiles: []string{unitFile, trayLink},
		},
		{
			name:      "start uninstalled",
			step:      step{do: "start"},
			wantErr:   true,
			wantCalls: nil,
		},
		{
			name:      "stop",
			before:    []step{{do: "install"}, {do: "start"}},
			step:      step{do: "stop"},
			wantCalls: []string{"--user stop ctxfit.service"},
			wantFiles: []string{unitFile, trayLink},
		},
		{
			name:      "stop uninstalled does nothing",
			step:      step{do: "stop"},
			wantCalls: []string{"--user stop ctxfit.service"},
		},
		{
			name:      "uninstall",
			before:    []step{{do: "install"}},
			step:      step{do: "uninstall"},
			wantCalls: []string{"disable --user ctxfit.service", "daemon-reload --user"},
		},
		{
			name:      "uninstall headless",
			before:    []step{{do: "install", headless: true}},
			step:      step{do: "uninstall"},
			wantCalls: []string{"disable --user ctxfit.service", "daemon-reload --user"},
		},
		{
			name:      "uninstall uninstalled does nothing",
			step:      step{do: "uninstall"},
			wantCalls: nil,
		},
		{
			name:      "failed enable leaves nothing behind",
			fail:      "enable",
			step:      step{do: "install"},
			wantErr:   true,
			wantCalls: []string{"enable --user ctxfit.service"},
		},
		{
			name:      "failed daemon-reload leaves nothing behind",
			fail:      "daemon-reload",
			step:      step{do: "install"},
			wantErr:   true,
			wantCalls: []string{"enable --user ctxfit.service", "daemon-reload --user"},
		},
		{
			name:      "uninstall without a user manager removes the files",
			before:    []step{{do: "install"}},
			fail:      "disable daemon-reload",
			step:      step{do: "uninstall"},
			wantCalls: []string{"disable --user ctxfit.service", "--user daemon-reload"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newSystemdEnv(t)
			ctx := context.Background()
			do := func(s step) error {
				m := e.manager(t, s.headless)
				switch s.do {
				case "install":
					return m.Install(ctx)
				case "uninstall":
					return m.Uninstall(ctx)
				case "start":
					return m.Start(ctx)
				case "stop":
					return m.Stop(ctx)
				}
				t.Fatalf("unknown step %q", s.do)
				return nil
			}
			for _, s := range tt.before {
				if err := do(s); err != nil {
					t.Fatalf("%s: %v", s.do, err)
				}
			}
			e.calls(t)
			t.Setenv("STUB_FAIL", tt.fail)
			err := do(tt.step)
			if (err != nil) != tt.wantErr {
				t.Fatalf("%s: error = %v, want error %v", tt.step.do, err, tt.wantErr)
			}
			if got := e.calls(t); !slices.Equal(got, tt.wantCalls) {
				t.Errorf("systemctl calls:\n got %q\nwant %q", got, tt.wantCalls)
			}
			if got := e.files(t); !slices.Equal(got, tt.wantFiles) {
				t.Errorf("files under HOME:\n got %q\nwant %q", got, tt.wantFiles)
			}
			if slices.Contains(tt.wantFiles, unitFile) {
				got, err := os.ReadFile(e.unitPath())
				if err != nil {
					t.Fatal(err)
				}
				want, _ := systemdUnit(Options{Executable: e.exe, Headless: tt.step.headless})
				if string(got) != want {
					t.Errorf("the installed unit is not the rendered one:\n%s\nwant:\n%s", got, want)
				}
			}
		})
	}
}

func TestSystemdStatus(t *testing.T) {
	ctx := context.Background()
	e := newSystemdEnv(t)
	m := e.manager(t, false)

	check := func(name string, want Status, wantCalls []string) {
		t.Helper()
		got, err := m.Status(ctx)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.Installed != want.Installed || got.Current != want.Current ||
			got.Enabled != want.Enabled || got.Running != want.Running ||
			!slices.Equal(got.Command, want.Command) {
			t.Errorf("%s: status = %+v\nwant %+v", name, got, want)
		}
		if got.Method != "systemd user unit" || got.Path != e.unitPath() {
			t.Errorf("%s: method %q at %q, want systemd user unit at %q", name, got.Method, got.Path, e.unitPath())
		}
		if calls := e.calls(t); !slices.Equal(calls, wantCalls) {
			t.Errorf("%s: systemctl calls %q, want %q", name, calls, wantCalls)
		}
	}
	isActive := []string{"--user is-active ctxfit.service"}
	both := []string{"--user is-enabled ctxfit.service", "--user is-active ctxfit.service"}
	cmd := []string{e.exe, "run"}

	check("not installed", Status{Enabled: No, Running: No}, isActive)

	if err := m.Install(ctx); err != nil {
		t.Fatal(err)
	}
	e.calls(t)
	check("installed", Status{Installed: true, Current: true, Enabled: Yes, Running: No, Command: cmd}, both)

	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	e.calls(t)
	check("running", Status{Installed: true, Current: true, Enabled: Yes, Running: Yes, Command: cmd}, both)

	// The user disabled the unit by hand.
	if err := os.Remove(filepath.Join(e.home, trayLink)); err != nil {
		t.Fatal(err)
	}
	check("disabled", Status{Installed: true, Current: true, Enabled: No, Running: Yes, Command: cmd}, both)

	// Uninstalled while running: it still runs, and status says so.
	if err := m.Uninstall(ctx); err != nil {
		t.Fatal(err)
	}
	e.calls(t)
	got, _ := m.Status(ctx)
	if got.Installed || got.Running != Yes || !strings.Contains(strings.Join(got.Notes, " "), "ctxfit service stop") {
		t.Errorf("uninstalled but running: %+v", got)
	}
	e.calls(t)
	if err := m.Stop(ctx); err != nil {
		t.Errorf("stop after uninstall: %v", err)
	}
	e.calls(t)

	// No user manager: the answers are unknown and the notes say why.
	if err := m.Install(ctx); err != nil {
		t.Fatal(err)
	}
	e.calls(t)
	t.Setenv("STUB_FAIL", "is-enabled is-active")
	got, err := m.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Installed || got.Enabled != Unknown || got.Running != Unknown || len(got.Notes) != 2 ||
		!strings.Contains(got.Notes[0], "No medium found") {
		t.Errorf("without a user manager: %+v", got)
	}
}

func TestSystemdStatusStale(t *testing.T) {
	ctx := context.Background()
	e := newSystemdEnv(t)
	// A unit written for a binary that has gone since, by kardianos's template.
	old := "[Service]\nExecStart=/gone/ctx\\x20fit \"run\"\n[Install]\nWantedBy=graphical-session.target\n"
	if err := os.MkdirAll(filepath.Dir(e.unitPath()), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.unitPath(), []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	m := e.manager(t, false)
	st, err := m.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Installed || st.Current || !slices.Equal(st.Command, []string{"/gone/ctx fit", "run"}) {
		t.Errorf("stale unit: %+v", st)
	}
	if notes := strings.Join(st.Notes, " "); !strings.Contains(notes, "/gone/ctx fit, which no longer exists") {
		t.Errorf("notes %q do not say the binary is gone", notes)
	}
	// Installing replaces it.
	if err := m.Install(ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := m.Status(ctx); !st.Current || st.Enabled != Yes {
		t.Errorf("after install: %+v", st)
	}
}

func TestSystemdWithoutSystemctl(t *testing.T) {
	ctx := context.Background()
	e := newSystemdEnv(t)
	t.Setenv("PATH", t.TempDir())
	m := e.manager(t, false)
	if err := m.Install(ctx); !errors.Is(err, errNoSystemd) {
		t.Errorf("Install without systemctl: %v, want errNoSystemd", err)
	}
	if files := e.files(t); len(files) != 0 {
		t.Errorf("Install without systemctl left %q", files)
	}
	st, err := m.Status(ctx)
	if err != nil || st.Installed || st.Enabled != No || st.Running != No {
		t.Errorf("Status without systemctl = %+v, %v", st, err)
	}
}
