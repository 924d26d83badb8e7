package atomicfile

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// ErrChanged reports that the file did not hold the expected content at the
// instant of replacement. Replace leaves the other writer's version in place.
var ErrChanged = errors.New("the file changed while it was being replaced")

// ErrGone reports that the file was deleted before it could be replaced.
// Replace does not create it again.
var ErrGone = errors.New("the file was deleted while it was being replaced")

// errNoExchange reports that the platform or file system cannot swap two
// names atomically; Replace then falls back to a re-read and a rename.
var errNoExchange = errors.New("atomic exchange not supported")

// settleWait is how long Replace waits for other programs to close a version
// it has swapped out before it reads it (Linux; see quiesce).
const settleWait = time.Second

// Replace puts the file tmp, written and synced in the same directory as
// path, in place of path — but only if path holds want at that instant.
//
// On Linux (renameat2 with RENAME_EXCHANGE) and macOS (renamex_np with
// RENAME_SWAP) the two names are swapped in one step, so the instant of
// replacement is the instant of comparison: the version swapped out is then
// compared with want, and on a difference the swap is undone and Replace
// returns ErrChanged. A program that had the old file open and writes into
// it in place after the swap writes into the swapped-out version; on Linux
// Replace takes a write lease on that version first (which succeeds only
// when nobody else has it open) and waits up to a second for such programs
// to close it, so that their write is seen and kept. If, after a swap back,
// the version ctxfit wrote was itself changed by someone in place, the more
// recently modified of the two versions stays at path.
//
// On Windows, ReplaceFileW swaps in the new version and keeps the replaced
// one under a backup name, which is compared and put back the same way; the
// two steps are not one atomic step. Elsewhere, and on file systems that
// cannot swap (some network and FUSE file systems), path is re-read
// immediately before the rename: a write in the microseconds between the two
// can still be lost there.
//
// tmp is consumed: it does not exist when Replace returns, except when a
// swap back fails, and then the error names it. A missing path is ErrGone.
func Replace(path, tmp string, want []byte) error {
	before, err := os.Stat(tmp)
	if err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	err = exchange(tmp, path)
	if errors.Is(err, errNoExchange) {
		return replaceByRename(path, tmp, want)
	}
	if err != nil {
		os.Remove(tmp)
		if _, serr := os.Lstat(path); errors.Is(serr, fs.ErrNotExist) {
			return ErrGone
		}
		return fmt.Errorf("replace %s: %w", path, err)
	}
	// path holds the new version; tmp holds what was at path.
	old, oldInfo, err := settle(tmp)
	if err == nil && bytes.Equal(old, want) {
		os.Remove(tmp)
		return nil
	}
	// Someone wrote the file meanwhile (or what came out cannot be read):
	// put their version back.
	if err := exchange(tmp, path); err != nil {
		return fmt.Errorf("%s changed while it was being replaced and the other version could not be put back (%v); it is in %s: move it over %s", path, err, tmp, path)
	}
	// tmp holds the new version again. Someone who opened path in the
	// meantime may have written into it: keep the newest write at path.
	_, ours, err := settle(tmp)
	if err == nil && oldInfo != nil && changedSince(ours, before) && !ours.ModTime().Before(oldInfo.ModTime()) {
		if err := exchange(tmp, path); err != nil {
			return fmt.Errorf("%s changed twice while it was being replaced and the newer version could not be put back (%v); it is in %s: move it over %s", path, err, tmp, path)
		}
	}
	os.Remove(tmp)
	return ErrChanged
}

// changedSince reports whether a file was written after it was stat'ed as
// before.
func changedSince(now, before fs.FileInfo) bool {
	return !os.SameFile(now, before) || now.Size() != before.Size() || !now.ModTime().Equal(before.ModTime())
}

// settle waits until nobody else has the file at name open (where the
// platform can tell; at most settleWait), then reads it.
func settle(name string) ([]byte, fs.FileInfo, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	release, _ := quiesce(f, settleWait)
	defer release()
	b, info, err := readAll(f)
	return b, info, err
}

// replaceByRename is Replace where names cannot be swapped: re-read, compare,
// rename.
func replaceByRename(path, tmp string, want []byte) error {
	now, _, err := ReadRegular(path, int64(len(want))+1)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		os.Remove(tmp)
		return ErrGone
	case errors.Is(err, ErrTooLarge):
		os.Remove(tmp)
		return ErrChanged
	case err != nil:
		os.Remove(tmp)
		return fmt.Errorf("re-read %s: %w", path, err)
	case !bytes.Equal(now, want):
		os.Remove(tmp)
		return ErrChanged
	}
	if err := Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
