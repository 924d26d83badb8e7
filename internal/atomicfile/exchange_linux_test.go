package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestQuiesce checks the write lease that makes Replace wait for a program
// still holding the swapped-out version open.
func TestQuiesce(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	os.WriteFile(p, []byte("x"), 0o644)
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	release, ok := quiesce(f, 50*time.Millisecond)
	release()
	if ok || time.Since(start) < 50*time.Millisecond {
		t.Errorf("quiesce with a writer holding the file: lease %v after %v; want none after waiting 50ms", ok, time.Since(start))
	}
	go func() { time.Sleep(20 * time.Millisecond); w.Close() }()
	release, ok = quiesce(f, 5*time.Second)
	release()
	if !ok {
		t.Skip("this file system or user gets no file leases; Replace then compares without waiting")
	}
}
