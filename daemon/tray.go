package daemon

import (
	"context"
	"errors"
	"time"

	"github.com/ctxfit/ctxfit/internal/hint"
	"github.com/ctxfit/ctxfit/tray"
)

var _ tray.Backend = (*Daemon)(nil)

// RunWithTray shows the tray (on the calling goroutine, which must be the
// main one) while the daemon runs. Without a tray host it says so once and
// carries on headless. others are the daemons of the other servers this
// process watches, run by the caller: each has a section of the menu and
// counts for the icon and the tooltip.
func (d *Daemon) RunWithTray(ctx context.Context, hostWait time.Duration, others ...*Daemon) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	opts := tray.Options{Logger: d.logger, HostWait: hostWait}
	for _, o := range others {
		opts.Others = append(opts.Others, o)
	}
	err := tray.Run(ctx, d, opts)
	if errors.Is(err, tray.ErrNoTray) {
		// One server's daemon names it; several are the list `ctxfit run`
		// remembers, so the bare command watches them all again.
		run := hint.Hints{}.Cmd("run", "--headless")
		if len(others) == 0 {
			run = d.hints(true).Cmd("run", "--headless")
		}
		d.logger.Warn("no system tray here, so ctxfit carries on headless (use "+run+" to skip the tray)", "reason", err.Error())
		for _, x := range append([]*Daemon{d}, others...) {
			x.hub.SetHints(x.hints(true)) // no Fix now to click
		}
		return <-done
	}
	cancel() // Quit was chosen, or ctx ended
	<-done
	if ctx.Err() != nil && err == ctx.Err() {
		return nil
	}
	return err
}
