package ollama

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrStalled reports a server that made no progress for longer than a
// progress timeout (Progress).
var ErrStalled = errors.New("Ollama stopped answering")

// The default progress timeouts of loads and generations. A load sends
// nothing until it is done, and a big model from a slow disk can take
// minutes; after that Ollama sends a line per token, well within a minute
// even on a CPU.
const (
	DefaultFirstTimeout = 10 * time.Minute
	DefaultStallTimeout = time.Minute
)

// Progress is the progress timeout of a streamed request (a load, a
// generation): First bounds the wait for the first line of the answer,
// Stall the wait for each next one. A trickle of bytes that completes no
// line is no progress. Zero fields mean the defaults.
type Progress struct {
	First, Stall time.Duration
	// NoFlags is set where the timeouts are not the command line's
	// (a tune from the tray): a stall then names no flag.
	NoFlags bool
}

// see returns the flag a stall names, "" with NoFlags.
func (p Progress) see(flag string) string {
	if p.NoFlags {
		return ""
	}
	return " (see " + flag + ")"
}

func (p Progress) withDefaults() Progress {
	if p.First <= 0 {
		p.First = DefaultFirstTimeout
	}
	if p.Stall <= 0 {
		p.Stall = DefaultStallTimeout
	}
	return p
}

// Watch returns a context for one streamed request, what ("load
// llama3.1:8b at num_ctx 8192"), that is cancelled when no line comes
// within p's timeouts; call progressed for each line received and stop when
// the request is over. After a stall, context.Cause of the returned context
// (and Stalled) is an error wrapping ErrStalled. Cancelling ctx (Ctrl-C)
// still ends the request at once.
func (p Progress) Watch(ctx context.Context, what string) (wctx context.Context, progressed func(), stop func()) {
	p = p.withDefaults()
	wctx, cancel := context.WithCancelCause(ctx)
	var mu sync.Mutex
	fire := func(d time.Duration, first bool) func() {
		return func() {
			if first {
				cancel(fmt.Errorf("%s: %w: no answer within %v%s", what, ErrStalled, d, p.see("--load-timeout")))
			} else {
				cancel(fmt.Errorf("%s: %w: nothing more for %v%s", what, ErrStalled, d, p.see("--stall-timeout")))
			}
		}
	}
	timer := time.AfterFunc(p.First, fire(p.First, true))
	progressed = func() {
		mu.Lock()
		defer mu.Unlock()
		if timer.Stop() {
			timer = time.AfterFunc(p.Stall, fire(p.Stall, false))
		}
	}
	stop = func() {
		mu.Lock()
		timer.Stop()
		mu.Unlock()
		cancel(nil)
	}
	return wctx, progressed, stop
}

// Stalled returns the stall that ended a request made with a context from
// Watch, or nil.
func Stalled(wctx context.Context) error {
	if err := context.Cause(wctx); errors.Is(err, ErrStalled) {
		return err
	}
	return nil
}

// Request returns a context for one short request, what ("list running
// models"), that ends after p.Stall; Stalled then reports it.
func (p Progress) Request(ctx context.Context, what string) (context.Context, context.CancelFunc) {
	p = p.withDefaults()
	return context.WithTimeoutCause(ctx, p.Stall, fmt.Errorf("%s: %w: no answer within %v%s", what, ErrStalled, p.Stall, p.see("--stall-timeout")))
}
