package main

import (
	"maps"
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
// shows the simulator's model and split, one Fix item per client that asks
// for more than fits (Continue and Zed here), the icon stays amber until
// every client is fixed, and each Fix rewrites the real config.
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
	zed := filepath.Join(h.vars["XDG_CONFIG_HOME"], "zed", "settings.json")
	os.MkdirAll(filepath.Dir(zed), 0o755)
	if err := os.WriteFile(zed, []byte(`{
  // Zed
  "language_models": {"ollama": {"api_url": "`+u+`",
    "available_models": [{"name": "`+llama+`", "display_name": "Llama", "max_tokens": 131072}]}}
}
`), 0o644); err != nil {
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
	// The simulated 32 GB Mac: the server line shows the GPU's share of its memory.
	it.WaitMenu("the header and an idle server", func(n *traytest.Node) bool {
		hd := n.Find("Ollama ")
		return hd != nil && hd.Label == "Ollama 0.17.4 at "+u+" · GPU may use 21.3 GiB of 32.0 GiB" && n.Find("No model loaded") != nil
	})
	it.WaitIcon(assets.OK)

	// Continue loads the model at its contextLength: it spills.
	if err := sim.Load(llama, 131072, gpusim.Forever); err != nil {
		t.Fatal(err)
	}
	const fixContinue, fixZed = "Fix Continue now: 131072 → 24576", "Fix Zed now: 131072 → 24576"
	m := it.WaitMenu("the spill", func(n *traytest.Node) bool {
		l := n.Find("⚠ " + llama + " · ")
		f, z := n.Find(fixContinue), n.Find(fixZed)
		// The tray sets the submenu's items one by one: wait for the last
		// of them too, or the menu may be read between two of them.
		return l != nil && strings.HasSuffix(l.Label, " · 56%/44% CPU/GPU · context 131072") && f != nil && f.Enabled && z != nil && z.Enabled &&
			n.Find("Tuned: context 24576 stays on the GPU") != nil
	})
	for _, want := range []string{"Tune context", fixContinue, fixZed, "Tuned: context 24576 stays on the GPU"} {
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
	if !strings.Contains(spill.Body, "Continue and Zed ask for more than the 24576 that stays on the GPU") || strings.Contains(spill.Body, h.cont) {
		t.Errorf("spill notification body %q", spill.Body)
	}

	// Fix Continue now writes the tuned value into the real config, keeps
	// its maxTokens (less than half of it), and changes nothing else.
	it.Click(fixContinue)
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
	it.WaitMenu("Continue fixed, Zed not", func(n *traytest.Node) bool {
		return n.Find("Fix Continue now") == nil && n.Find(fixZed) != nil
	})
	// Continue reloads the model at the fixed context: it fits, but Zed
	// still asks for more and will spill it again: amber, saying so.
	if err := sim.Load(llama, 24576, gpusim.Forever); err != nil {
		t.Fatal(err)
	}
	it.WaitMenu("the model back on the GPU", func(n *traytest.Node) bool {
		l := n.Find("⚠ " + llama + " · ")
		return l != nil && strings.HasSuffix(l.Label, " · 100% GPU · context 24576")
	})
	it.WaitIcon(assets.Warning)
	if tip := it.Tooltip(); tip != "ctxfit: "+llama+": Zed asks 131072; 24576 fits" {
		t.Errorf("tooltip %q", tip)
	}
	it.Click(fixZed)
	it.WaitMenu("every client fixed", func(n *traytest.Node) bool {
		f := n.Find("No client asks for more than fits")
		return f != nil && !f.Enabled && n.Find("Fix Zed now") == nil
	})
	it.WaitIcon(assets.OK)
	if b, _ := os.ReadFile(zed); !strings.Contains(string(b), `"max_tokens": 24576`) || !strings.Contains(string(b), "// Zed") {
		t.Errorf("Zed's settings after the fix:\n%s", b)
	}

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

// startTrayDaemon runs `ctxfit run` with its tray on a private bus over f,
// and returns the tray item once its control API answers.
func startTrayDaemon(t *testing.T, f *daemonFixture, args ...string) (*traytest.Item, *traytest.Process) {
	t.Helper()
	return startTrayDaemonEnv(t, f, f.vars, args...)
}

// startTrayDaemonEnv is startTrayDaemon with the daemon's own vars; unless
// they move its socket to a runtime directory, it waits for its API.
func startTrayDaemonEnv(t *testing.T, f *daemonFixture, vars map[string]string, args ...string) (*traytest.Item, *traytest.Process) {
	t.Helper()
	addr := traytest.StartBus(t)
	w := traytest.NewWatcher(t, traytest.Connect(t, addr))
	vars["DBUS_SESSION_BUS_ADDRESS"] = addr
	p := traytest.Start(t, mainCommand(vars, append([]string{"run", "--log-format", "json", "--tray-wait", "300ms"}, args...)...))
	it := w.Attach(t, p.Done())
	if vars["XDG_RUNTIME_DIR"] == "" {
		waitAPI(t, f.stateDir, f.u)
	}
	return it, p
}

// waitLong is waitFor for things that take a tune's time.
func waitLong(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(90 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// A CLI tune with the tray app running: the same as headless, through the
// API and by lease alone (the CLI looks for the socket in another runtime
// directory).
func TestTrayCLITune(t *testing.T) {
	for _, via := range []string{"api", "lease"} {
		t.Run(via, func(t *testing.T) {
			t.Parallel()
			f := newDaemonFixture(t)
			daemonVars := maps.Clone(f.vars)
			if via == "lease" {
				// The daemon listens in a runtime directory this CLI lacks.
				daemonVars["XDG_RUNTIME_DIR"] = shortTempDir(t)
			}
			it, p := startTrayDaemonEnv(t, f, daemonVars, "--auto-fix", "on")
			checkTune(t, f, f.vars, via+", tray running")
			// The tune put the model back as it found it, spilled at
			// 131072 until Continue reloads it with the fixed config:
			// the icon stays amber, and no second spill is told.
			it.WaitIcon(assets.Warning)
			if code, out := it.Quit(p); code != 0 {
				t.Errorf("after Quit ctxfit exited with %d:\n%s", code, out)
			}
		})
	}
}

// A tune from the tray's menu: its progress in the menu, no warning for
// the model, and with auto-fix on every client fixed at once after the
// result (see maxFixDelay).
func TestTrayTune(t *testing.T) {
	t.Parallel()
	f := newDaemonFixture(t)
	it, p := startTrayDaemon(t, f, "--auto-fix", "on")
	if err := f.sim.Load(llama, 131072, time.Hour); err != nil {
		t.Fatal(err)
	}
	it.WaitIcon(assets.Warning)
	it.Click("Tune context")
	it.WaitMenu("the tune's progress", func(n *traytest.Node) bool {
		return n.Find(llama+" · tuning: ") != nil && n.Find("Cancel tuning") != nil
	})
	var rep tuneReport
	waitLong(t, "the tune's end and both fixes", func() bool {
		rep = f.tuneReport(t, llama)
		return rep.ended && rep.fixes >= 2
	})
	if len(rep.warnings) > 0 {
		for _, w := range rep.warnings {
			t.Errorf("warning during the tray's tune: %s %s: %s", w.Event, w.Model, w.Msg)
		}
	}
	// Applied at the tune's end or at the state's change; the time is
	// logged below, and bounded here loosely enough for a loaded machine.
	if rep.fixedIn > maxFixDelay {
		t.Errorf("configs fixed %v after the tune's result, want within %v", rep.fixedIn, maxFixDelay)
	}
	t.Logf("tune via the tray: loads of %v each; events logged from its start: %s; both configs fixed %v after the tune stored its result",
		slowLoad, strings.Join(rep.events, " "), rep.fixedIn.Round(time.Millisecond))
	it.WaitIcon(assets.Warning) // the tune put the spilled model back as it found it (i14); Continue reloads it at the fixed context
	if code, out := it.Quit(p); code != 0 {
		t.Errorf("after Quit ctxfit exited with %d:\n%s", code, out)
	}
}

// With auto-fix off, after a tune the tray stays amber and says which
// client asks for more than fits, with a Fix item for each; the log says
// the same; Keep client configs fixed then fixes them all.
func TestTrayTuneAutoFixOff(t *testing.T) {
	t.Parallel()
	f := newDaemonFixture(t)
	it, p := startTrayDaemon(t, f, "--auto-fix", "off")
	if err := f.sim.Load(llama, 131072, time.Hour); err != nil {
		t.Fatal(err)
	}
	code, out := ctxfitProc(t, f.vars, "tune", llama)
	if code != 0 {
		t.Fatalf("tune: exit %d", code)
	}
	if !strings.Contains(out, "Continue asks "+llama+" for 131072 tokens; 25600 fits") || !strings.Contains(out, "ctxfit set auto-fix on") {
		t.Errorf("the CLI does not say who still asks for too much and what to do:\n%s", out)
	}
	m := it.WaitMenu("the Fix items after the tune", func(n *traytest.Node) bool {
		return n.Find("Fix Continue now: 131072 → 25600") != nil && n.Find("Fix Zed now: 131072 → 25600") != nil
	})
	it.WaitIcon(assets.Warning)
	// The tune put the model back spilled, as it found it (i14): the
	// tooltip names the spill, or the clients that ask for too much.
	if tip := it.Tooltip(); tip != "ctxfit: "+llama+": Continue asks 131072; 25600 fits, Zed asks 131072; 25600 fits" && tip != "ctxfit: "+llama+" (56%/44% CPU/GPU) spilled onto the CPU" {
		t.Errorf("tooltip %q\n%v", tip, m)
	}
	logged := 0
	for _, r := range f.records(t) {
		if r.Event == "config_warning" && strings.Contains(r.Msg, "asks "+llama+" for 131072 tokens; 25600 fits") {
			logged++
		}
	}
	if logged != 2 {
		t.Errorf("%d config warnings saying who asks for too much in the log, want 2 (Continue and Zed)", logged)
	}
	if !strings.Contains(f.read(f.cont), "contextLength: 131072") {
		t.Error("auto-fix is off, but Continue's config was changed")
	}
	it.Click("Keep client configs fixed")
	waitFor(t, "both configs fixed", func() bool {
		return strings.Contains(f.read(f.cont), "contextLength: 25600") && strings.Contains(f.read(f.zed), `"max_tokens": 25600`)
	})
	it.WaitMenu("nothing left to fix", func(n *traytest.Node) bool { return n.Find("No client asks for more than fits") != nil })
	it.WaitIcon(assets.Warning) // the tune put the spilled model back as it found it (i14); Continue reloads it at the fixed context
	if code, out := it.Quit(p); code != 0 {
		t.Errorf("after Quit ctxfit exited with %d:\n%s", code, out)
	}
}
