package autostart

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/kardianos/service"
)

// systemdUnitFile installs ctxfit as a systemd user unit.
type systemdUnitFile struct {
	opts Options
	unit string // the unit's text, as Install writes it
	dir  string // ~/.config/systemd/user
	svc  service.Service
}

func newBackend(o Options) (backend, error) {
	unit, err := systemdUnit(o)
	if err != nil {
		return nil, err
	}
	// kardianos/service puts user units under os.UserHomeDir; so does ctxfit.
	home, err := os.UserHomeDir()
	if err != nil {
		return nil, fmt.Errorf("find the home directory for the systemd user unit: %w", err)
	}
	sys, err := systemdSystem()
	if err != nil {
		return nil, err
	}
	svc, err := sys.New(noProgram{}, &service.Config{
		Name:        strings.TrimSuffix(UnitName, ".service"),
		Description: description,
		Executable:  o.Executable,
		Arguments:   o.Args(),
		Option: service.KeyValue{
			"UserService":   true,
			"SystemdScript": unit, // rendered already: no template actions left
		},
	})
	if err != nil {
		return nil, fmt.Errorf("set up the systemd user unit: %w", err)
	}
	return &systemdUnitFile{
		opts: o,
		unit: unit,
		dir:  filepath.Join(home, ".config", "systemd", "user"),
		svc:  svc,
	}, nil
}

// systemdSystem returns kardianos/service's systemd backend whether or not
// it detected systemd on this machine: it detects by /run/systemd/system,
// which containers and test machines lack, while the user manager is
// reached through systemctl alone.
func systemdSystem() (service.System, error) {
	for _, s := range service.AvailableSystems() {
		if s.String() == "linux-systemd" {
			return s, nil
		}
	}
	return nil, errors.New("kardianos/service has no linux-systemd system")
}

func (u *systemdUnitFile) path() string { return filepath.Join(u.dir, UnitName) }

// wants returns the links that `systemctl enable` may have made, for
// either mode.
func (u *systemdUnitFile) wants() []string {
	return []string{
		filepath.Join(u.dir, trayTarget+".wants", UnitName),
		filepath.Join(u.dir, headlessTarget+".wants", UnitName),
	}
}

// systemctl runs `systemctl --user args...`.
func (u *systemdUnitFile) systemctl(ctx context.Context, args ...string) (string, error) {
	return command(ctx, "systemctl", append([]string{"--user"}, args...)...)
}

// errNoSystemd explains a missing systemctl.
var errNoSystemd = errors.New("systemctl not found: `ctxfit service` needs a systemd user session; without systemd, add `ctxfit run` to your desktop's autostart settings")

// usable asks the user manager for its environment, which only a running
// one answers.
func (u *systemdUnitFile) usable(ctx context.Context) error {
	if _, err := exec.LookPath("systemctl"); err != nil {
		return errNoSystemd
	}
	if _, err := u.systemctl(ctx, "show-environment"); err != nil {
		if u.opts.Headless {
			return fmt.Errorf("no systemd user session: %w; start `ctxfit run --headless` from your init system instead, or beside Ollama in a container (deploy/compose.yaml)", err)
		}
		return fmt.Errorf("no systemd user session: %w; add `ctxfit run` to your desktop's autostart settings instead", err)
	}
	return nil
}

func (u *systemdUnitFile) install(ctx context.Context) error {
	if _, err := exec.LookPath("systemctl"); err != nil {
		return errNoSystemd
	}
	old, err := os.ReadFile(u.path())
	switch {
	case err == nil && string(old) == u.unit:
		// Installed as it should be; enable it again in case the user
		// disabled it.
		if _, err := u.systemctl(ctx, "enable", UnitName); err != nil {
			return fmt.Errorf("enable %s: %w", UnitName, err)
		}
		return nil
	case err == nil:
		// An older unit (another binary, mode or ctxfit version): its
		// links may point at another target, so remove it first.
		if err := u.uninstall(ctx); err != nil {
			return fmt.Errorf("replace %s: %w", u.path(), err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("read %s: %w", u.path(), err)
	}
	created := missingDirs(u.dir)
	// Writes the unit, then runs systemctl enable --user and daemon-reload --user.
	if err := u.svc.Install(); err != nil {
		u.removeFiles()
		// Leave no empty directory that this install made.
		for _, d := range created {
			os.Remove(d)
		}
		// kardianos/service says only "exit status 1": without a user
		// manager, say so, with systemctl's own words and what to do.
		if uerr := u.usable(ctx); uerr != nil {
			return fmt.Errorf("install %s: %w", u.path(), uerr)
		}
		return fmt.Errorf("install %s: %w (is a systemd user session running? `systemctl --user status` tells)", u.path(), err)
	}
	return nil
}

func (u *systemdUnitFile) uninstall(ctx context.Context) error {
	if _, err := os.Stat(u.path()); errors.Is(err, fs.ErrNotExist) {
		return u.removeFiles()
	}
	// Runs systemctl disable --user, removes the unit, runs daemon-reload --user.
	defer u.removeEmptyWants()
	if err := u.svc.Uninstall(); err != nil {
		// systemctl failed, e.g. with no user manager: remove what
		// install added by hand, so that nothing starts at login.
		if ferr := u.removeFiles(); ferr != nil {
			return fmt.Errorf("uninstall %s: %w", u.path(), errors.Join(err, ferr))
		}
		u.systemctl(ctx, "daemon-reload")
	}
	return nil
}

// removeFiles removes the unit, the links that enable it and the .wants
// directories they leave empty, ignoring the ones that are already gone.
func (u *systemdUnitFile) removeFiles() error {
	var errs []error
	for _, p := range u.wants() {
		if fi, err := os.Lstat(p); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			if err := os.Remove(p); err != nil {
				errs = append(errs, err)
			}
		}
	}
	u.removeEmptyWants()
	if err := os.Remove(u.path()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// removeEmptyWants removes the .wants directories that ctxfit's links
// were in when they are empty (systemctl disable leaves them); other
// units' links keep theirs.
func (u *systemdUnitFile) removeEmptyWants() {
	for _, p := range u.wants() {
		os.Remove(filepath.Dir(p)) // fails, harmlessly, unless empty
	}
}

// missingDirs returns dir and those of its parents that do not exist yet,
// deepest first: what writing into dir would create.
func missingDirs(dir string) []string {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil || filepath.Dir(d) == d {
			return missing
		}
		missing = append(missing, d)
	}
}

func (u *systemdUnitFile) start(ctx context.Context) error {
	if _, err := os.Stat(u.path()); err != nil {
		return fmt.Errorf("ctxfit is not installed to start at login (%w); run `ctxfit service install`", err)
	}
	if _, err := u.systemctl(ctx, "start", UnitName); err != nil {
		return fmt.Errorf("start %s: %w (`journalctl --user -u %s` shows why)", UnitName, err, UnitName)
	}
	return nil
}

func (u *systemdUnitFile) stop(ctx context.Context) error {
	if _, err := exec.LookPath("systemctl"); err != nil {
		return errNoSystemd
	}
	_, err := u.systemctl(ctx, "stop", UnitName)
	if err != nil {
		if _, serr := os.Stat(u.path()); errors.Is(serr, fs.ErrNotExist) {
			return nil // neither installed nor loaded: nothing runs
		}
		return fmt.Errorf("stop %s: %w", UnitName, err)
	}
	return nil
}

func (u *systemdUnitFile) status(ctx context.Context) (Status, error) {
	st := Status{Method: "systemd user unit", Path: u.path(), Enabled: No, Running: No}
	data, err := os.ReadFile(u.path())
	switch {
	case err == nil:
		st.Installed = true
		st.Current = string(data) == u.unit
		st.Host = unitHost(string(data))
		if cmd, err := unitExecStart(string(data)); err == nil {
			st.Command = cmd
		} else {
			st.Notes = append(st.Notes, fmt.Sprintf("The unit's command line cannot be read: %v.", err))
		}
	case !errors.Is(err, fs.ErrNotExist):
		return st, fmt.Errorf("read %s: %w", u.path(), err)
	}
	if _, err := exec.LookPath("systemctl"); err != nil {
		if st.Installed {
			st.Enabled, st.Running = Unknown, Unknown
			st.Notes = append(st.Notes, "systemctl is not on PATH, so whether the unit is enabled and running is unknown.")
		}
		return st, nil
	}
	if st.Installed {
		out, err := u.systemctl(ctx, "is-enabled", UnitName)
		a, ok := isEnabled(out)
		st.Enabled = a
		if !ok {
			st.Notes = append(st.Notes, fmt.Sprintf("Whether the unit is enabled is unknown: %v.", orOutput(err, out)))
		}
	}
	out, err := u.systemctl(ctx, "is-active", UnitName)
	a, ok := isActive(out)
	st.Running = a
	switch {
	case !ok && st.Installed:
		st.Notes = append(st.Notes, fmt.Sprintf("Whether the unit runs is unknown: %v.", orOutput(err, out)))
	case !ok:
		st.Running = No // no unit, no user manager: nothing it started runs
	case firstLine(out) == "failed":
		st.Notes = append(st.Notes, fmt.Sprintf("Its last run failed: `journalctl --user -u %s` shows why.", UnitName))
	case a == Yes && !st.Installed:
		st.Notes = append(st.Notes, "A ctxfit started by an earlier installation still runs; `ctxfit service stop` stops it.")
	}
	st.Notes = append(st.Notes, commandNotes(st, u.opts, u.opts.command())...)
	return st, nil
}

// orOutput returns err, or the unexpected output when the command succeeded.
func orOutput(err error, out string) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("unexpected output %q", strings.TrimSpace(out))
}
