// Package metrics exposes what ctxfit knows about the Ollama servers it
// watches as Prometheus metrics: which models are loaded, how much of each is
// in VRAM, whether it spilled, the context it runs with against the one that
// fits, loads, reload thrash, evictions and config fixes.
//
// A Collector is fed by the daemon (Observe for each watcher update,
// ObservePoll for each poll, ConfigFixed for each fix); it never polls Ollama
// itself. Gauges describe the latest snapshot of each server, so a model that
// is no longer loaded disappears from them at once; counters keep counting
// across loads, as Prometheus counters must.
package metrics

import (
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ctxfit/ctxfit/watch"
)

const namespace = "ctxfit"

// Collector holds ctxfit's metrics. It is safe for concurrent use.
type Collector struct {
	reg *prometheus.Registry

	mu    sync.Mutex
	snaps map[string]watch.Snapshot // the latest snapshot, by host

	loads       *prometheus.CounterVec
	thrash      *prometheus.CounterVec
	evictThrash *prometheus.CounterVec
	evictions   *prometheus.CounterVec
	spills      *prometheus.CounterVec
	fixes       *prometheus.CounterVec
	polls       *prometheus.HistogramVec
}

// New returns a Collector whose ctxfit_build_info carries version.
func New(version string) *Collector {
	c := &Collector{
		reg:   prometheus.NewRegistry(),
		snaps: map[string]watch.Snapshot{},
		loads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "model_loads_total",
			Help: "Loads and reloads of a model seen in /api/ps (a new context length reloads it).",
		}, []string{"host", "model"}),
		thrash: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "model_reload_thrash_total",
			Help: "Times a model was found reloading repeatedly with different context lengths.",
		}, []string{"host", "model"}),
		evictThrash: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "model_eviction_thrash_total",
			Help: "Times a model and another kept unloading each other (they do not fit on the GPU together); model is the larger.",
		}, []string{"host", "model"}),
		evictions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "model_evictions_total",
			Help: "Times a model was unloaded while another model was loaded in its place.",
		}, []string{"host", "model"}),
		spills: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "model_spills_total",
			Help: "Times a model moved (partly) from the GPU onto the CPU.",
		}, []string{"host", "model"}),
		fixes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "config_fixes_total",
			Help: "Client configs ctxfit rewrote with a context that fits.",
		}, []string{"client"}),
		polls: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "poll_duration_seconds",
			Help:    "Time to ask an Ollama server for its loaded models (/api/ps).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"host"}),
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info",
		Help:        "ctxfit's version; always 1.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	build.Set(1)
	c.reg.MustRegister(build, c.loads, c.thrash, c.evictThrash, c.evictions, c.spills, c.fixes, c.polls, snapshotCollector{c},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return c
}

// Observe takes one watcher update: the snapshot replaces the server's
// previous one, and the events count.
func (c *Collector) Observe(u watch.Update) {
	host := u.Snapshot.Host
	c.mu.Lock()
	c.snaps[host] = u.Snapshot
	c.mu.Unlock()

	loaded := 0
	for _, e := range u.Events {
		if e.Kind == watch.EventLoaded {
			loaded++
		}
	}
	for _, e := range u.Events {
		h := e.Host
		if h == "" {
			h = host
		}
		switch e.Kind {
		case watch.EventLoaded, watch.EventContextChanged:
			c.loads.WithLabelValues(h, e.Model).Inc()
		case watch.EventThrash:
			c.thrash.WithLabelValues(h, e.Model).Inc()
		case watch.EventEvictionThrash:
			c.evictThrash.WithLabelValues(h, e.Model).Inc()
		case watch.EventSpillStarted:
			c.spills.WithLabelValues(h, e.Model).Inc()
		case watch.EventUnloaded:
			// Ollama unloads an idle model to make room for a new one:
			// an unload in the same poll as a load is an eviction.
			if loaded > 0 {
				c.evictions.WithLabelValues(h, e.Model).Inc()
			}
		}
	}
}

// ObservePoll records how long one poll of host took.
func (c *Collector) ObservePoll(host string, d time.Duration) {
	c.polls.WithLabelValues(host).Observe(d.Seconds())
}

// ConfigFixed counts one rewrite of client's config.
func (c *Collector) ConfigFixed(client string) {
	c.fixes.WithLabelValues(client).Inc()
}

// Forget drops a server that is no longer watched.
func (c *Collector) Forget(host string) {
	c.mu.Lock()
	delete(c.snaps, host)
	c.mu.Unlock()
}

// Handler serves the metrics in Prometheus's exposition format,
// uncompressed: a scrape is about 15 kB, and gzip's state would add more
// than a megabyte to a daemon meant to stay under 20 MB.
func (c *Collector) Handler() http.Handler {
	return promhttp.HandlerFor(c.reg, promhttp.HandlerOpts{Registry: c.reg, DisableCompression: true})
}

var (
	upDesc = prometheus.NewDesc(namespace+"_ollama_up",
		"Whether the Ollama server answered the last poll (1) or not (0).", []string{"host"}, nil)
	sizeDesc = prometheus.NewDesc(namespace+"_model_size_bytes",
		"A loaded model's memory, weights, KV cache and compute graph (size in /api/ps).", []string{"host", "model"}, nil)
	vramDesc = prometheus.NewDesc(namespace+"_model_vram_bytes",
		"The part of a loaded model in GPU memory (size_vram in /api/ps).", []string{"host", "model"}, nil)
	ratioDesc = prometheus.NewDesc(namespace+"_model_gpu_ratio",
		"size_vram / size of a loaded model: 1 is 100% GPU.", []string{"host", "model"}, nil)
	spilledDesc = prometheus.NewDesc(namespace+"_model_spilled",
		"1 when a loaded model has layers on the CPU that belong on the GPU, else 0.", []string{"host", "model"}, nil)
	ctxDesc = prometheus.NewDesc(namespace+"_model_context_length",
		"The context length (num_ctx) a loaded model runs with.", []string{"host", "model"}, nil)
	tunedDesc = prometheus.NewDesc(namespace+"_model_tuned_context_length",
		"The largest context length ctxfit measured to stay 100% on the GPU for a loaded model.", []string{"host", "model"}, nil)
)

// snapshotCollector emits the gauges of the latest snapshots.
type snapshotCollector struct{ c *Collector }

func (s snapshotCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{upDesc, sizeDesc, vramDesc, ratioDesc, spilledDesc, ctxDesc, tunedDesc} {
		ch <- d
	}
}

func (s snapshotCollector) Collect(ch chan<- prometheus.Metric) {
	s.c.mu.Lock()
	snaps := make([]watch.Snapshot, 0, len(s.c.snaps))
	for _, snap := range s.c.snaps {
		snaps = append(snaps, snap)
	}
	s.c.mu.Unlock()
	for _, snap := range snaps {
		ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, b2f(snap.Reachable), snap.Host)
		if !snap.Reachable {
			continue
		}
		seen := map[string]bool{}
		for _, m := range snap.Models {
			if seen[m.Name] { // a server that lists a model twice must not break the scrape
				continue
			}
			seen[m.Name] = true
			ch <- prometheus.MustNewConstMetric(sizeDesc, prometheus.GaugeValue, float64(m.Size), snap.Host, m.Name)
			ch <- prometheus.MustNewConstMetric(vramDesc, prometheus.GaugeValue, float64(m.SizeVRAM), snap.Host, m.Name)
			if m.Size > 0 {
				ch <- prometheus.MustNewConstMetric(ratioDesc, prometheus.GaugeValue, min(float64(m.SizeVRAM)/float64(m.Size), 1), snap.Host, m.Name)
			}
			ch <- prometheus.MustNewConstMetric(spilledDesc, prometheus.GaugeValue, b2f(m.Spilled), snap.Host, m.Name)
			if m.ContextLength > 0 {
				ch <- prometheus.MustNewConstMetric(ctxDesc, prometheus.GaugeValue, float64(m.ContextLength), snap.Host, m.Name)
			}
			if m.TunedContext != nil {
				ch <- prometheus.MustNewConstMetric(tunedDesc, prometheus.GaugeValue, float64(*m.TunedContext), snap.Host, m.Name)
			}
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
