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
func beforeRun(trayItem, view) {}

// setIconBeforeRun is false: systray can set the icon only once it runs.
const setIconBeforeRun = false

// newTrayItem returns systray's item as it is: the platform has no
// status that asks for attention.
func newTrayItem() trayItem { return plainItem{} }

// plainItem is systray's item, unextended.
type plainItem struct{}

func (plainItem) ready(context.Context) error { return nil }

// setIcon sets a template icon, which macOS tints to match the menu bar.
func (plainItem) setIcon(s assets.State) { systray.SetTemplateIcon(assets.Template(s), assets.PNG(s)) }
func (plainItem) setTooltip(tip string)  { systray.SetTooltip(tip) }
func (plainItem) setAttention(bool)      {}
