package autostart

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"syscall"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
)

// Registry keys under HKEY_CURRENT_USER.
const (
	runKey = `Software\Microsoft\Windows\CurrentVersion\Run`
	// approvedKey holds what Task Manager's Startup tab switched off.
	approvedKey = `Software\Microsoft\Windows\CurrentVersion\Explorer\StartupApproved\Run`
)

// runKeyEntry starts the tray at login from the per-user Run key, through
// the GUI-subsystem ctxfit-tray.exe, so that no console window opens.
type runKeyEntry struct {
	opts  Options // Executable: the GUI-subsystem program the key starts
	src   string  // the ctxfit the tray executable is made from
	value string  // the command line, as Install writes it
}

func newBackend(o Options) (backend, error) {
	if o.Headless {
		return newWindowsService(o)
	}
	gui := runKeyOptions(o)
	v, err := runKeyCommand(gui)
	if err != nil {
		return nil, err
	}
	return &runKeyEntry{opts: gui, src: o.Executable, value: v}, nil
}

func (r *runKeyEntry) install(ctx context.Context) error {
	if err := writeTrayExecutable(r.src, r.opts.Executable); err != nil {
		return err
	}
	k, _, err := registry.CreateKey(registry.CURRENT_USER, runKey, registry.SET_VALUE)
	if err != nil {
		return fmt.Errorf(`open HKCU\%s: %w`, runKey, err)
	}
	defer k.Close()
	if err := k.SetStringValue(RunValueName, r.value); err != nil {
		return fmt.Errorf(`set HKCU\%s\%s: %w`, runKey, RunValueName, err)
	}
	// Installing again means "start at login": undo a switch-off in Task Manager.
	return deleteValue(approvedKey, RunValueName)
}

func (r *runKeyEntry) uninstall(ctx context.Context) error {
	return errors.Join(deleteValue(runKey, RunValueName), deleteValue(approvedKey, RunValueName))
}

// deleteValue deletes HKCU\key\name if it exists.
func deleteValue(key, name string) error {
	k, err := registry.OpenKey(registry.CURRENT_USER, key, registry.SET_VALUE)
	if errors.Is(err, registry.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf(`open HKCU\%s: %w`, key, err)
	}
	defer k.Close()
	if err := k.DeleteValue(name); err != nil && !errors.Is(err, registry.ErrNotExist) {
		return fmt.Errorf(`delete HKCU\%s\%s: %w`, key, name, err)
	}
	return nil
}

// read returns ctxfit's Run-key value and whether it exists.
func (r *runKeyEntry) read() (string, bool, error) {
	k, err := registry.OpenKey(registry.CURRENT_USER, runKey, registry.QUERY_VALUE)
	if errors.Is(err, registry.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf(`open HKCU\%s: %w`, runKey, err)
	}
	defer k.Close()
	v, _, err := k.GetStringValue(RunValueName)
	if errors.Is(err, registry.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf(`read HKCU\%s\%s: %w`, runKey, RunValueName, err)
	}
	return v, true, nil
}

// approved returns ctxfit's StartupApproved value, or nil.
func approved() []byte {
	k, err := registry.OpenKey(registry.CURRENT_USER, approvedKey, registry.QUERY_VALUE)
	if err != nil {
		return nil
	}
	defer k.Close()
	b, _, err := k.GetBinaryValue(RunValueName)
	if err != nil {
		return nil
	}
	return b
}

// start starts the tray detached from this console. Windows keeps no
// record of programs started from the Run key, so a second start makes a
// second process; the tray itself must refuse to run twice.
func (r *runKeyEntry) start(ctx context.Context) error {
	if _, ok, err := r.read(); err != nil {
		return err
	} else if !ok {
		return errors.New("ctxfit is not installed to start at login; run `ctxfit service install`")
	}
	cmd := exec.Command(r.opts.Executable, r.opts.Args()...)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		CreationFlags: windows.DETACHED_PROCESS | windows.CREATE_NEW_PROCESS_GROUP,
		HideWindow:    true,
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", r.opts.Executable, err)
	}
	return cmd.Process.Release()
}

func (r *runKeyEntry) stop(ctx context.Context) error {
	return fmt.Errorf("stopping the tray from the command line: %w; quit ctxfit from its tray icon", errors.ErrUnsupported)
}

func (r *runKeyEntry) status(ctx context.Context) (Status, error) {
	st := Status{
		Method:  "Run key",
		Path:    `HKCU\` + runKey + `\` + RunValueName,
		Enabled: No,
		Running: Unknown,
		Notes:   []string{"Windows keeps no record of whether a program started from the Run key runs."},
	}
	v, ok, err := r.read()
	if err != nil {
		return st, err
	}
	if ok {
		st.Installed = true
		st.Current = v == r.value
		st.Command = splitWindowsCommandLine(v)
		st.Host = hostArg(st.Command)
		st.Enabled = startupApproved(approved())
		if st.Enabled == No {
			st.Notes = append(st.Notes, "It is switched off in Task Manager's Startup tab; `ctxfit service install` switches it on again.")
		}
	}
	st.Notes = append(st.Notes, commandNotes(st, r.opts, r.opts.windowsCommand())...)
	return st, nil
}
