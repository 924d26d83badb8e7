//go:build darwin && cgo

package tray

import (
	"context"
	"time"

	"fyne.io/systray"

	"github.com/ctxfit/ctxfit/assets"
)

// waitForHost returns nil: the macOS menu bar is always there.
func waitForHost(context.Context, time.Duration) error { return nil }

// beforeRun is not called.
func beforeRun(view) {}

// setIconBeforeRun is false: systray can set the icon only once it runs.
const setIconBeforeRun = false

// setIcon sets a template icon, which macOS tints to match the menu bar.
func setIcon(s assets.State) { systray.SetTemplateIcon(assets.Template(s), assets.PNG(s)) }
