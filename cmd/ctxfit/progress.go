package main

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// progressDelay is how long a step runs before progress shows it: what
// ends within a second needs no word.
const progressDelay = time.Second

// progress shows on stderr what a long command is doing: the step in
// flight with its elapsed seconds, redrawn once a second on a terminal,
// or one line per step when stderr is not a terminal but --progress asked
// for it. It says nothing with --quiet, or when stderr is not a terminal
// and --progress was not given.
type progress struct {
	w   io.Writer
	tty bool
	on  bool

	mu    sync.Mutex
	what  string
	began time.Time
	stop  chan struct{}
	wg    sync.WaitGroup
	shown bool
}

// progress returns the reporter a command's --quiet and --progress ask for.
func (e *env) progress(quiet, force bool) *progress {
	return &progress{w: e.stderr, tty: e.stderrTTY, on: !quiet && (e.stderrTTY || force)}
}

// start begins step what, ending the one before.
func (p *progress) start(what string) {
	if p == nil || !p.on {
		return
	}
	p.done()
	p.mu.Lock()
	p.what, p.began, p.stop, p.shown = what, time.Now(), make(chan struct{}), false
	stop := p.stop
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTimer(progressDelay)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				p.draw()
				t.Reset(time.Second)
			}
		}
	}()
}

// draw shows the step in flight.
func (p *progress) draw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	secs := int(time.Since(p.began).Seconds())
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K  %s… %d s", p.what, secs)
	} else if !p.shown {
		fmt.Fprintf(p.w, "  %s…\n", p.what)
	}
	p.shown = true
}

// done ends the step in flight, clearing its line on a terminal.
func (p *progress) done() {
	if p == nil || !p.on {
		return
	}
	p.mu.Lock()
	stop := p.stop
	p.stop = nil
	p.mu.Unlock()
	if stop == nil {
		return
	}
	close(stop)
	p.wg.Wait()
	p.mu.Lock()
	if p.tty && p.shown {
		fmt.Fprint(p.w, "\r\033[K")
	}
	p.mu.Unlock()
}
