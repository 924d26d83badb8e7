package ollama

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// A stall names the flag that sets its timeout on the command line, and
// none where the timeouts are not the command line's (the tray).
func TestStallNamesItsFlag(t *testing.T) {
	tests := []struct {
		name  string
		p     Progress
		first bool // no answer at all, else one line and then nothing
		want  string
	}{
		{"load", Progress{First: 10 * time.Millisecond}, true, "no answer within 10ms (see --load-timeout)"},
		{"stall", Progress{First: time.Second, Stall: 10 * time.Millisecond}, false, "nothing more for 10ms (see --stall-timeout)"},
		{"tray load", Progress{First: 10 * time.Millisecond, NoFlags: true}, true, "no answer within 10ms"},
		{"tray stall", Progress{First: time.Second, Stall: 10 * time.Millisecond, NoFlags: true}, false, "nothing more for 10ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wctx, progressed, stop := tt.p.Watch(context.Background(), "load m")
			defer stop()
			if !tt.first {
				progressed()
			}
			<-wctx.Done()
			err := Stalled(wctx)
			if !errors.Is(err, ErrStalled) || !strings.HasSuffix(err.Error(), tt.want) {
				t.Errorf("stall: %v, want it to end with %q", err, tt.want)
			}
		})
	}
	ctx, cancel := Progress{Stall: 10 * time.Millisecond, NoFlags: true}.Request(context.Background(), "list running models")
	defer cancel()
	<-ctx.Done()
	if err := Stalled(ctx); err == nil || strings.Contains(err.Error(), "--") {
		t.Errorf("a tray request's stall: %v, want no flag named", err)
	}
}
