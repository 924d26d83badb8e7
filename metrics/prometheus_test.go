package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/ctxfit/ctxfit/watch"
)

// TestRealPrometheus runs the real Prometheus server (Debian package
// prometheus) against Serve for a few scrape intervals and asks its HTTP API
// for ctxfit_model_spilled: the alert a server user would write.
func TestRealPrometheus(t *testing.T) {
	bin := requireTool(t, "prometheus")
	c := New("test")
	const host = "http://gpu-box:11434"
	c.Observe(watch.Update{Snapshot: watch.Snapshot{Host: host, Reachable: true, Models: []watch.Model{
		{Name: "llama3.1:8b", Size: 50e9, SizeVRAM: 22e9, ContextLength: 131072, Spilled: true},
	}}})

	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, ln, c) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()

	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`global:
  scrape_interval: 1s
scrape_configs:
  - job_name: ctxfit
    static_configs:
      - targets: [%q]
`, ln.Addr().String())), 0o644)
	web := freeAddr(t)
	pctx, pcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer pcancel()
	cmd := exec.CommandContext(pctx, bin, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+web, "--log.level=warn")
	logs, _ := os.Create(filepath.Join(dir, "prometheus.log"))
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}()

	q := "http://" + web + "/api/v1/query?query=" + url.QueryEscape(`ctxfit_model_spilled{job="ctxfit"} == 1`)
	deadline := time.Now().Add(45 * time.Second)
	for {
		var r struct {
			Status string `json:"status"`
			Data   struct {
				Result []struct {
					Metric map[string]string `json:"metric"`
					Value  []any             `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		resp, err := http.Get(q)
		if err == nil {
			json.NewDecoder(resp.Body).Decode(&r)
			resp.Body.Close()
			if len(r.Data.Result) == 1 {
				m := r.Data.Result[0].Metric
				if m["host"] != host || m["model"] != "llama3.1:8b" {
					t.Errorf("Prometheus has %v", m)
				}
				return
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "prometheus.log"))
			t.Fatalf("Prometheus never returned the spilled model (last error %v)\n%s", err, b)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
