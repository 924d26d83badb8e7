//go:build unix

package atomicfile

import (
	"io/fs"
	"syscall"
)

// Links returns how many names (hard links) the file has; 1 when unknown.
func Links(info fs.FileInfo) int {
	if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Nlink > 0 {
		return int(st.Nlink)
	}
	return 1
}
