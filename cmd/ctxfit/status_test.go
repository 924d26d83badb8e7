package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ctxfit/ctxfit/internal/gpusim"
	"github.com/ctxfit/ctxfit/internal/ollamahost"
	"github.com/ctxfit/ctxfit/ollama"
	"github.com/ctxfit/ctxfit/state"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// cli runs ctxfit commands in-process against a simulated server.
type cli struct {
	t    *testing.T
	vars map[string]string
}

func newCLI(t *testing.T, vars map[string]string) *cli {
	t.Helper()
	c := &cli{t: t, vars: map[string]string{state.StateDirEnv: t.TempDir(), "CTXFIT_LOG_DIR": "/LOGS"}}
	for k, v := range vars {
		c.vars[k] = v
	}
	return c
}

func (c *cli) run(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	e := &env{stdout: &out, stderr: &errb, getenv: func(k string) string { return c.vars[k] }, loc: time.UTC,
		ram: func() int64 { return 64 << 30 }} // the simulated servers run "here": a 64 GB machine
	code = e.main(context.Background(), args)
	return code, out.String(), errb.String()
}

// startSim starts a simulated server with gpu and loads each model at its
// context; it returns the server's URL.
func startSim(t *testing.T, gpu string, loads map[string]int) (*gpusim.Server, string) {
	t.Helper()
	g, ok := gpusim.LookupGPU(gpu)
	if !ok {
		t.Fatalf("no GPU preset %q", gpu)
	}
	sim := gpusim.New(gpusim.Config{GPU: g})
	u, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	for m, ctx := range loads {
		if err := sim.Load(m, ctx, gpusim.Forever); err != nil {
			t.Fatal(err)
		}
	}
	return sim, u
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", p, got, want)
	}
}

func TestStatus(t *testing.T) {

	tests := []struct {
		name  string
		gpu   string
		loads map[string]int
		tuned int // tuned context to record for llama3.1:8b-instruct-fp16, 0 none
	}{
		{"status_spilled.txt", "mac32", map[string]int{"llama3.1:8b-instruct-fp16": 131072}, 0},
		{"status_spilled_tuned.txt", "mac32", map[string]int{"llama3.1:8b-instruct-fp16": 131072}, 24576},
		{"status_gpu.txt", "24GB", map[string]int{"qwen2.5:0.5b": 32768, "llama3.1:8b-instruct-fp16": 2048}, 0},
		{"status_cpu_host.txt", "none", map[string]int{"qwen2.5:0.5b": 4096}, 0},
		{"status_idle.txt", "16GB", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, u := startSim(t, tt.gpu, tt.loads)
			c := newCLI(t, map[string]string{"OLLAMA_HOST": u})
			if tt.tuned > 0 {
				state.OpenStore(c.vars[state.StateDirEnv]).Update(func(d *state.Data) error {
					d.PutTuned(state.Tuned{Host: ollamahost.Key(ollamahost.Parse(u)), Model: "llama3.1:8b-instruct-fp16", Parallel: 1,
						Context: tt.tuned, Step: 1024, MeasuredAt: time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC)})
					return nil
				})
			}
			if tt.gpu == "none" {
				c.run("status", "--set-gpu", "absent") // a remote test host gives no local evidence
			}
			code, out, errOut := c.run("status")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			golden(t, tt.name, strings.ReplaceAll(out, u, "HOST"))
		})
	}
}

func TestStatusJSON(t *testing.T) {
	_, u := startSim(t, "mac32", map[string]int{"llama3.1:8b-instruct-fp16": 131072})
	c := newCLI(t, map[string]string{"OLLAMA_HOST": u})
	code, out, _ := c.run("status", "--json")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	for _, k := range []string{"host", "reachable", "version", "gpu", "models"} {
		if _, ok := got[k]; !ok {
			t.Errorf("key %q missing from %s", k, out)
		}
	}
	m := got["models"].([]any)[0].(map[string]any)
	for _, k := range []string{"model", "size", "size_vram", "processor", "context", "state", "spilled", "tuned", "tuned_parallel"} {
		if _, ok := m[k]; !ok {
			t.Errorf("model key %q missing", k)
		}
	}
	if m["tuned"] != 0.0 || m["spilled"] != true || m["state"] != "partial" || got["gpu"] != "present" {
		t.Errorf("model = %v, gpu = %v", m, got["gpu"])
	}

	// An idle server lists no models as [], not null.
	_, u2 := startSim(t, "16GB", nil)
	_, out, _ = newCLI(t, map[string]string{"OLLAMA_HOST": u2}).run("status", "--json")
	if !strings.Contains(out, `"models": []`) || !strings.Contains(out, `"tuned": []`) {
		t.Errorf("idle server: %s", out)
	}
}

func TestStatusBadServers(t *testing.T) {
	tests := []struct {
		name  string
		fault gpusim.Fault
		want  string
	}{
		{"down", gpusim.Fault{Down: true}, "cannot reach Ollama at HOST"},
		{"HTTP 500", gpusim.Fault{Status: 500}, "answered HTTP 500"},
		{"HTTP 404", gpusim.Fault{Status: 404}, "not an Ollama server"},
		{"malformed", gpusim.Fault{Malformed: true}, "is this an Ollama server"},
		{"truncated", gpusim.Fault{Truncated: true}, "is this an Ollama server"},
		{"huge", gpusim.Fault{Huge: ollama.MaxResponseBytes + 1000}, "larger than"},
		{"slow", gpusim.Fault{Delay: ollama.RequestTimeout + time.Second}, "did not answer in time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim, u := startSim(t, "24GB", nil)
			sim.SetFault(tt.fault)
			c := newCLI(t, map[string]string{"OLLAMA_HOST": u})
			code, out, errOut := c.run("status")
			errOut = strings.ReplaceAll(errOut, u, "HOST")
			if code != 1 || out != "" || !strings.Contains(errOut, tt.want) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and one line containing %q", code, out, errOut, tt.want)
			}
			code, out, _ = c.run("status", "--json")
			var got map[string]any
			if code != 1 || json.Unmarshal([]byte(out), &got) != nil || got["reachable"] != false || got["error"] == "" {
				t.Errorf("--json: exit %d, %s", code, out)
			}
		})
	}
	// No server at all, through --host.
	code, _, errOut := newCLI(t, nil).run("status", "--host", "127.0.0.1:1")
	if code != 1 || !strings.Contains(errOut, "cannot reach Ollama at http://127.0.0.1:1") {
		t.Errorf("closed port: exit %d, %q", code, errOut)
	}
}

func TestStatusSetGPU(t *testing.T) {
	_, u := startSim(t, "none", map[string]int{"qwen2.5:0.5b": 4096})
	c := newCLI(t, map[string]string{"OLLAMA_HOST": u})
	c.run("status", "--set-gpu", "present")
	_, out, _ := c.run("status", "--json")
	if !strings.Contains(out, `"gpu": "present"`) || !strings.Contains(out, `"spilled": true`) {
		t.Errorf("with --set-gpu present a 100%% CPU model is spilled:\n%s", out)
	}
	if code, _, errOut := c.run("status", "--set-gpu", "maybe"); code != 1 || !strings.Contains(errOut, "present, absent or auto") {
		t.Errorf("bad --set-gpu: exit %d %q", code, errOut)
	}
}

func TestUnknownCommandAndHelp(t *testing.T) {
	c := newCLI(t, nil)
	if code, _, errOut := c.run("frobnicate"); code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d, %q", code, errOut)
	}
	code, out, _ := c.run("help")
	if code != 0 {
		t.Errorf("help: exit %d", code)
	}
	for _, cmd := range commands() {
		if !strings.Contains(out, cmd.name) {
			t.Errorf("help lacks %q", cmd.name)
		}
	}
	if code, _, _ := c.run("status", "--no-such-flag"); code != 2 {
		t.Errorf("bad flag: exit %d, want 2", code)
	}
}

// TestTuneBenchBadServers: tune and bench against a server that fails name
// the server and say what to do, as status does. They used to print
// "ctxfit tune: list running models: Internal Server Error\n" (no server,
// a literal \n), and "the Ollama server stopped answering" for a server that
// had never answered.
func TestTuneBenchBadServers(t *testing.T) {
	tests := []struct {
		name  string
		fault gpusim.Fault
		want  []string
	}{
		{"HTTP 500", gpusim.Fault{Status: 500}, []string{"Ollama at HOST: ", "HTTP 500: simulated failure: internal server error. Ollama's log has more"}},
		{"malformed", gpusim.Fault{Malformed: true}, []string{"Ollama at HOST: ", "is this address an Ollama server?"}},
		{"huge", gpusim.Fault{Huge: ollama.MaxResponseBytes + 1000}, []string{"Ollama at HOST: ", "larger than 8 MiB; is this address an Ollama server?"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim, u := startSim(t, "24GB", map[string]int{"qwen2.5:0.5b": 4096})
			sim.SetFault(tt.fault)
			c := newCLI(t, map[string]string{"OLLAMA_HOST": u})
			for _, cmd := range []string{"tune", "bench"} {
				code, _, errOut := c.run(cmd, "qwen2.5:0.5b")
				errOut = strings.ReplaceAll(errOut, u, "HOST")
				for _, w := range tt.want {
					if code != 1 || !strings.Contains(errOut, w) || strings.Count(errOut, "Ollama server?") > 1 {
						t.Errorf("%s: exit %d, stderr %q; want exit 1 and %q", cmd, code, errOut, w)
					}
				}
			}
		})
	}
	c := newCLI(t, nil)
	for _, cmd := range []string{"tune", "bench"} {
		code, _, errOut := c.run(cmd, "qwen2.5:0.5b", "--host", "127.0.0.1:1")
		if code != 1 || !strings.Contains(errOut, "Ollama at http://127.0.0.1:1: ") || !strings.Contains(errOut, "nothing answers at this address (connection refused); start Ollama with `ollama serve`") ||
			strings.Contains(errOut, "stopped answering") {
			t.Errorf("%s on a closed port: exit %d, %q", cmd, code, errOut)
		}
	}
}

// TestStatusNoVersion: a server whose /api/version names no version (an
// old or odd Ollama, a proxy) was shown as "Ollama unknown at URL".
func TestStatusNoVersion(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, "null")
	}))
	defer srv.Close()
	code, out, errOut := newCLI(t, map[string]string{"OLLAMA_HOST": srv.URL}).run("status")
	if code != 0 || !strings.HasPrefix(out, "Ollama (version unknown) at "+srv.URL+", ") {
		t.Errorf("exit %d, stdout %q, stderr %q; want it to start with \"Ollama (version unknown) at %s, \"", code, out, errOut, srv.URL)
	}
}

// TestBenchRAMWarning: on a CPU-only machine bench says whether the model
// fits in RAM, as status does; it used to print only a rate, which for a
// model that swaps says little about how it will run.
func TestBenchRAMWarning(t *testing.T) {
	_, u := startSim(t, "none", nil)
	for _, tt := range []struct {
		ram  int64
		want string
	}{
		{20e9, "llama3.1:8b-instruct-fp16 needs 17 GB at context 4096, over the 17 GB of RAM left for models (of 20 GB): it will swap"},
		{64e9, ""},
	} {
		var out, errb bytes.Buffer
		e := &env{stdout: &out, stderr: &errb, getenv: func(k string) string { return map[string]string{"OLLAMA_HOST": u}[k] }, loc: time.UTC,
			totalRAM: func() int64 { return tt.ram }}
		code := e.main(context.Background(), []string{"bench", "llama3.1:8b-instruct-fp16", "--context", "4096"})
		switch {
		case code != 0:
			t.Errorf("RAM %d: exit %d, %s", tt.ram, code, errb.String())
		case tt.want == "" && strings.Contains(out.String(), "swap"):
			t.Errorf("RAM %d: a model that fits warned:\n%s", tt.ram, out.String())
		case tt.want != "" && !strings.Contains(out.String(), tt.want):
			t.Errorf("RAM %d: bench says\n%s\nwant %q", tt.ram, out.String(), tt.want)
		}
	}
}

// TestBenchRefusedForRAM: a load Ollama refuses for lack of RAM says what
// to do, not "Ollama's log" for a reason the message holds already.
func TestBenchRefusedForRAM(t *testing.T) {
	_, u := startSim(t, "none", nil)
	code, _, errOut := newCLI(t, map[string]string{"OLLAMA_HOST": u}).run("bench", "llama3.1:70b")
	if code != 1 || !strings.Contains(errOut, "Ollama at "+u+": load llama3.1:70b: model requires more system memory") ||
		!strings.Contains(errOut, "try a smaller --context, or a smaller model") || strings.Contains(errOut, "Ollama's log") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

// TestBenchHungServer: against a server that answers nothing, bench used
// to wait for --load-timeout (10 minutes) on its load, tune for
// --stall-timeout; they now say within seconds that the server does not
// answer.
func TestBenchHungServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer srv.Close()
	for _, cmd := range []string{"bench", "tune"} { // tune waited for --stall-timeout (1 minute)
		start := time.Now()
		code, _, errOut := newCLI(t, map[string]string{"OLLAMA_HOST": srv.URL}).run(cmd, "qwen2.5:0.5b")
		if took := time.Since(start); code != 1 || took > ollama.RequestTimeout+5*time.Second ||
			!strings.Contains(errOut, "Ollama at "+srv.URL+" did not answer within 5s") {
			t.Errorf("%s: exit %d after %v, stderr %q; want exit 1 within about %v, naming the server", cmd, code, took, errOut, ollama.RequestTimeout)
		}
	}
}
