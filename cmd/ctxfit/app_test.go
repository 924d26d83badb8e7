package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ctxfit/ctxfit/daemon"
	"github.com/ctxfit/ctxfit/internal/ollamahost"
	"github.com/ctxfit/ctxfit/state"
)

// appFixture is a simulated Ollama, a home with Continue's and Zed's
// configs pointing at it, and ctxfit's state.
type appFixture struct {
	t    *testing.T
	u    string
	vars map[string]string
	cont string // Continue's config.yaml
	zed  string // Zed's settings.json
	sim  interface {
		Load(string, int, time.Duration) error
	}
	stateDir string
}

const llama = "llama3.1:8b-instruct-fp16"

func newAppFixture(t *testing.T, continueCtx, zedCtx int) *appFixture {
	t.Helper()
	sim, u := startSim(t, "mac32", nil)
	return newAppFixtureOn(t, sim, u, continueCtx, zedCtx)
}

// newAppFixtureOn is newAppFixture with the simulator sim at u.
func newAppFixtureOn(t *testing.T, sim interface {
	Load(string, int, time.Duration) error
}, u string, continueCtx, zedCtx int) *appFixture {
	t.Helper()
	dir := t.TempDir()
	f := &appFixture{t: t, u: u, sim: sim, stateDir: filepath.Join(dir, "state")}
	f.vars = map[string]string{
		"HOME":                filepath.Join(dir, "home"),
		"CONTINUE_GLOBAL_DIR": filepath.Join(dir, "continue"),
		"OLLAMA_HOST":         u,
		state.StateDirEnv:     f.stateDir,
		"CTXFIT_LOG_DIR":      filepath.Join(dir, "logs"),
	}
	f.cont = filepath.Join(dir, "continue", "config.yaml")
	f.write(f.cont, continueConfig(u, continueCtx))
	if zedCtx > 0 {
		f.zed = filepath.Join(dir, "home", ".config", "zed", "settings.json")
		f.write(f.zed, `{
  "language_models": {
    "ollama": {
      "api_url": "`+u+`",
      "available_models": [{"name": "`+llama+`", "display_name": "Llama", "max_tokens": `+strconv.Itoa(zedCtx)+`}]
    }
  }
}
`)
	}
	return f
}

func continueConfig(u string, ctx int) string {
	return `# Continue
models:
  - name: Llama
    provider: ollama
    model: ` + llama + `
    apiBase: ` + u + `
    defaultCompletionOptions:
      contextLength: ` + strconv.Itoa(ctx) + `
      maxTokens: 4096
`
}

func (f *appFixture) write(p, s string) {
	f.t.Helper()
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *appFixture) read(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

func (f *appFixture) tune(ctx int) {
	state.OpenStore(f.stateDir).Update(func(d *state.Data) error {
		d.PutTuned(state.Tuned{Host: ollamahost.Key(ollamahost.Parse(f.u)), Model: llama, Parallel: 1, Context: ctx, Step: 1024, MeasuredAt: time.Now()})
		return nil
	})
}

func TestRunAutoFixKeepsContinueFixed(t *testing.T) {
	f := newAppFixture(t, 131072, 0)
	f.tune(24576)
	_, logs, stop := startCommand(t, f.vars, "run", "--headless", "--auto-fix", "on")
	defer stop()
	waitFor(t, "the fix at start", func() bool { return strings.Contains(f.read(f.cont), "contextLength: 24576") })
	if !strings.Contains(f.read(f.cont), "maxTokens: 4096") || !strings.Contains(f.read(f.cont), "# Continue") {
		t.Fatalf("config after the fix:\n%s", f.read(f.cont))
	}
	// Continue (or the user) writes the big value back: ctxfit fixes it again.
	f.write(f.cont, continueConfig(f.u, 131072))
	start := time.Now()
	waitFor(t, "the fix after an external edit", func() bool { return strings.Contains(f.read(f.cont), "contextLength: 24576") })
	t.Logf("fixed %v after the external edit", time.Since(start).Round(time.Millisecond))
	waitFor(t, "config_fixed in the log", func() bool { return strings.Count(logs.String(), "event=config_fixed") >= 2 })
	if code := stop(); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// The daemon's config warnings say when a client's context value is not a
// number, naming the file, the entry and what to do, with auto-fix on or
// off; auto-fix leaves the value as the user wrote it.
func TestRunWarnsContextNotANumber(t *testing.T) {
	for _, auto := range []string{"on", "off"} {
		t.Run("auto-fix "+auto, func(t *testing.T) {
			t.Parallel()
			f := newAppFixture(t, 131072, 0)
			f.tune(24576)
			bad := strings.Replace(continueConfig(f.u, 131072), "contextLength: 131072", "contextLength: notanumber", 1)
			f.write(f.cont, bad)
			_, logs, stop := startCommand(t, f.vars, "run", "--headless", "--auto-fix", auto)
			defer stop()
			want := "Continue: models[0] Llama (" + llama + ") in " + f.cont + `: defaultCompletionOptions.contextLength is the string \"notanumber\", not a whole number of tokens`
			waitFor(t, "the warning in the log", func() bool {
				return strings.Contains(logs.String(), want) && strings.Contains(logs.String(), "event=config_warning")
			})
			time.Sleep(300 * time.Millisecond)
			if got := f.read(f.cont); got != bad {
				t.Errorf("the config was changed:\n%s", got)
			}
			if n := strings.Count(logs.String(), "not a whole number"); n != 1 {
				t.Errorf("the warning was logged %d times, want once:\n%s", n, logs)
			}
		})
	}
}

func TestSpillWarningNamesTheClient(t *testing.T) {
	f := newAppFixture(t, 131072, 0)
	f.tune(24576)
	_, logs, stop := startCommand(t, f.vars, "run", "--headless")
	defer stop()
	waitFor(t, "the watcher", func() bool { return strings.Contains(logs.String(), "event=reachable") })
	// Continue loads the model at its contextLength: it spills.
	if err := f.sim.Load(llama, 131072, time.Hour); err != nil {
		t.Fatal(err)
	}
	// The keeper says it at start already; the spill's own warning must
	// say it again: one event, with its cause.
	want := "Continue asks " + llama + " for 131072 tokens; 24576 stays on the GPU"
	waitFor(t, "the spill's warning naming Continue", func() bool {
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, "event=spill_started") && strings.Contains(line, want) {
				return true
			}
		}
		return false
	})
	if n := strings.Count(logs.String(), "event=spill_started"); n != 1 {
		t.Errorf("%d spill_started events for one spill:\n%s", n, logs)
	}
	// Headless, on a server at another port than Ollama's: the fix is a
	// command with --host, not the tray's Fix now.
	fix := "`ctxfit fix all --host " + f.u + "` writes the tuned value"
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "event=spill_started") && (!strings.Contains(line, fix) || strings.Contains(line, "tray")) {
			t.Errorf("spill line %s\nwant it to name %s and no tray", line, fix)
		}
	}
	if !strings.Contains(f.read(f.cont), "contextLength: 131072") {
		t.Error("with auto-fix off the config was changed")
	}
}

func TestThrashNamesTheClients(t *testing.T) {
	f := newAppFixture(t, 131072, 8192)
	f.tune(24576)
	_, logs, stop := startCommand(t, f.vars, "run", "--headless")
	defer stop()
	waitFor(t, "the watcher", func() bool { return strings.Contains(logs.String(), "event=reachable") })
	// Continue and Zed take turns: every switch reloads the model.
	for i, ctx := range []int{131072, 8192, 131072} {
		if err := f.sim.Load(llama, ctx, time.Hour); err != nil {
			t.Fatal(err)
		}
		n := i + 1
		waitFor(t, "the load to be seen", func() bool {
			return strings.Count(logs.String(), "event=loaded")+strings.Count(logs.String(), "event=context_changed") >= n
		})
	}
	// The simulator listens on another port than Ollama's: the command
	// names it, as the CLI's hints do.
	want := "clients disagree: Continue asks for 131072, Zed asks for 8192; `ctxfit fix all --host " + f.u + "` gives them all 24576"
	waitFor(t, "the thrash warning naming both clients", func() bool { return strings.Contains(logs.String(), want) })
}

func TestDaemonTuneThenAutoFix(t *testing.T) {
	f := newAppFixture(t, 131072, 0)
	state.OpenStore(f.stateDir).Update(func(d *state.Data) error { d.Settings.AutoFix = true; return nil })
	e := &env{stdout: io.Discard, stderr: io.Discard, getenv: func(k string) string { return f.vars[k] }}
	store, _ := e.store()
	u := ollamahost.Parse(f.u)
	d := daemon.New(daemon.Config{Host: u, Client: e.client(u), Store: store, Getenv: e.getenv,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.Run(ctx)

	asks := func() int {
		c, _ := d.State().Client("Continue")
		for _, a := range c.Asks {
			return a.Context
		}
		return -1
	}
	waitFor(t, "Continue's asks in the daemon's state", func() bool { return asks() == 131072 })
	var progress []string
	if err := d.Tune(ctx, llama, func(s string) { progress = append(progress, s) }); err != nil {
		t.Fatal(err)
	}
	if len(progress) == 0 {
		t.Error("no progress lines")
	}
	data, _ := store.Load()
	tu, ok := data.TunedFor(ollamahost.Key(u), llama, "")
	if !ok || tu.Context != 25600 && tu.Context != 24576 {
		t.Fatalf("tuned = %+v %v; the simulator's mac32 fits %s up to 25856", tu, ok, llama)
	}
	waitFor(t, "auto-fix after the tune", func() bool { return strings.Contains(f.read(f.cont), "contextLength: "+strconv.Itoa(tu.Context)) })
	waitFor(t, "the daemon's state to show the fix", func() bool { return asks() == tu.Context })
	// The tray's switches are remembered.
	if err := d.SetNotifications(false); err != nil {
		t.Fatal(err)
	}
	if s, err := store.Load(); err != nil || !s.Settings.NotificationsOff || !d.State().Settings.NotificationsOff {
		t.Errorf("after SetNotifications(false): stored %+v, %v; daemon %+v", s.Settings, err, d.State().Settings)
	}
}
