package ollama

import (
	"unsafe"

	"golang.org/x/sys/windows"
)

type memoryStatusEx struct {
	length               uint32
	memoryLoad           uint32
	totalPhys            uint64
	availPhys            uint64
	totalPageFile        uint64
	availPageFile        uint64
	totalVirtual         uint64
	availVirtual         uint64
	availExtendedVirtual uint64
}

// TotalRAM returns this machine's physical memory in bytes, 0 if unknown.
func TotalRAM() int64 { return int64(memoryStatus().totalPhys) }

// AvailableRAM returns the physical memory free for a new process in
// bytes, 0 if unknown.
func AvailableRAM() int64 { return int64(memoryStatus().availPhys) }

// memoryStatus calls GlobalMemoryStatusEx; all zeros when it fails.
func memoryStatus() memoryStatusEx {
	proc := windows.NewLazySystemDLL("kernel32.dll").NewProc("GlobalMemoryStatusEx")
	var m memoryStatusEx
	m.length = uint32(unsafe.Sizeof(m))
	if r, _, _ := proc.Call(uintptr(unsafe.Pointer(&m))); r == 0 {
		return memoryStatusEx{}
	}
	return m
}
