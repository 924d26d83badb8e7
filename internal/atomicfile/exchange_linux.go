package atomicfile

import (
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

const oNonblock = unix.O_NONBLOCK

// exchange swaps the names a and b in one step (renameat2 RENAME_EXCHANGE).
func exchange(a, b string) error {
	err := unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP) {
		return errNoExchange
	}
	if err != nil {
		return &os.LinkError{Op: "exchange", Old: a, New: b, Err: err}
	}
	return nil
}

// quiesce waits, at most wait, until f's file is open nowhere else: a write
// lease is granted only then, and while it is held another open of the file
// waits for its release. It returns the function that releases the lease,
// and whether the lease was granted. Where leases are not available
// (another owner, a network file system, leases disabled) it returns at once.
func quiesce(f *os.File, wait time.Duration) (release func(), ok bool) {
	fd := int(f.Fd())
	deadline := time.Now().Add(wait)
	for pause := 100 * time.Microsecond; ; pause = min(2*pause, 20*time.Millisecond) {
		_, err := unix.FcntlInt(uintptr(fd), unix.F_SETLEASE, unix.F_WRLCK)
		if err == nil {
			return func() { unix.FcntlInt(uintptr(fd), unix.F_SETLEASE, unix.F_UNLCK) }, true
		}
		if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return func() {}, false
		}
		time.Sleep(pause)
	}
}
