package daemon

import (
	"time"

	"github.com/ctxfit/ctxfit/ollama"
	"github.com/ctxfit/ctxfit/watch"
)

// A tune that runs on another machine cannot register with this daemon,
// nor leave it a lease: its loads would read as a client's, spilling and
// reloading. Its loads ask for ollama.ProbeKeepAlive, which /api/ps shows
// as their expiry, so the daemon recognises them and treats them as a
// registered tune's (see syncProbes).
const (
	// probeSettle is how long after its last probe a model listed with
	// another keep-alive (a client's request, or the tune putting it
	// back) is taken as no longer tuned.
	probeSettle = 10 * time.Second
	// probeGone is how long after its last probe a model that is not
	// listed is: a tune's next load may take minutes on a large model,
	// and a server may not list the model meanwhile.
	probeGone = 2 * time.Minute
)

// probed is a model whose loads read as another machine's tune.
type probed struct {
	model string
	last  time.Time // the last poll that showed a probe load of it
}

// probedBy is who runs a tune known by its loads, as the hub shows it.
const probedBy = "ctxfit elsewhere, seen by its loads"

// syncProbes returns the models whose loads began to read as another
// machine's tune in snapshot s, and those whose tune is over: listed with
// another keep-alive probeSettle after their last probe, or not listed
// probeGone after it. Models
// tuned by a tuner that registered or left a lease are not its business.
func (d *Daemon) syncProbes(s watch.Snapshot) (began, ended []string) {
	if !s.Reachable {
		return nil, nil
	}
	now := s.Time
	if now.IsZero() {
		now = time.Now()
	}
	listed := map[string]bool{}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, m := range s.Models {
		k := ollama.ModelKey(m.Name)
		probe := ollama.IsProbeLoad(m.ExpiresAt, now)
		listed[k] = listed[k] || !probe
		if !probe {
			continue
		}
		if p, ok := d.probed[k]; ok {
			p.last = now
			d.probed[k] = p
			continue
		}
		_, registered := d.tunes[k]
		_, leased := d.leases[k]
		if registered || leased {
			continue
		}
		d.probed[k] = probed{model: m.Name, last: now}
		began = append(began, m.Name)
	}
	for k, p := range d.probed {
		if p.last.Equal(now) {
			continue
		}
		wait := probeGone
		if listed[k] {
			wait = probeSettle
		}
		if now.Sub(p.last) >= wait {
			delete(d.probed, k)
			ended = append(ended, p.model)
		}
	}
	return began, ended
}
