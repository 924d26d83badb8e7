// Package memlimit keeps a long-running process's memory near what it uses.
//
// The Go runtime returns memory that garbage collection freed to the
// system slowly, so a daemon whose live heap is a megabyte or two grows to
// several more over minutes. A soft memory limit a few megabytes above the
// live heap makes the runtime give the surplus back; following the live
// heap keeps the limit from ever making collection run without pause.
package memlimit

import (
	"context"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

const (
	// Floor is the least limit set: room for the runtime's own structures
	// and goroutine stacks beside a small heap.
	Floor = 8 << 20
	// Every is how often the limit follows the live heap.
	Every = 30 * time.Second
)

// Limit returns the limit for a live heap of live bytes: twice the live
// heap plus 4 MiB, at least Floor. Collection then never runs more than
// about once per live heap allocated, as with GOGC=100.
func Limit(live uint64) int64 {
	return max(Floor, 2*int64(live)+4<<20)
}

// Govern sets the memory limit now and every Every until ctx ends, unless
// the user set GOMEMLIMIT (then it does nothing). It returns at once; the
// limit is followed by a goroutine.
func Govern(ctx context.Context) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	set()
	go func() {
		t := time.NewTicker(Every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				set()
			}
		}
	}()
}

// set sets the limit for the live heap now.
func set() {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return // a runtime without the metric: leave the default
	}
	debug.SetMemoryLimit(Limit(s[0].Value.Uint64()))
}
