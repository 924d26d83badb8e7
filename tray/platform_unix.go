//go:build (linux || freebsd || openbsd || netbsd) && !android

package tray

import (
	"context"
	"errors"
	"fmt"
	"time"

	"fyne.io/systray"
	"github.com/godbus/dbus/v5"
)

// watcherName is the DBus name of the desktop's tray host
// (freedesktop StatusNotifierItem specification; KDE's name is the one
// every host uses).
const watcherName = "org.kde.StatusNotifierWatcher"

// hostProbeTimeout bounds how long a session bus may take to answer.
const hostProbeTimeout = 2 * time.Second

// waitForHost returns nil when the session bus has a StatusNotifierWatcher,
// waiting up to wait for one to appear; otherwise an error wrapping
// ErrNoTray that says what is missing.
func waitForHost(ctx context.Context, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, max(wait, 0)+hostProbeTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- probeHost(ctx, wait) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%w: the DBus session bus did not answer in time", ErrNoTray)
	}
}

func probeHost(ctx context.Context, wait time.Duration) error {
	// No autolaunch: starting a session bus for the tray would show the
	// icon to nobody.
	conn, err := dbus.SessionBusPrivateNoAutoStartup(dbus.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("%w: no DBus session bus (%v)", ErrNoTray, err)
	}
	defer conn.Close()
	if err := conn.Auth(nil); err != nil {
		return fmt.Errorf("%w: cannot log in to the DBus session bus: %v", ErrNoTray, err)
	}
	if err := conn.Hello(); err != nil {
		return fmt.Errorf("%w: the DBus session bus refused ctxfit: %v", ErrNoTray, err)
	}
	var signals chan *dbus.Signal
	if wait > 0 {
		err := conn.AddMatchSignalContext(ctx,
			dbus.WithMatchObjectPath("/org/freedesktop/DBus"),
			dbus.WithMatchInterface("org.freedesktop.DBus"),
			dbus.WithMatchMember("NameOwnerChanged"),
			dbus.WithMatchArg(0, watcherName))
		if err == nil {
			signals = make(chan *dbus.Signal, 8)
			conn.Signal(signals)
		}
	}
	var has bool
	if err := conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, watcherName).Store(&has); err != nil {
		return fmt.Errorf("%w: cannot ask the DBus session bus for a tray host: %v", ErrNoTray, err)
	}
	if has {
		return nil
	}
	noHost := fmt.Errorf("%w: nothing on the DBus session bus shows tray icons (no %s; on GNOME, install the AppIndicator extension)", ErrNoTray, watcherName)
	if signals == nil {
		return noHost
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case s := <-signals:
			if len(s.Body) == 3 {
				if owner, _ := s.Body[2].(string); owner != "" {
					return nil
				}
			}
		case <-timer.C:
			return noHost
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.Canceled) {
				return ctx.Err()
			}
			return noHost
		}
	}
}

// beforeRun sets the icon, tooltip and title before systray.Run, so that
// they are in the DBus properties systray exports when it starts.
func beforeRun(t trayItem, v view) {
	systray.SetTitle("ctxfit")
	t.setIcon(v.Icon)
	t.setTooltip(v.Tooltip)
	t.setAttention(v.Attention)
}

// setIconBeforeRun is true: systray exports the icon and tooltip as DBus
// properties when it starts, so they are set before.
const setIconBeforeRun = true
