//go:build !linux && !darwin && !windows

package atomicfile

import "syscall"

// oNonblock opens a FIFO without waiting for a writer.
const oNonblock = syscall.O_NONBLOCK
