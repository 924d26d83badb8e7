package main

import (
	"strings"
	"syscall"
	"testing"

	"github.com/ctxfit/ctxfit/assets"
	"github.com/ctxfit/ctxfit/internal/gpusim"
	"github.com/ctxfit/ctxfit/internal/ollamahost"
	"github.com/ctxfit/ctxfit/state"
	"github.com/ctxfit/ctxfit/tray/traytest"
)

// TestTrayTwoServers runs `ctxfit run --host A --host B` with its tray: the
// menu is A's, and a spill on B turns the one icon amber with a tooltip
// naming B. B has its own section below A's models, with its spilled model;
// its Tune item tunes the model on B. The icon turns green again when B's
// model unloads.
func TestTrayTwoServers(t *testing.T) {
	t.Parallel()
	addr := traytest.StartBus(t)
	w := traytest.NewWatcher(t, traytest.Connect(t, addr))
	simA, a := startSim(t, "24GB", nil)
	simB, b := startSim(t, "mac32", nil)
	h := newTrayHome(t, addr)
	if err := simA.Load(llama, 8192, gpusim.Forever); err != nil {
		t.Fatal(err)
	}
	p := traytest.Start(t, mainCommand(h.vars, "run", "--host", a, "--host", b, "--tray-wait", "300ms"))
	it := w.Attach(t, p.Done())
	it.WaitMenu("A's header and model", func(n *traytest.Node) bool {
		hd := n.Find("Ollama ")
		return hd != nil && hd.Label == "Ollama 0.17.4 at "+a && n.Find(llama+" · ") != nil
	})
	it.WaitIcon(assets.OK)

	if err := simB.Load(llama, 131072, gpusim.Forever); err != nil { // spills on B
		t.Fatal(err)
	}
	it.WaitIcon(assets.Warning)
	it.WaitStatus("NeedsAttention")
	nameB := strings.TrimPrefix(b, "http://")
	if tip := it.Tooltip(); tip != "ctxfit: "+nameB+": "+llama+" (56%/44% CPU/GPU) spilled onto the CPU (2 servers watched)" {
		t.Errorf("tooltip %q", tip)
	}
	m := it.WaitMenu("B's section", func(n *traytest.Node) bool {
		hd := n.Find("Ollama 0.17.4 at " + b)
		return hd != nil && n.Find("⚠ "+llama+" · ") != nil
	})
	if l := m.Find("⚠ " + llama + " · "); !strings.HasSuffix(l.Label, " · 56%/44% CPU/GPU · context 131072") {
		t.Errorf("B's model line %q", l.Label)
	}
	it.ClickID(m.Find("⚠ " + llama + " · ").Find("Tune context").ID)
	store := state.OpenStore(h.vars[state.StateDirEnv])
	keyA, keyB := ollamahost.Key(ollamahost.Parse(a)), ollamahost.Key(ollamahost.Parse(b))
	waitLong(t, "the tune on B", func() bool {
		d, err := store.Load()
		if err != nil {
			return false
		}
		_, ok := d.TunedFor(keyB, llama, "")
		return ok
	})
	if d, _ := store.Load(); len(d.Tuned) != 1 {
		t.Errorf("tuned %+v, want B's alone", d.Tuned)
	} else if _, onA := d.TunedFor(keyA, llama, ""); onA {
		t.Error("the tune in B's section tuned A")
	}
	simB.Unload(llama)
	it.WaitIcon(assets.OK)
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, out := p.Exit(traytest.Patience); code != 0 {
		t.Errorf("after SIGTERM ctxfit exited with %d:\n%s", code, out)
	}
}
