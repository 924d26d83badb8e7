package daemon

import (
	"context"
	"errors"
	"time"

	"github.com/ctxfit/ctxfit/tray"
)

var _ tray.Backend = (*Daemon)(nil)

// RunWithTray shows the tray (on the calling goroutine, which must be the
// main one) while the daemon runs. Without a tray host it says so once and
// carries on headless.
func (d *Daemon) RunWithTray(ctx context.Context, hostWait time.Duration) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	err := tray.Run(ctx, d, tray.Options{Logger: d.logger, HostWait: hostWait})
	if errors.Is(err, tray.ErrNoTray) {
		d.logger.Warn("no system tray here, so ctxfit carries on headless (use `ctxfit run --headless` to skip the tray)", "reason", err.Error())
		return <-done
	}
	cancel() // Quit was chosen, or ctx ended
	<-done
	if ctx.Err() != nil && err == ctx.Err() {
		return nil
	}
	return err
}
