package main

import (
	"strings"
	"testing"

	"github.com/ctxfit/ctxfit/clients"
	"github.com/ctxfit/ctxfit/hub"
	"github.com/ctxfit/ctxfit/state"
	"github.com/ctxfit/ctxfit/watch"
)

// A model still loaded at a spilled context after its clients were fixed
// is no reason to fix them again: status says it reloads at the next
// request. With a client still asking too much, the fix hint stays.
func TestStatusHintAfterClientsFixed(t *testing.T) {
	u, _ := (&env{getenv: func(string) string { return "" }}).host("")
	tuned := 25600
	snap := watch.Snapshot{Host: u.String(), Reachable: true, Models: []watch.Model{{Name: llama, Size: 50e9, SizeVRAM: 22e9, ContextLength: 131072, Spilled: true, Processor: "56%/44% CPU/GPU", TunedContext: &tuned}}}
	data := &state.Data{}
	e := &env{getenv: func(string) string { return "" }}
	for _, tt := range []struct {
		name string
		asks []clients.Ask
		want string
	}{
		{"fixed", []clients.Ask{{Model: llama, Context: 25600, Tuned: 25600}}, "its next request reloads it on the GPU"},
		{"still too large", []clients.Ask{{Model: llama, Context: 131072, Tuned: 25600}}, "writes it into your clients"},
		// No client asks for the model: nothing was fixed, and saying
		// "loaded before its clients were fixed … its next request
		// reloads it on the GPU" was false.
		{"no client asks for it", []clients.Ask{{Model: "qwen2.5:0.5b", Context: 4096}},
			"no client config ctxfit knows asks for this model, so whatever loaded it will ask for 131072 again: `ctxfit fix ollama " + llama + "` creates a copy"},
	} {
		st := &hub.State{Snapshot: snap, Clients: []hub.Client{{Name: "Continue", Asks: tt.asks}}}
		var b strings.Builder
		e.writeStatus(&b, u, snap, data, 1, st)
		if !strings.Contains(b.String(), tt.want) {
			t.Errorf("%s: status says\n%s\nwant %q", tt.name, b.String(), tt.want)
		}
	}
}
