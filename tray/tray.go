// Package tray shows ctxfit in the system tray on Linux, Windows and macOS:
// an icon that turns amber when a model spills onto the CPU, a menu with
// the loaded models and the one-click fixes, and desktop notifications.
//
// The tray is a view of a Backend (in ctxfit, the daemon): what the menu
// shows is computed by a pure function from the daemon's state, which
// every update carries whole, and every click that needs the backend
// runs outside the menu's event loop, so neither ever waits for the other.
package tray

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/gen2brain/beeep"

	"github.com/ctxfit/ctxfit/assets"
	"github.com/ctxfit/ctxfit/hub"
)

// ErrNoTray reports that this session has no system tray to show an icon
// in: no DBus session bus, or no StatusNotifierWatcher on it (a desktop
// without tray support, GNOME without the AppIndicator extension, an SSH
// session). The caller says so once and carries on without a tray.
var ErrNoTray = errors.New("no system tray in this session")

// Backend is what the tray needs from the rest of ctxfit: in ctxfit, the
// daemon. Methods are called from goroutines of their own, never from the
// menu's event loop, so one that blocks leaves the menu working; they must
// be safe for concurrent use.
type Backend interface {
	// Subscribe returns a channel of updates, one per change, each with
	// the whole state, and a function that ends the subscription
	// (hub.Hub.Subscribe).
	Subscribe() (<-chan hub.Update, func())
	// State returns the current state, shown until the first update.
	State() hub.State

	// Tune finds the largest context at which model stays 100% on the GPU
	// and remembers it; its progress comes with the updates (State.Tunes).
	// progress, when set, receives each probe's line too. Cancelling ctx
	// stops the tune.
	Tune(ctx context.Context, model string, progress func(string)) error
	// Fix writes the tuned values into client's config now.
	Fix(ctx context.Context, client string) error

	// SetAutoFix turns keeping client configs fixed on or off.
	SetAutoFix(on bool) error
	// SetNotifications turns desktop notifications on or off.
	SetNotifications(on bool) error
	// StartAtLogin reports whether ctxfit starts when the user logs in; an
	// error means this system cannot say or do it (the menu item is then
	// disabled). It may start a process (systemctl): the tray calls it at
	// start and after a click on Start at login only.
	StartAtLogin() (bool, error)
	// SetStartAtLogin installs or removes the login service.
	SetStartAtLogin(on bool) error

	// LogPath returns ctxfit's log file, "" when there is none.
	LogPath() string
}

// Options adjust Run; the zero value gives the defaults.
type Options struct {
	// Notify shows a desktop notification. Default: github.com/gen2brain/beeep
	// (DBus notifications on Linux, toasts on Windows, osascript on macOS).
	Notify func(Notification) error
	// Open opens a file in the user's default application. Default:
	// xdg-open on Linux and the BSDs, open on macOS, the shell's file
	// handler on Windows.
	Open func(ctx context.Context, path string) error
	// Logger receives what the tray could not do. Default: slog.Default().
	Logger *slog.Logger
	// HostWait is how long Run waits for a tray host to appear before it
	// returns ErrNoTray; 0 checks once. A ctxfit started at login, before
	// the desktop's panel, should wait half a minute.
	HostWait time.Duration
}

// Notification is one desktop notification.
type Notification struct {
	Title   string
	Message string
	// Icon is the tray state the news is about: Warning for trouble, OK
	// for good news.
	Icon assets.State
}

func (o *Options) defaults() {
	if o.Notify == nil {
		beeep.AppName = "ctxfit" // beeep keeps the name notifications show in a package variable
		o.Notify = notify
	}
	if o.Open == nil {
		o.Open = open
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}
