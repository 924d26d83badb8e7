// Package logfile is ctxfit's log file: an io.Writer for log/slog that
// appends to a file in the user's cache directory and rotates it by size,
// so that a daemon that runs for months never fills the disk.
//
//	path, err := logfile.DefaultPath(os.Getenv)
//	w, err := logfile.Open(path, logfile.Options{})
//	defer w.Close()
//	log := slog.New(slog.NewTextHandler(w, nil))
//
// When the file would grow past MaxSize, it is renamed to ctxfit.log.1,
// the older ones move up to ctxfit.log.2 and so on, the oldest beyond Keep
// is dropped, and writing goes on in a new ctxfit.log. One Write is one log
// record and never splits across files.
package logfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// DirEnv names the environment variable that overrides the log directory,
// for tests and for users who want the log elsewhere.
const DirEnv = "CTXFIT_LOG_DIR"

// FileName is the log file's name in its directory.
const FileName = "ctxfit.log"

// Defaults for Options.
const (
	DefaultMaxSize = 5 << 20 // bytes
	DefaultKeep    = 3
)

// DefaultPath returns where ctxfit logs: $CTXFIT_LOG_DIR/ctxfit.log, else
// ctxfit/ctxfit.log in the user's cache directory (~/.cache on Linux,
// ~/Library/Caches on macOS, %LocalAppData% on Windows).
func DefaultPath(getenv func(string) string) (string, error) {
	if d := getenv(DirEnv); d != "" {
		return filepath.Join(d, FileName), nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find a directory for ctxfit's log (set %s): %w", DirEnv, err)
	}
	return filepath.Join(d, "ctxfit", FileName), nil
}

// Options bound the log's size on disk: at most (Keep+1) × MaxSize bytes.
type Options struct {
	// MaxSize is the size in bytes past which the file is rotated;
	// 0 means DefaultMaxSize. A single record larger than MaxSize is
	// written whole, into a file of its own.
	MaxSize int64
	// Keep is how many rotated files to keep; 0 means DefaultKeep.
	Keep int
}

// Writer appends to a log file and rotates it by size. It is safe for
// concurrent use by one process; two processes writing one log each rotate
// on their own count and may keep more than Keep files' worth.
type Writer struct {
	path    string
	maxSize int64
	keep    int

	mu    sync.Mutex
	f     *os.File // nil after a failed reopen or Close
	size  int64    // bytes in f
	limit int64    // size past which the next Write rotates
}

// Open opens the log file at path for appending, creating it and its
// directory (mode 0700; the log names the user's models and files) if need
// be.
func Open(path string, opts Options) (*Writer, error) {
	if opts.MaxSize <= 0 {
		opts.MaxSize = DefaultMaxSize
	}
	if opts.Keep <= 0 {
		opts.Keep = DefaultKeep
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create the log directory: %w", err)
	}
	w := &Writer{path: path, maxSize: opts.MaxSize, keep: opts.Keep, limit: opts.MaxSize}
	if err := w.open(); err != nil {
		return nil, err
	}
	return w, nil
}

// Path returns the log file's path, for "Open log" and `ctxfit status`.
func (w *Writer) Path() string { return w.path }

// open opens (or creates) the current file and learns its size.
func (w *Writer) open() error {
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open the log file: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open the log file: %w", err)
	}
	w.f, w.size = f, fi.Size()
	return nil
}

// errClosed is returned by Write after Close.
var errClosed = errors.New("logfile: write to a closed log")

// Write appends p to the log, first rotating the file when p would take it
// past MaxSize.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.limit < 0 {
		return 0, errClosed
	}
	if w.f == nil {
		if err := w.open(); err != nil {
			return 0, err
		}
	}
	if w.size > 0 && w.size+int64(len(p)) > w.limit {
		w.rotate()
		if w.f == nil {
			return 0, errors.New("logfile: the log file could not be reopened after rotation")
		}
	}
	n, err := w.f.Write(p)
	w.size += int64(n)
	if err != nil {
		return n, fmt.Errorf("write the log file: %w", err)
	}
	return n, nil
}

// rotate shifts the files up by one and reopens an empty current file. If
// the current file cannot be renamed (on Windows, while another program
// holds it without sharing), writing goes on in it and rotation is tried
// again after another tenth of MaxSize.
func (w *Writer) rotate() {
	w.f.Close()
	w.f = nil
	// Dropping the oldest first lets the renames below work on Windows too.
	os.Remove(w.name(w.keep))
	var err error
	for i := w.keep - 1; i >= 1 && err == nil; i-- {
		if err = os.Rename(w.name(i), w.name(i+1)); errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
	}
	if err == nil {
		err = os.Rename(w.path, w.name(1))
	}
	if err != nil {
		// Keep the current file rather than overwrite a rotated one.
		if w.open() == nil {
			w.limit = w.size + w.maxSize/10
		}
		return
	}
	if w.open() == nil {
		w.limit = w.maxSize
	}
}

// name returns the path of the i-th rotated file; 0 is the current one.
func (w *Writer) name(i int) string {
	if i == 0 {
		return w.path
	}
	return w.path + "." + strconv.Itoa(i)
}

// Close closes the file. Writes after Close fail.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.limit = -1
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}
