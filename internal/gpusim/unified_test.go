package gpusim

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ctxfit/ctxfit/unified"
)

func TestWiredLimit(t *testing.T) {
	g, _ := LookupGPU("mac32")
	s := New(Config{GPU: g})
	const model = "llama3.1:8b-instruct-fp16"
	if err := s.Load(model, 32768, Forever); err != nil {
		t.Fatal(err)
	}
	size, vram, _ := s.Placement(model, 32768, 1)
	if vram == size {
		t.Fatalf("32768 fits under the default 21.3 GiB; the test expects a spill (size %d)", size)
	}

	// The sysctl and a restart: the budget becomes 24 GiB and nothing stays loaded.
	if err := s.SetWiredLimit(24576); err != nil {
		t.Fatal(err)
	}
	if info, ok := s.UnifiedMemory(); !ok || info.WiredLimitMB != 24576 || info.Budget() != 24*gib {
		t.Errorf("UnifiedMemory = %+v, %v", info, ok)
	}
	s.mu.Lock()
	n := len(s.loaded)
	s.mu.Unlock()
	if n != 0 {
		t.Errorf("%d models still loaded after the restart", n)
	}
	if size, vram, _ := s.Placement(model, 32768, 1); vram != size {
		t.Errorf("32768 spills under 24 GiB: size %d, vram %d", size, vram)
	}
	if err := s.SetWiredLimit(0); err != nil || s.cfg.GPU.VRAM != UnifiedBudget(32*gib) {
		t.Errorf("back to the default: %v, budget %d", err, s.cfg.GPU.VRAM)
	}

	// Over HTTP, as unified.Simulated reads it; a discrete GPU answers 404 as Ollama does.
	srv := httptest.NewServer(s)
	defer srv.Close()
	resp, err := http.Post(srv.URL+unified.SimulatedPath, "application/json", strings.NewReader(`{"wired_limit_mb": 20480}`))
	if err != nil {
		t.Fatal(err)
	}
	var info unified.Info
	json.NewDecoder(resp.Body).Decode(&info)
	resp.Body.Close()
	if resp.StatusCode != 200 || info.WiredLimitMB != 20480 || info.RAM != 32*gib {
		t.Errorf("POST %s: %s, %+v", unified.SimulatedPath, resp.Status, info)
	}
	d, _ := LookupGPU("24GB")
	discrete := httptest.NewServer(New(Config{GPU: d}))
	defer discrete.Close()
	if resp, err := http.Get(discrete.URL + unified.SimulatedPath); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("a discrete GPU: %v, %v", resp.Status, err)
	}
	if err := New(Config{GPU: d}).SetWiredLimit(1024); err == nil {
		t.Error("SetWiredLimit on a discrete GPU: no error")
	}
}
