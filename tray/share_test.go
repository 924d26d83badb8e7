package tray

import (
	"strings"
	"testing"
	"time"

	"github.com/ctxfit/ctxfit/hub"
	"github.com/ctxfit/ctxfit/watch"
)

// On an Apple Silicon server the server line says how much of the unified
// memory the GPU may use; elsewhere it is unchanged.
func TestServerLineGPUShare(t *testing.T) {
	snap := watch.Snapshot{Host: "http://127.0.0.1:11434", Reachable: true, Version: "0.17.4"}
	for _, tt := range []struct{ share, want string }{
		{"GPU may use 21.3 GiB of 32.0 GiB", "Ollama 0.17.4 at http://127.0.0.1:11434 · GPU may use 21.3 GiB of 32.0 GiB"},
		{"", "Ollama 0.17.4 at http://127.0.0.1:11434"},
	} {
		s := newState()
		s.apply(hub.Update{State: hub.State{Snapshot: snap, GPUShare: tt.share}}, time.Now())
		if got := s.view().Header.Title; !strings.HasPrefix(got, tt.want) || (tt.share == "" && strings.Contains(got, "GPU may use")) {
			t.Errorf("server line %q, want %q", got, tt.want)
		}
	}
}
