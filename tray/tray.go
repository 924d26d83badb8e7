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
	"runtime/debug"
	"strings"
	"time"

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
	// Notify shows a desktop notification. Default: the platform's
	// notifications with their action buttons (org.freedesktop.Notifications
	// over DBus on Linux, toasts on Windows), else
	// github.com/gen2brain/beeep (osascript on macOS). A Notify given here
	// offers no actions: they are in the menu.
	Notify func(Notification) error
	// Withdraw closes the notification shown under key, once what it told
	// is over (a spill ended). Default: the platform notifier's; with
	// Notify set, nothing.
	Withdraw func(key string) error
	// Open opens a file in the user's default application. Default:
	// xdg-open on Linux and the BSDs, open on macOS, the shell's file
	// handler on Windows.
	Open func(ctx context.Context, path string) error
	// Logger receives what the tray could not do. Default: slog.Default().
	Logger *slog.Logger
	// Version is ctxfit's version, shown in the menu's first line and
	// About. Default: the main module's version from the build info.
	Version string
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
	// Key names what the notification is about, e.g. "spill llama3.1:8b";
	// a later one with the same key replaces it, and it can be withdrawn
	// by it. "" for news that stands alone.
	Key string
	// Actions are the buttons the notification offers where the desktop
	// shows them; elsewhere the message names the menu items instead.
	Actions []Action
	// Persistent keeps the notification until it is acted on or withdrawn
	// (a spill): critical urgency and no timeout on Linux, a long toast on
	// Windows.
	Persistent bool
}

// Action is one button of a notification.
type Action struct {
	ID    string // what the tray does: "fix" or "tune"
	Label string // the button: "Fix now"
	Menu  string // the menu item that does the same, for desktops without buttons
}

// notifier shows notifications and reports the actions the user picks.
type notifier interface {
	notify(n Notification) error
	withdraw(key string) error
}

// funcNotifier is a notifier of Options.Notify and Options.Withdraw.
type funcNotifier struct {
	show  func(Notification) error
	close func(string) error
}

func (f funcNotifier) notify(n Notification) error { return f.show(n) }

func (f funcNotifier) withdraw(key string) error {
	if f.close == nil {
		return nil
	}
	return f.close(key)
}

// menuHint returns the sentence naming the menu items that do what n's
// actions do, for notifiers that cannot show buttons.
func menuHint(n Notification) string {
	var items []string
	for _, a := range n.Actions {
		if a.Menu != "" {
			items = append(items, a.Menu)
		}
	}
	if len(items) == 0 {
		return ""
	}
	return " Use " + strings.Join(items, " or ") + " in the ctxfit menu."
}

// buildVersion returns the main module's version ("v0.3.0" from go
// install pkg@v0.3.0), else the VCS revision it was built from, else "".
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 7 {
			return "dev " + s.Value[:7]
		}
	}
	return ""
}

// trayItem is the icon in the panel: systray's item, extended where the
// platform allows (sni on Linux). Its methods may be called before ready.
type trayItem interface {
	// ready runs once systray has started; an error means the extension
	// is unavailable and the plain item works on.
	ready(ctx context.Context) error
	setIcon(assets.State)
	setTooltip(string)
	// setAttention asks the desktop to raise the item (a spill), or not.
	setAttention(on bool)
}

func (o *Options) defaults() {
	if o.Open == nil {
		o.Open = open
	}
	if o.Version == "" {
		o.Version = buildVersion()
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}
