package ollama

import "time"

// ProbeKeepAlive is the keep_alive that ctxfit's own measuring loads ask
// for (a tune's loads, its speed comparison): a duration no one else
// picks, so that a ctxfit watching the server tells them from a client's
// loads even when it cannot hear of the tune, because the tune runs on
// another machine (see IsProbeLoad). Ollama lists a model's expiry in
// /api/ps, so the mark costs no request of its own. It is between whole
// minutes, away from every keep_alive people set (5m, 10m, 30m, 1h, -1).
const ProbeKeepAlive = 6*time.Minute + 53*time.Second

// probeBand is how long before ProbeKeepAlive runs out a load still reads
// as a probe: the time between the load's end and a watcher's poll, and
// clock skew between the watcher and a remote server. It stays clear of
// 6m and 7m.
const (
	probeBandBelow = 45 * time.Second
	probeBandAbove = 5 * time.Second
)

// IsProbeLoad reports whether a model that /api/ps lists, at now, as
// expiring at expires was loaded by a ctxfit's measuring load: what is
// left of its keep-alive is just under ProbeKeepAlive.
func IsProbeLoad(expires, now time.Time) bool {
	if expires.IsZero() || now.IsZero() {
		return false
	}
	left := expires.Sub(now)
	return left > ProbeKeepAlive-probeBandBelow && left <= ProbeKeepAlive+probeBandAbove
}

// NotProbeKeepAlive returns keepAlive, moved out of the range that reads as
// a probe when it falls in it (by a minute), so that putting a model back
// with what was left of a client's keep-alive never looks like a probe.
func NotProbeKeepAlive(keepAlive time.Duration) time.Duration {
	if keepAlive > ProbeKeepAlive-probeBandBelow-time.Second && keepAlive <= ProbeKeepAlive+probeBandAbove+time.Second {
		return keepAlive + time.Minute
	}
	return keepAlive
}
