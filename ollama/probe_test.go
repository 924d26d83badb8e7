package ollama

import (
	"testing"
	"time"
)

func TestIsProbeLoad(t *testing.T) {
	now := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		left time.Duration
		want bool
	}{
		{"just loaded", ProbeKeepAlive, true},
		{"polled 2 s later", ProbeKeepAlive - 2*time.Second, true},
		{"polled 40 s later", ProbeKeepAlive - 40*time.Second, true},
		{"the server's clock 3 s ahead", ProbeKeepAlive + 3*time.Second, true},
		{"Ollama's default 5m", 5 * time.Minute, false},
		{"6m", 6 * time.Minute, false},
		{"7m", 7 * time.Minute, false},
		{"10m", 10 * time.Minute, false},
		{"an hour", time.Hour, false},
		{"forever", 200 * 365 * 24 * time.Hour, false},
		{"expired", -time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsProbeLoad(now.Add(tt.left), now); got != tt.want {
				t.Errorf("IsProbeLoad(%v left) = %v, want %v", tt.left, got, tt.want)
			}
		})
	}
	if IsProbeLoad(time.Time{}, now) {
		t.Error("a model with no expiry (still loading) reads as a probe")
	}
}

func TestNotProbeKeepAlive(t *testing.T) {
	now := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
	for left := time.Duration(0); left < 10*time.Minute; left += 500 * time.Millisecond {
		k := NotProbeKeepAlive(left)
		if IsProbeLoad(now.Add(k), now) || IsProbeLoad(now.Add(k), now.Add(-time.Second)) {
			t.Fatalf("NotProbeKeepAlive(%v) = %v reads as a probe", left, k)
		}
		if k != left && k != left+time.Minute {
			t.Fatalf("NotProbeKeepAlive(%v) = %v", left, k)
		}
	}
	if got := NotProbeKeepAlive(5 * time.Minute); got != 5*time.Minute {
		t.Errorf("NotProbeKeepAlive(5m) = %v, want it unchanged", got)
	}
}
