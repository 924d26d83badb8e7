package tray

import (
	"fmt"
	"strings"
	"time"

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
// its notifications are shown, naming the server, without buttons (the
// menu's Fix and Tune items act on the menu's own server).
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
			n.Actions = nil
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
