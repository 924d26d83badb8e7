package gpusim

import (
	"errors"
	"net/http"

	"github.com/ctxfit/ctxfit/unified"
)

// errNotUnified is SetWiredLimit's answer on a GPU that is not Apple
// Silicon's.
var errNotUnified = errors.New("not a unified-memory (Apple Silicon) host")

// UnifiedMemory returns a unified host's RAM and its iogpu.wired_limit_mb
// (0: the macOS default); ok is false on other hosts.
func (s *Server) UnifiedMemory() (info unified.Info, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.cfg.GPU
	return unified.Info{RAM: g.RAM, WiredLimitMB: g.WiredLimitMB}, g.Unified
}

// SetWiredLimit plays `sudo sysctl iogpu.wired_limit_mb=mb` followed by a
// restart of Ollama: every model is unloaded and the GPU's budget becomes mb
// MiB (the macOS default for mb 0), as a real Ollama sees it only after a
// restart.
func (s *Server) SetWiredLimit(mb int) error {
	if mb < 0 {
		return errors.New("iogpu.wired_limit_mb must be 0 or more")
	}
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.cfg.GPU.Unified {
		return errNotUnified
	}
	s.cfg.GPU.WiredLimitMB = mb
	s.cfg.GPU.VRAM = unified.Info{RAM: s.cfg.GPU.RAM, WiredLimitMB: mb}.Budget()
	clear(s.loaded)
	return nil
}

// handleUnified serves unified.SimulatedPath: GET reads the simulated
// sysctl values, POST sets the limit (and restarts). Other hosts answer 404,
// as a real Ollama does.
func (s *Server) handleUnified(w http.ResponseWriter, r *http.Request) {
	info, ok := s.UnifiedMemory()
	if !ok {
		writeError(w, http.StatusNotFound, "404 page not found")
		return
	}
	if r.Method == http.MethodPost {
		var req unified.Info
		if !decode(w, r, &req) {
			return
		}
		if err := s.SetWiredLimit(req.WiredLimitMB); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		info, _ = s.UnifiedMemory()
	}
	writeJSON(w, http.StatusOK, info)
}
