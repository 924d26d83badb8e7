package tray

import (
	"context"
	"log/slog"
)

// newNotifier returns beeep's notifications (osascript): they cannot carry
// buttons, so the message names the menu items, which a click on the menu
// bar icon opens.
func newNotifier(context.Context, *slog.Logger, func(key, action string)) notifier {
	return funcNotifier{show: beeepNotify}
}
