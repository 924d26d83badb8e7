package autostart

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/kardianos/service"
	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/mgr"
)

// windowsService runs `ctxfit run --headless` as a Windows service, which
// starts at boot in session 0 (no tray icon) as LocalSystem.
type windowsService struct {
	opts Options
	svc  service.Service
}

func newWindowsService(o Options) (backend, error) {
	if _, err := windowsCommandLine(o.windowsCommand()); err != nil {
		return nil, err
	}
	s, err := service.New(noProgram{}, &service.Config{
		Name:        WindowsServiceName,
		DisplayName: "ctxfit",
		Description: description,
		Executable:  o.Executable,
		Arguments:   o.Args(),
		Option: service.KeyValue{
			"StartType":              "automatic",
			"DelayedAutoStart":       true,
			"OnFailure":              "restart",
			"OnFailureDelayDuration": "10s",
			"OnFailureResetPeriod":   300,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("set up the Windows service: %w", err)
	}
	return &windowsService{opts: o, svc: s}, nil
}

// elevated adds a hint to an access-denied error.
func elevated(err error) error {
	if errors.Is(err, windows.ERROR_ACCESS_DENIED) {
		return fmt.Errorf("%w (run it from an Administrator prompt)", err)
	}
	return err
}

// query opens the service with rights every user has and returns its
// configuration and state; ok is false when it is not installed.
func query() (cfg mgr.Config, state svc.State, ok bool, err error) {
	h, err := windows.OpenSCManager(nil, nil, windows.SC_MANAGER_CONNECT)
	if err != nil {
		return cfg, 0, false, fmt.Errorf("connect to the service manager: %w", err)
	}
	m := &mgr.Mgr{Handle: h}
	defer m.Disconnect()
	name, err := windows.UTF16PtrFromString(WindowsServiceName)
	if err != nil {
		return cfg, 0, false, err
	}
	sh, err := windows.OpenService(h, name, windows.SERVICE_QUERY_CONFIG|windows.SERVICE_QUERY_STATUS)
	if errors.Is(err, windows.ERROR_SERVICE_DOES_NOT_EXIST) {
		return cfg, 0, false, nil
	}
	if err != nil {
		return cfg, 0, false, fmt.Errorf("open the %s service: %w", WindowsServiceName, err)
	}
	s := &mgr.Service{Name: WindowsServiceName, Handle: sh}
	defer s.Close()
	if cfg, err = s.Config(); err != nil {
		return cfg, 0, true, fmt.Errorf("read the %s service's configuration: %w", WindowsServiceName, err)
	}
	st, err := s.Query()
	if err != nil {
		return cfg, 0, true, fmt.Errorf("query the %s service: %w", WindowsServiceName, err)
	}
	return cfg, st.State, true, nil
}

func (w *windowsService) install(ctx context.Context) error {
	cfg, _, ok, err := query()
	if err != nil {
		return err
	}
	if !ok {
		if err := w.svc.Install(); err != nil {
			return fmt.Errorf("install the %s service: %w", WindowsServiceName, elevated(err))
		}
		return nil
	}
	if slices.Equal(splitWindowsCommandLine(cfg.BinaryPathName), w.opts.windowsCommand()) && cfg.StartType == mgr.StartAutomatic {
		return nil
	}
	// Update in place: deleting a running service only marks it for deletion.
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("connect to the service manager: %w", elevated(err))
	}
	defer m.Disconnect()
	s, err := m.OpenService(WindowsServiceName)
	if err != nil {
		return fmt.Errorf("open the %s service: %w", WindowsServiceName, elevated(err))
	}
	defer s.Close()
	line, err := windowsCommandLine(w.opts.windowsCommand())
	if err != nil {
		return err
	}
	cfg.BinaryPathName = line
	cfg.StartType = mgr.StartAutomatic
	cfg.DelayedAutoStart = true
	if err := s.UpdateConfig(cfg); err != nil {
		return fmt.Errorf("update the %s service: %w", WindowsServiceName, elevated(err))
	}
	return nil
}

func (w *windowsService) uninstall(ctx context.Context) error {
	if _, _, ok, err := query(); err != nil || !ok {
		return err
	}
	if err := w.svc.Uninstall(); err != nil {
		return fmt.Errorf("remove the %s service: %w", WindowsServiceName, elevated(err))
	}
	return nil
}

func (w *windowsService) start(ctx context.Context) error {
	_, state, ok, err := query()
	switch {
	case err != nil:
		return err
	case !ok:
		return errors.New("ctxfit is not installed as a service; run `ctxfit service install --headless` from an Administrator prompt")
	case state == svc.Running || state == svc.StartPending:
		return nil
	}
	if err := w.svc.Start(); err != nil {
		return fmt.Errorf("start the %s service: %w", WindowsServiceName, elevated(err))
	}
	return nil
}

func (w *windowsService) stop(ctx context.Context) error {
	_, state, ok, err := query()
	if err != nil || !ok || state == svc.Stopped {
		return err
	}
	if err := w.svc.Stop(); err != nil {
		return fmt.Errorf("stop the %s service: %w", WindowsServiceName, elevated(err))
	}
	return nil
}

func (w *windowsService) status(ctx context.Context) (Status, error) {
	st := Status{Method: "Windows service", Path: WindowsServiceName, Enabled: No, Running: No}
	cfg, state, ok, err := query()
	if err != nil {
		return st, err
	}
	if ok {
		st.Installed = true
		st.Command = splitWindowsCommandLine(cfg.BinaryPathName)
		st.Host = hostArg(st.Command)
		st.Current = slices.Equal(st.Command, w.opts.windowsCommand()) && cfg.StartType == mgr.StartAutomatic
		st.Enabled = answer(cfg.StartType == mgr.StartAutomatic)
		st.Running = answer(state == svc.Running || state == svc.StartPending)
		st.Notes = append(st.Notes, "The service runs as LocalSystem, with its own settings and log, not your user's.")
	}
	st.Notes = append(st.Notes, commandNotes(st, w.opts, w.opts.windowsCommand())...)
	return st, nil
}
