package ollama

import "golang.org/x/sys/unix"

// TotalRAM returns this machine's physical memory in bytes, 0 if unknown.
func TotalRAM() int64 {
	n, err := unix.SysctlUint64("hw.memsize")
	if err != nil {
		return 0
	}
	return int64(n)
}

// AvailableRAM returns 0 (unknown): macOS reports no single figure for the
// memory a process can take without paging; callers fall back to a share of
// TotalRAM.
func AvailableRAM() int64 { return 0 }
