//go:build linux

package traytest

import (
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

// Notifications plays the desktop's notification service
// (org.freedesktop.Notifications, as xfce4-notifyd or GNOME Shell do): it
// records what the tray shows and closes, and presses a notification's
// buttons by sending ActionInvoked, as a desktop does when the user
// clicks one.
type Notifications struct {
	t    testing.TB
	conn *dbus.Conn

	mu     sync.Mutex
	shown  []Shown
	closed []uint32
	next   uint32
}

// Shown is one Notify call.
type Shown struct {
	ID       uint32 // the ID returned
	App      string
	Replaces uint32
	Summary  string
	Body     string
	Actions  []string // ID, label, ID, label…
	Urgency  byte     // 0 low, 1 normal, 2 critical
	Image    bool     // an image-data hint
	Timeout  int32    // ms; 0 never, -1 the server's default
}

// Service names of the notification service.
const (
	notifyName  = "org.freedesktop.Notifications"
	notifyPath  = "/org/freedesktop/Notifications"
	notifyIface = "org.freedesktop.Notifications"
)

// NewNotifications exports a notification service on conn and takes its
// name. Its capabilities include actions but not body markup.
func NewNotifications(t testing.TB, conn *dbus.Conn) *Notifications {
	t.Helper()
	n := &Notifications{t: t, conn: conn}
	if err := conn.Export(notifyObject{n}, notifyPath, notifyIface); err != nil {
		t.Fatal(err)
	}
	reply, err := conn.RequestName(notifyName, dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("own %s: reply %v, %v", notifyName, reply, err)
	}
	return n
}

// notifyObject holds the methods exported on the bus.
type notifyObject struct{ n *Notifications }

func (o notifyObject) GetCapabilities() ([]string, *dbus.Error) {
	return []string{"actions", "body", "persistence"}, nil
}

func (o notifyObject) GetServerInformation() (string, string, string, string, *dbus.Error) {
	return "traytest", "ctxfit", "1", "1.2", nil
}

func (o notifyObject) Notify(app string, replaces uint32, icon, summary, body string, actions []string, hints map[string]dbus.Variant, timeout int32) (uint32, *dbus.Error) {
	n := o.n
	n.mu.Lock()
	defer n.mu.Unlock()
	id := replaces
	if id == 0 {
		n.next++
		id = n.next
	}
	s := Shown{ID: id, App: app, Replaces: replaces, Summary: summary, Body: body, Actions: actions, Timeout: timeout}
	if v, ok := hints["urgency"]; ok {
		s.Urgency, _ = v.Value().(byte)
	}
	_, s.Image = hints["image-data"]
	n.shown = append(n.shown, s)
	return id, nil
}

func (o notifyObject) CloseNotification(id uint32) *dbus.Error {
	n := o.n
	n.mu.Lock()
	n.closed = append(n.closed, id)
	n.mu.Unlock()
	n.conn.Emit(notifyPath, notifyIface+".NotificationClosed", id, uint32(3)) // 3: closed by CloseNotification
	return nil
}

// Shown returns the notifications shown so far, in order.
func (n *Notifications) Shown() []Shown {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]Shown(nil), n.shown...)
}

// Closed returns the IDs the tray closed, in order.
func (n *Notifications) Closed() []uint32 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]uint32(nil), n.closed...)
}

// Wait waits until a notification whose summary is summary was shown
// after the first skip ones, and returns it.
func (n *Notifications) Wait(summary string, skip int) Shown {
	n.t.Helper()
	deadline := time.Now().Add(Patience)
	for time.Now().Before(deadline) {
		shown := n.Shown()
		for _, s := range shown[min(skip, len(shown)):] {
			if s.Summary == summary {
				return s
			}
		}
		time.Sleep(poll)
	}
	n.t.Fatalf("no notification %q was shown; shown: %+v", summary, n.Shown())
	return Shown{}
}

// WaitClosed waits until the tray closes notification id.
func (n *Notifications) WaitClosed(id uint32) {
	n.t.Helper()
	deadline := time.Now().Add(Patience)
	for time.Now().Before(deadline) {
		for _, c := range n.Closed() {
			if c == id {
				return
			}
		}
		time.Sleep(poll)
	}
	n.t.Fatalf("notification %d was never closed; closed: %v", id, n.Closed())
}

// Invoke presses the button action of notification id, as the desktop
// does: ActionInvoked, then NotificationClosed (reason 2, dismissed).
func (n *Notifications) Invoke(id uint32, action string) {
	n.t.Helper()
	if err := n.conn.Emit(notifyPath, notifyIface+".ActionInvoked", id, action); err != nil {
		n.t.Fatalf("send ActionInvoked: %v", err)
	}
	n.conn.Emit(notifyPath, notifyIface+".NotificationClosed", id, uint32(2))
}
