//go:build cgo || !darwin

package tray

import (
	"context"
	"fmt"
	"strings"
	"time"

	"fyne.io/systray"

	"github.com/ctxfit/ctxfit/assets"
	"github.com/ctxfit/ctxfit/hub"
)

// severity orders the icon's states for a tray of several servers: a
// spill (or a model about to spill) is what ctxfit is for and beats a
// server that does not answer, which beats all well.
func severity(s assets.State) int {
	switch s {
	case assets.Warning:
		return 2
	case assets.Unreachable:
		return 1
	}
	return 0
}

// withOthers returns v, the view of the menu's own server, with the icon,
// attention and tooltip of every server the tray watches: the icon is the
// worst state across them and the tooltip is the worst server's, naming
// it. Without others v is returned as it is.
func withOthers(v view, own *state, others []*state) view {
	if len(others) == 0 {
		return v
	}
	all := append([]*state{own}, others...)
	worst, troubled := own, 0
	for _, s := range all {
		icon := s.icon()
		if severity(icon) > severity(worst.icon()) {
			worst = s
		}
		if icon != assets.OK {
			troubled++
		}
		v.Attention = v.Attention || s.attention()
	}
	v.Icon = worst.icon()
	tip := strings.TrimPrefix(worst.tooltip(), "ctxfit: ")
	v.Tooltip = "ctxfit: " + serverName(worst.snap.Host) + ": " + tip
	if troubled > 1 {
		v.Tooltip += fmt.Sprintf(" (and %d more servers need a look: ctxfit status shows them)", troubled-1)
	} else {
		v.Tooltip += fmt.Sprintf(" (%d servers watched)", len(all))
	}
	return v
}

// serverName is the server's address as the tooltip shows it.
func serverName(host string) string {
	if host == "" {
		return "Ollama"
	}
	return strings.TrimPrefix(strings.TrimPrefix(host, "http://"), "https://")
}

// watchOther follows the updates of another server this tray watches
// (Options.Others): its state counts for the icon and the tooltip, and
// its notifications are shown naming the server, their keys prefixed with
// its name so that their buttons act on it (see menu.action).
func (m *menu) watchOther(i int, b Backend) {
	defer m.recoverTo("follow another server")
	ch, stop := b.Subscribe()
	defer stop()
	u := hub.Update{State: b.State()}
	for {
		m.mu.Lock()
		st := m.others[i]
		notes := st.apply(u, time.Now())
		withdrawn := st.takeWithdrawn()
		name := serverName(st.snap.Host)
		m.mu.Unlock()
		for _, n := range notes {
			n.Title += " · " + name
			if n.Key != "" {
				n.Key = name + " " + n.Key
			}
			m.send(noteOp{n: n})
		}
		for _, k := range withdrawn {
			m.send(noteOp{withdraw: name + " " + k})
		}
		m.signal()
		var ok bool
		select {
		case <-m.ctx.Done():
			return
		case u, ok = <-ch:
			if !ok {
				return
			}
		}
	}
}

// server is one server the menu acts on: the Backend's, or one of
// Options.Others.
type server struct {
	b     Backend
	st    *state
	tunes map[string]context.CancelFunc // the tunes the menu started there
}

// server returns server i: 0 is the Backend's, i the Options.Others[i-1].
// m.mu is held.
func (m *menu) server(i int) server {
	if i == 0 {
		return server{m.b, m.st, m.tunes}
	}
	return server{m.opts.Others[i-1], m.others[i-1], m.otherTunes[i-1]}
}

// visibleModels returns the model items server i's section shows now; m.mu
// is held.
func (m *menu) visibleModels(i int) [maxModels]modelView {
	if i == 0 || i > len(m.visibleOthers) {
		return m.visible.Models
	}
	return m.visibleOthers[i-1].Models
}

// section is what the menu shows of another server, below the own
// server's models: its header, its status and its models with their Tune
// and Fix items.
type section struct {
	Header, Status itemView
	Models         [maxModels]modelView
}

// sectionItems are the menu items of a section.
type sectionItems struct {
	header, status *systray.MenuItem
	models         [maxModels]modelItems
}

// sections computes the sections of Options.Others and keeps them as the
// visible ones; m.mu is held.
func (m *menu) sections() []section {
	secs := make([]section, len(m.others))
	for i, st := range m.others {
		v := st.view()
		secs[i] = section{Header: v.Header, Status: v.Status, Models: v.Models}
	}
	m.visibleOthers = secs
	return secs
}

// addSection adds the items of server srv's section, in onReady.
func (m *menu) addSection(srv int) sectionItems {
	systray.AddSeparator()
	si := sectionItems{header: systray.AddMenuItem("", ""), status: systray.AddMenuItem("", "")}
	for i := range si.models {
		si.models[i] = m.addModel(click{srv: srv, slot: i})
	}
	return si
}

// showSections makes the sections' items show secs; was is what they show
// now (nil: nothing yet).
func showSections(its []sectionItems, secs, was []section) {
	for i, si := range its {
		first := was == nil
		var w section
		if !first {
			w = was[i]
		}
		v := secs[i]
		set(si.header, v.Header, w.Header, first)
		set(si.status, v.Status, w.Status, first)
		showModels(&si.models, &v.Models, &w.Models, first)
	}
}
