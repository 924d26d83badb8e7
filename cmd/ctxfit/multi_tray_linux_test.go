package main

import (
	"strings"
	"syscall"
	"testing"

	"github.com/ctxfit/ctxfit/assets"
	"github.com/ctxfit/ctxfit/internal/gpusim"
	"github.com/ctxfit/ctxfit/tray/traytest"
)

// TestTrayTwoServers runs `ctxfit run --host A --host B` with its tray: the
// menu is A's, and a spill on B turns the one icon amber with a tooltip
// naming B; it turns green again when B's model unloads.
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
	simB.Unload(llama)
	it.WaitIcon(assets.OK)
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, out := p.Exit(traytest.Patience); code != 0 {
		t.Errorf("after SIGTERM ctxfit exited with %d:\n%s", code, out)
	}
}
