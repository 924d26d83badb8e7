package filelock

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestLock(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "x.lock")
	h, err := Lock(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := Lock(ctx, p); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Lock while held: %v, want a deadline error", err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	var got time.Time
	go func() {
		defer wg.Done()
		h2, err := Lock(context.Background(), p)
		if err != nil {
			t.Error(err)
			return
		}
		got = time.Now()
		h2.Unlock()
	}()
	time.Sleep(30 * time.Millisecond)
	released := time.Now()
	h.Unlock()
	h.Unlock()
	wg.Wait()
	if got.Before(released) {
		t.Error("a waiting Lock got the lock before it was released")
	}
}
