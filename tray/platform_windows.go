package tray

import (
	"context"
	"time"

	"fyne.io/systray"

	"github.com/ctxfit/ctxfit/assets"
)

// waitForHost returns nil: every Windows desktop has a notification area.
func waitForHost(context.Context, time.Duration) error { return nil }

// beforeRun is not called.
func beforeRun(view) {}

// setIconBeforeRun is false: systray can set the icon only once it runs.
const setIconBeforeRun = false

func setIcon(s assets.State) { systray.SetIcon(assets.ICO(s)) }
