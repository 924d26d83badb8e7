//go:build !windows

package autostart

import (
	"context"
	"os/signal"
	"syscall"
)

// Serve runs run with a context that ends when ctx does or when the
// process gets SIGTERM, which is how systemd and launchd stop a service, so
// that `ctxfit run` can finish its work and exit cleanly.
func Serve(ctx context.Context, run func(context.Context) error) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM)
	defer stop()
	return run(ctx)
}
