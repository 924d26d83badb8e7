package clients

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// watchCalls runs Watch over paths and records its calls.
type watchCalls struct {
	mu    sync.Mutex
	calls []string
}

func (w *watchCalls) get() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.calls...)
}

func startWatch(t *testing.T, paths ...string) *watchCalls {
	t.Helper()
	w := &watchCalls{}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- watch(ctx, paths, 100*time.Millisecond, func(p string) {
			w.mu.Lock()
			w.calls = append(w.calls, p)
			w.mu.Unlock()
		}, func() { close(ready) })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch: %v", err)
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Watch: %v", err)
	}
	return w
}

// waitCalls waits until n calls were made, then a little longer to catch
// extra ones.
func waitCalls(t *testing.T, w *watchCalls, n int) []string {
	t.Helper()
	deadline := time.Now().Add(settle)
	for len(w.get()) < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	return w.get()
}

func TestWatchDebouncesABurst(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "config.yaml")
	other := filepath.Join(dir, "other.yaml")
	w := startWatch(t, p)

	for i := 0; i < 10; i++ { // an editor saving in pieces
		os.WriteFile(p, []byte{byte('a' + i)}, 0o644)
		os.WriteFile(other, []byte{byte('a' + i)}, 0o644) // not watched
		time.Sleep(5 * time.Millisecond)
	}
	if got := waitCalls(t, w, 1); len(got) != 1 || got[0] != p {
		t.Errorf("calls = %q, want one for %s", got, p)
	}
}

func TestWatchSeesTheDirectoryAppear(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "a", "b", ".continue", "config.json")
	w := startWatch(t, p)

	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if got := waitCalls(t, w, 1); len(got) == 0 {
		t.Fatal("no call when the directory appeared")
	}
	before := len(w.get())
	os.WriteFile(p, []byte("{}"), 0o644)
	if got := waitCalls(t, w, before+1); len(got) != before+1 {
		t.Errorf("calls after the file appeared = %q, want one more", got[before:])
	}

	// Removing the whole directory and making it again is seen too.
	os.RemoveAll(filepath.Join(root, "a"))
	time.Sleep(200 * time.Millisecond)
	before = len(w.get())
	os.MkdirAll(filepath.Dir(p), 0o755)
	time.Sleep(200 * time.Millisecond)
	os.WriteFile(p, []byte("{}"), 0o644)
	if got := waitCalls(t, w, before+1); len(got) <= before {
		t.Error("no call after the directory was made again")
	}
}
