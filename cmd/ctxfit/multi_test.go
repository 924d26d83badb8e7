package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ctxfit/ctxfit/internal/gpusim"
	"github.com/ctxfit/ctxfit/internal/ollamahost"
	"github.com/ctxfit/ctxfit/state"
)

// TestRunTwoServers runs one `ctxfit run` for two simulated servers, one
// with a spilled model, and one Continue config holding an entry for each.
// The metrics, `ctxfit status` (text and JSON) and the config all show
// both; the two keepers fix each its own entry and then leave the file be.
func TestRunTwoServers(t *testing.T) {
	simA, a := startSim(t, "mac32", nil)
	simB, b := startSim(t, "24GB", nil)
	f := newAppFixtureOn(t, simA, a, 131072, 0)
	delete(f.vars, "OLLAMA_HOST") // the servers come from --host, then from the remembered list
	f.write(f.cont, continueConfig(a, 131072)+`  - name: Llama on B
    provider: ollama
    model: `+llama+`
    apiBase: `+b+`
    defaultCompletionOptions:
      contextLength: 131072
      maxTokens: 4096
`)
	store := state.OpenStore(f.stateDir)
	store.Update(func(d *state.Data) error {
		for _, h := range []struct {
			u   string
			ctx int
		}{{a, 25600}, {b, 65536}} {
			d.PutTuned(state.Tuned{Host: ollamahost.Key(ollamahost.Parse(h.u)), Model: llama, Parallel: 1, Context: h.ctx, Step: 1024, MeasuredAt: time.Now()})
		}
		return nil
	})
	if err := simA.Load(llama, 131072, gpusim.Forever); err != nil { // spills on 32 GB
		t.Fatal(err)
	}
	if err := simB.Load(llama, 8192, gpusim.Forever); err != nil { // whole on the GPU
		t.Fatal(err)
	}
	addr := freePort(t)
	_, logs, stop := startCommand(t, f.vars, "run", "--headless", "--auto-fix", "on", "--metrics-addr", addr, "--host", a, "--host", b)
	defer stop()

	// Metrics: one collector, both servers' series.
	la, lb := `{host="`+hostLabel(a)+`",model="`+llama+`"}`, `{host="`+hostLabel(b)+`",model="`+llama+`"}`
	waitFor(t, "both servers in the metrics", func() bool {
		s := get(t, addr)
		return strings.Contains(s, "ctxfit_model_spilled"+la+" 1") && strings.Contains(s, "ctxfit_model_spilled"+lb+" 0")
	})
	got := get(t, addr)
	for _, want := range []string{`ctxfit_ollama_up{host="` + hostLabel(a) + `"} 1`, `ctxfit_ollama_up{host="` + hostLabel(b) + `"} 1`,
		"ctxfit_model_tuned_context_length" + la + " 25600", "ctxfit_model_tuned_context_length" + lb + " 65536"} {
		if !strings.Contains(got, want) {
			t.Errorf("scrape lacks %q:\n%s", want, grep(got, "ctxfit_"))
		}
	}

	// Two keepers, one file: each fixes its own server's entry.
	waitFor(t, "both entries fixed", func() bool {
		s := f.read(f.cont)
		return strings.Contains(s, "contextLength: 25600") && strings.Contains(s, "contextLength: 65536")
	})
	fixed := f.read(f.cont)
	before, _ := os.Stat(f.cont)
	time.Sleep(3 * time.Second) // several debounces: a loop would have rewritten it by now
	after, _ := os.Stat(f.cont)
	if f.read(f.cont) != fixed || !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("the config kept changing after both entries were fixed:\n%s", f.read(f.cont))
	}
	if l := logs.String(); strings.Contains(l, "keeps reverting") || strings.Contains(l, "backed") {
		t.Errorf("the keepers fought:\n%s", l)
	}

	// status without --host: every remembered server, each from its daemon.
	c := &cli{t: t, vars: f.vars}
	code, out, errOut := c.run("status")
	if code != 0 {
		t.Fatalf("status: exit %d\n%s%s", code, out, errOut)
	}
	ia, ib := strings.Index(out, "== "+a+" =="), strings.Index(out, "== "+b+" ==")
	if ia < 0 || ib < ia || strings.Count(out, "ctxfit is running for this server") != 2 {
		t.Fatalf("status shows not both servers, each from its daemon:\n%s", out)
	}
	if !strings.Contains(out[ia:ib], "spill") || strings.Contains(strings.ToLower(out[ib:]), "spill") {
		t.Errorf("the spill is not A's alone:\n%s", out)
	}
	code, out, errOut = c.run("status", "--json")
	var list []statusJSON
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 2 {
		t.Fatalf("status --json: exit %d, want a list of two\n%s%s", code, out, errOut)
	}
	for i, want := range []struct {
		host    string
		spilled bool
	}{{a, true}, {b, false}} {
		s := list[i]
		if !ollamahost.Same(ollamahost.Parse(s.Host), ollamahost.Parse(want.host)) || len(s.Models) != 1 || s.Models[0].Spilled != want.spilled {
			t.Errorf("server %d: %+v, want %s with spilled %v", i, s, want.host, want.spilled)
		}
	}
	if code := stop(); code != 0 {
		t.Errorf("run: exit %d\n%s", code, logs.String())
	}
	data, _ := store.Load()
	if len(data.Settings.WatchHosts) != 2 {
		t.Errorf("remembered servers %q, want both", data.Settings.WatchHosts)
	}

	// `ctxfit set watch-hosts off` forgets them: status shows the default server alone.
	if code, out, errOut := c.run("set", "watch-hosts", "off"); code != 0 {
		t.Fatalf("set watch-hosts off: exit %d\n%s%s", code, out, errOut)
	}
	if data, _ := store.Load(); data.Settings.WatchHosts != nil {
		t.Errorf("after off: %q", data.Settings.WatchHosts)
	}
	if code, _, errOut := c.run("set", "watch-hosts", a); code != 2 || !strings.Contains(errOut, "names one server") {
		t.Errorf("set watch-hosts with one server: exit %d, %s", code, errOut)
	}
	if code, out, _ := c.run("set", "watch-hosts", a+","+b, "--json"); code != 0 || !strings.Contains(out, `"watch_hosts"`) {
		t.Errorf("set watch-hosts A,B --json: exit %d, %s", code, out)
	}
	if data, _ := store.Load(); len(data.Settings.WatchHosts) != 2 {
		t.Errorf("after set: %q", data.Settings.WatchHosts)
	}
}

// hostLabel is the metrics' host label of server URL u.
func hostLabel(u string) string { return ollamahost.Parse(u).String() }

// TestStatusAllOneDown: with remembered servers, one that does not answer
// is shown in its place and the others after it; `ctxfit status` used to
// stop at the first such server, printing only its error.
func TestStatusAllOneDown(t *testing.T) {
	_, up := startSim(t, "24GB", map[string]int{"qwen2.5:0.5b": 4096})
	down := "http://127.0.0.1:1" // nothing listens on port 1
	c := newCLI(t, nil)
	if code, _, errOut := c.run("set", "watch-hosts", down+","+up); code != 0 {
		t.Fatalf("set watch-hosts: exit %d, %s", code, errOut)
	}
	code, out, errOut := c.run("status")
	id, iu := strings.Index(out, "== "+down+" =="), strings.Index(out, "== "+up+" ==")
	if code != 1 || id < 0 || iu < id || !strings.Contains(out[id:iu], "cannot reach Ollama at "+down) || !strings.Contains(out[iu:], "qwen2.5:0.5b") || errOut != "" {
		t.Errorf("exit %d, stdout:\n%s\nstderr: %q\nwant exit 1, the error under the first server's header, then the second server", code, out, errOut)
	}
}
