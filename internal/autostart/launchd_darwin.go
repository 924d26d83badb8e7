package autostart

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"

	"github.com/kardianos/service"
)

// launchAgentFile installs ctxfit as a per-user LaunchAgent.
type launchAgentFile struct {
	opts  Options
	plist string // the property list, as Install writes it
	path  string // ~/Library/LaunchAgents/io.github.ctxfit.plist
	svc   service.Service
}

func newBackend(o Options) (backend, error) {
	plist, err := launchAgent(o)
	if err != nil {
		return nil, err
	}
	svc, err := service.New(noProgram{}, &service.Config{
		Name:        LaunchdLabel,
		Description: description,
		Executable:  o.Executable,
		Arguments:   o.Args(),
		Option: service.KeyValue{
			"UserService":   true,
			"KeepAlive":     false,
			"RunAtLoad":     true,
			"LaunchdConfig": plist, // rendered already: no template actions left
		},
	})
	if err != nil {
		return nil, fmt.Errorf("set up the LaunchAgent: %w", err)
	}
	home, err := launchdHome()
	if err != nil {
		return nil, err
	}
	return &launchAgentFile{
		opts:  o,
		plist: plist,
		path:  filepath.Join(home, "Library", "LaunchAgents", LaunchdLabel+".plist"),
		svc:   svc,
	}, nil
}

// launchdHome returns the home directory the way kardianos/service finds
// it for LaunchAgents, so that both name the same file.
func launchdHome() (string, error) {
	if u, err := user.Current(); err == nil && u.HomeDir != "" {
		return u.HomeDir, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the home directory for the LaunchAgent: %w", err)
	}
	return home, nil
}

// domain is the launchd domain of the user's login session.
func domain() string { return "gui/" + strconv.Itoa(os.Getuid()) }

func (l *launchAgentFile) install(ctx context.Context) error {
	old, err := os.ReadFile(l.path)
	switch {
	case err == nil && string(old) == l.plist:
	case err == nil:
		// Replace the file only: unloading the job would stop the ctxfit
		// it started, which may be the tray calling this.
		if err := os.Remove(l.path); err != nil {
			return fmt.Errorf("replace %s: %w", l.path, err)
		}
		fallthrough
	case errors.Is(err, fs.ErrNotExist):
		if err := l.svc.Install(); err != nil {
			os.Remove(l.path)
			return fmt.Errorf("install %s: %w", l.path, err)
		}
	default:
		return fmt.Errorf("read %s: %w", l.path, err)
	}
	// Undo a `launchctl disable`, which would keep the agent from loading.
	if _, err := command(ctx, "launchctl", "enable", domain()+"/"+LaunchdLabel); err != nil {
		return fmt.Errorf("enable the LaunchAgent: %w", err)
	}
	return nil
}

func (l *launchAgentFile) uninstall(ctx context.Context) error {
	// Remove the file only, for the reason install gives; launchd forgets
	// the job at logout.
	if err := os.Remove(l.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", l.path, err)
	}
	return nil
}

// list returns the output of `launchctl list LABEL` and whether the job is
// loaded.
func (l *launchAgentFile) list(ctx context.Context) (string, bool) {
	out, err := command(ctx, "launchctl", "list", LaunchdLabel)
	return out, err == nil
}

func (l *launchAgentFile) start(ctx context.Context) error {
	if _, err := os.Stat(l.path); err != nil {
		return fmt.Errorf("ctxfit is not installed to start at login (%w); run `ctxfit service install`", err)
	}
	out, loaded := l.list(ctx)
	switch {
	case !loaded:
		// RunAtLoad starts it as it loads.
		if err := l.svc.Start(); err != nil {
			return fmt.Errorf("load %s: %w", l.path, err)
		}
	case !launchctlPIDRE.MatchString(out):
		// Loaded, but it quit since.
		if _, err := command(ctx, "launchctl", "start", LaunchdLabel); err != nil {
			return fmt.Errorf("start the LaunchAgent: %w", err)
		}
	}
	return nil
}

func (l *launchAgentFile) stop(ctx context.Context) error {
	if _, loaded := l.list(ctx); !loaded {
		return nil
	}
	if _, err := os.Stat(l.path); err != nil {
		// Uninstalled while it ran: remove the job by its label.
		if _, err := command(ctx, "launchctl", "remove", LaunchdLabel); err != nil {
			return fmt.Errorf("stop the LaunchAgent: %w", err)
		}
		return nil
	}
	if err := l.svc.Stop(); err != nil {
		return fmt.Errorf("unload %s: %w", l.path, err)
	}
	return nil
}

func (l *launchAgentFile) status(ctx context.Context) (Status, error) {
	st := Status{Method: "LaunchAgent", Path: l.path, Enabled: No}
	data, err := os.ReadFile(l.path)
	switch {
	case err == nil:
		st.Installed = true
		st.Current = string(data) == l.plist
		plist, err := parsePlist(data)
		if err != nil {
			st.Enabled = Unknown
			st.Notes = append(st.Notes, fmt.Sprintf("The LaunchAgent cannot be read: %v.", err))
			break
		}
		if cmd, err := agentCommand(plist); err == nil {
			st.Command = cmd
		}
		st.Host = agentHost(plist)
		runAtLoad, _ := plist["RunAtLoad"].(bool)
		disabled, _ := plist["Disabled"].(bool)
		st.Enabled = answer(runAtLoad && !disabled)
		if out, err := command(ctx, "launchctl", "print-disabled", domain()); err != nil {
			st.Notes = append(st.Notes, fmt.Sprintf("Whether launchd disabled it is unknown: %v.", err))
		} else if launchctlDisabled(out, LaunchdLabel) {
			st.Enabled = No
			st.Notes = append(st.Notes, "launchd has it disabled; `ctxfit service install` enables it again.")
		}
	case !errors.Is(err, fs.ErrNotExist):
		return st, fmt.Errorf("read %s: %w", l.path, err)
	}
	out, loaded := l.list(ctx)
	_, running := launchctlPID(out)
	st.Running = answer(loaded && running)
	st.Notes = append(st.Notes, commandNotes(st, l.opts, l.opts.command())...)
	return st, nil
}
