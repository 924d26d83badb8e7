package ollama

import (
	"os"
	"path/filepath"
	"testing"
)

func TestMeminfo(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meminfo")
	os.WriteFile(path, []byte("MemTotal:       16316412 kB\nMemFree:          812344 kB\nMemAvailable:    9731076 kB\n"), 0o644)
	for _, tt := range []struct {
		field string
		want  int64
	}{
		{"MemTotal", 16316412 * 1024},
		{"MemAvailable", 9731076 * 1024},
		{"SwapTotal", 0},
	} {
		if got := meminfo(path, tt.field); got != tt.want {
			t.Errorf("meminfo(%s) = %d, want %d", tt.field, got, tt.want)
		}
	}
	if got := meminfo(filepath.Join(t.TempDir(), "missing"), "MemTotal"); got != 0 {
		t.Errorf("meminfo of a missing file = %d, want 0", got)
	}
	if AvailableRAM() <= 0 || AvailableRAM() > TotalRAM() {
		t.Errorf("AvailableRAM() = %d with TotalRAM() = %d, want 0 < available ≤ total", AvailableRAM(), TotalRAM())
	}
}
