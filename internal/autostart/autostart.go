// Package autostart makes ctxfit start when the user logs in, and reports
// whether it does.
//
// Each OS has its own mechanism:
//
//   - Linux: a systemd user unit, ~/.config/systemd/user/ctxfit.service,
//     wanted by graphical-session.target for the tray or default.target for
//     --headless, written through github.com/kardianos/service with
//     ctxfit's own unit text and enabled with systemctl --user.
//   - macOS: a LaunchAgent, ~/Library/LaunchAgents/io.github.ctxfit.plist,
//     with RunAtLoad true and KeepAlive false, so that Quit stays quit.
//   - Windows: the tray starts from the per-user Run key
//     (HKCU\Software\Microsoft\Windows\CurrentVersion\Run), because a
//     Windows service runs in session 0 and cannot show a tray icon. The
//     key starts ctxfit-tray.exe, ctxfit linked for the GUI subsystem, so
//     that no console window opens at login (Install writes it beside
//     ctxfit.exe when a release did not ship it);
//     --headless installs a real Windows service, which needs an
//     Administrator prompt.
//
// The text each mechanism stores (unit file, property list, Run-key command
// line) is rendered by plain functions that build and are tested on every
// OS; only the code that talks to systemctl, launchctl or the registry is
// built per OS.
//
// The CLI (`ctxfit service ...`) and the tray's "Start at login" checkbox
// share a Manager:
//
//	m, err := autostart.New(autostart.Options{})
//	st, err := m.Status(ctx)    // checkbox: st.Installed && st.Enabled == autostart.Yes
//	err = m.Install(ctx)        // check: start at the next login
//	err = m.Uninstall(ctx)      // uncheck: no longer start at login
//
// Install and Uninstall never start or stop the running ctxfit, so the tray
// may call them on itself; Start and Stop do that, and the CLI calls them
// around Install and Uninstall.
//
// `ctxfit run` should run its watcher through Serve, which stops it
// cleanly on SIGTERM (systemd, launchd) and answers Windows' service
// manager when --headless runs as a Windows service.
package autostart

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Names under which ctxfit registers itself with each OS.
const (
	// UnitName is the systemd user unit's file name.
	UnitName = "ctxfit.service"
	// LaunchdLabel is the LaunchAgent's label and, with ".plist", its file name.
	LaunchdLabel = "io.github.ctxfit"
	// RunValueName is the name of ctxfit's value in the Windows Run key.
	RunValueName = "ctxfit"
	// WindowsServiceName is the name of the Windows service that --headless installs.
	WindowsServiceName = "ctxfit"
)

// description is what service managers show next to ctxfit.
const description = "ctxfit: keeps Ollama models on the GPU and tunes their context length"

// Options say what to start at login.
type Options struct {
	// Executable is the absolute path of the ctxfit binary to start. Empty
	// means the running binary, with symlinks resolved (see Executable).
	Executable string
	// Headless starts `ctxfit run --headless` (no tray icon; for servers)
	// instead of the tray app, `ctxfit run`.
	Headless bool
	// Host is the Ollama server the started ctxfit watches, recorded as
	// OLLAMA_HOST (Environment= in the systemd unit, EnvironmentVariables
	// in the LaunchAgent) or, on Windows, as --host on the command line;
	// empty records none, so ctxfit watches the default server.
	Host string
	// InspectOnly says that the Manager only reads, stops or removes what
	// is installed (`ctxfit service status|uninstall|start|stop`), so that
	// any ctxfit binary may do it, a temporary `go run` build included:
	// Status then does not compare the installed entry with this binary.
	InspectOnly bool
}

// Manager installs, removes, starts, stops and inspects ctxfit's start at
// login on the running OS. A Manager holds no open resources.
type Manager struct {
	opts Options
	b    backend
}

// backend is one OS's mechanism. Each method does exactly what the Manager
// method of the same name documents.
type backend interface {
	install(ctx context.Context) error
	uninstall(ctx context.Context) error
	start(ctx context.Context) error
	stop(ctx context.Context) error
	status(ctx context.Context) (Status, error)
}

// New returns a Manager for opts on the running OS. It fails if the
// executable path cannot be used (relative, missing, or holding characters
// that no service file can express) and, wrapping errors.ErrUnsupported, on
// an OS without a supported mechanism.
func New(opts Options) (*Manager, error) {
	if opts.Executable == "" {
		exe, err := Executable()
		if err != nil {
			return nil, err
		}
		opts.Executable = exe
	}
	if err := checkExecutable(opts.Executable); err != nil {
		return nil, err
	}
	b, err := newBackend(opts)
	if err != nil {
		return nil, err
	}
	return &Manager{opts: opts, b: b}, nil
}

// Executable returns the absolute path of the running ctxfit binary with
// symlinks resolved, which is what a login service should start.
func Executable() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find the ctxfit executable: %w", err)
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	return filepath.Abs(exe)
}

// checkExecutable reports why exe cannot be started at login, or nil.
func checkExecutable(exe string) error {
	if !filepath.IsAbs(exe) {
		return fmt.Errorf("the executable %s is not an absolute path", exe)
	}
	if strings.ContainsFunc(exe, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return fmt.Errorf("the executable path %q holds control characters; move ctxfit to a plain path", exe)
	}
	fi, err := os.Stat(exe)
	if err != nil {
		return fmt.Errorf("the executable to start at login: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("the executable %s is not a regular file", exe)
	}
	return nil
}

// Args returns the arguments ctxfit is started with: run, and --headless
// when opts.Headless is set.
func (o Options) Args() []string {
	if o.Headless {
		return []string{"run", "--headless"}
	}
	return []string{"run"}
}

// command returns the full command line to start at login, where the
// host travels in the environment (systemd, launchd).
func (o Options) command() []string {
	return append([]string{o.Executable}, o.Args()...)
}

// windowsCommand returns the full command line to start at login on
// Windows, where the Run key and the service hold no environment: the host
// is an argument.
func (o Options) windowsCommand() []string {
	if o.Host == "" {
		return o.command()
	}
	return append(o.command(), "--host", o.Host)
}

// hostArg returns the value of --host in a command line, or "".
func hostArg(cmd []string) string {
	for i, a := range cmd {
		if (a == "--host" || a == "-host") && i+1 < len(cmd) {
			return cmd[i+1]
		}
		if v, ok := strings.CutPrefix(a, "--host="); ok {
			return v
		}
	}
	return ""
}

// Options returns the options the Manager was made with, with Executable
// filled in.
func (m *Manager) Options() Options { return m.opts }

// Install makes ctxfit start at the next login, replacing any earlier
// installation (for example one for another binary or mode). It does not
// start ctxfit now; call Start for that.
func (m *Manager) Install(ctx context.Context) error { return m.b.install(ctx) }

// Uninstall removes everything Install added, so that ctxfit no longer
// starts at login. It does not stop a running ctxfit, so that the tray can
// call it on itself; call Stop first for that. Uninstalling what is not
// installed does nothing.
func (m *Manager) Uninstall(ctx context.Context) error { return m.b.uninstall(ctx) }

// Start starts the installed ctxfit now, through the OS's service manager.
// Starting one that runs already does nothing.
func (m *Manager) Start(ctx context.Context) error { return m.b.start(ctx) }

// Stop stops the ctxfit that the OS's service manager started. Stopping one
// that is not running does nothing.
func (m *Manager) Stop(ctx context.Context) error { return m.b.stop(ctx) }

// Usable returns nil when Install can work in this session, else why not,
// in words that say what to do instead: on Linux, a session without a
// systemd user manager (a container, a desktop started without systemd).
// The tray greys Start at login with that reason.
func (m *Manager) Usable(ctx context.Context) error {
	if u, ok := m.b.(interface{ usable(context.Context) error }); ok {
		return u.usable(ctx)
	}
	return nil
}

// Status reports what is installed, whether it is enabled and whether it
// runs. Answers it cannot find out are Unknown, with the reason in Notes.
func (m *Manager) Status(ctx context.Context) (Status, error) { return m.b.status(ctx) }

// Status is what Manager.Status found.
type Status struct {
	// Method names the mechanism, e.g. "systemd user unit".
	Method string
	// Path is where the entry lives: a file, or a registry value or service name.
	Path string
	// Installed reports whether the entry exists.
	Installed bool
	// Command is the command line the installed entry runs, when it could
	// be read.
	Command []string
	// Host is the Ollama server the installed entry watches (its
	// OLLAMA_HOST or --host); empty for the default.
	Host string
	// Current reports whether the installed entry is exactly what Install
	// would write now: same executable, same mode, same settings. When it
	// is false on an installed entry, installing again updates it.
	Current bool
	// Enabled says whether the entry starts ctxfit at login.
	Enabled Answer
	// Running says whether the ctxfit started by the service manager runs.
	// A ctxfit started by hand is not counted.
	Running Answer
	// Notes explain Unknown answers and anything that needs the user's
	// attention, as sentences.
	Notes []string
}

// Headless reports whether the installed entry runs ctxfit with --headless.
func (s Status) Headless() bool {
	for _, a := range s.Command[min(1, len(s.Command)):] {
		if a == "--headless" || a == "-headless" {
			return true
		}
	}
	return false
}

// Answer is a yes or no that may be unknown.
type Answer int8

// The answers.
const (
	Unknown Answer = iota
	No
	Yes
)

// String returns "yes", "no" or "unknown".
func (a Answer) String() string {
	switch a {
	case Yes:
		return "yes"
	case No:
		return "no"
	}
	return "unknown"
}

// answer converts a known boolean into an Answer.
func answer(b bool) Answer {
	if b {
		return Yes
	}
	return No
}

// errUnsupported is returned by New where no mechanism is implemented.
func errUnsupported(goos string) error {
	return fmt.Errorf("starting ctxfit at login on %s: %w; start `ctxfit run` from your session's autostart settings", goos, errors.ErrUnsupported)
}

// commandNotes explains why an installed entry is not what Install would
// write now, and what to do about it.
func commandNotes(st Status, o Options, want []string) []string {
	if !st.Installed || st.Current {
		return nil
	}
	if len(st.Command) > 0 {
		if _, err := os.Stat(st.Command[0]); err != nil {
			return []string{fmt.Sprintf("It starts %s, which no longer exists; run `ctxfit service install` with the ctxfit you use.", st.Command[0])}
		}
		if o.InspectOnly {
			return nil // this binary is not what install would start
		}
		if st.Host != o.Host {
			return []string{fmt.Sprintf("It watches %s, not %s; `ctxfit service install` replaces it.", hostOrDefault(st.Host), hostOrDefault(o.Host))}
		}
		if !slices.Equal(st.Command, want) {
			return []string{fmt.Sprintf("It runs `%s`, not `%s`; `ctxfit service install` replaces it.", strings.Join(st.Command, " "), strings.Join(want, " "))}
		}
	}
	return []string{"It was written by another version of ctxfit; `ctxfit service install` updates it."}
}

func hostOrDefault(h string) string {
	if h == "" {
		return "the default Ollama server"
	}
	return h
}
