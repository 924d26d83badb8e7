package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctxfit/ctxfit/internal/gpusim"
	"github.com/ctxfit/ctxfit/state"
	"github.com/ctxfit/ctxfit/tune"
)

const fp16 = "llama3.1:8b-instruct-fp16"

// startSimParallel is startSim for a server with parallel slots.
func startSimParallel(t *testing.T, gpu string, parallel int) (*gpusim.Server, string) {
	t.Helper()
	g, _ := gpusim.LookupGPU(gpu)
	sim := gpusim.New(gpusim.Config{GPU: g, Parallel: parallel})
	u, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim, u
}

// timings blanks what varies from run to run: durations and dates.
var timings = regexp.MustCompile(`\d+\.\d+ s\b|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d|127\.0\.0\.1:\d+`)

func normalize(s string) string {
	return timings.ReplaceAllStringFunc(s, func(m string) string {
		switch {
		case strings.HasSuffix(m, " s"):
			return "X s"
		case strings.HasPrefix(m, "127."):
			return "127.0.0.1:PORT"
		}
		return "DATE"
	})
}

func exhaustiveCLI(t *testing.T, sim *gpusim.Server, model string, step, parallel int) int {
	t.Helper()
	m, _ := gpusim.LookupModel(model)
	best := 0
	for c := step; c <= m.TrainedContext; c += step {
		if s, v, _ := sim.Placement(model, c, parallel); s == v {
			best = c
		}
	}
	return best
}

// TestTuneCommand: a spilled model on a 32 GB Mac is tuned, stored, left
// loaded at the answer, and the speed before and after is shown.
func TestTuneCommand(t *testing.T) {
	sim, u := startSim(t, "mac32", map[string]int{fp16: 32768})
	c := newCLI(t, nil)
	code, out, errOut := c.run("tune", fp16, "--host", u)
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	golden(t, "tune_mac32.txt", normalize(out))

	want := exhaustiveCLI(t, sim, fp16, 1024, 1)
	data, err := state.OpenStore(c.vars[state.StateDirEnv]).Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(data.Tuned) != 1 || data.Tuned[0].Context != want || data.Tuned[0].Digest == "" || data.Tuned[0].Host != "http://127.0.0.1:"+u[strings.LastIndex(u, ":")+1:] || data.Tuned[0].MeasuredAt.IsZero() {
		t.Errorf("stored %+v, want %d for %s", data.Tuned, want, u)
	}
	if !data.Hosts[data.Tuned[0].Host].GPUSeen {
		t.Error("the host's GPU was not recorded")
	}
	// What the loads measured of the GPU is kept for the next tune.
	g, _ := gpusim.LookupGPU("mac32")
	if b := data.GPUBound(data.Tuned[0].Host); b == nil || b.Lo <= 0 || b.Lo > g.VRAM || b.Up != 0 && b.Up <= g.VRAM*9/10 {
		t.Errorf("stored GPU bound %+v; the GPU lends %d bytes", b, g.VRAM)
	}

	// --list shows it; ctxfit status too.
	code, out, _ = c.run("tune", "--list", "--host", u)
	if code != 0 || !strings.Contains(out, fp16) || !strings.Contains(out, "CONTEXT") {
		t.Errorf("tune --list: exit %d\n%s", code, out)
	}
	golden(t, "tune_list.txt", normalize(out))
	code, out, _ = c.run("tune", "--list", "--json", "--host", u)
	var list struct {
		Host  string
		Tuned []state.Tuned
	}
	if err := json.Unmarshal([]byte(out), &list); code != 0 || err != nil || len(list.Tuned) != 1 || list.Tuned[0].Context != want {
		t.Errorf("tune --list --json: exit %d, %v\n%s", code, err, out)
	}
	// Another server's list is empty; --all-hosts shows every one.
	if _, out, _ = c.run("tune", "--list", "--json"); !strings.Contains(out, `"tuned": []`) {
		t.Errorf("tune --list for the default server:\n%s", out)
	}
	if _, out, _ = c.run("tune", "--list", "--all-hosts"); !strings.Contains(out, fp16) {
		t.Errorf("tune --list --all-hosts:\n%s", out)
	}
}

// TestTuneJSON checks the --json shape exactly as the issue gives it.
func TestTuneJSON(t *testing.T) {
	sim, u := startSimParallel(t, "24GB", 2)
	c := newCLI(t, map[string]string{"OLLAMA_NUM_PARALLEL": "2"}) // the host is local
	code, out, errOut := c.run("tune", "--json", "--host", u, "--step", "4096", fp16)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(errOut, "load 1: num_ctx ") {
		t.Errorf("progress should go to stderr with --json, got %q", errOut)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, out)
	}
	keys := func(m map[string]json.RawMessage) []string {
		var ks []string
		for k := range m {
			ks = append(ks, k)
		}
		slices.Sort(ks)
		return ks
	}
	if got := keys(raw); !slices.Equal(got, []string{"context", "host", "loads", "model", "parallel", "probes", "restored", "step", "trained_context"}) {
		t.Errorf("keys %v", got)
	}
	var probes []map[string]json.RawMessage
	json.Unmarshal(raw["probes"], &probes)
	for _, p := range probes {
		if got := keys(p); !slices.Equal(got, []string{"context", "processor", "seconds", "size", "size_vram"}) {
			t.Errorf("probe keys %v", got)
		}
	}
	var res struct {
		Model                                          string
		Context, Step, Loads, Parallel, TrainedContext int
		Probes                                         []struct{ Context int }
	}
	json.Unmarshal([]byte(out), &res)
	res.TrainedContext = 0
	json.Unmarshal(raw["trained_context"], &res.TrainedContext)
	want := exhaustiveCLI(t, sim, fp16, 4096, 2)
	if res.Model != fp16 || res.Context != want || res.Step != 4096 || res.Parallel != 2 || res.TrainedContext != 131072 ||
		res.Loads != len(probes) || !slices.ContainsFunc(res.Probes, func(p struct{ Context int }) bool { return p.Context == want }) {
		t.Errorf("result %+v, want %d with parallel 2", res, want)
	}
}

func TestTuneCommandFailures(t *testing.T) {
	closed := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		return "http://" + addr
	}()
	tests := []struct {
		name string
		gpu  string
		args []string
		code int
		says []string
	}{
		{"does not fit", "16GB", []string{"llama3.1:70b"}, 1,
			[]string{"llama3.1:70b needs", "GB at num_ctx 1024 but the GPU holds only about", "try a smaller quantization (a q4_K_M tag) or a smaller model"}},
		{"CPU only", "none", []string{"qwen2.5:0.5b"}, 1, []string{"runs models on the CPU only", "nothing in VRAM", "`ctxfit status --set-gpu absent --host "}},
		{"unknown model", "24GB", []string{"nosuch:1b"}, 1, []string{"model not found: nosuch:1b", "ollama pull nosuch:1b"}},
		{"load error", "", []string{"qwen2.5:0.5b", "--host", failingLoads(t)}, 1,
			[]string{"load qwen2.5:0.5b at num_ctx 32768", "llama runner process has terminated", "see the Ollama server log"}},
		{"no server", "", []string{"qwen2.5:0.5b", "--host", closed}, 1, []string{"Ollama at " + closed, "nothing answers at this address", "ollama serve"}},
		{"no model", "24GB", nil, 2, []string{"name one MODEL to tune", "Run `ctxfit help tune` for usage."}},
		{"bad step", "24GB", []string{"qwen2.5:0.5b", "--step", "0"}, 2, []string{"--step 0"}},
		{"bad parallel", "24GB", []string{"qwen2.5:0.5b", "--parallel", "-1"}, 2, []string{"--parallel -1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCLI(t, nil)
			args := append([]string{"tune"}, tt.args...)
			if tt.gpu != "" {
				_, u := startSim(t, tt.gpu, nil)
				args = append(args, "--host", u)
			}
			code, out, errOut := c.run(args...)
			t.Logf("exit %d:\n%s", code, errOut)
			if code != tt.code {
				t.Errorf("exit %d, want %d\n%s%s", code, tt.code, out, errOut)
			}
			for _, s := range tt.says {
				if !strings.Contains(errOut, s) {
					t.Errorf("stderr lacks %q:\n%s", s, errOut)
				}
			}
			if data, _ := state.OpenStore(c.vars[state.StateDirEnv]).Load(); len(data.Tuned) != 0 {
				t.Errorf("stored %+v after a failed tune", data.Tuned)
			}
			// No "Tuning …" header for a tune that never got to a load.
			if tt.name == "unknown model" || tt.name == "no server" {
				if strings.Contains(out+errOut, "Tuning ") {
					t.Errorf("the header was printed before the failure:\n%s%s", out, errOut)
				}
			}
		})
	}
}

// failingLoads returns the URL of a simulated 24 GB server whose loads fail
// as Ollama's do when the runner crashes.
func failingLoads(t *testing.T) string {
	g, _ := gpusim.LookupGPU("24GB")
	sim := gpusim.New(gpusim.Config{GPU: g})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/generate" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `{"error":"llama runner process has terminated: exit status 2"}`)
			return
		}
		sim.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// cancelAfter is stdout that cancels a context once it has seen s.
type cancelAfter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	s      string
	cancel func()
}

func (w *cancelAfter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.s) {
		w.cancel()
	}
	return len(p), nil
}

// TestTuneInterrupt: Ctrl-C between loads says what is known and stores
// nothing.
func TestTuneInterrupt(t *testing.T) {
	_, u := startSim(t, "24GB", nil)
	c := newCLI(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &cancelAfter{s: "load 2:", cancel: cancel}
	var errb bytes.Buffer
	e := &env{stdout: out, stderr: &errb, getenv: func(k string) string { return c.vars[k] }, loc: time.UTC}
	code := e.main(ctx, []string{"tune", fp16, "--host", u})
	t.Logf("exit %d:\n%s%s", code, out.buf.String(), errb.String())
	if code != 130 {
		t.Errorf("exit %d, want 130", code)
	}
	for _, s := range []string{"stopped after 2 loads; nothing stored", "Known so far: num_ctx"} {
		if !strings.Contains(errb.String(), s) {
			t.Errorf("stderr lacks %q:\n%s", s, errb.String())
		}
	}
	if data, _ := state.OpenStore(c.vars[state.StateDirEnv]).Load(); len(data.Tuned) != 0 {
		t.Errorf("stored %+v after Ctrl-C", data.Tuned)
	}
}

func TestParallelSlots(t *testing.T) {
	tests := []struct {
		env       string
		given     bool
		flag      int
		local     bool
		want      int
		wantError bool
	}{
		{"", false, 0, true, 1, false},
		{"4", false, 0, true, 4, false},
		{"4", false, 0, false, 1, false}, // a remote server's environment is not ours
		{"4", true, 2, true, 2, false},   // the flag wins
		{"", true, 3, false, 3, false},
		{"", true, 0, false, 0, true},
		{"lots", false, 0, true, 0, true},
		{"0", false, 0, true, 0, true},
	}
	for _, tt := range tests {
		e := &env{getenv: func(k string) string {
			if k == "OLLAMA_NUM_PARALLEL" {
				return tt.env
			}
			return ""
		}}
		got, err := tune.ParallelSlots(e.getenv, tt.given, tt.flag, tt.local)
		if got != tt.want || (err != nil) != tt.wantError {
			t.Errorf("parallelSlots(env %q, given %v, flag %d, local %v) = %d, %v; want %d", tt.env, tt.given, tt.flag, tt.local, got, err, tt.want)
		}
	}
}

func TestBenchCommand(t *testing.T) {
	_, u := startSim(t, "mac32", nil)
	c := newCLI(t, nil)
	code, out, errOut := c.run("bench", fp16, "--context", "8192", "--host", u)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	golden(t, "bench_mac32.txt", normalize(out))

	code, out, _ = c.run("bench", "--json", "--host", u, fp16, "--context", "32768")
	var res struct {
		Model           string  `json:"model"`
		Context         int     `json:"context"`
		Processor       string  `json:"processor"`
		TokensPerSecond float64 `json:"tokens_per_second"`
		EvalCount       int     `json:"eval_count"`
		FirstToken      float64 `json:"first_token_seconds"`
	}
	if err := json.Unmarshal([]byte(out), &res); code != 0 || err != nil {
		t.Fatalf("bench --json: exit %d, %v\n%s", code, err, out)
	}
	if res.Model != fp16 || res.Context != 32768 || !strings.Contains(res.Processor, "CPU/GPU") || res.TokensPerSecond <= 0 || res.EvalCount != tune.BenchTokens || res.FirstToken <= 0 {
		t.Errorf("bench --json = %+v", res)
	}

	code, _, errOut = c.run("bench", "nosuch", "--host", u)
	if code != 1 || !strings.Contains(errOut, "ollama pull nosuch") {
		t.Errorf("bench of an unknown model: exit %d, %s", code, errOut)
	}
	if code, _, _ = c.run("bench"); code != 2 {
		t.Errorf("bench without a model: exit %d, want 2", code)
	}
}

// TestTuneWith: `ctxfit tune --with` finds the context that leaves room
// for the autocomplete model and keeps it beside the tune alone.
func TestTuneWith(t *testing.T) {
	const ac = "qwen2.5-coder:7b"
	_, u := startSim(t, "24GB", nil)
	c := newCLI(t, nil)
	if code, out, errOut := c.run("tune", fp16, "--host", u); code != 0 {
		t.Fatalf("tune alone: exit %d: %s%s", code, out, errOut)
	}
	code, out, errOut := c.run("tune", fp16, "--with", ac+"=4096", "--host", u)
	if code != 0 {
		t.Fatalf("tune --with: exit %d: %s%s", code, out, errOut)
	}
	golden(t, "tune_with.txt", normalize(out))

	// The answer equals the exhaustive joint search's (tune's own tests
	// check that over every preset); here, that both answers are kept.
	data, err := state.OpenStore(c.vars[state.StateDirEnv]).Load()
	if err != nil {
		t.Fatal(err)
	}
	key := data.Tuned[0].Host
	alone, ok1 := data.TunedFor(key, fp16, "")
	joint, ok2 := data.TunedSet(key, []string{ac, fp16})
	if !ok1 || !ok2 || alone.Joint() || joint.Context >= alone.Context || joint.Companions[0] != (state.Companion{Model: ac, Context: 4096}) {
		t.Errorf("stored alone %+v (%v) and joint %+v (%v)", alone, ok1, joint, ok2)
	}
	code, out, _ = c.run("tune", "--list", "--host", u)
	if code != 0 || !strings.Contains(out, "alone") || !strings.Contains(out, ac+"=4096") {
		t.Errorf("tune --list: exit %d\n%s", code, out)
	}
}

func TestTuneWithErrors(t *testing.T) {
	_, u := startSim(t, "16GB", nil)
	c := newCLI(t, nil)
	tests := []struct {
		args []string
		code int
		says string
	}{
		{[]string{"tune", fp16, "--with", "qwen2.5:0.5b=big", "--host", u}, 2, "positive number of tokens"},
		{[]string{"tune", fp16, "--with", fp16, "--host", u}, 1, "cannot also run beside itself"},
		{[]string{"tune", fp16, "--with", "qwen2.5-coder:7b=4096", "--host", u}, 1, "do not stay on the GPU together"},
	}
	for _, tt := range tests {
		code, out, errOut := c.run(tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.says) {
			t.Errorf("%q: exit %d, want %d saying %q\n%s%s", tt.args, code, tt.code, tt.says, out, errOut)
		}
	}
}

// TestTuneInterruptTellsTheDaemon: a tune stopped with Ctrl-C ends its
// registration with the running ctxfit saying so, not "context canceled".
func TestTuneInterruptTellsTheDaemon(t *testing.T) {
	f := newAppFixture(t, 4096, 0)
	_, logs, stop := startCommand(t, f.vars, "run", "--headless")
	defer stop()
	waitAPI(t, f.stateDir, f.u)
	if err := f.sim.Load(llama, 131072, time.Hour); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &cancelAfter{s: "load 1:", cancel: cancel}
	var errb bytes.Buffer
	e := &env{stdout: out, stderr: &errb, getenv: func(k string) string { return f.vars[k] }, loc: time.UTC}
	if code := e.main(ctx, []string{"tune", llama}); code != 130 {
		t.Fatalf("exit %d, want 130:\n%s%s", code, out.buf.String(), errb.String())
	}
	waitFor(t, "the daemon's tune_failed", func() bool { return strings.Contains(logs.String(), "event=tune_failed") })
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "event=tune_failed") && (!strings.Contains(line, "stopped (Ctrl-C)") || strings.Contains(line, "context canceled")) {
			t.Errorf("tune_failed: %s", line)
		}
	}
}

// TestTuneNoClientAsks: with no client config asking for the model, the
// tune through a running ctxfit says so, not that every config asks for no
// more.
func TestTuneNoClientAsks(t *testing.T) {
	f := newAppFixture(t, 4096, 0)
	if err := os.Remove(f.cont); err != nil {
		t.Fatal(err)
	}
	_, _, stop := startCommand(t, f.vars, "run", "--headless")
	defer stop()
	waitAPI(t, f.stateDir, f.u)
	code, out, errOut := newCLI(t, f.vars).run("tune", "qwen2.5:0.5b")
	if code != 0 || !strings.Contains(out, "Stored; no client config ctxfit knows asks for this model") || strings.Contains(out, "already asks") {
		t.Errorf("exit %d:\n%s%s", code, out, errOut)
	}
}
