package ollama

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// TotalRAM returns this machine's physical memory in bytes, 0 if unknown.
func TotalRAM() int64 { return meminfo("/proc/meminfo", "MemTotal") }

// AvailableRAM returns the memory this machine can give a new process
// without swapping (MemAvailable in /proc/meminfo), 0 if unknown.
func AvailableRAM() int64 { return meminfo("/proc/meminfo", "MemAvailable") }

// meminfo returns the field of a /proc/meminfo-formatted file in bytes, 0
// when the file or the field is missing or unreadable.
func meminfo(path, field string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb * 1024
		}
	}
	return 0
}
