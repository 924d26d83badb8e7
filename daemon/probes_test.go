package daemon

import (
	"fmt"
	"testing"
	"time"

	"github.com/ctxfit/ctxfit/ollama"
	"github.com/ctxfit/ctxfit/watch"
)

// syncProbes begins a tune when a model is listed with a probe's
// keep-alive, keeps it while probes come, even across a gap in which the
// model is not listed (the next load), and ends it once the model is
// listed with another keep-alive probeSettle after the last probe, or not
// at all probeGone after it; a model a registered tune loads is not its
// business.
func TestSyncProbes(t *testing.T) {
	const model = "llama3.1:8b"
	t0 := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
	type poll struct {
		at     time.Duration // since t0
		listed string        // "probe", "client" or "" (not listed)
		want   string        // "began", "ended" or ""
	}
	tests := []struct {
		name       string
		registered bool
		polls      []poll
	}{
		{"a tune that puts the model back", false, []poll{
			{0, "client", ""},
			{time.Second, "probe", "began"},
			{2 * time.Second, "", ""},
			{40 * time.Second, "probe", ""}, // a slow next load
			{41 * time.Second, "client", ""},
			{49 * time.Second, "client", ""},
			{50 * time.Second, "client", "ended"},
			{51 * time.Second, "client", ""},
		}},
		{"a tune that unloads the model", false, []poll{
			{0, "probe", "began"},
			{time.Second, "", ""},
			{100 * time.Second, "", ""},
			{121 * time.Second, "", "ended"},
		}},
		{"a client's load during the tune's gap", false, []poll{
			{0, "probe", "began"},
			{time.Second, "", ""},
			{5 * time.Second, "client", ""},
			{15 * time.Second, "client", "ended"},
			{16 * time.Second, "probe", "began"},
		}},
		{"a registered tune's loads", true, []poll{
			{0, "probe", ""},
			{time.Second, "client", ""},
		}},
		{"no probes", false, []poll{
			{0, "client", ""},
			{time.Hour, "", ""},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newTestDaemon(t)
			if tt.registered {
				d.tunes[ollama.ModelKey(model)] = t0
			}
			for _, p := range tt.polls {
				now := t0.Add(p.at)
				s := watch.Snapshot{Reachable: true, Time: now}
				switch p.listed {
				case "probe":
					s.Models = []watch.Model{{Name: model, ExpiresAt: now.Add(ollama.ProbeKeepAlive - 500*time.Millisecond)}}
				case "client":
					s.Models = []watch.Model{{Name: model, ExpiresAt: now.Add(time.Hour)}}
				}
				began, ended := d.syncProbes(s)
				got := ""
				switch {
				case len(began) == 1 && len(ended) == 0 && began[0] == model:
					got = "began"
				case len(ended) == 1 && len(began) == 0 && ended[0] == model:
					got = "ended"
				case len(began)+len(ended) > 0:
					got = fmt.Sprint(began, ended)
				}
				if got != p.want {
					t.Fatalf("at %v (%q listed): %q, want %q", p.at, p.listed, got, p.want)
				}
			}
		})
	}
	// An unreachable server changes nothing.
	d := newTestDaemon(t)
	d.syncProbes(watch.Snapshot{Reachable: true, Time: t0, Models: []watch.Model{{Name: model, ExpiresAt: t0.Add(ollama.ProbeKeepAlive)}}})
	if b, e := d.syncProbes(watch.Snapshot{Time: t0.Add(time.Hour)}); len(b)+len(e) > 0 {
		t.Errorf("an unreachable server began %v, ended %v", b, e)
	}
}

// A tune that registers while loads marked as a tune's are listed takes
// that tune over (another machine's that crashed and left its load, or
// the same model tuned here after one there), rather than being refused
// until the load expires.
func TestRegisteredTuneTakesOverProbes(t *testing.T) {
	const model = "llama3.1:8b"
	d := newTestDaemon(t)
	now := time.Now()
	d.watched(watch.Update{Snapshot: watch.Snapshot{Reachable: true, Time: now,
		Models: []watch.Model{{Name: model, ExpiresAt: now.Add(ollama.ProbeKeepAlive)}}}})
	if ts := d.State().Tunes; len(ts) != 1 || ts[0].By != probedBy {
		t.Fatalf("tunes %+v, want one seen by its loads", ts)
	}
	if err := d.BeginTune(model, "ctxfit tune (pid 7)"); err != nil {
		t.Fatalf("BeginTune beside a tune seen by its loads: %v", err)
	}
	if ts := d.State().Tunes; len(ts) != 1 || ts[0].Line != "registered by ctxfit tune (pid 7)" {
		t.Errorf("tunes %+v, want the one tune, registered now", ts)
	}
	if len(d.probed) != 0 {
		t.Errorf("still tracked by its loads: %+v", d.probed)
	}
}
