package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ctxfit/ctxfit/internal/autostart/autostarttest"
	"github.com/ctxfit/ctxfit/internal/logfile"
)

// serviceCLI is ctxfit with a fake systemctl, a temporary HOME and an
// installed binary at exe.
func serviceCLI(t *testing.T) (*cli, *autostarttest.Systemctl, string) {
	t.Helper()
	sc := autostarttest.NewSystemctl(t)
	exe := filepath.Join(t.TempDir(), "bin", "ctxfit")
	if err := os.MkdirAll(filepath.Dir(exe), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	c := newCLI(t, map[string]string{logfile.DirEnv: "/var/log/ctxfit-test"})
	return c, sc, exe
}

func TestServiceLifecycle(t *testing.T) {
	c, sc, exe := serviceCLI(t)
	steps := []struct {
		args      []string
		wantOut   []string // substrings of stdout
		wantCalls []string
	}{
		{
			args:    []string{"service", "install", "--exe", exe},
			wantOut: []string{"Installed: ctxfit starts at login (systemd user unit " + sc.UnitPath() + "), watching the default Ollama server.", "Started it."},
			wantCalls: []string{
				"--user is-active ctxfit.service", // status before
				"enable --user ctxfit.service", "daemon-reload --user",
				"--user is-enabled ctxfit.service", "--user is-active ctxfit.service",
				"--user start ctxfit.service",
			},
		},
		{
			args:      []string{"service", "stop", "--exe", exe},
			wantOut:   []string{"Stopped ctxfit."},
			wantCalls: []string{"--user stop ctxfit.service"},
		},
		{
			args:      []string{"service", "start", "--exe", exe},
			wantOut:   []string{"Started ctxfit."},
			wantCalls: []string{"--user start ctxfit.service"},
		},
		{
			// The same install again, while it runs: nothing to start,
			// and no "Started it." for a start that did not happen.
			args:    []string{"service", "install", "--exe", exe},
			wantOut: []string{"Installed: ctxfit starts at login", "It was running already."},
			wantCalls: []string{
				"--user is-enabled ctxfit.service", "--user is-active ctxfit.service",
				"--user enable ctxfit.service",
				"--user is-enabled ctxfit.service", "--user is-active ctxfit.service",
			},
		},
		{
			// A switch to headless while running restarts with the new unit.
			args: []string{"service", "--exe", exe, "install", "--headless"},
			wantOut: []string{
				"Installed: ctxfit starts at login",
				"Restarted it with the new command line.",
				"loginctl enable-linger",
			},
			wantCalls: []string{
				"--user is-enabled ctxfit.service", "--user is-active ctxfit.service",
				"disable --user ctxfit.service", "daemon-reload --user",
				"enable --user ctxfit.service", "daemon-reload --user",
				"--user is-enabled ctxfit.service", "--user is-active ctxfit.service",
				"--user stop ctxfit.service", "--user start ctxfit.service",
			},
		},
		{
			args:    []string{"service", "uninstall", "--exe", exe},
			wantOut: []string{"Stopped ctxfit.", "Uninstalled: removed " + sc.UnitPath() + "; ctxfit no longer starts at login."},
			wantCalls: []string{
				"--user is-enabled ctxfit.service", "--user is-active ctxfit.service",
				"--user stop ctxfit.service",
				"disable --user ctxfit.service", "daemon-reload --user",
			},
		},
		{
			args:      []string{"service", "uninstall", "--exe", exe},
			wantOut:   []string{"ctxfit was not installed to start at login"},
			wantCalls: []string{"--user is-active ctxfit.service"},
		},
	}
	for _, s := range steps {
		code, stdout, stderr := c.run(s.args...)
		if code != 0 {
			t.Fatalf("ctxfit %s: exit %d\n%s%s", strings.Join(s.args, " "), code, stdout, stderr)
		}
		for _, want := range s.wantOut {
			if !strings.Contains(stdout, want) {
				t.Errorf("ctxfit %s: stdout lacks %q:\n%s", strings.Join(s.args, " "), want, stdout)
			}
		}
		if got := sc.Calls(); !slices.Equal(got, s.wantCalls) {
			t.Errorf("ctxfit %s: systemctl calls\n got %q\nwant %q", strings.Join(s.args, " "), got, s.wantCalls)
		}
	}
	// The user's systemd directory stays, empty; nothing else does.
	if files := sc.Files(); !slices.Equal(files, []string{".config/systemd/user/"}) {
		t.Errorf("uninstall left %q under HOME", files)
	}
}

func TestServiceStatus(t *testing.T) {
	c, sc, exe := serviceCLI(t)
	show := func() string {
		t.Helper()
		code, stdout, stderr := c.run("service", "status", "--exe", exe)
		if code != 0 {
			t.Fatalf("ctxfit service status: exit %d\n%s", code, stderr)
		}
		return strings.NewReplacer(sc.Home, "$HOME", exe, "$EXE").Replace(stdout)
	}
	var got strings.Builder
	got.WriteString("# not installed\n" + show())
	if code, _, stderr := c.run("service", "install", "--exe", exe); code != 0 {
		t.Fatalf("install: %s", stderr)
	}
	got.WriteString("# installed and running\n" + show())
	sc.Fail("is-enabled", "is-active")
	got.WriteString("# no user manager\n" + show())
	statusGolden(t, "service-status.golden", got.String())
}

// statusGolden compares got with testdata/name, or rewrites it with -update.
func statusGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update creates it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestServiceUsage(t *testing.T) {
	c, _, exe := serviceCLI(t)
	tests := []struct {
		args     []string
		code     int
		inStderr string
	}{
		{[]string{"service"}, 2, "name one action"},
		{[]string{"service", "restart"}, 2, `unknown action "restart"`},
		{[]string{"service", "install", "now"}, 2, "name one action"},
		{[]string{"service", "--bogus", "status"}, 2, "flag provided but not defined"},
		{[]string{"service", "status", "--host", "x"}, 2, "--host and --headless go with install"},
		{[]string{"service", "install", "--host", "not a url"}, 2, `"not a url" is not a host name`},
		{[]string{"service", "status", "--exe", exe + ".missing"}, 1, "no such file"},
		{[]string{"service", "start", "--exe", exe}, 1, "not installed to start at login"},
	}
	for _, tt := range tests {
		code, _, stderr := c.run(tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.inStderr) {
			t.Errorf("ctxfit %s: exit %d, stderr:\n%s\nwant exit %d and %q", strings.Join(tt.args, " "), code, stderr, tt.code, tt.inStderr)
		}
	}
	if code, stdout, _ := c.run("service", "-h"); code != 0 || !strings.Contains(stdout, "install    start ctxfit at every login") {
		t.Errorf("service -h: exit %d\n%s", code, stdout)
	}
}

// TestServiceHostAndAnyBinary: install records the server in force (from
// OLLAMA_HOST's :port form, or --host) in the unit; status and uninstall
// work from this test binary, a temporary build that install refuses.
func TestServiceHostAndAnyBinary(t *testing.T) {
	c, sc, exe := serviceCLI(t)
	c.vars["OLLAMA_HOST"] = ":18434"
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, `Environment="OLLAMA_HOST=http://127.0.0.1:18434"`},
		{[]string{"--host", "gpu-box"}, `Environment="OLLAMA_HOST=http://gpu-box:11434"`},
	} {
		code, out, errOut := c.run(append([]string{"service", "install", "--exe", exe}, tt.args...)...)
		if code != 0 {
			t.Fatalf("install %q: exit %d\n%s%s", tt.args, code, out, errOut)
		}
		unit, err := os.ReadFile(sc.UnitPath())
		if err != nil || !strings.Contains(string(unit), tt.want+"\n") {
			t.Errorf("install %q: unit lacks %s (%v):\n%s", tt.args, tt.want, err, unit)
		}
	}
	code, out, errOut := c.run("service", "status")
	if code != 0 || !strings.Contains(out, "watches:   http://gpu-box:11434") || strings.Contains(out, "replaces it") {
		t.Errorf("status from a temporary build: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = c.run("service", "status", "--json")
	if code != 0 || !strings.Contains(out, `"host": "http://gpu-box:11434"`) {
		t.Errorf("status --json: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := c.run("service", "install"); code != 1 || !strings.Contains(errOut, "temporary build") {
		t.Errorf("install from a temporary build: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := c.run("service", "uninstall"); code != 0 || !strings.Contains(out, "Uninstalled") {
		t.Errorf("uninstall from a temporary build: exit %d\n%s%s", code, out, errOut)
	}
}
