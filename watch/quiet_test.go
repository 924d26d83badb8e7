package watch

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ollama/ollama/api"
)

// TestDuplicateModelsDoNotFlap lists one model twice, once spilled and once
// not, in either order: the watcher settles on one state and says nothing
// more at later polls.
func TestDuplicateModelsDoNotFlap(t *testing.T) {
	const model = "llama3.1:8b-instruct-fp16"
	fit, spill := psModel(model, 17*gib, 17*gib, 8192), psModel(model, 49*gib, 22*gib, 131072)
	f := &fakeOllama{}
	c := newClock()
	w, _ := newTestWatcher(t, f, Options{Now: c.now})
	var events []Event
	for i := 0; i < 20; i++ {
		if i%2 == 0 {
			f.set(fit, spill)
		} else {
			f.set(spill, fit)
		}
		c.advance(time.Second)
		events = append(events, w.Poll(context.Background()).Events...)
	}
	if got := kinds(events); fmt.Sprint(got) != fmt.Sprint([]EventKind{EventReachable, EventLoaded, EventSpillStarted}) {
		t.Errorf("20 polls of a duplicated model: %v; want it reachable, loaded and spilled once", got)
	}
}

// TestHugePsIsSummarised serves 1000 models: the poll's events say so in a
// handful of lines.
func TestHugePsIsSummarised(t *testing.T) {
	f := &fakeOllama{}
	c := newClock()
	w, _ := newTestWatcher(t, f, Options{Now: c.now})
	var ms []api.ProcessModelResponse
	for i := 0; i < 1000; i++ {
		ms = append(ms, psModel(fmt.Sprintf("m%04d:latest", i), gib, gib/2, 4096))
	}
	f.set(ms...)
	u := w.Poll(context.Background())
	if len(u.Snapshot.Models) != 1000 {
		t.Fatalf("snapshot holds %d models, want all 1000", len(u.Snapshot.Models))
	}
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	for _, e := range u.Events {
		LogEvent(logger, e)
	}
	lines := strings.Count(buf.String(), "\n")
	if lines > 5 || !strings.Contains(buf.String(), "1000 models loaded: m0000:latest") || !strings.Contains(buf.String(), "and 995 more") || !strings.Contains(buf.String(), "models=1000") {
		t.Errorf("1000 models made %d log lines:\n%s", lines, buf.String())
	}
	// And going away again.
	f.set()
	c.advance(10 * time.Minute)
	w.Poll(context.Background())
	c.advance(10 * time.Minute)
	if u := w.Poll(context.Background()); len(u.Events) != 1 || u.Events[0].Count != 1000 || u.Events[0].Kind != EventUnloaded {
		t.Errorf("1000 models unloaded: %d events (%v)", len(u.Events), kinds(u.Events))
	}
}

// TestEventLogCoalesces checks EventLog: repeats are counted into the next
// line, a model that keeps changing is held to MaxPerMinute lines, and
// what the server supplied is escaped.
func TestEventLogCoalesces(t *testing.T) {
	var buf bytes.Buffer
	l := &EventLog{Logger: slog.New(slog.NewTextHandler(&buf, nil)), MaxPerMinute: 4}
	t0 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	spill := Event{Kind: EventSpillStarted, Host: "h", Model: "m", Message: "m spilled"}
	end := Event{Kind: EventSpillEnded, Host: "h", Model: "m", Message: "m is 100% GPU again"}
	for i := 0; i < 100; i++ {
		spill.Time = t0.Add(time.Duration(i) * time.Millisecond)
		l.Log(spill)
	}
	end.Time = t0.Add(time.Second)
	l.Log(end)
	if n := strings.Count(buf.String(), "\n"); n != 2 || !strings.Contains(buf.String(), "previous_repeated=99") {
		t.Errorf("100 identical events and a change: %d lines:\n%s", n, buf.String())
	}

	// Flapping: at most MaxPerMinute lines a minute, then the count.
	buf.Reset()
	for i := 0; i < 60; i++ {
		e := spill
		if i%2 == 1 {
			e = end
		}
		e.Time = t0.Add(time.Minute + time.Duration(i)*time.Second/2)
		l.Log(e)
	}
	if n := strings.Count(buf.String(), "\n"); n != 4 {
		t.Errorf("60 changes in 30 s: %d lines, want 4:\n%s", n, buf.String())
	}
	buf.Reset()
	e := spill
	e.Time = t0.Add(3 * time.Minute)
	l.Log(e)
	if !strings.Contains(buf.String(), "previous_repeated=28 suppressed=28") { // 56 left out: 28 changes, 28 repeats of the last line
		t.Errorf("the line after the quiet minute does not count what was left out:\n%s", buf.String())
	}

	// What other parts publish is written each time.
	buf.Reset()
	fixed := Event{Kind: EventKind("config_fixed"), Host: "h", Model: "m", Message: "Continue: fixed", Time: t0}
	l.Log(fixed)
	l.Log(fixed)
	if n := strings.Count(buf.String(), "\n"); n != 2 {
		t.Errorf("two fixes: %d lines, want 2:\n%s", n, buf.String())
	}

	// Escapes.
	buf.Reset()
	l.Log(Event{Kind: EventLoaded, Host: "h", Model: "x\x1b[2J\u202e", Message: "x\x1b[2J\u202e loaded", Time: t0})
	if s := buf.String(); strings.ContainsAny(s, "\x1b\u202e") {
		t.Errorf("log line holds raw escapes: %q", s)
	}
}
