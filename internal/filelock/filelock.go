// Package filelock takes an exclusive lock on a file across processes
// (flock on Unix, LockFileEx on Windows), waiting with a deadline. The
// operating system releases it when the process ends, however it ends.
package filelock

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// DefaultWait is how long Lock waits when ctx has no deadline.
const DefaultWait = 30 * time.Second

// Held is a lock held; Unlock gives it up.
type Held struct {
	f *os.File
}

// Lock takes the exclusive lock on path, creating the file (and its
// directory) if needed. It waits while another holder has it, until ctx ends
// or, when ctx has no deadline, DefaultWait has passed.
func Lock(ctx context.Context, path string) (*Held, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultWait)
		defer cancel()
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create the directory of the lock %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the lock %s: %w", path, err)
	}
	for pause := time.Millisecond; ; pause = min(2*pause, 50*time.Millisecond) {
		if err := TryLock(f); err == nil {
			return &Held{f: f}, nil
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("another ctxfit holds %s; try again when it is done: %w", path, ctx.Err())
		case <-time.After(pause):
		}
	}
}

// Unlock gives the lock up; a second call does nothing.
func (h *Held) Unlock() {
	if h == nil || h.f == nil {
		return
	}
	UnlockFile(h.f)
	h.f.Close()
	h.f = nil
}
