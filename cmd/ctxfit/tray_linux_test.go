package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ctxfit/ctxfit/assets"
	"github.com/ctxfit/ctxfit/internal/gpusim"
	"github.com/ctxfit/ctxfit/internal/ollamahost"
	"github.com/ctxfit/ctxfit/state"
	"github.com/ctxfit/ctxfit/tray/traytest"
)

// trayHome is the outside world of a `ctxfit run` started by a tray test:
// its own home, state, log and Continue folders, and a private session bus.
type trayHome struct {
	vars map[string]string
	cont string // Continue's config.yaml
	log  string // ctxfit's log file
}

func newTrayHome(t *testing.T, busAddr string) *trayHome {
	t.Helper()
	dir := t.TempDir()
	h := &trayHome{
		vars: map[string]string{
			"HOME":                     filepath.Join(dir, "home"),
			"XDG_CONFIG_HOME":          filepath.Join(dir, "config"),
			"XDG_CACHE_HOME":           filepath.Join(dir, "cache"),
			"XDG_DATA_HOME":            filepath.Join(dir, "data"),
			"XDG_STATE_HOME":           filepath.Join(dir, "xdgstate"),
			state.StateDirEnv:          filepath.Join(dir, "state"),
			"CTXFIT_LOG_DIR":           filepath.Join(dir, "logs"),
			"CONTINUE_GLOBAL_DIR":      filepath.Join(dir, "continue"),
			"DBUS_SESSION_BUS_ADDRESS": busAddr,
		},
		cont: filepath.Join(dir, "continue", "config.yaml"),
		log:  filepath.Join(dir, "logs", "ctxfit.log"),
	}
	for _, d := range h.vars {
		if filepath.IsAbs(d) {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	return h
}

// trayContinueConfig is a hand-edited Continue config.yaml: comments, a
// flow sequence, a second model ctxfit has no tuned value for. A fix may
// change the two numbers of llama's entry and nothing else.
func trayContinueConfig(u string) string {
	return `# Continue, edited by hand
name: Local assistant
version: 1.0.0
schema: v1
models:
  - name: Llama   # the chat model
    provider: ollama
    model: ` + llama + `
    apiBase: ` + u + `
    roles: [chat, edit]
    defaultCompletionOptions:
      contextLength: 131072 # all of it
      maxTokens: 4096
      temperature: 0.2
  - name: Small
    provider: ollama
    model: qwen2.5:0.5b
    apiBase: ` + u + `
    defaultCompletionOptions:
      contextLength: 32768
      maxTokens: 2048
context:
  - provider: code
`
}

// waitOutput waits up to within for p's output to contain want and
// returns the output; it fails the test, naming what, when it does not.
func waitOutput(t *testing.T, p *traytest.Process, what, want string, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		out := p.Output()
		if strings.Contains(out, want) {
			return out
		}
		select {
		case <-p.Done():
			t.Fatalf("ctxfit exited before it showed %s", what)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("ctxfit did not show %s within %s", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTrayRealApp runs `ctxfit run` with its tray over a private DBus
// session, against the GPU simulator, as a desktop would see it: the menu
// shows the simulator's model and split, the icon turns amber on a spill,
// and Fix Continue now rewrites the real config.
func TestTrayRealApp(t *testing.T) {
	t.Parallel()
	addr := traytest.StartBus(t)
	w := traytest.NewWatcher(t, traytest.Connect(t, addr))
	notes := traytest.NewNotifications(t, traytest.Connect(t, addr))
	sim, u := startSim(t, "mac32", nil)
	h := newTrayHome(t, addr)
	orig := trayContinueConfig(u)
	if err := os.WriteFile(h.cont, []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := state.OpenStore(h.vars[state.StateDirEnv]).Update(func(d *state.Data) error {
		d.PutTuned(state.Tuned{Host: ollamahost.Key(ollamahost.Parse(u)), Model: llama, Parallel: 1, Context: 24576, Step: 1024, MeasuredAt: time.Now()})
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	p := traytest.Start(t, mainCommand(h.vars, "run", "--host", u, "--tray-wait", "300ms"))
	it := w.Attach(t, p.Done())
	it.WaitMenu("the header and an idle server", func(n *traytest.Node) bool {
		hd := n.Find("Ollama ")
		return hd != nil && hd.Label == "Ollama 0.17.4 at "+u && n.Find("No model loaded") != nil
	})
	it.WaitIcon(assets.OK)

	// Continue loads the model at its contextLength: it spills.
	if err := sim.Load(llama, 131072, gpusim.Forever); err != nil {
		t.Fatal(err)
	}
	const fix = "Fix Continue now: 131072 → 24576"
	m := it.WaitMenu("the spill", func(n *traytest.Node) bool {
		l := n.Find("⚠ " + llama + " · ")
		f := n.Find(fix)
		return l != nil && strings.HasSuffix(l.Label, " · 56%/44% CPU/GPU · context 131072") && f != nil && f.Enabled
	})
	for _, want := range []string{"Tune context", fix, "Tuned: context 24576 stays on the GPU"} {
		if m.Find("⚠ "+llama).Find(want) == nil {
			t.Errorf("the model's submenu lacks %q:\n%v", want, m)
		}
	}
	it.WaitIcon(assets.Warning)
	if tip := it.Tooltip(); tip != "ctxfit: "+llama+" (56%/44% CPU/GPU) spilled onto the CPU" {
		t.Errorf("tooltip %q", tip)
	}
	it.WaitStatus("NeedsAttention")
	if l := m.Find("ctxfit "); l == nil || !strings.HasSuffix(l.Label, " · "+llama+" spilled onto the CPU") {
		t.Errorf("the first line is %v, want ctxfit, its version and the spill", l)
	}
	// The desktop shows a notification that stays, offering Fix now and
	// naming the client and the model, not the config's path.
	spill := notes.Wait(llama+" spilled onto the CPU", 0)
	if strings.Join(spill.Actions, "|") != "fix|Fix now" || spill.Urgency != 2 || spill.Timeout != 0 {
		t.Errorf("spill notification %+v: want the action fix|Fix now, critical, no timeout", spill)
	}
	if !strings.Contains(spill.Body, "Continue (") || strings.Contains(spill.Body, h.cont) {
		t.Errorf("spill notification body %q", spill.Body)
	}

	// Fix Continue now writes the tuned value into the real config, keeps
	// its maxTokens (less than half of it), and changes nothing else.
	it.Click(fix)
	want := strings.Replace(orig, "contextLength: 131072 #", "contextLength: 24576 #", 1)
	var got []byte
	for deadline := time.Now().Add(traytest.Patience); ; time.Sleep(50 * time.Millisecond) {
		got, _ = os.ReadFile(h.cont)
		if string(got) != orig || time.Now().After(deadline) {
			break
		}
	}
	if string(got) != want {
		t.Errorf("Continue's config after the fix:\n%s\nwant:\n%s", got, want)
	}
	it.WaitMenu("the fixed config", func(n *traytest.Node) bool {
		f := n.Find("Fix Continue now")
		return f != nil && f.Label == "Fix Continue now (Continue asks for 24576)" && !f.Enabled
	})

	// Continue reloads the model at the fixed context: the spill is over,
	// its notification is withdrawn, and the item no longer asks for
	// attention.
	if err := sim.Load(llama, 24576, gpusim.Forever); err != nil {
		t.Fatal(err)
	}
	notes.WaitClosed(spill.ID)
	it.WaitStatus("Active")
	it.WaitIcon(assets.OK)
	for _, n := range notes.Shown() {
		if strings.Contains(n.Summary, "fixed") {
			t.Errorf("the fix asked for in the menu was notified: %+v", n)
		}
	}

	code, out := it.Quit(p)
	if code != 0 || !strings.Contains(out, "ctxfit stopped") {
		t.Errorf("after Quit ctxfit exited with %d:\n%s", code, out)
	}
	if log, _ := os.ReadFile(h.log); !strings.Contains(string(log), "event=spill_started") {
		t.Errorf("the log file has no spill:\n%s", log)
	}
}

// TestTrayNoHost runs `ctxfit run` on a session bus where nothing shows
// tray icons: ctxfit says so once and carries on as the headless watcher.
func TestTrayNoHost(t *testing.T) {
	t.Parallel()
	addr := traytest.StartBus(t)
	sim, u := startSim(t, "mac32", nil)
	h := newTrayHome(t, addr)
	p := traytest.Start(t, mainCommand(h.vars, "run", "--host", u, "--tray-wait", "300ms"))

	const noTray = "no system tray here"
	// ctxfit waits --tray-wait for a tray host to appear.
	waitOutput(t, p, "the no-tray warning", noTray, traytest.Patience)
	// Watching goes on: a spill after the warning is logged.
	if err := sim.Load(llama, 131072, gpusim.Forever); err != nil {
		t.Fatal(err)
	}
	out := waitOutput(t, p, "the spill", "event=spill_started", traytest.Patience)
	if n := strings.Count(out, noTray); n != 1 {
		t.Errorf("the no-tray warning was logged %d times, want 1:\n%s", n, out)
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, out := p.Exit(traytest.Patience); code != 0 || !strings.Contains(out, "ctxfit stopped") {
		t.Errorf("after SIGTERM ctxfit exited with %d:\n%s", code, out)
	}
}
