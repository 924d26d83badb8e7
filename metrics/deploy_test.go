package metrics

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/ctxfit/ctxfit/watch"
)

// exported returns the names of every metric a Collector exports once it
// has seen a loaded, tuned model and one of each event.
func exported(t *testing.T) map[string]bool {
	c := New("test")
	c.Observe(watch.Update{Snapshot: watch.Snapshot{Host: "h", Reachable: true, Models: []watch.Model{{Name: "m", Size: 2, SizeVRAM: 1, ContextLength: 8, TunedContext: intp(4), Spilled: true}}},
		Events: []watch.Event{{Kind: watch.EventLoaded, Model: "m"}, {Kind: watch.EventThrash, Model: "m"}, {Kind: watch.EventUnloaded, Model: "x"}, {Kind: watch.EventSpillStarted, Model: "m"}}})
	c.ObservePoll("h", 1)
	c.ConfigFixed("continue")
	names := map[string]bool{}
	for _, line := range strings.Split(scrape(t, c), "\n") {
		if strings.HasPrefix(line, "# TYPE ctxfit_") {
			f := strings.Fields(line)
			names[f[2]] = true
			if f[3] == "histogram" {
				for _, s := range []string{"_bucket", "_sum", "_count"} {
					names[f[2]+s] = true
				}
			}
		}
	}
	return names
}

var metricName = regexp.MustCompile(`\bctxfit_[a-z_]+`)

// TestDeployFiles checks the examples under deploy/: the Grafana dashboard
// and the alerts use only metrics ctxfit exports, the compose example runs
// ctxfit headless with metrics beside Ollama, and promtool accepts the
// Prometheus configuration and rules.
func TestDeployFiles(t *testing.T) {
	names := exported(t)
	for _, want := range []string{"ctxfit_build_info", "ctxfit_ollama_up", "ctxfit_model_size_bytes", "ctxfit_model_vram_bytes",
		"ctxfit_model_gpu_ratio", "ctxfit_model_spilled", "ctxfit_model_context_length", "ctxfit_model_tuned_context_length",
		"ctxfit_model_loads_total", "ctxfit_model_reload_thrash_total", "ctxfit_model_evictions_total",
		"ctxfit_config_fixes_total", "ctxfit_poll_duration_seconds"} {
		if !names[want] {
			t.Errorf("%s is not exported", want)
		}
	}
	dir := filepath.Join("..", "deploy")
	b, err := os.ReadFile(filepath.Join(dir, "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	if len(dash.Panels) < 6 {
		t.Errorf("the dashboard has %d panels", len(dash.Panels))
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, n := range metricName.FindAllString(tg.Expr, -1) {
				if !names[n] {
					t.Errorf("panel %q uses %s, which ctxfit does not export", p.Title, n)
				}
			}
		}
	}
	rules, _ := os.ReadFile(filepath.Join(dir, "ctxfit-alerts.yml"))
	for _, n := range metricName.FindAllString(string(rules), -1) {
		if !names[n] {
			t.Errorf("ctxfit-alerts.yml uses %s, which ctxfit does not export", n)
		}
	}

	// A command in an alert must reach the server the alert is about: a
	// fleet's alert with a bare `ctxfit tune MODEL` tuned the server on
	// the machine where it was pasted.
	for _, cmd := range regexp.MustCompile("`ctxfit [^`]*`").FindAllString(string(rules), -1) {
		if !strings.Contains(cmd, "--host {{ $labels.host }}") {
			t.Errorf("ctxfit-alerts.yml: %s does not name the alert's server (--host {{ $labels.host }})", cmd)
		}
	}

	var compose struct {
		Services map[string]struct {
			Image   string `yaml:"image"`
			Command string `yaml:"command"`
		} `yaml:"services"`
	}
	cb, _ := os.ReadFile(filepath.Join(dir, "compose.yaml"))
	if err := yaml.Unmarshal(cb, &compose); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	if compose.Services["ollama"].Image != "ollama/ollama" || !strings.Contains(compose.Services["ctxfit"].Command, "ctxfit run --headless --host http://ollama:11434 --metrics-addr") {
		t.Errorf("compose.yaml services: %+v", compose.Services)
	}

	promtool := requireTool(t, "promtool")
	for _, args := range [][]string{{"check", "config", filepath.Join(dir, "prometheus.yml")}, {"check", "rules", filepath.Join(dir, "ctxfit-alerts.yml")}} {
		if out, err := exec.Command(promtool, args...).CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
