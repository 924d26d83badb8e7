package ollamatest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Point is one load of a sweep: the context asked for and what /api/ps
// reported.
type Point struct {
	Context  int   `json:"context"`
	Size     int64 `json:"size"`
	SizeVRAM int64 `json:"size_vram"`
	Loaded   int   `json:"context_length"`
}

// Fits reports whether the load was 100% on the GPU.
func (p Point) Fits() bool { return p.SizeVRAM > 0 && p.SizeVRAM == p.Size }

// Sweep is an exhaustive search: a model loaded at every multiple of Step
// up to Max, as a person checking by hand would.
type Sweep struct {
	Key     string  `json:"key"`
	Step    int     `json:"step"`
	Max     int     `json:"max"`
	Points  []Point `json:"points"`
	Seconds float64 `json:"seconds"` // how long the loads took
}

// Largest returns the largest context that loaded 100% on the GPU, 0 when
// none did.
func (sw Sweep) Largest() int {
	best := 0
	for _, p := range sw.Points {
		if p.Fits() {
			best = max(best, p.Context)
		}
	}
	return best
}

// Monotone reports whether every fit lies below every spill, as a tuner
// that bisects must assume.
func (sw Sweep) Monotone() bool {
	spilled := false
	for _, p := range sw.Points {
		if spilled && p.Fits() {
			return false
		}
		spilled = spilled || !p.Fits()
	}
	return true
}

// SweepKey names a sweep's result in the cache: the Ollama version, the
// GPU options, the model's shape and the step, so that a change to any of
// them measures again.
func SweepKey(opts GPUOptions, sh Shape, step int) string {
	b, _ := json.Marshal(struct {
		Version string
		GPUOptions
		Shape
		Step int
	}{Version, opts, sh, step})
	sum := sha256.Sum256(b)
	return fmt.Sprintf("%s-%s-%s", Version, opts.Engine, hex.EncodeToString(sum[:6]))
}

// Sweep loads model at step, 2·step, … up to max and records what /api/ps
// reports, in that order. The result is cached under CacheDir()/sweeps by
// key (see SweepKey), so that CI measures each engine once per Ollama
// version rather than every run; a cached sweep costs no load.
func (s *Server) Sweep(tb testing.TB, model, key string, step, max int) Sweep {
	tb.Helper()
	var path string
	if dir := CacheDir(); dir != "" {
		path = filepath.Join(dir, "sweeps", key+".json")
		if b, err := os.ReadFile(path); err == nil {
			var sw Sweep
			if err := json.Unmarshal(b, &sw); err == nil && sw.Key == key && sw.Step == step && sw.Max == max && len(sw.Points) == max/step {
				tb.Logf("sweep %s from the cache (%s; measured in %.0f s)", key, path, sw.Seconds)
				return sw
			}
		}
	}
	sw := Sweep{Key: key, Step: step, Max: max}
	start := time.Now()
	for c := step; c <= max; c += step {
		t0 := time.Now()
		m := s.Load(tb, model, c)
		p := Point{Context: c, Size: m.Size, SizeVRAM: m.SizeVRAM, Loaded: m.ContextLength}
		tb.Logf("sweep: num_ctx %d → size %d, size_vram %d (%.1f s)", c, p.Size, p.SizeVRAM, time.Since(t0).Seconds())
		sw.Points = append(sw.Points, p)
	}
	sw.Seconds = time.Since(start).Seconds()
	if path != "" {
		b, _ := json.MarshalIndent(sw, "", "  ")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err == nil {
			tmp := path + ".tmp"
			if os.WriteFile(tmp, b, 0o644) == nil {
				os.Rename(tmp, path)
			}
		}
	}
	return sw
}
