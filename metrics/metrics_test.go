package metrics

import (
	"context"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ctxfit/ctxfit/internal/gpusim"
	"github.com/ctxfit/ctxfit/ollama"
	"github.com/ctxfit/ctxfit/watch"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func intp(n int) *int { return &n }

// The gauges of a snapshot, and the counters of its events, as an
// exposition checked against a golden file.
func TestCollector(t *testing.T) {
	c := New("1.2.3")
	const host = "http://127.0.0.1:11434"
	c.Observe(watch.Update{
		Snapshot: watch.Snapshot{Host: host, Reachable: true, Models: []watch.Model{
			{Name: "llama3.1:8b", Size: 50e9, SizeVRAM: 22e9, ContextLength: 131072, State: ollama.StatePartial, Spilled: true, TunedContext: intp(25600)},
			{Name: "qwen2.5:0.5b", Size: 1e9, SizeVRAM: 1e9, ContextLength: 4096, State: ollama.StateGPU},
			{Name: "qwen2.5:0.5b", Size: 1e9, SizeVRAM: 1e9, ContextLength: 4096, State: ollama.StateGPU}, // listed twice
		}},
		Events: []watch.Event{
			{Kind: watch.EventLoaded, Host: host, Model: "llama3.1:8b"},
			{Kind: watch.EventSpillStarted, Host: host, Model: "llama3.1:8b"},
			{Kind: watch.EventUnloaded, Host: host, Model: "gemma2:9b"}, // evicted by the load above
			{Kind: watch.EventEvictionThrash, Host: host, Model: "llama3.1:8b"},
		},
	})
	c.Observe(watch.Update{
		Snapshot: watch.Snapshot{Host: "http://gpu-box:11434", Error: "connection refused"},
		Events:   []watch.Event{{Kind: watch.EventUnreachable, Host: "http://gpu-box:11434"}},
	})
	c.ConfigFixed("continue")
	c.ConfigFixed("continue")

	names := []string{
		"ctxfit_build_info", "ctxfit_ollama_up", "ctxfit_model_size_bytes", "ctxfit_model_vram_bytes",
		"ctxfit_model_gpu_ratio", "ctxfit_model_spilled", "ctxfit_model_context_length",
		"ctxfit_model_tuned_context_length", "ctxfit_model_loads_total", "ctxfit_model_reload_thrash_total",
		"ctxfit_model_eviction_thrash_total", "ctxfit_model_evictions_total", "ctxfit_model_spills_total", "ctxfit_config_fixes_total",
	}
	got := scrape(t, c)
	var keep []string
	for _, line := range strings.Split(got, "\n") {
		for _, n := range names {
			if strings.HasPrefix(line, n) || strings.HasPrefix(line, "# HELP "+n+" ") || strings.HasPrefix(line, "# TYPE "+n+" ") {
				if strings.HasPrefix(line, "ctxfit_build_info") {
					line = line[:strings.Index(line, "goversion=")] + `goversion="GO",` + line[strings.Index(line, "version=\"1.2.3\""):]
				}
				keep = append(keep, line)
				break
			}
		}
	}
	exposition := strings.Join(keep, "\n") + "\n"
	goldenFile(t, "exposition.txt", exposition)

	// The model unloads: its gauges go, its counters stay.
	c.Observe(watch.Update{
		Snapshot: watch.Snapshot{Host: host, Reachable: true},
		Events:   []watch.Event{{Kind: watch.EventUnloaded, Host: host, Model: "llama3.1:8b"}},
	})
	got = scrape(t, c)
	if strings.Contains(got, `ctxfit_model_size_bytes{host="http://127.0.0.1:11434",model="llama3.1:8b"}`) {
		t.Error("an unloaded model still has a size")
	}
	if !strings.Contains(got, `ctxfit_model_loads_total{host="http://127.0.0.1:11434",model="llama3.1:8b"} 1`) {
		t.Error("the load counter went with the model")
	}
	if strings.Contains(got, `ctxfit_model_evictions_total{host="http://127.0.0.1:11434",model="llama3.1:8b"}`) {
		t.Error("an unload with no load beside it counted as an eviction")
	}
	if n, err := testutil.GatherAndCount(c.reg, "ctxfit_model_spilled"); err != nil || n != 0 {
		t.Errorf("ctxfit_model_spilled series after the unload: %d, %v", n, err)
	}
	c.Forget("http://gpu-box:11434")
	if strings.Contains(scrape(t, c), "gpu-box") {
		t.Error("a forgotten server is still exported")
	}
}

func scrape(t *testing.T, c *Collector) string {
	t.Helper()
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func goldenFile(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", p, got, want)
	}
}

// TestAgainstWatcher feeds the collector from a real watcher of the GPU
// simulator, through a spill and a reload, and checks each gauge against
// what /api/ps says.
func TestAgainstWatcher(t *testing.T) {
	g, _ := gpusim.LookupGPU("24GB")
	sim := gpusim.New(gpusim.Config{GPU: g})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	c := New("test")
	w := watch.New(ollama.NewClient(u), u, nil, watch.Options{LocalGPU: func() ollama.GPUPresence { return ollama.GPUPresent }})
	const model = "llama3.1:8b-instruct-fp16"
	ctx := context.Background()
	for _, n := range []int{8192, 65536} {
		if err := sim.Load(model, n, gpusim.Forever); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		upd := w.Poll(ctx)
		c.ObservePoll(upd.Snapshot.Host, time.Since(start))
		c.Observe(upd)
	}
	size, vram, _ := sim.Placement(model, 65536, 1)
	host := w.Snapshot().Host
	lbl := `{host="` + host + `",model="` + model + `"}`
	got := scrape(t, c)
	for _, want := range []string{
		`ctxfit_ollama_up{host="` + host + `"} 1`,
		"ctxfit_model_size_bytes" + lbl + " " + fmtFloat(float64(size)),
		"ctxfit_model_vram_bytes" + lbl + " " + fmtFloat(float64(vram)),
		"ctxfit_model_spilled" + lbl + " 1",
		"ctxfit_model_context_length" + lbl + " 65536",
		"ctxfit_model_loads_total" + lbl + " 2",
		`ctxfit_poll_duration_seconds_count{host="` + host + `"} 2`,
	} {
		if !strings.Contains(got, want+"\n") {
			t.Errorf("scrape lacks %q", want)
		}
	}
	if vram >= size {
		t.Fatalf("the test expects a spill at 65536 on 24GB: size %d, vram %d", size, vram)
	}
	checkWithPromtool(t, got)
}

func fmtFloat(f float64) string {
	return strings.TrimSuffix(strings.TrimSuffix(strconvFloat(f), ".0"), "")
}

// checkWithPromtool lints an exposition with promtool (Debian package
// prometheus): names, units, counters' _total, help texts.
func checkWithPromtool(t *testing.T, exposition string) {
	t.Helper()
	promtool := requireTool(t, "promtool")
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(exposition)
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// RequireEnv turns a missing Prometheus into a failure instead of a skip
// (CI sets it).
const RequireEnv = "CTXFIT_REQUIRE_PROMETHEUS"

func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("%s not found and %s=1: apt-get install prometheus", name, RequireEnv)
		}
		t.Skipf("%s not found: apt-get install prometheus to run this test", name)
	}
	return p
}

func strconvFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
