package main

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ctxfit/ctxfit/state"
)

// TestRunServesMetrics runs `ctxfit run --headless --metrics-addr` against
// the simulator through a spill, a tune and an auto-fix, and checks the
// scrape against what /api/ps says at each step.
func TestRunServesMetrics(t *testing.T) {
	f := newAppFixture(t, 131072, 0)
	addr := freePort(t)
	_, logs, stop := startCommand(t, f.vars, "run", "--headless", "--auto-fix", "on", "--metrics-addr", addr)
	defer stop()
	waitFor(t, "the metrics endpoint", func() bool { return strings.Contains(logs.String(), "serving Prometheus metrics") })
	host := "http://127.0.0.1:" + f.u[strings.LastIndex(f.u, ":")+1:]
	lbl := `{host="` + host + `",model="` + llama + `"}`

	// A client asks for the whole trained context: the model spills.
	if err := f.sim.Load(llama, 131072, time.Hour); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the spill in the metrics", func() bool { return strings.Contains(get(t, addr), "ctxfit_model_spilled"+lbl+" 1") })
	got := get(t, addr)
	for _, want := range []string{
		`ctxfit_ollama_up{host="` + host + `"} 1`,
		"ctxfit_model_context_length" + lbl + " 131072",
		"ctxfit_model_loads_total" + lbl + " 1",
		"ctxfit_model_spills_total" + lbl + " 1",
		`ctxfit_build_info{goversion="`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	if strings.Contains(got, "ctxfit_model_tuned_context_length"+lbl) {
		t.Error("a tuned context before any tune")
	}

	// A tune from the terminal; auto-fix rewrites Continue. The tune leaves
	// the model as it found it (reloaded at 131072, spilled).
	if code, out, errOut := (&cli{t: t, vars: f.vars}).run("tune", llama); code != 0 {
		t.Fatalf("tune: exit %d\n%s%s", code, out, errOut)
	}
	waitFor(t, "the tuned context in the metrics", func() bool {
		return strings.Contains(get(t, addr), "ctxfit_model_tuned_context_length"+lbl+" 25600")
	})
	// Continue (or the user) writes its config: auto-fix puts the tuned value back.
	f.write(f.cont, continueConfig(f.u, 131072))
	waitFor(t, "the config fix counted", func() bool { return strings.Contains(get(t, addr), `ctxfit_config_fixes_total{client="continue"} `) })
	// Continue's next request loads the model at the fixed context.
	if err := f.sim.Load(llama, 25600, time.Hour); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reload at the tuned context", func() bool {
		s := get(t, addr)
		return strings.Contains(s, "ctxfit_model_spilled"+lbl+" 0") && strings.Contains(s, "ctxfit_model_context_length"+lbl+" 25600")
	})
	got = get(t, addr)
	if !strings.Contains(got, "ctxfit_model_context_length"+lbl+" 25600") || !strings.Contains(got, "ctxfit_model_gpu_ratio"+lbl+" 1") {
		t.Errorf("after the tune:\n%s", grep(got, "ctxfit_model"))
	}
	if !strings.Contains(got, `ctxfit_poll_duration_seconds_count{host="`+host+`"}`) {
		t.Error("no poll duration")
	}
	if code := stop(); code != 0 {
		t.Errorf("exit %d", code)
	}

	// The address is remembered for the next start; off forgets it.
	data, _ := state.OpenStore(f.stateDir).Load()
	if data.Settings.MetricsAddr != addr {
		t.Errorf("remembered metrics address %q, want %q", data.Settings.MetricsAddr, addr)
	}
}

func TestRunMetricsAddrTaken(t *testing.T) {
	f := newAppFixture(t, 4096, 0)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := l.Addr().String()
	code, _, errOut := (&cli{t: t, vars: f.vars}).run("run", "--headless", "--metrics-addr", busy)
	if code != 1 || !strings.Contains(errOut, "choose another --metrics-addr") {
		t.Errorf("exit %d: %s", code, errOut)
	}
	if data, _ := state.OpenStore(f.stateDir).Load(); data.Settings.MetricsAddr == busy {
		t.Errorf("a --metrics-addr that could not be served was remembered: %q", busy)
	}
	// A remembered address that another program took since: ctxfit
	// watches on without metrics, and says so.
	if err := state.OpenStore(f.stateDir).Update(func(d *state.Data) error { d.Settings.MetricsAddr = busy; return nil }); err != nil {
		t.Fatal(err)
	}
	_, logs, stop := startCommand(t, f.vars, "run", "--headless")
	waitFor(t, "the watcher, without metrics", func() bool {
		return strings.Contains(logs.String(), "event=reachable") && strings.Contains(logs.String(), "no Prometheus metrics this time")
	})
	if code := stop(); code != 0 {
		t.Errorf("with a busy remembered address: exit %d:\n%s", code, logs)
	}
	code, _, errOut = (&cli{t: t, vars: f.vars}).run("run", "--headless", "--metrics-addr", "9464")
	if code != 1 || !strings.Contains(errOut, "use HOST:PORT") {
		t.Errorf("exit %d: %s", code, errOut)
	}
	// An address that is none is not remembered: the next `ctxfit run`
	// (the tray at login) would fail with it.
	if data, _ := state.OpenStore(f.stateDir).Load(); data.Settings.MetricsAddr == "9464" {
		t.Errorf("a refused --metrics-addr was remembered: %q", data.Settings.MetricsAddr)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

func get(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func grep(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
