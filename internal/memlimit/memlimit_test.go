package memlimit

import (
	"context"
	"math"
	"runtime"
	"runtime/debug"
	"testing"
)

func TestLimit(t *testing.T) {
	tests := []struct {
		live uint64
		want int64
	}{
		{0, Floor},
		{1 << 20, Floor},
		{2 << 20, Floor},
		{3 << 20, 10 << 20},
		{100 << 20, 204 << 20},
	}
	for _, tt := range tests {
		if got := Limit(tt.live); got != tt.want {
			t.Errorf("Limit(%d) = %d, want %d", tt.live, got, tt.want)
		}
	}
}

// Govern sets a limit above the live heap, and none when the user chose
// one with GOMEMLIMIT.
func TestGovern(t *testing.T) {
	defer debug.SetMemoryLimit(math.MaxInt64)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	t.Setenv("GOMEMLIMIT", "")
	debug.SetMemoryLimit(math.MaxInt64)
	keep := make([]byte, 32<<20) // a live heap past the floor
	runtime.GC()
	Govern(ctx)
	got := debug.SetMemoryLimit(-1)
	if got < 2*int64(len(keep)) || got == math.MaxInt64 {
		t.Errorf("limit %d with a live heap of over %d bytes", got, len(keep))
	}
	runtime.KeepAlive(keep)

	t.Setenv("GOMEMLIMIT", "1GiB")
	debug.SetMemoryLimit(math.MaxInt64)
	Govern(ctx)
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("with GOMEMLIMIT set, Govern set the limit to %d", got)
	}
}
