package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctxfit/ctxfit/state"
)

// syncBuffer is a bytes.Buffer safe for a command writing while a test reads.
type syncBuffer struct {
	mu   sync.Mutex
	b    bytes.Buffer
	stop func() // for a process's output: stops the process
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startCommand runs a long-lived command in the background; the returned
// function stops it and returns its exit status (it may be called again).
func startCommand(t *testing.T, vars map[string]string, args ...string) (*syncBuffer, *syncBuffer, func() int) {
	t.Helper()
	var out, errb syncBuffer
	e := &env{stdout: &out, stderr: &errb, getenv: func(k string) string { return vars[k] }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- e.main(ctx, args) }()
	var once sync.Once
	code := -1
	return &out, &errb, func() int {
		once.Do(func() {
			cancel()
			select {
			case code = <-done:
			case <-time.After(10 * time.Second):
				t.Error("command did not stop within 10 s of its context ending")
			}
		})
		return code
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRunHeadlessLogsEvents(t *testing.T) {
	sim, u := startSim(t, "mac32", nil)
	logs := t.TempDir()
	vars := map[string]string{"OLLAMA_HOST": u, state.StateDirEnv: t.TempDir(), "CTXFIT_LOG_DIR": logs}
	_, stderr, stop := startCommand(t, vars, "run", "--headless", "--log-format", "json")
	waitFor(t, "the reachable event", func() bool { return strings.Contains(stderr.String(), `"event":"reachable"`) })

	// A client asks for the whole trained context: the model spills.
	if err := sim.Load("llama3.1:8b-instruct-fp16", 131072, time.Hour); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the spill event", func() bool { return strings.Contains(stderr.String(), `"event":"spill_started"`) })
	// The simulator is not at Ollama's default address: the hint names it,
	// as the CLI's hints do.
	if want := "run `ctxfit tune llama3.1:8b-instruct-fp16 --host " + u + "` to find the largest context"; !strings.Contains(stderr.String(), want) {
		t.Errorf("the spill's hint lacks %q:\n%s", want, stderr)
	}
	// Another client asks for less: the context changes and the spill ends.
	if err := sim.Load("llama3.1:8b-instruct-fp16", 8192, time.Hour); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the spill to end", func() bool { return strings.Contains(stderr.String(), `"event":"spill_ended"`) })
	if code := stop(); code != 0 {
		t.Errorf("exit %d", code)
	}
	// The log file has what the terminal had.
	file, err := os.ReadFile(filepath.Join(logs, "ctxfit.log"))
	if err != nil || string(file) != stderr.String() {
		t.Errorf("log file (%v) differs from stderr:\n%s\n---\n%s", err, file, stderr)
	}
	logText := stderr.String()
	kinds := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(logText), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if k, ok := rec["event"].(string); ok {
			kinds[k] = true
		}
	}
	for _, k := range []string{"reachable", "loaded", "spill_started", "context_changed", "spill_ended"} {
		if !kinds[k] {
			t.Errorf("no %s event in the log:\n%s", k, logText)
		}
	}
	if !strings.Contains(logText, `"processor":"56%/44% CPU/GPU"`) {
		t.Errorf("the spill's split is not in the log:\n%s", logText)
	}
}

func TestRunBadFlags(t *testing.T) {
	c := newCLI(t, nil)
	for _, tt := range []struct {
		args []string
		says string
	}{
		{[]string{"--log-format", "xml"}, "use text or json"},
		{[]string{"--auto-fix=perhaps"}, "use on or off"},
		{[]string{"--auto-fix", "perhaps"}, `unexpected "perhaps"`},
		{[]string{"--host", "not a url"}, `"not a url" is not a host name`},
		{[]string{"extra"}, `unexpected "extra"`},
	} {
		if code, _, errOut := c.run(append([]string{"run", "--headless"}, tt.args...)...); code != 2 || !strings.Contains(errOut, tt.says) {
			t.Errorf("%q: exit %d %q; want 2 and %q", tt.args, code, errOut, tt.says)
		}
	}
}

func TestRunOncePerServer(t *testing.T) {
	_, u := startSim(t, "24GB", nil)
	vars := map[string]string{"OLLAMA_HOST": u, state.StateDirEnv: t.TempDir(), "CTXFIT_LOG_DIR": t.TempDir()}
	_, stderr, stop := startCommand(t, vars, "run", "--headless")
	defer stop()
	waitFor(t, "the first ctxfit", func() bool { return strings.Contains(stderr.String(), "event=reachable") })

	var out, errb syncBuffer
	e := &env{stdout: &out, stderr: &errb, getenv: func(k string) string { return vars[k] }}
	if code := e.main(context.Background(), []string{"run", "--headless"}); code != 1 {
		t.Fatalf("a second ctxfit run for the same server: exit %d, want 1", code)
	}
	if !strings.Contains(errb.String(), "ctxfit is already running for "+strings.TrimSuffix(u, "/")) || !strings.Contains(errb.String(), "Quit in its menu") {
		t.Errorf("message: %q", errb.String())
	}
	if code := stop(); code != 0 {
		t.Errorf("first ctxfit: exit %d", code)
	}
	// Once the first one has stopped, another may start.
	_, stderr2, stop2 := startCommand(t, vars, "run", "--headless")
	waitFor(t, "the next ctxfit", func() bool { return strings.Contains(stderr2.String(), "event=reachable") })
	stop2()
}

// badStderr fails every write, as stderr does in a Windows service or the
// GUI-subsystem tray.
type badStderr struct{}

func (badStderr) Write([]byte) (int, error) { return 0, os.ErrInvalid }

// TestLogWithoutStderr: the logger of `ctxfit run` writes every line to the
// log file although stderr fails each write.
func TestLogWithoutStderr(t *testing.T) {
	dir := t.TempDir()
	e := &env{stdout: &bytes.Buffer{}, stderr: badStderr{}, getenv: func(k string) string {
		if k == "CTXFIT_LOG_DIR" {
			return dir
		}
		return ""
	}}
	logger, closeLog, err := e.openLog("text")
	if err != nil {
		t.Fatal(err)
	}
	logger.Info("first")
	logger.Warn("second")
	closeLog()
	got, err := os.ReadFile(filepath.Join(dir, "ctxfit.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(got), "msg=first") || !strings.Contains(string(got), "msg=second") {
		t.Errorf("the log file lacks lines written while stderr failed:\n%s", got)
	}
}
