package autostart

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ctxfit/ctxfit/internal/autostart/autostarttest"
)

// systemdEnv is a fake systemctl with a temporary HOME, and a ctxfit binary.
type systemdEnv struct {
	*autostarttest.Systemctl
	home, exe string
}

func newSystemdEnv(t *testing.T) *systemdEnv {
	t.Helper()
	sc := autostarttest.NewSystemctl(t)
	e := &systemdEnv{Systemctl: sc, home: sc.Home, exe: filepath.Join(t.TempDir(), "ctx fit", "ctxfit")}
	if err := os.MkdirAll(filepath.Dir(e.exe), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
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

func (e *systemdEnv) unitPath() string { return e.UnitPath() }

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
			wantFiles: []string{".config/systemd/user/"},
		},
		{
			name:      "uninstall headless",
			before:    []step{{do: "install", headless: true}},
			step:      step{do: "uninstall"},
			wantCalls: []string{"disable --user ctxfit.service", "daemon-reload --user"},
			wantFiles: []string{".config/systemd/user/"},
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
			wantCalls: []string{"enable --user ctxfit.service", "--user show-environment"}, // is there a user manager to blame?
		},
		{
			name:      "failed daemon-reload leaves nothing behind",
			fail:      "daemon-reload",
			step:      step{do: "install"},
			wantErr:   true,
			wantCalls: []string{"enable --user ctxfit.service", "daemon-reload --user", "--user show-environment"},
		},
		{
			name:      "uninstall without a user manager removes the files",
			before:    []step{{do: "install"}},
			fail:      "disable daemon-reload",
			step:      step{do: "uninstall"},
			wantCalls: []string{"disable --user ctxfit.service", "--user daemon-reload"},
			wantFiles: []string{".config/systemd/user/"},
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
			e.Calls()
			e.Fail(strings.Fields(tt.fail)...)
			err := do(tt.step)
			if (err != nil) != tt.wantErr {
				t.Fatalf("%s: error = %v, want error %v", tt.step.do, err, tt.wantErr)
			}
			if got := e.Calls(); !slices.Equal(got, tt.wantCalls) {
				t.Errorf("systemctl calls:\n got %q\nwant %q", got, tt.wantCalls)
			}
			if got := e.Files(); !slices.Equal(got, tt.wantFiles) {
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
		if calls := e.Calls(); !slices.Equal(calls, wantCalls) {
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
	e.Calls()
	check("installed", Status{Installed: true, Current: true, Enabled: Yes, Running: No, Command: cmd}, both)

	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	e.Calls()
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
	e.Calls()
	got, _ := m.Status(ctx)
	if got.Installed || got.Running != Yes || !strings.Contains(strings.Join(got.Notes, " "), "ctxfit service stop") {
		t.Errorf("uninstalled but running: %+v", got)
	}
	e.Calls()
	if err := m.Stop(ctx); err != nil {
		t.Errorf("stop after uninstall: %v", err)
	}
	e.Calls()

	// No user manager: the answers are unknown and the notes say why.
	if err := m.Install(ctx); err != nil {
		t.Fatal(err)
	}
	e.Calls()
	e.Fail("is-enabled", "is-active")
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
	if files := e.Files(); len(files) != 0 {
		t.Errorf("Install without systemctl left %q", files)
	}
	st, err := m.Status(ctx)
	if err != nil || st.Installed || st.Enabled != No || st.Running != No {
		t.Errorf("Status without systemctl = %+v, %v", st, err)
	}
}

// TestSystemdUsable: without a user manager Start at login is unusable,
// and the reason says so and what to do instead.
func TestSystemdUsable(t *testing.T) {
	e := newSystemdEnv(t)
	m := e.manager(t, false)
	if err := m.Usable(context.Background()); err != nil {
		t.Fatalf("with a user manager: %v", err)
	}
	e.Fail("show-environment")
	err := m.Usable(context.Background())
	if err == nil || !strings.HasPrefix(err.Error(), "no systemd user session: ") || !strings.Contains(err.Error(), "autostart settings") {
		t.Errorf("without a user manager: %v", err)
	}
}

// TestSystemdInstallWithoutSession: where no user manager runs (a container,
// a machine without systemd), install failed with kardianos/service's bare
// "exit status 1"; it now says that there is no session, in systemctl's
// words, and what to do instead, and leaves nothing behind.
func TestSystemdInstallWithoutSession(t *testing.T) {
	for _, headless := range []bool{false, true} {
		e := newSystemdEnv(t)
		e.Fail("show-environment", "enable", "daemon-reload")
		err := e.manager(t, headless).Install(context.Background())
		want := "add `ctxfit run` to your desktop's autostart settings instead"
		if headless {
			want = "start `ctxfit run --headless` from your init system instead"
		}
		if err == nil || !strings.Contains(err.Error(), "no systemd user session: ") || !strings.Contains(err.Error(), "Failed to connect to bus") ||
			!strings.Contains(err.Error(), want) {
			t.Errorf("headless %v: Install without a user manager: %v; want it to say so and %q", headless, err, want)
		}
		if files := e.Files(); len(files) != 0 {
			t.Errorf("headless %v: Install without a user manager left %q", headless, files)
		}
	}
}
