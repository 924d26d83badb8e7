package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/ctxfit/ctxfit/internal/autostart"
	"github.com/ctxfit/ctxfit/internal/logfile"
	"github.com/ctxfit/ctxfit/internal/ollamahost"
)

func runService(ctx context.Context, e *env, args []string) error {
	fs := e.flags("service")
	headless := fs.Bool("headless", false, "run `ctxfit run --headless` (no tray icon; for servers)")
	exe := fs.String("exe", "", "start this ctxfit `binary` instead of the running one")
	host := fs.String("host", "", "with install: the Ollama server `URL` the started ctxfit watches (default $OLLAMA_HOST, else "+ollamahost.Default+")")
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("name one action: install, uninstall, start, stop or status")
	}
	action := pos[0]
	if !slices.Contains([]string{"install", "uninstall", "start", "stop", "status"}, action) {
		return usagef("unknown action %q: use install, uninstall, start, stop or status", action)
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if action != "install" && (given["host"] || given["headless"]) {
		return usagef("--host and --headless go with install")
	}

	opts := autostart.Options{Headless: *headless, InspectOnly: action != "install"}
	if action == "install" {
		// Record the server in force, so that the login service watches
		// the one the user means, not the default.
		if *host != "" || strings.TrimSpace(e.getenv("OLLAMA_HOST")) != "" {
			u, err := e.host(*host)
			if err != nil {
				return err
			}
			opts.Host = u.String()
		}
		if opts.Executable, err = serviceExecutable(*exe); err != nil {
			return err
		}
	} else if *exe != "" {
		if opts.Executable, err = filepath.Abs(*exe); err != nil {
			return err
		}
	}
	m, err := autostart.New(opts)
	if err != nil {
		return err
	}
	var w io.Writer = e.stdout
	if *asJSON {
		w = io.Discard
	}
	switch action {
	case "install":
		err = e.serviceInstall(ctx, w, m)
	case "uninstall":
		err = serviceUninstall(ctx, w, m)
	case "start":
		if err = m.Start(ctx); err == nil {
			fmt.Fprintln(w, "Started ctxfit.")
		}
	case "stop":
		if err = m.Stop(ctx); err == nil {
			fmt.Fprintln(w, "Stopped ctxfit.")
		}
	case "status":
		err = e.serviceStatus(ctx, w, m)
	}
	if err != nil || !*asJSON {
		return err
	}
	return e.writeServiceJSON(ctx, action, m)
}

// serviceJSON is `ctxfit service ACTION --json`: the entry as it is after
// the action.
type serviceJSON struct {
	Action    string   `json:"action"`
	Method    string   `json:"method"`
	Path      string   `json:"path"`
	Installed bool     `json:"installed"`
	Command   []string `json:"command"`
	Host      string   `json:"host"` // the Ollama server it watches; "" for the default
	Current   bool     `json:"current"`
	Enabled   string   `json:"enabled"` // yes, no or unknown
	Running   string   `json:"running"`
	Log       string   `json:"log"`
	Notes     []string `json:"notes"`
}

func (e *env) writeServiceJSON(ctx context.Context, action string, m *autostart.Manager) error {
	st, err := m.Status(ctx)
	if err != nil {
		return err
	}
	out := serviceJSON{Action: action, Method: st.Method, Path: st.Path, Installed: st.Installed, Command: st.Command,
		Host: st.Host, Current: st.Current, Enabled: st.Enabled.String(), Running: st.Running.String(), Notes: st.Notes}
	if out.Command == nil {
		out.Command = []string{}
	}
	if out.Notes == nil {
		out.Notes = []string{}
	}
	if p, err := logfile.DefaultPath(e.getenv); err == nil {
		out.Log = p
	}
	return writeIndentedJSON(e.stdout, out)
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
	if isTempBuild(exe) {
		return "", fmt.Errorf("ctxfit runs from a temporary build (%s), which will be gone at the next login; install it first (go install ./cmd/ctxfit) or pass --exe", exe)
	}
	return exe, nil
}

func (e *env) serviceInstall(ctx context.Context, w io.Writer, m *autostart.Manager) error {
	before, _ := m.Status(ctx) // best effort: only decides between start and restart
	if err := m.Install(ctx); err != nil {
		return err
	}
	st, err := m.Status(ctx)
	if err != nil {
		return err
	}
	watches := "the default Ollama server"
	if h := m.Options().Host; h != "" {
		watches = h
	}
	fmt.Fprintf(w, "Installed: ctxfit starts at login (%s %s), watching %s.\n", st.Method, st.Path, watches)

	// Start now, or restart what runs with an older command line.
	restart := before.Installed && !before.Current && before.Running == autostart.Yes
	if restart {
		if err := m.Stop(ctx); err != nil {
			return fmt.Errorf("installed, but stopping the old ctxfit failed: %w", err)
		}
	}
	// A second install of the same command finds it running: "Started
	// it." would claim a start that did not happen.
	running := before.Installed && before.Current && before.Running == autostart.Yes
	if !running {
		if err := m.Start(ctx); err != nil {
			return fmt.Errorf("installed, but starting it now failed: %w", err)
		}
	}
	switch {
	case restart:
		fmt.Fprintln(w, "Restarted it with the new command line.")
	case running:
		fmt.Fprintln(w, "It was running already.")
	default:
		fmt.Fprintln(w, "Started it.")
	}
	if m.Options().Headless && st.Method == "systemd user unit" {
		fmt.Fprintln(w, "It runs while you are logged in; `loginctl enable-linger` keeps it running after logout and starts it at boot.")
	}
	return nil
}

func serviceUninstall(ctx context.Context, w io.Writer, m *autostart.Manager) error {
	st, err := m.Status(ctx)
	if err != nil {
		return err
	}
	if st.Running != autostart.No {
		switch err := m.Stop(ctx); {
		case errors.Is(err, errors.ErrUnsupported):
			fmt.Fprintln(w, "Quit the running ctxfit from its tray icon.")
		case err != nil:
			return err
		case st.Running == autostart.Yes:
			fmt.Fprintln(w, "Stopped ctxfit.")
		}
	}
	if err := m.Uninstall(ctx); err != nil {
		return err
	}
	if !st.Installed {
		fmt.Fprintf(w, "ctxfit was not installed to start at login (%s %s).\n", st.Method, st.Path)
		return nil
	}
	fmt.Fprintf(w, "Uninstalled: removed %s; ctxfit no longer starts at login.\n", st.Path)
	return nil
}

func (e *env) serviceStatus(ctx context.Context, w io.Writer, m *autostart.Manager) error {
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
	if st.Installed {
		fmt.Fprintf(&b, "  watches:   %s\n", hostOrDefaultServer(st.Host))
	}
	fmt.Fprintf(&b, "  enabled:   %s\n", st.Enabled)
	fmt.Fprintf(&b, "  running:   %s\n", st.Running)
	if path, err := logfile.DefaultPath(e.getenv); err == nil {
		fmt.Fprintf(&b, "  log:       %s\n", path)
	}
	for _, n := range st.Notes {
		fmt.Fprintf(&b, "%s\n", n)
	}
	_, err = fmt.Fprint(w, e.reprog(b.String()))
	return err
}

func hostOrDefaultServer(h string) string {
	if h == "" {
		return "the default Ollama server ($OLLAMA_HOST of the session, else " + ollamahost.Default + ")"
	}
	return h
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
