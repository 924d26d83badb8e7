package daemon

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ctxfit/ctxfit/clients"
	"github.com/ctxfit/ctxfit/hub"
	"github.com/ctxfit/ctxfit/internal/ollamahost"
	"github.com/ctxfit/ctxfit/ollama"
	"github.com/ctxfit/ctxfit/state"
)

// TestMessagesNameTheHost: the commands in the daemon's own messages (a
// stale tune, a config that asks too much, a config another program keeps
// changing) repeat --host exactly when the CLI's hints would, and a
// headless daemon names the command where the tray has Fix now.
func TestMessagesNameTheHost(t *testing.T) {
	const model = "llama3.1:8b"
	tests := []struct {
		name     string
		host     string
		headless bool
		stale    string // in the tune_stale message
		tooLarge string // in the config_warning of NoticeTooLarge
		backedOf string // in the config_warning of NoticeBackedOff
	}{
		{"default with tray", "http://127.0.0.1:11434", false,
			"run `ctxfit tune llama3.1:8b` to find",
			". Fix now in the tray, or `ctxfit fix continue`, writes the tuned value",
			"or use Fix Continue now when"},
		{"default headless", "http://localhost:11434", true,
			"run `ctxfit tune llama3.1:8b` to find",
			". `ctxfit fix continue` writes the tuned value",
			"or run `ctxfit fix continue` when"},
		{"other port with tray", "http://127.0.0.1:18790", false,
			"run `ctxfit tune llama3.1:8b --host http://127.0.0.1:18790` to find",
			". Fix now in the tray, or `ctxfit fix continue --host http://127.0.0.1:18790`, writes the tuned value",
			"or use Fix Continue now when"},
		{"other server headless", "http://gpubox:11434", true,
			"run `ctxfit tune llama3.1:8b --host http://gpubox:11434` to find",
			". `ctxfit fix continue --host http://gpubox:11434` writes the tuned value",
			"or run `ctxfit fix continue --host http://gpubox:11434` when"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := ollamahost.Parse(tt.host)
			store := state.OpenStore(t.TempDir())
			if err := store.Update(func(d *state.Data) error {
				d.PutTuned(state.Tuned{Host: ollamahost.Key(u), Model: model, Parallel: 1, Context: 24576, Step: 1024, MeasuredAt: time.Now(), GPUBudget: 21 << 30})
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			d := New(Config{Host: u, Client: ollama.NewClient(u), Store: store, Getenv: func(string) string { return "" },
				GPUBudget: func(context.Context) int64 { return 24 << 30 }, Headless: tt.headless})
			updates, stop := d.hub.Subscribe()
			defer stop()
			d.checkStale(context.Background())
			d.noticed(clients.Notice{Kind: clients.NoticeTooLarge, Client: "Continue", Path: "/c/config.yaml",
				Asks: []clients.Ask{{Client: "Continue", Path: "/c/config.yaml", Model: model, Context: 131072, Tuned: 24576}}})
			d.noticed(clients.Notice{Kind: clients.NoticeBackedOff, Client: "Continue", Path: "/c/config.yaml", Until: time.Now()})

			got := map[string][]string{}
			for len(got[string(hub.EventTuneStale)]) < 1 || len(got[string(hub.EventConfigWarning)]) < 2 {
				select {
				case up := <-updates:
					for _, e := range up.Events {
						got[string(e.Kind)] = append(got[string(e.Kind)], e.Message)
					}
				case <-time.After(2 * time.Second):
					t.Fatalf("events so far: %q; want a tune_stale and two config_warning", got)
				}
			}
			if m := got[string(hub.EventTuneStale)][0]; !strings.Contains(m, tt.stale) {
				t.Errorf("tune_stale: %q\nwant it to contain %q", m, tt.stale)
			}
			warns := got[string(hub.EventConfigWarning)]
			if !strings.HasSuffix(warns[0], tt.tooLarge) {
				t.Errorf("too large: %q\nwant it to end in %q", warns[0], tt.tooLarge)
			}
			if !strings.Contains(warns[1], tt.backedOf) {
				t.Errorf("backed off: %q\nwant it to contain %q", warns[1], tt.backedOf)
			}
			if tt.headless && strings.Contains(strings.Join(warns, "\n"), "tray") {
				t.Errorf("a headless daemon speaks of the tray: %q", warns)
			}
		})
	}
}
