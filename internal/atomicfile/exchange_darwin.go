package atomicfile

import (
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

const oNonblock = unix.O_NONBLOCK

// exchange swaps the names a and b in one step (renamex_np RENAME_SWAP).
func exchange(a, b string) error {
	err := unix.RenamexNp(a, b, unix.RENAME_SWAP)
	if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		return errNoExchange
	}
	if err != nil {
		return &os.LinkError{Op: "exchange", Old: a, New: b, Err: err}
	}
	return nil
}

// quiesce cannot tell on macOS whether others have a file open.
func quiesce(*os.File, time.Duration) (release func(), ok bool) { return func() {}, false }
