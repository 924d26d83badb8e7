//go:build unix

package clients

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestSpecialFileAtConfigPath puts a FIFO, a directory, a socket and a
// device at Continue's config path: fixing, listing (`ctxfit clients`) and
// the Keeper name it and skip it, and none of them blocks.
func TestSpecialFileAtConfigPath(t *testing.T) {
	tests := []struct {
		name string
		make func(p string) error
		kind string
	}{
		{"fifo", func(p string) error { return unix.Mkfifo(p, 0o644) }, "FIFO"},
		{"directory", func(p string) error { return os.Mkdir(p, 0o755) }, "a directory"},
		{"socket", func(p string) error {
			l, err := net.Listen("unix", p)
			if err == nil {
				t.Cleanup(func() { l.Close() })
			}
			return err
		}, "a socket"},
		{"device", func(p string) error { return os.Symlink("/dev/zero", p) }, "a device"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHome(t)
			p := filepath.Join(h.dir, "config.yaml")
			if err := tt.make(p); err != nil {
				t.Skipf("cannot make %s here: %v", tt.name, err)
			}
			check := func(what string, run func() error) {
				t.Helper()
				done := make(chan error, 1)
				go func() { done <- run() }()
				select {
				case err := <-done:
					if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), tt.kind) ||
						strings.Count(err.Error(), "not a regular file") != 1 {
						t.Errorf("%s: %v; want ErrNotRegular naming %s and %q", what, err, p, tt.kind)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("%s blocked on %s", what, tt.name)
				}
			}
			f := h.fixer()
			check("Fix", func() error { _, err := f.Fix(context.Background(), continueClient{}, testTarget(), false); return err })
			check("Asks", func() error { _, _, err := f.Asks(continueClient{}, testTarget()); return err })
			k := &Keeper{Fixer: f, Clients: []Client{continueClient{}}, Target: func() (Target, error) { return testTarget(), nil }}
			check("Keeper", func() error { _, err := k.Fix(context.Background(), continueClient{}); return err })
		})
	}
}
