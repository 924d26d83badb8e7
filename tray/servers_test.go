//go:build cgo || !darwin

package tray

import (
	"strings"
	"testing"

	"github.com/ctxfit/ctxfit/assets"
	"github.com/ctxfit/ctxfit/watch"
)

// on returns the state of a server at u whose snapshot is s.
func on(u string, s watch.Snapshot) *state {
	s.Host = u
	return known(s)
}

// With two servers, one spilled, the icon is amber whichever server the
// menu shows, and the tooltip names the spilled one; with one server the
// view is the single-server one, unchanged.
func TestWithOthers(t *testing.T) {
	const b = "http://gpubox:11434"
	for _, tc := range []struct {
		name      string
		own       *state
		others    []*state
		icon      assets.State
		attention bool
		tooltip   []string // substrings
	}{
		{"the other server spilled", on(host, snap(llamaGPU)), []*state{on(b, snap(llamaSpilled))}, assets.Warning, true,
			[]string{"ctxfit: gpubox:11434: llama3.1:8b", "spilled onto the CPU", "(2 servers watched)"}},
		{"the own server spilled", on(host, snap(llamaSpilled)), []*state{on(b, snap(qwenGPU))}, assets.Warning, true,
			[]string{"ctxfit: 127.0.0.1:11434: llama3.1:8b", "spilled"}},
		{"a spill beats a server down", on(host, unreachable()), []*state{on(b, snap(llamaSpilled))}, assets.Warning, true,
			[]string{"gpubox:11434", "(and 1 more servers need a look"}},
		{"one server down", on(host, snap(llamaGPU)), []*state{on(b, unreachable())}, assets.Unreachable, false,
			[]string{"ctxfit: gpubox:11434: Ollama at"}},
		{"all well", on(host, snap(llamaGPU)), []*state{on(b, snap(qwenGPU))}, assets.OK, false,
			[]string{"ctxfit: 127.0.0.1:11434: llama3.1:8b 100% GPU (2 servers watched)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			own := tc.own.view()
			v := withOthers(own, tc.own, tc.others)
			if v.Icon != tc.icon || v.Attention != tc.attention {
				t.Errorf("icon %s, attention %v; want %s, %v", v.Icon, v.Attention, tc.icon, tc.attention)
			}
			for _, want := range tc.tooltip {
				if !strings.Contains(v.Tooltip, want) {
					t.Errorf("tooltip %q lacks %q", v.Tooltip, want)
				}
			}
			if v.Header != own.Header || v.Models != own.Models {
				t.Error("the menu changed: it shows the own server's items")
			}
		})
	}
	alone := on(host, snap(llamaSpilled))
	if v := alone.view(); withOthers(v, alone, nil) != v {
		t.Error("one server: the view changed")
	}
}
