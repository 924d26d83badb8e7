package main

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tailscale/hujson"

	"github.com/ctxfit/ctxfit/internal/ollamahost"
	"github.com/ctxfit/ctxfit/internal/ollamatest"
	"github.com/ctxfit/ctxfit/ollama"
	"github.com/ctxfit/ctxfit/state"
)

// e2e is ctxfit's outside world for one end-to-end test: its own state,
// home and Continue directories, and OLLAMA_HOST pointing at a test server.
type e2e struct {
	t    *testing.T
	vars map[string]string
	ram  int64 // the free memory a tune sees here; 0: this machine's
	// timeout bounds each command; 0 means 2 minutes.
	timeout time.Duration
}

func newE2E(t *testing.T, host string) *e2e {
	dir := t.TempDir()
	vars := map[string]string{
		"HOME":                filepath.Join(dir, "home"),
		"USERPROFILE":         filepath.Join(dir, "home"),
		"XDG_CONFIG_HOME":     filepath.Join(dir, "config"),
		"XDG_CACHE_HOME":      filepath.Join(dir, "cache"),
		state.StateDirEnv:     filepath.Join(dir, "state"),
		"CTXFIT_LOG_DIR":      filepath.Join(dir, "logs"),
		"CONTINUE_GLOBAL_DIR": filepath.Join(dir, "continue"),
	}
	if host != "" {
		vars["OLLAMA_HOST"] = host
	}
	for _, d := range vars {
		if filepath.IsAbs(d) {
			os.MkdirAll(d, 0o755)
		}
	}
	return &e2e{t: t, vars: vars}
}

// ctxfit runs ctxfit in-process and returns its exit status and output.
func (x *e2e) ctxfit(args ...string) (code int, stdout, stderr string) {
	x.t.Helper()
	timeout := x.timeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out, errOut bytes.Buffer
	e := &env{stdout: &out, stderr: &errOut, getenv: x.getenv}
	if x.ram > 0 {
		e.ram = func() int64 { return x.ram }
	}
	code = e.main(ctx, args)
	x.t.Logf("ctxfit %s → exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out.String(), errOut.String())
	return code, out.String(), errOut.String()
}

func (x *e2e) getenv(k string) string { return x.vars[k] }

func (x *e2e) store() *state.Store { return state.OpenStore(x.vars[state.StateDirEnv]) }

// TestOllamaE2E runs ctxfit's commands against a real Ollama server (built
// by scripts/ollama-for-tests) serving the tiny model on the CPU. The
// subtests share the server and run in order.
func TestOllamaE2E(t *testing.T) {
	srv := ollamatest.Start(t)
	const model = "ctxfit-tiny"
	digest := srv.CreateTinyModel(t, model)
	// The Ollama built for tests has no GPU backend, so a model is 100% CPU;
	// that is a spill only where this machine has a GPU.
	gpu := ollama.DetectLocalGPU()

	t.Run("status", func(t *testing.T) {
		srv.UnloadAll(t)
		x := newE2E(t, srv.Host())
		var prev statusModelJSON
		for _, numCtx := range []int{2048, 8192} {
			ps := srv.Load(t, model, numCtx)
			code, out, _ := x.ctxfit("status")
			if code != 0 {
				t.Errorf("status: exit %d, want 0", code)
			}
			for _, want := range []string{model, "100% CPU", strconv.Itoa(numCtx)} {
				if !strings.Contains(out, want) {
					t.Errorf("status at num_ctx %d does not show %q", numCtx, want)
				}
			}

			code, out, _ = x.ctxfit("status", "--json")
			var snap statusJSON
			if err := json.Unmarshal([]byte(out), &snap); code != 0 || err != nil {
				t.Fatalf("status --json: exit %d, %v", code, err)
			}
			if !snap.Reachable || snap.GPU != string(gpu) || len(snap.Models) != 1 {
				t.Fatalf("status --json: reachable %v, gpu %s, %d models; want reachable, gpu %s, 1 model", snap.Reachable, snap.GPU, len(snap.Models), gpu)
			}
			m := snap.Models[0]
			if !ollama.SameModel(m.Model, model) || m.Processor != "100% CPU" || m.State != string(ollama.StateCPU) ||
				m.Context != numCtx || m.Size != ps.Size || m.SizeVRAM != 0 || m.Spilled != (gpu == ollama.GPUPresent) {
				t.Errorf("status --json model = %+v; want %s at context %d, size %d, 100%% CPU, spilled only with a GPU", m, model, numCtx, ps.Size)
			}
			if prev.Size != 0 && m.Size <= prev.Size {
				t.Errorf("size at context %d (%d) is not more than at %d (%d)", numCtx, m.Size, prev.Context, prev.Size)
			}
			prev = m
		}
	})

	t.Run("tune on a CPU-only server", func(t *testing.T) {
		srv.UnloadAll(t)
		x := newE2E(t, srv.Host())
		// Little free memory: the first load must be at the smallest
		// context, and none above it.
		x.ram = 8 << 20
		code, out, errOut := x.ctxfit("tune", model)
		for _, m := range regexp.MustCompile(`num_ctx ([0-9]+)`).FindAllStringSubmatch(out, -1) {
			if n, _ := strconv.Atoi(m[1]); n > 1024 {
				t.Errorf("loaded at num_ctx %d on a server not known to have a GPU, with 8 MB free; want at most 1024", n)
			}
		}
		if !strings.Contains(out, "load 1: num_ctx 1024") {
			t.Errorf("the first load was not at num_ctx 1024:\n%s", out)
		}
		if !strings.Contains(errOut, "unloaded, as it was before the tune") {
			t.Errorf("tune does not say it unloaded the model:\n%s", errOut)
		}
		if ps, err := srv.Client().ListRunning(context.Background()); err != nil || len(ps.Models) != 0 {
			t.Errorf("after the tune /api/ps lists %+v (%v), want nothing", ps, err)
		}
		if code != 1 {
			t.Errorf("tune: exit %d, want 1 (nothing to tune without a GPU)", code)
		}
		all := strings.ToLower(out + errOut)
		if !strings.Contains(all, "cpu") || !strings.Contains(all, "gpu") {
			t.Errorf("tune does not say that the server runs models on the CPU only")
		}
		data, err := x.store().Load()
		if err != nil {
			t.Fatal(err)
		}
		if tuned, ok := data.TunedFor(ollamahost.Key(srv.URL()), model, digest); ok {
			t.Errorf("tune on a CPU-only server stored %+v", tuned)
		}
	})

	t.Run("tune on a server known to be CPU-only", func(t *testing.T) {
		srv.UnloadAll(t)
		srv.Load(t, model, 2048) // the user's model, as they run it
		x := newE2E(t, srv.Host())
		if code, _, _ := x.ctxfit("status", "--set-gpu", "absent"); code != 0 {
			t.Fatalf("status --set-gpu absent: exit %d", code)
		}
		code, out, errOut := x.ctxfit("tune", model, "--json")
		if code != 1 || !strings.Contains(out, `"error":`) || strings.Contains(out+errOut, "load 1") {
			t.Errorf("tune: exit %d, stdout %s; want 1 and a JSON error before any load", code, out)
		}
		if !strings.Contains(out, "has no GPU") || !strings.Contains(out, "bench "+model) {
			t.Errorf("the refusal does not say why and what to do instead:\n%s%s", out, errOut)
		}
		ps, err := srv.Client().ListRunning(context.Background())
		if err != nil || len(ps.Models) != 1 || ps.Models[0].ContextLength != 2048 {
			t.Errorf("after the refusal /api/ps lists %+v (%v), want the model untouched at 2048", ps, err)
		}
	})

	t.Run("tune beside a running daemon", func(t *testing.T) {
		for _, via := range []string{"api", "lease"} {
			t.Run(via, func(t *testing.T) {
				srv.UnloadAll(t)
				x := newE2E(t, srv.Host())
				// With a GPU claimed, every load on this CPU-only server is a
				// spill: the tuner's probes are exactly the loads a daemon
				// must not warn about.
				if code, _, _ := x.ctxfit("status", "--set-gpu", "present"); code != 0 {
					t.Fatal("status --set-gpu present failed")
				}
				srv.Load(t, model, 4096)
				daemonVars := maps.Clone(x.vars)
				if via == "lease" {
					daemonVars["XDG_RUNTIME_DIR"] = shortTempDir(t) // its API is where this CLI does not look
				}
				out := startDaemonProc(t, daemonVars)
				if via == "api" {
					waitAPI(t, x.vars[state.StateDirEnv], srv.Host())
				}
				logPath := filepath.Join(x.vars["CTXFIT_LOG_DIR"], "ctxfit.log")
				waitFor(t, "the true spill", func() bool { return strings.Contains(out.String(), `"event":"spill_started"`) })
				start := time.Now()
				code, _, _ := x.ctxfit("tune", model)
				if code != 1 {
					t.Errorf("tune: exit %d, want 1 (it fits at no context: the server has no GPU)", code)
				}
				took := time.Since(start)
				var events []string
				ended := false
				waitFor(t, "the tune's end in the log", func() bool {
					events, ended = nil, false
					started := false
					for _, r := range readRecords(t, logPath) {
						started = started || r.Event == "tune_started"
						if !started || r.Event == "" {
							continue
						}
						if r.Event == "tune_failed" {
							ended = true
						}
						if !ended && r.Level == "WARN" && ollama.SameModel(r.Model, model) {
							t.Errorf("warning during the tune: %s: %s", r.Event, r.Msg)
						}
						events = append(events, r.Event)
					}
					return ended
				})
				t.Logf("tune via %s against the real server: %v; events logged from its start: %s", via, took.Round(10*time.Millisecond), strings.Join(events, " "))
				if data, _ := x.store().Load(); len(data.Leases) != 0 {
					t.Errorf("a lease outlived the tune: %+v", data.Leases)
				}
				out.stop()
			})
		}
	})

	t.Run("bench", func(t *testing.T) {
		x := newE2E(t, srv.Host())
		code, out, _ := x.ctxfit("bench", model, "--context", "2048")
		if code != 0 {
			t.Fatalf("bench: exit %d, want 0", code)
		}
		m := regexp.MustCompile(`([0-9]+(?:\.[0-9]+)?)\s*tokens/s`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("bench does not report tokens/s")
		}
		if v, _ := strconv.ParseFloat(m[1], 64); v <= 0 {
			t.Errorf("bench reports %s tokens/s, want more than 0", m[1])
		}
		if !strings.Contains(strings.ToLower(out), "first token") {
			t.Errorf("bench does not report the time to first token")
		}
	})

	t.Run("fix continue", func(t *testing.T) {
		x := newE2E(t, srv.Host())
		const tuned = 6144
		err := x.store().Update(func(d *state.Data) error {
			d.PutTuned(state.Tuned{
				Host: ollamahost.Key(srv.URL()), Model: model + ":latest", Digest: digest, Parallel: 1,
				Context: tuned, Step: 1024, Loads: 3, TrainedContext: ollamatest.TinyContextLength, MeasuredAt: time.Now(),
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		// Continue names the model without its tag and points at the
		// server as "localhost": both must still match.
		config := filepath.Join(x.vars["CONTINUE_GLOBAL_DIR"], "config.json")
		orig := []byte(`{
  // The tiny model, asking for far more context than was tuned.
  "models": [
    {
      "title": "Tiny",
      "provider": "ollama",
      "model": "` + model + `",
      "apiBase": "http://localhost:` + srv.URL().Port() + `",
      "contextLength": 32768,
      "completionOptions": { "maxTokens": 32768 },
    },
    { "title": "GPT", "provider": "openai", "model": "gpt-4o", "contextLength": 128000 },
  ],
}
`)
		if err := os.WriteFile(config, orig, 0o644); err != nil {
			t.Fatal(err)
		}

		code, out, _ := x.ctxfit("fix", "continue")
		if code != 0 {
			t.Fatalf("fix continue: exit %d, want 0", code)
		}
		for _, want := range []string{"Tiny", "32768", strconv.Itoa(tuned)} {
			if !strings.Contains(out, want) {
				t.Errorf("fix continue does not mention %q", want)
			}
		}
		fixed, err := os.ReadFile(config)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(fixed, []byte("// The tiny model")) {
			t.Error("fix continue dropped the file's comment")
		}
		var cfg struct {
			Models []struct {
				Title             string
				ContextLength     int
				CompletionOptions struct{ MaxTokens int }
			}
		}
		std, err := hujson.Standardize(bytes.Clone(fixed)) // Standardize works in place
		if err != nil {
			t.Fatalf("fixed config does not parse: %v\n%s", err, fixed)
		}
		if err := json.Unmarshal(std, &cfg); err != nil || len(cfg.Models) != 2 {
			t.Fatalf("fixed config: %v, %d models\n%s", err, len(cfg.Models), fixed)
		}
		// maxTokens 32768 is more than half of 6144: it becomes 3072.
		if m := cfg.Models[0]; m.ContextLength != tuned || m.CompletionOptions.MaxTokens != tuned/2 {
			t.Errorf("Tiny: contextLength %d, maxTokens %d; want %d, %d", m.ContextLength, m.CompletionOptions.MaxTokens, tuned, tuned/2)
		}
		if m := cfg.Models[1]; m.ContextLength != 128000 {
			t.Errorf("the OpenAI model's contextLength changed to %d", m.ContextLength)
		}

		if code, _, _ := x.ctxfit("fix", "continue"); code != 0 {
			t.Errorf("second fix continue: exit %d, want 0 (nothing to change)", code)
		}
		if again, _ := os.ReadFile(config); !bytes.Equal(again, fixed) {
			t.Errorf("second fix continue changed the file:\n%s", again)
		}

		if code, _, _ := x.ctxfit("undo", "continue"); code != 0 {
			t.Errorf("undo continue: exit %d, want 0", code)
		}
		if undone, _ := os.ReadFile(config); !bytes.Equal(undone, orig) {
			t.Errorf("undo continue did not restore the original file:\n%s", undone)
		}
	})
}

// TestDemoE2E starts `ctxfit demo` and asks its simulated server for
// `ctxfit status`: the demo's model is split between CPU and GPU.
func TestDemoE2E(t *testing.T) {
	x := newE2E(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	var out lockedBuffer
	done := make(chan int, 1)
	go func() { done <- (&env{stdout: &out, stderr: &out, getenv: x.getenv}).main(ctx, []string{"demo"}) }()
	defer func() {
		cancel()
		select {
		case code := <-done:
			t.Logf("ctxfit demo → exit %d\n%s", code, out.String())
		case <-time.After(10 * time.Second):
			t.Errorf("ctxfit demo did not stop within 10 s of its context ending\n%s", out.String())
		}
	}()

	addr := regexp.MustCompile(`(?:https?://)?(?:127\.0\.0\.1|localhost|\[::1\]):[0-9]+`)
	var host string
	deadline := time.Now().Add(20 * time.Second)
	for host == "" {
		select {
		case code := <-done:
			done <- code
			t.Fatalf("ctxfit demo exited (%d) before printing its server's address:\n%s", code, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("ctxfit demo printed no server address within 20 s:\n%s", out.String())
		}
		host = addr.FindString(out.String())
	}

	// The demo goes on reading x's environment: ask with a copy.
	y := &e2e{t: t, vars: maps.Clone(x.vars)}
	y.vars["OLLAMA_HOST"] = host
	code, status, _ := y.ctxfit("status")
	if code != 0 {
		t.Errorf("status against the demo: exit %d, want 0", code)
	}
	if !strings.Contains(status, "CPU/GPU") {
		t.Errorf("status against the demo shows no model split between CPU and GPU")
	}

	// The demo's Continue config asks for the whole context; the tune and
	// the fix it prints, run as printed, fix it.
	config := regexp.MustCompile(`Continue's config \((\S+)\)`).FindStringSubmatch(out.String())
	if config == nil {
		t.Fatalf("the demo names no Continue config:\n%s", out.String())
	}
	for _, cmd := range []string{" tune ", " fix continue "} {
		line := regexp.MustCompile(`(?m)^  (.*` + cmd + `.*)$`).FindStringSubmatch(out.String())
		if line == nil {
			t.Fatalf("the demo prints no%scommand:\n%s", cmd, out.String())
		}
		words := shellWords(t, line[1])
		z := &e2e{t: t, vars: maps.Clone(x.vars)}
		delete(z.vars, "CONTINUE_GLOBAL_DIR")
		for len(words) > 0 && strings.Contains(words[0], "=") {
			k, v, _ := strings.Cut(words[0], "=")
			z.vars[k] = v
			words = words[1:]
		}
		if code, _, _ := z.ctxfit(words[1:]...); code != 0 {
			t.Fatalf("%s, as printed: exit %d", line[1], code)
		}
	}
	b, err := os.ReadFile(config[1])
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	if m := regexp.MustCompile(`contextLength: ([0-9]+)`).FindSubmatch(b); m != nil {
		n, _ = strconv.Atoi(string(m[1]))
	}
	if n <= 0 || n >= demoContext {
		t.Errorf("after the printed tune and fix, Continue's config reads:\n%s\nwant the tuned value", b)
	}
}

// lockedBuffer is a bytes.Buffer that a running command and the test can
// use at the same time.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestDemoHintsUseProgName starts both demos as an installed `ctxfit`
// would be: every command they suggest must use that name, not `go run`.
func TestDemoHintsUseProgName(t *testing.T) {
	for _, args := range [][]string{
		{"demo", "--headless", "--listen", "127.0.0.1:0"},
		{"demo", "--together", "--headless", "--listen", "127.0.0.1:0"},
	} {
		t.Run(strings.Join(args[:len(args)-3], " "), func(t *testing.T) {
			x := newE2E(t, "")
			ctx, cancel := context.WithCancel(context.Background())
			var out lockedBuffer
			done := make(chan int, 1)
			go func() {
				done <- (&env{stdout: &out, stderr: &out, getenv: x.getenv, prog: "ctxfit"}).main(ctx, args)
			}()
			deadline := time.Now().Add(20 * time.Second)
			for !strings.Contains(out.String(), "Press Ctrl-C to stop.") && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Errorf("ctxfit %s did not stop within 10 s of its context ending", strings.Join(args, " "))
			}
			s := out.String()
			if !strings.Contains(s, "Press Ctrl-C to stop.") {
				t.Fatalf("ctxfit %s printed no instructions within 20 s:\n%s", strings.Join(args, " "), s)
			}
			if strings.Contains(s, "go run") {
				t.Errorf("started as `ctxfit`, the demo suggests `go run` commands:\n%s", s)
			}
		})
	}
}
