// Package atomicfile replaces files so that a reader sees either the old
// content or the new one, never a half-written file, and so that another
// program's write to the same file is not lost.
//
// WriteFile is for ctxfit's own files. Replace is for files that other
// programs write too (a client's config): it swaps the new version in and
// compares what came out with what was read, in one step where the system
// allows it; its doc says what is guaranteed where. ReadRegular reads a
// file only when it is a regular one, without ever blocking on a FIFO.
//
// Temporary files are named ".<name>.ctxfit-*.tmp" beside the file they
// replace, so that leftovers of a killed process can be recognised
// (TempPattern) and removed.
package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// WriteFile writes data to a temporary file in the directory of path, syncs
// it, sets perm, and renames it over path. On Windows a rename that fails
// because another program holds the file open is retried for about a second.
// The temporary file is removed on any error.
func WriteFile(path string, data []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, TempPattern(filepath.Base(path)))
	if err != nil {
		return fmt.Errorf("create temporary file beside %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err = f.Chmod(perm); err != nil && runtime.GOOS != "windows" {
		return fmt.Errorf("set mode of %s: %w", tmp, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err = Rename(tmp, path); err != nil {
		return err
	}
	SyncDir(dir)
	return nil
}

// TempPattern is the os.CreateTemp pattern of the temporary files that
// replace the file called base: ".<base>.ctxfit-*.tmp". A cleanup may match
// it with filepath.Match after replacing "*" by a glob star.
func TempPattern(base string) string { return "." + base + ".ctxfit-*.tmp" }

// Rename renames oldpath to newpath, retrying briefly on Windows where
// antivirus scanners and editors hold files open and make the rename fail
// with a sharing violation.
func Rename(oldpath, newpath string) error {
	var err error
	for i := 0; i < 20; i++ {
		if err = os.Rename(oldpath, newpath); err == nil {
			return nil
		}
		if runtime.GOOS != "windows" || errors.Is(err, os.ErrNotExist) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("replace %s: %w", newpath, err)
}

// SyncDir flushes the directory entry of a rename to disk where the platform
// allows it; failures are ignored because the data itself is already synced.
func SyncDir(dir string) {
	if runtime.GOOS == "windows" {
		return
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
