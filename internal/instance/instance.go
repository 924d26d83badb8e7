// Package instance keeps one ctxfit running per Ollama server: a second
// `ctxfit run` for the same server finds the first one's lock and says so,
// instead of adding a second tray icon and a second config keeper.
package instance

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ctxfit/ctxfit/internal/filelock"
)

// ErrRunning reports that another process holds the lock.
var ErrRunning = errors.New("ctxfit is already running")

// Lock is a held instance lock; Release gives it up. The operating system
// releases it too when the process ends, however it ends.
type Lock struct {
	f *os.File
}

// Acquire takes the lock for key (an Ollama host) in dir. When another
// process holds it, the error wraps ErrRunning and names that process.
func Acquire(dir, key string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s for ctxfit's lock: %w", dir, err)
	}
	sum := sha256.Sum256([]byte(key))
	path := filepath.Join(dir, "run-"+hex.EncodeToString(sum[:6])+".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open ctxfit's lock %s: %w", path, err)
	}
	if err := filelock.TryLock(f); err != nil {
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		f.Close()
		who := "another process"
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n]))); err == nil && pid > 0 {
			who = fmt.Sprintf("process %d", pid)
		}
		return nil, fmt.Errorf("%w for %s (%s holds %s)", ErrRunning, key, who, path)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return &Lock{f: f}, nil
}

// Release gives the lock up.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	filelock.UnlockFile(l.f)
	err := l.f.Close()
	l.f = nil
	return err
}
