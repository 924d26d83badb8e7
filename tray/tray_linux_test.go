package tray

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/ctxfit/ctxfit/assets"
	"github.com/ctxfit/ctxfit/internal/gpusim"
	"github.com/ctxfit/ctxfit/internal/ollamahost"
	ctxstate "github.com/ctxfit/ctxfit/state"
	"github.com/ctxfit/ctxfit/tray/traytest"
)

// trayProc is the tray running a scenario in a child process (see
// child_linux_test.go), seen from the bus once attached.
type trayProc struct {
	*traytest.Item
	*traytest.Process
	t     *testing.T
	dir   string
	calls string // the child's call log
}

// startChild runs scenario in a child process on the bus at addr.
func startChild(t *testing.T, addr, scenario, dir string, env ...string) *trayProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+scenario, dirEnv+"="+dir, "DBUS_SESSION_BUS_ADDRESS="+addr)
	cmd.Env = append(cmd.Env, env...)
	return &trayProc{Process: traytest.Start(t, cmd), t: t, dir: dir, calls: filepath.Join(dir, "calls")}
}

// attach waits for the child's item to register with w.
func (p *trayProc) attach(w *traytest.Watcher) {
	p.t.Helper()
	p.Item = w.Attach(p.t, p.Done())
}

// quit clicks Quit and returns the tray's exit code and output.
func (p *trayProc) quit() (int, string) {
	p.t.Helper()
	return p.Item.Quit(p.Process)
}

// calls returns the lines of the child's call log.
func (p *trayProc) callLines() []string {
	data, _ := os.ReadFile(p.calls)
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

func (p *trayProc) count(line string) int {
	n := 0
	for _, l := range p.callLines() {
		if l == line {
			n++
		}
	}
	return n
}

// waitCalls waits until the call log holds line want times.
func (p *trayProc) waitCalls(line string, want int) {
	p.t.Helper()
	deadline := time.Now().Add(traytest.Patience)
	for time.Now().Before(deadline) {
		if p.count(line) >= want {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := p.count(line); got != want {
		p.t.Fatalf("%q was called %d times, want %d; calls:\n%s", line, got, want, strings.Join(p.callLines(), "\n"))
	}
}

const (
	simModel = "qwen2.5-coder:7b"
	// On the simulator's 8 GB GPU the model is 100% GPU at 8192 and spills
	// at 32768; 16384 is the tuned value.
	fitCtx, spillCtx, tunedCtx = 8192, 32768, 16384
)

// TestTrayOverWatcher runs the tray over a real watcher of the GPU
// simulator, as a desktop would see it over DBus.
func TestTrayOverWatcher(t *testing.T) {
	addr := traytest.StartBus(t)
	w := traytest.NewWatcher(t, traytest.Connect(t, addr))

	gpu, _ := gpusim.LookupGPU("8GB")
	sim := gpusim.New(gpusim.Config{GPU: gpu})
	simURL, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	if err := sim.Load(simModel, fitCtx, gpusim.Forever); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	u := ollamahost.Parse(simURL)
	if err := ctxstate.OpenStore(dir).Update(func(d *ctxstate.Data) error {
		d.PutTuned(ctxstate.Tuned{Host: ollamahost.Key(u), Model: simModel, Parallel: 1, Context: tunedCtx, Step: 1024, MeasuredAt: time.Now()})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	continuePath := filepath.Join(dir, "continue", "config.json")
	os.MkdirAll(filepath.Dir(continuePath), 0o755)
	os.WriteFile(continuePath, []byte(`{"models": [{"title": "Qwen coder", "provider": "ollama", "model": "`+simModel+`", "contextLength": 32768}]}`), 0o644)
	os.WriteFile(filepath.Join(dir, "ctxfit.log"), nil, 0o644)

	p := startChild(t, addr, "watcher", dir, ollamaEnv+"="+simURL)
	p.attach(w)

	// The menu shows the simulator's model and its split as `ollama ps`.
	line := "⚠ " + simModel + " · 6.2 GB · 100% GPU · context 8192" // Continue asks for more than fits
	m := p.WaitMenu("the loaded model", func(n *traytest.Node) bool {
		l := n.Find(line)
		return l != nil && l.Label == line && len(l.Children) > 0
	})
	if h := m.Find("Ollama "); h == nil || h.Label != "Ollama 0.17.4 at "+simURL {
		t.Errorf("header = %v, want Ollama 0.17.4 at %s", h, simURL)
	}
	// Continue asks for more than the tuned value: it will spill the model
	// at its next request, so the fix is offered already and the icon is
	// amber.
	// The tray sets the submenu's items one by one: wait for the last of
	// them too, or the menu may be read between two of them.
	m = p.WaitMenu("Continue's Fix item", func(n *traytest.Node) bool {
		return n.Find(line) != nil && n.Find(line).Find("Fix Continue now: 32768 → 16384") != nil &&
			n.Find(line).Find("Tuned: context 16384 stays on the GPU") != nil
	})
	for _, want := range []string{"Tune context", "Fix Continue now: 32768 → 16384", "Tuned: context 16384 stays on the GPU"} {
		if m.Find(line).Find(want) == nil {
			t.Errorf("the model's submenu lacks %q:\n%v", want, m)
		}
	}
	p.WaitIcon(assets.Warning)
	if tip := p.Tooltip(); tip != "ctxfit: "+simModel+": Continue asks 32768; 16384 fits" {
		t.Errorf("tooltip %q", tip)
	}
	p.WaitStatus("Active")
	// The host gets the icon drawn at every size, to pick the nearest to
	// its panel's.
	var sizes []int
	for _, px := range p.Pixmaps() {
		want, w, h, err := traytest.Pixmap(assets.PNGAt(assets.Warning, int(px.W)))
		if err != nil || w != px.W || h != px.H || !bytes.Equal(px.Pix, want) {
			t.Errorf("the %d×%d pixmap is not the warning icon drawn at that size", px.W, px.H)
		}
		sizes = append(sizes, int(px.W))
	}
	if !slices.Equal(sizes, assets.Sizes()) {
		t.Errorf("IconPixmap sizes %v, want %v", sizes, assets.Sizes())
	}

	// A client asks for 32768: the model spills, the icon turns amber, and
	// one notification tells it, however many polls see it.
	if err := sim.Load(simModel, spillCtx, gpusim.Forever); err != nil {
		t.Fatal(err)
	}
	p.WaitIcon(assets.Warning)
	p.WaitStatus("NeedsAttention") // desktops raise the item during a spill
	m = p.WaitMenu("the spill", func(n *traytest.Node) bool {
		l := n.Find("⚠ " + simModel)
		return l != nil && strings.Contains(l.Label, "23%/77% CPU/GPU · context 32768") && n.Find("Fix Continue now: 32768 → 16384") != nil
	})
	if tip := p.Tooltip(); !strings.Contains(tip, "spilled") {
		t.Errorf("tooltip %q does not say the model spilled", tip)
	}
	time.Sleep(300 * time.Millisecond) // several polls
	p.waitCalls("notify "+simModel+" spilled onto the CPU", 1)

	// Fix Continue now rewrites Continue's config with the tuned value; the
	// item then goes, as no client asks for too much, and no notification
	// repeats what the user just did.
	p.Click("Fix Continue now: 32768 → 16384")
	p.waitCalls("fix Continue", 1)
	p.WaitMenu("the fixed config", func(n *traytest.Node) bool {
		f := n.Find("No client asks for more than fits")
		return f != nil && !f.Enabled && n.Find("Fix Continue now") == nil &&
			n.Find("Continue's config was updated") != nil
	})
	data, _ := os.ReadFile(continuePath)
	if !strings.Contains(string(data), `"contextLength": 16384`) {
		t.Errorf("Continue's config after the fix:\n%s", data)
	}

	// Continue reloads the model at the new context: it fits again, and
	// the third load with a different context is reload thrash.
	if err := sim.Load(simModel, tunedCtx, gpusim.Forever); err != nil {
		t.Fatal(err)
	}
	p.WaitIcon(assets.OK)
	p.WaitStatus("Active")
	p.waitCalls("notify "+simModel+" keeps reloading", 1)

	// Tune context shows its progress in the model's line; a second click
	// cancels it.
	p.Click("Tune context")
	p.WaitMenu("the tune's progress", func(n *traytest.Node) bool {
		return n.Find(simModel+" · tuning: 8192: 100% GPU (1 load)") != nil && n.Find("Cancel tuning") != nil
	})
	p.Click("Cancel tuning")
	p.waitCalls("tune-cancelled "+simModel, 1)
	p.WaitMenu("the cancelled tune", func(n *traytest.Node) bool {
		return n.Find("Tuning cancelled") != nil && n.Find("Tune context") != nil
	})

	// A login service that hangs holds up nothing else: auto-fix still
	// turns on (and the fix it makes is notified), and rapid clicks all
	// arrive.
	p.Click("Start at login")
	p.waitCalls("login true", 1)
	p.Click("Keep client configs fixed")
	p.waitCalls("autofix true", 1)
	p.WaitMenu("auto-fix on", func(n *traytest.Node) bool { return n.Find("Keep client configs fixed").Checked })
	p.waitCalls("notify Client config fixed", 1)

	logItem := p.WaitMenu("Open log", func(n *traytest.Node) bool { f := n.Find("Open log"); return f != nil && f.Enabled }).Find("Open log").ID
	const sequential, concurrent = 20, 20
	for range sequential {
		p.ClickID(logItem)
	}
	var wg sync.WaitGroup
	for range concurrent {
		wg.Go(func() { p.ClickID(logItem) })
	}
	wg.Wait()
	p.waitCalls("open "+filepath.Join(dir, "ctxfit.log"), sequential+concurrent)

	// Seven quick toggles of Notifications reach the backend in order and
	// leave them off.
	notifyItem := p.WaitMenu("Notifications", func(n *traytest.Node) bool { f := n.Find("Notifications"); return f != nil && f.Enabled }).Find("Notifications").ID
	for range 7 {
		p.ClickID(notifyItem)
	}
	p.waitCalls("notifications false", 4)
	p.waitCalls("notifications true", 3)
	var toggles []string
	for _, l := range p.callLines() {
		if strings.HasPrefix(l, "notifications ") {
			toggles = append(toggles, strings.TrimPrefix(l, "notifications "))
		}
	}
	if got := strings.Join(toggles, " "); got != "false true false true false true false" {
		t.Errorf("notification toggles reached the backend as %s", got)
	}
	p.WaitMenu("notifications off", func(n *traytest.Node) bool { return !n.Find("Notifications").Checked })
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if d, _ := ctxstate.OpenStore(dir).Load(); d.Settings.NotificationsOff {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("notifications are not off in the state file")
		}
	}

	// Nothing was notified twice, and the manual fix not at all.
	for _, l := range p.callLines() {
		if strings.HasPrefix(l, "notify ") && p.count(l) != 1 {
			t.Errorf("%q %d times", l, p.count(l))
		}
	}
	if n := p.count("notify Client config fixed"); n != 1 {
		t.Errorf("config fixes notified %d times, want 1 (the automatic one)", n)
	}

	code, out := p.quit()
	if code != 0 || !strings.Contains(out, "tray.Run returned: <nil>") {
		t.Errorf("after Quit the tray exited with %d:\n%s", code, out)
	}
}

// TestTrayStuckBackend checks that a backend whose every call hangs
// leaves the menu working and Quit quitting.
func TestTrayStuckBackend(t *testing.T) {
	addr := traytest.StartBus(t)
	w := traytest.NewWatcher(t, traytest.Connect(t, addr))
	p := startChild(t, addr, "stuck", t.TempDir())
	p.attach(w)
	m := p.WaitMenu("the first menu", func(n *traytest.Node) bool { return n.Find("Connecting…") != nil && n.Find("Quit") != nil })
	for _, label := range []string{"Keep client configs fixed", "Notifications", "Start at login", "Open log"} {
		if f := m.Find(label); f == nil || f.Enabled {
			t.Errorf("%q should be shown disabled until the backend answers:\n%v", label, m)
		}
	}
	p.WaitIcon(assets.Unreachable)
	code, out := p.quit()
	if code != 0 {
		t.Errorf("after Quit the tray exited with %d:\n%s", code, out)
	}
}

// TestNoTrayHost checks that Run gives up at once, with ErrNoTray and
// without touching systray, when nobody shows tray icons.
func TestNoTrayHost(t *testing.T) {
	addr := traytest.StartBus(t)
	for _, tt := range []struct {
		name string
		addr string
		wait time.Duration
		want string
	}{
		{"no session bus", "unix:path=" + filepath.Join(t.TempDir(), "nothing"), 0, "no DBus session bus"},
		{"no StatusNotifierWatcher", addr, 0, "nothing on the DBus session bus shows tray icons"},
		{"none appears while waiting", addr, 300 * time.Millisecond, "nothing on the DBus session bus shows tray icons"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("DBUS_SESSION_BUS_ADDRESS", tt.addr)
			start := time.Now()
			err := Run(context.Background(), stuck{}, Options{HostWait: tt.wait})
			took := time.Since(start)
			if !errors.Is(err, ErrNoTray) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run = %v, want ErrNoTray saying %q", err, tt.want)
			}
			if took > tt.wait+2*time.Second {
				t.Errorf("Run took %s to give up", took)
			}
			t.Logf("gave up after %s", took.Round(time.Millisecond))
		})
	}
}

// TestWaitForHost checks that a tray host appearing while Run waits is
// found.
func TestWaitForHost(t *testing.T) {
	addr := traytest.StartBus(t)
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", addr)
	go func() {
		time.Sleep(200 * time.Millisecond)
		conn, err := dbus.Connect(addr)
		if err != nil {
			return
		}
		t.Cleanup(func() { conn.Close() })
		conn.RequestName(watcherName, dbus.NameFlagDoNotQueue)
	}()
	start := time.Now()
	if err := waitForHost(context.Background(), 5*time.Second); err != nil {
		t.Fatalf("waitForHost = %v, want nil once the watcher appears", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("found the host after %s", took)
	}
}

// TestSystrayPanicIsRecovered runs the tray where systray cannot reach the
// bus; its Quit then panics, and Run must return ErrNoTray instead.
func TestSystrayPanicIsRecovered(t *testing.T) {
	addr := traytest.StartBus(t)
	p := startChild(t, addr, "nobus", t.TempDir())
	code, out := p.Exit(10 * time.Second)
	if code != 3 || !strings.Contains(out, "the system tray failed") {
		t.Errorf("the tray exited with %d, want 3 (ErrNoTray after a recovered panic):\n%s", code, out)
	}
}

// TestTrayNotificationActions runs the tray with its real notifier against
// a notification service on the test bus: a spill without a tuned value
// offers Tune, one where Continue asks for more than the tuned value
// offers Fix now; both persist (critical, no timeout), pressing the button
// over DBus (ActionInvoked) does what the menu item does, and the
// notification is closed when the spill ends.
func TestTrayNotificationActions(t *testing.T) {
	addr := traytest.StartBus(t)
	conn := traytest.Connect(t, addr)
	w := traytest.NewWatcher(t, conn)
	notes := traytest.NewNotifications(t, traytest.Connect(t, addr))

	gpu, _ := gpusim.LookupGPU("8GB")
	sim := gpusim.New(gpusim.Config{GPU: gpu})
	simURL, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	if err := sim.Load(simModel, fitCtx, gpusim.Forever); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	u := ollamahost.Parse(simURL)
	continuePath := filepath.Join(dir, "continue", "config.json")
	os.MkdirAll(filepath.Dir(continuePath), 0o755)
	os.WriteFile(continuePath, []byte(`{"models": [{"title": "Qwen coder", "provider": "ollama", "model": "`+simModel+`", "contextLength": 32768}]}`), 0o644)

	p := startChild(t, addr, "watcher", dir, ollamaEnv+"="+simURL, busNotifyEnv+"=1", openFailsEnv+"=1")
	p.attach(w)
	p.WaitIcon(assets.OK)

	// The whole menu, as the desktop reads it over DBus.
	m := p.WaitMenu("the loaded model and the settings", func(n *traytest.Node) bool {
		l, s := n.Find(simModel), n.Find("Start at login")
		return l != nil && len(l.Children) > 0 && s != nil && s.Enabled && n.Find("Fix now (tune first)") != nil
	})
	got := strings.NewReplacer(simURL, "SIMURL", runtime.Version(), "GOVERSION", runtime.GOOS+"/"+runtime.GOARCH, "OS/ARCH").Replace(m.String())
	golden := filepath.Join("testdata", "tray_menu.txt")
	if *update {
		os.WriteFile(golden, []byte(got), 0o644)
	}
	if want, err := os.ReadFile(golden); err != nil || got != string(want) {
		t.Errorf("the menu over DBus differs from %s (%v; -update rewrites it):\n%s", golden, err, got)
	}

	// An open that fails says so, with the path.
	p.Click("Open log")
	failed := notes.Wait("Cannot open ctxfit.log", 0)
	if !strings.Contains(failed.Body, filepath.Join(dir, "ctxfit.log")) {
		t.Errorf("the failed open's notification %q lacks the path", failed.Body)
	}

	// Not tuned: the spill notification offers Tune, and stays.
	if err := sim.Load(simModel, spillCtx, gpusim.Forever); err != nil {
		t.Fatal(err)
	}
	spill := notes.Wait(simModel+" spilled onto the CPU", 0)
	if strings.Contains(spill.Body, "/") && !strings.Contains(spill.Body, "CPU/GPU") {
		t.Errorf("the spill notification shows a path: %q", spill.Body)
	}
	if got := strings.Join(spill.Actions, "|"); got != "tune|Tune" {
		t.Errorf("actions %q, want tune|Tune", got)
	}
	if spill.App != "ctxfit" || spill.Urgency != 2 || spill.Timeout != 0 || !spill.Image {
		t.Errorf("spill notification %+v: want app ctxfit, urgency 2 (critical), timeout 0, an image", spill)
	}
	if strings.Contains(spill.Body, dir) || !strings.Contains(spill.Body, "Tune finds the largest context") {
		t.Errorf("spill notification body %q", spill.Body)
	}
	p.WaitStatus("NeedsAttention")

	// The model fits again: the notification is withdrawn.
	if err := sim.Load(simModel, fitCtx, gpusim.Forever); err != nil {
		t.Fatal(err)
	}
	notes.WaitClosed(spill.ID)
	p.WaitStatus("Active")

	// It spills again; Tune in the notification starts the tune that
	// Tune context in the menu would.
	before := len(notes.Shown())
	if err := sim.Load(simModel, spillCtx, gpusim.Forever); err != nil {
		t.Fatal(err)
	}
	spill = notes.Wait(simModel+" spilled onto the CPU", before)
	notes.Invoke(spill.ID, "tune")
	p.waitCalls("tune "+simModel, 1)
	p.WaitMenu("the tune the notification started", func(n *traytest.Node) bool { return n.Find("Cancel tuning") != nil })
	p.Click("Cancel tuning")
	p.waitCalls("tune-cancelled "+simModel, 1)

	// Tuned now.
	if err := ctxstate.OpenStore(dir).Update(func(d *ctxstate.Data) error {
		d.PutTuned(ctxstate.Tuned{Host: ollamahost.Key(u), Model: simModel, Parallel: 1, Context: tunedCtx, Step: 1024, MeasuredAt: time.Now()})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := sim.Load(simModel, fitCtx, gpusim.Forever); err != nil {
		t.Fatal(err)
	}
	// The status may read Active already (a tune ended); the watcher must
	// have seen the fit before the next spill, or it sees no change. The
	// model's line, not the tune's progress ("tuning: 8192: 100% GPU"),
	// must say so.
	p.WaitMenu("the model back on the GPU", hasLine(simModel+" · ", fmt.Sprintf("100%% GPU · context %d", fitCtx)))
	p.WaitStatus("Active")
	// The end of the cancelled tune judged the model afresh: still spilled
	// then, so told again; the fit withdraws that notification too.
	for _, n := range notes.Shown() {
		if n.Summary == simModel+" spilled onto the CPU" && n.ID > spill.ID {
			notes.WaitClosed(n.ID)
		}
	}

	// Continue asks for more than the tuned value: Fix now, naming the
	// client and the model, and the button fixes Continue's config.
	before = len(notes.Shown())
	if err := sim.Load(simModel, spillCtx, gpusim.Forever); err != nil {
		t.Fatal(err)
	}
	spill = notes.Wait(simModel+" spilled onto the CPU", before)
	if got := strings.Join(spill.Actions, "|"); got != "fix|Fix now" {
		t.Errorf("actions %q, want fix|Fix now", got)
	}
	if want := "Continue asks for more than the 16384 that stays on the GPU."; !strings.Contains(spill.Body, want) {
		t.Errorf("body %q lacks %q", spill.Body, want)
	}
	notes.Invoke(spill.ID, "fix")
	p.waitCalls("fix Continue", 1)
	for deadline := time.Now().Add(traytest.Patience); ; time.Sleep(50 * time.Millisecond) {
		if data, _ := os.ReadFile(continuePath); strings.Contains(string(data), `"contextLength": 16384`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Fix now in the notification did not fix Continue's config")
		}
	}
	code, out := p.quit()
	if code != 0 {
		t.Errorf("after Quit the tray exited with %d:\n%s", code, out)
	}
}

// hasLine returns a menu test for a visible line holding every one of parts.
func hasLine(parts ...string) func(*traytest.Node) bool {
	var find func(*traytest.Node) bool
	find = func(n *traytest.Node) bool {
		for _, c := range n.Children {
			if !c.Visible {
				continue
			}
			all := true
			for _, p := range parts {
				all = all && strings.Contains(c.Label, p)
			}
			if all || find(c) {
				return true
			}
		}
		return false
	}
	return find
}

// TestTrayOtherServerActions: a notification of another server the tray
// watches (Options.Others) names that server, and its buttons tune and fix
// there, as the items of that server's section would; the own server is
// left alone.
func TestTrayOtherServerActions(t *testing.T) {
	addr := traytest.StartBus(t)
	w := traytest.NewWatcher(t, traytest.Connect(t, addr))
	notes := traytest.NewNotifications(t, traytest.Connect(t, addr))

	gpu, _ := gpusim.LookupGPU("8GB")
	var sims [2]*gpusim.Server
	var urls [2]string
	for i := range sims {
		sims[i] = gpusim.New(gpusim.Config{GPU: gpu})
		u, err := sims[i].Start("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sims[i].Close() })
		urls[i] = u
	}
	// The own server's model fits at another context than the second's, so
	// that the menu's lines of the two differ.
	const ownCtx = 4096
	if err := sims[0].Load(simModel, ownCtx, gpusim.Forever); err != nil {
		t.Fatal(err)
	}
	if err := sims[1].Load(simModel, fitCtx, gpusim.Forever); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	second := filepath.Join(dir, "second")
	continuePath := filepath.Join(second, "continue", "config.json")
	os.MkdirAll(filepath.Dir(continuePath), 0o755)
	os.WriteFile(continuePath, []byte(`{"models": [{"title": "Qwen coder", "provider": "ollama", "model": "`+simModel+`", "contextLength": 32768}]}`), 0o644)

	p := startChild(t, addr, "watcher", dir, ollamaEnv+"="+urls[0], ollama2Env+"="+urls[1], busNotifyEnv+"=1")
	p.attach(w)
	p.WaitIcon(assets.OK)
	p2 := *p
	p2.calls = filepath.Join(second, "calls")
	name := serverName(ollamahost.Parse(urls[1]).String())

	// Not tuned there: Tune in the notification tunes on that server.
	if err := sims[1].Load(simModel, spillCtx, gpusim.Forever); err != nil {
		t.Fatal(err)
	}
	spill := notes.Wait(simModel+" spilled onto the CPU · "+name, 0)
	if got := strings.Join(spill.Actions, "|"); got != "tune|Tune" {
		t.Errorf("actions %q, want tune|Tune", got)
	}
	p.WaitStatus("NeedsAttention")
	notes.Invoke(spill.ID, "tune")
	p2.waitCalls("tune "+simModel, 1)
	p.WaitMenu("the tune the notification started", func(n *traytest.Node) bool { return n.Find("Cancel tuning") != nil })
	p.Click("Cancel tuning")
	p2.waitCalls("tune-cancelled "+simModel, 1)

	// Tuned there now; Continue on that server asks for more: Fix now in
	// the notification fixes that server's Continue.
	if err := ctxstate.OpenStore(second).Update(func(d *ctxstate.Data) error {
		d.PutTuned(ctxstate.Tuned{Host: ollamahost.Key(ollamahost.Parse(urls[1])), Model: simModel, Parallel: 1, Context: tunedCtx, Step: 1024, MeasuredAt: time.Now()})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := sims[1].Load(simModel, fitCtx, gpusim.Forever); err != nil {
		t.Fatal(err)
	}
	p.WaitMenu("the second server's model back on the GPU", hasLine(simModel+" · ", fmt.Sprintf("100%% GPU · context %d", fitCtx)))
	p.WaitStatus("Active")
	before := len(notes.Shown())
	if err := sims[1].Load(simModel, spillCtx, gpusim.Forever); err != nil {
		t.Fatal(err)
	}
	spill = notes.Wait(simModel+" spilled onto the CPU · "+name, before)
	if got := strings.Join(spill.Actions, "|"); got != "fix|Fix now" {
		t.Errorf("actions %q, want fix|Fix now", got)
	}
	notes.Invoke(spill.ID, "fix")
	p2.waitCalls("fix Continue", 1)
	for deadline := time.Now().Add(traytest.Patience); ; time.Sleep(50 * time.Millisecond) {
		if data, _ := os.ReadFile(continuePath); strings.Contains(string(data), fmt.Sprintf(`"contextLength": %d`, tunedCtx)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Fix now in the second server's notification did not fix its Continue config")
		}
	}
	for _, own := range []string{"tune " + simModel, "fix Continue"} {
		if n := p.count(own); n != 0 {
			t.Errorf("the own server got %d calls %q; the buttons were the second server's", n, own)
		}
	}
	if code, out := p.quit(); code != 0 {
		t.Errorf("after Quit the tray exited with %d:\n%s", code, out)
	}
}
