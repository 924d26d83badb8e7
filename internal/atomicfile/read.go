package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// ErrNotRegular reports a path that is not a regular file: a directory, a
// FIFO, a socket or a device. Reading one could block forever or never end.
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge reports a file larger than the reader's limit.
var ErrTooLarge = errors.New("file too large")

// ReadRegular reads the regular file at path (following symlinks), at most
// max bytes (max <= 0 means 64 MiB). It checks the file's type before
// opening it and opens it non-blocking, so that a FIFO that appears between
// the check and the open cannot block the caller; anything but a regular
// file is ErrNotRegular, wrapped with the path and its type.
func ReadRegular(path string, max int64) ([]byte, fs.FileInfo, error) {
	if max <= 0 {
		max = 64 << 20
	}
	info, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, info, notRegular(path, info.Mode())
	}
	f, err := os.OpenFile(path, os.O_RDONLY|oNonblock, 0)
	if err != nil {
		return nil, info, err
	}
	defer f.Close()
	got, err := f.Stat()
	if err != nil {
		return nil, info, err
	}
	if !got.Mode().IsRegular() {
		return nil, got, notRegular(path, got.Mode())
	}
	if got.Size() > max {
		return nil, got, fmt.Errorf("%s holds %d bytes, more than a config file can (%d): %w", path, got.Size(), max, ErrTooLarge)
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, got, err
	}
	if int64(len(b)) > max {
		return nil, got, fmt.Errorf("%s holds more than %d bytes: %w", path, max, ErrTooLarge)
	}
	return b, got, nil
}

// readAll reads f from its start, with its FileInfo taken after the read.
func readAll(f *os.File) ([]byte, fs.FileInfo, error) {
	b, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<62))
	if err != nil {
		return nil, nil, err
	}
	info, err := f.Stat()
	return b, info, err
}

func notRegular(path string, m fs.FileMode) error {
	return fmt.Errorf("%s is %s, %w", path, Kind(m), ErrNotRegular)
}

// Kind names a file's type for messages: "a directory", "a named pipe
// (FIFO)", "a socket", "a device", "a regular file".
func Kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0, m&fs.ModeCharDevice != 0:
		return "a device"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m.IsRegular():
		return "a regular file"
	}
	return "not a regular file"
}
