package tray

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	toast "git.sr.ht/~jackmordaunt/go-toast"

	"github.com/ctxfit/ctxfit/assets"
)

// toastAppID is the name Windows shows above ctxfit's toasts, and
// toastGUID the COM class Windows activates when a button is pressed.
const (
	toastAppID = "ctxfit"
	toastGUID  = "{6B4E1F5A-3C2D-4E8F-9A1B-7C5D2E0F4A39}"
)

// toastNotifier shows Windows 10/11 toasts with action buttons. A button
// press comes back through go-toast's activation callback with the
// arguments "KEY\x1fACTION". Without the registration a callback needs
// (SetAppData fails, e.g. under a locked-down policy) the toasts show no
// buttons and name the menu items instead.
type toastNotifier struct {
	ctx      context.Context
	log      *slog.Logger
	onAction func(key, action string)

	once    sync.Once
	buttons bool
	icons   string // directory of the icons' PNG files
}

// newNotifier returns the platform's notifier; onAction receives the key
// of a notification and the ID of the action the user chose in it.
func newNotifier(ctx context.Context, log *slog.Logger, onAction func(key, action string)) notifier {
	return &toastNotifier{ctx: ctx, log: log, onAction: onAction}
}

const argSep = "\x1f"

func (t *toastNotifier) setup() {
	exe, _ := os.Executable()
	err := toast.SetAppData(toast.AppData{AppID: toastAppID, GUID: toastGUID, ActivationExe: exe})
	if err != nil {
		t.log.Warn("tray: notifications will have no buttons", "err", err)
	} else {
		t.buttons = true
		toast.SetActivationCallback(func(args string, _ []toast.UserData) {
			if key, action, ok := strings.Cut(args, argSep); ok {
				t.onAction(key, action)
			}
		})
	}
	if dir, err := os.UserCacheDir(); err == nil {
		dir = filepath.Join(dir, "ctxfit", "icons")
		if os.MkdirAll(dir, 0o700) == nil {
			t.icons = dir
		}
	}
}

func (t *toastNotifier) notify(n Notification) error {
	t.once.Do(t.setup)
	msg := n.Message
	var actions []toast.Action
	if t.buttons {
		for _, a := range n.Actions {
			actions = append(actions, toast.Action{Type: toast.Foreground, Content: a.Label, Arguments: n.Key + argSep + a.ID})
		}
	} else {
		msg += menuHint(n)
	}
	note := toast.Notification{AppID: toastAppID, Title: n.Title, Body: msg, Actions: actions, Duration: toast.Short}
	if n.Persistent {
		note.Duration = toast.Long
	}
	if t.icons != "" {
		p := filepath.Join(t.icons, string(n.Icon)+".png")
		if _, err := os.Stat(p); err == nil || os.WriteFile(p, assets.PNG(n.Icon), 0o600) == nil {
			note.Icon = p
		}
	}
	if err := note.Push(); err != nil {
		return beeepNotify(n)
	}
	return nil
}

// withdraw does nothing: go-toast cannot remove a toast; a long toast
// goes to the Action Center, where the user dismisses it.
func (t *toastNotifier) withdraw(string) error { return nil }
