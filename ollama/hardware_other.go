//go:build !linux && !darwin && !windows

package ollama

// TotalRAM returns 0: this platform has no supported way to read it.
func TotalRAM() int64 { return 0 }

// AvailableRAM returns 0: this platform has no supported way to read it.
func AvailableRAM() int64 { return 0 }
