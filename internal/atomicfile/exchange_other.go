//go:build !linux && !darwin && !windows

package atomicfile

import (
	"os"
	"time"
)

// exchange is not available here; Replace re-reads and renames.
func exchange(a, b string) error { return errNoExchange }

func quiesce(*os.File, time.Duration) (release func(), ok bool) { return func() {}, false }
