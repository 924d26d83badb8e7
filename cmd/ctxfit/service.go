package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/ctxfit/ctxfit/internal/autostart"
	"github.com/ctxfit/ctxfit/internal/logfile"
)

const serviceUsage = `Usage: ctxfit service install|uninstall|start|stop|status [--headless] [--exe PATH]

Makes ctxfit start at login: a systemd user unit on Linux, a LaunchAgent on
macOS, the Run key on Windows (--headless: a Windows service, installed from
an Administrator prompt).

  install    start ctxfit at every login, and now
  uninstall  stop it and remove what install added
  start      start the installed ctxfit now
  stop       stop the ctxfit that install started
  status     show what is installed, enabled and running, and the log file
`

func runService(ctx context.Context, e *env, args []string) error {
	fs := e.flags("service")
	headless := fs.Bool("headless", false, "run `ctxfit run --headless` (no tray icon; for servers)")
	exe := fs.String("exe", "", "start this ctxfit `binary` instead of the running one")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), serviceUsage+"\nFlags:\n")
		fs.PrintDefaults()
	}
	// Flags may come before or after the action.
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errUsage
	}
	action := fs.Arg(0)
	if err := parse(fs, fs.Args()[1:]); err != nil {
		return err
	}
	if !slices.Contains([]string{"install", "uninstall", "start", "stop", "status"}, action) || fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "ctxfit service: unknown action %q\n\n", strings.Join(append([]string{action}, fs.Args()...), " "))
		fs.Usage()
		return errUsage
	}

	path, err := serviceExecutable(*exe)
	if err != nil {
		return err
	}
	m, err := autostart.New(autostart.Options{Executable: path, Headless: *headless})
	if err != nil {
		return err
	}
	switch action {
	case "install":
		return serviceInstall(ctx, e, m)
	case "uninstall":
		return serviceUninstall(ctx, e, m)
	case "start":
		if err := m.Start(ctx); err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, "Started ctxfit.")
	case "stop":
		if err := m.Stop(ctx); err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, "Stopped ctxfit.")
	case "status":
		return serviceStatus(ctx, e, m)
	}
	return nil
}

// serviceExecutable returns the binary to start at login: flagValue, else
// the running one unless it is a temporary build that would vanish.
func serviceExecutable(flagValue string) (string, error) {
	if flagValue != "" {
		return filepath.Abs(flagValue)
	}
	exe, err := autostart.Executable()
	if err != nil {
		return "", err
	}
	if strings.Contains(exe, string(filepath.Separator)+"go-build") || strings.HasPrefix(exe, os.TempDir()+string(filepath.Separator)) {
		return "", fmt.Errorf("ctxfit runs from a temporary build (%s), which will be gone at the next login; install it first (go install) or pass --exe", exe)
	}
	return exe, nil
}

func serviceInstall(ctx context.Context, e *env, m *autostart.Manager) error {
	before, _ := m.Status(ctx) // best effort: only decides between start and restart
	if err := m.Install(ctx); err != nil {
		return err
	}
	st, err := m.Status(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Installed: ctxfit starts at login (%s %s).\n", st.Method, st.Path)

	// Start now, or restart what runs with an older command line.
	restart := before.Installed && !before.Current && before.Running == autostart.Yes
	if restart {
		if err := m.Stop(ctx); err != nil {
			return fmt.Errorf("installed, but stopping the old ctxfit failed: %w", err)
		}
	}
	if err := m.Start(ctx); err != nil {
		return fmt.Errorf("installed, but starting it now failed: %w", err)
	}
	if restart {
		fmt.Fprintln(e.stdout, "Restarted it with the new command line.")
	} else {
		fmt.Fprintln(e.stdout, "Started it.")
	}
	if m.Options().Headless && st.Method == "systemd user unit" {
		fmt.Fprintln(e.stdout, "It runs while you are logged in; `loginctl enable-linger` keeps it running after logout and starts it at boot.")
	}
	return nil
}

func serviceUninstall(ctx context.Context, e *env, m *autostart.Manager) error {
	st, err := m.Status(ctx)
	if err != nil {
		return err
	}
	if st.Running != autostart.No {
		switch err := m.Stop(ctx); {
		case errors.Is(err, errors.ErrUnsupported):
			fmt.Fprintln(e.stdout, "Quit the running ctxfit from its tray icon.")
		case err != nil:
			return err
		case st.Running == autostart.Yes:
			fmt.Fprintln(e.stdout, "Stopped ctxfit.")
		}
	}
	if err := m.Uninstall(ctx); err != nil {
		return err
	}
	if !st.Installed {
		fmt.Fprintf(e.stdout, "ctxfit was not installed to start at login (%s %s).\n", st.Method, st.Path)
		return nil
	}
	fmt.Fprintf(e.stdout, "Uninstalled: removed %s; ctxfit no longer starts at login.\n", st.Path)
	return nil
}

func serviceStatus(ctx context.Context, e *env, m *autostart.Manager) error {
	st, err := m.Status(ctx)
	if err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Start at login: %s\n", st.Method)
	fmt.Fprintf(&b, "  path:      %s\n", st.Path)
	switch {
	case !st.Installed:
		b.WriteString("  installed: no (`ctxfit service install` adds it)\n")
	case len(st.Command) > 0:
		fmt.Fprintf(&b, "  installed: yes, runs %s\n", quoteCommand(st.Command))
	default:
		b.WriteString("  installed: yes\n")
	}
	fmt.Fprintf(&b, "  enabled:   %s\n", st.Enabled)
	fmt.Fprintf(&b, "  running:   %s\n", st.Running)
	if path, err := logfile.DefaultPath(e.getenv); err == nil {
		fmt.Fprintf(&b, "  log:       %s\n", path)
	}
	for _, n := range st.Notes {
		fmt.Fprintf(&b, "%s\n", n)
	}
	_, err = fmt.Fprint(e.stdout, b.String())
	return err
}

// quoteCommand joins a command line for display as the user would type
// it: words with blanks in double quotes, backslashes as they are (a
// Windows path reads C:\Program Files\ctxfit, not C:\\Program Files).
// Only a word that holds a double quote is quoted Go-style.
func quoteCommand(args []string) string {
	words := make([]string, len(args))
	for i, a := range args {
		switch {
		case strings.Contains(a, `"`):
			a = strconv.Quote(a)
		case a == "" || strings.ContainsAny(a, " \t'"):
			a = `"` + a + `"`
		}
		words[i] = a
	}
	return strings.Join(words, " ")
}
