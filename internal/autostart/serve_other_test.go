//go:build !windows

package autostart

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"
)

func TestServeStopsOnSIGTERM(t *testing.T) {
	err := Serve(context.Background(), func(ctx context.Context) error {
		if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Second):
			return errors.New("SIGTERM did not end the context")
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Serve = %v, want the run's context canceled by SIGTERM", err)
	}
}
