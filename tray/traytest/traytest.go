//go:build linux

// Package traytest drives ctxfit's tray as a Linux desktop does, for tests:
// it starts a private DBus session bus, plays the desktop's
// StatusNotifierWatcher, attaches to the item a tray registers, reads its
// menu (com.canonical.dbusmenu GetLayout) into a tree, clicks items by
// label, and reads the icon and tooltip (org.kde.StatusNotifierItem).
//
// fyne systray runs once per process, on the main goroutine, so the tray
// under test runs in a child process (usually the test binary itself,
// re-executed by its TestMain); Start runs it and Process.Exit collects its
// exit status.
//
// A typical test:
//
//	addr := traytest.StartBus(t)
//	w := traytest.NewWatcher(t, traytest.Connect(t, addr))
//	p := traytest.Start(t, cmd) // cmd has DBUS_SESSION_BUS_ADDRESS=addr
//	it := w.Attach(t, p.Done())
//	it.Click("Fix Continue now")
//	it.WaitIcon(assets.Warning)
//	code, out := it.Quit(p)
package traytest

import (
	"bufio"
	"bytes"
	"fmt"
	"image"
	"image/color"
	_ "image/png" // the tray's icons are PNG
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/ctxfit/ctxfit/assets"
)

// WatcherName is the DBus name of the desktop's tray host, which trays
// register their items with (freedesktop StatusNotifierItem specification;
// every host uses KDE's name).
const WatcherName = "org.kde.StatusNotifierWatcher"

// RequireDBusEnv names the environment variable that, set to 1, turns a
// missing dbus-daemon from a skip into a failure (for CI, where the tray
// tests must run).
const RequireDBusEnv = "CTXFIT_REQUIRE_DBUS"

// Patience is how long the harness waits for the tray to show something
// before it fails the test: generous, because the tray and the test share
// a busy machine's CPUs, and it polls, so a quick tray costs no more.
const Patience = 15 * time.Second

// poll is how often the harness reads the menu or a file again.
const poll = 50 * time.Millisecond

// StartBus starts a private DBus session bus for the test and returns its
// address, for DBUS_SESSION_BUS_ADDRESS. The bus stops when the test ends.
// Without a dbus-daemon binary the test is skipped, or fails when
// RequireDBusEnv is 1.
func StartBus(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("dbus-daemon")
	if err != nil {
		if os.Getenv(RequireDBusEnv) == "1" {
			t.Fatalf("dbus-daemon not found, and %s=1: apt-get install dbus", RequireDBusEnv)
		}
		t.Skip("dbus-daemon not found: apt-get install dbus to run the tray tests")
	}
	cmd := exec.Command(bin, "--session", "--print-address", "--nofork")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dbus-daemon: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		addr <- strings.TrimSpace(line)
	}()
	select {
	case a := <-addr:
		if a == "" {
			t.Fatalf("dbus-daemon printed no address: %s", stderr.String())
		}
		return a
	case <-time.After(Patience):
		t.Fatalf("dbus-daemon did not start: %s", stderr.String())
	}
	return ""
}

// Connect opens a connection to the bus at addr, closed when the test ends.
func Connect(t testing.TB, addr string) *dbus.Conn {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatalf("connect to the test bus: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// Watcher plays the desktop's StatusNotifierWatcher: trays on the bus see
// a tray host, and register their items with it.
type Watcher struct {
	conn  *dbus.Conn
	items chan string // bus names of registered items
}

// NewWatcher exports a StatusNotifierWatcher on conn and takes its name.
func NewWatcher(t testing.TB, conn *dbus.Conn) *Watcher {
	t.Helper()
	w := &Watcher{conn: conn, items: make(chan string, 4)}
	if err := conn.Export(watcherObject{w}, "/StatusNotifierWatcher", WatcherName); err != nil {
		t.Fatal(err)
	}
	reply, err := conn.RequestName(WatcherName, dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("own %s: reply %v, %v", WatcherName, reply, err)
	}
	return w
}

// watcherObject holds the methods exported on the bus, so that Watcher's
// own methods are not.
type watcherObject struct{ w *Watcher }

// RegisterStatusNotifierItem is the method a tray item calls to appear.
func (o watcherObject) RegisterStatusNotifierItem(sender dbus.Sender, service string) *dbus.Error {
	select {
	case o.w.items <- string(sender):
	default:
	}
	return nil
}

// RegisterStatusNotifierHost is part of the interface; nothing to do.
func (watcherObject) RegisterStatusNotifierHost(string) *dbus.Error { return nil }

// Attach waits for the next tray item to register and returns it. It fails
// the test when exited is closed first (the tray's process ended; nil
// waits regardless), or after Patience.
func (w *Watcher) Attach(t testing.TB, exited <-chan struct{}) *Item {
	t.Helper()
	select {
	case name := <-w.items:
		it := &Item{
			t:    t,
			Name: name,
			item: w.conn.Object(name, "/StatusNotifierItem"),
			menu: w.conn.Object(name, "/StatusNotifierItem/menu"),
		}
		if err := w.conn.AddMatchSignal(dbus.WithMatchSender(name), dbus.WithMatchInterface("org.kde.StatusNotifierItem"), dbus.WithMatchMember("NewIcon")); err != nil {
			t.Fatal(err)
		}
		it.newIcon = make(chan *dbus.Signal, 64)
		w.conn.Signal(it.newIcon)
		// The first GetLayout returns one level and makes systray announce
		// a new layout 150 ms later, from a goroutine that races with
		// GetLayout inside systray; read again after it, as hosts do.
		if _, err := it.Layout(); err != nil {
			t.Fatalf("read the menu: %v", err)
		}
		time.Sleep(300 * time.Millisecond)
		return it
	case <-exited:
		t.Fatal("the tray exited before registering with the StatusNotifierWatcher")
	case <-time.After(Patience):
		t.Fatal("the tray did not register with the StatusNotifierWatcher")
	}
	return nil
}

// Item is a tray item as the desktop sees it: the icon and tooltip of
// /StatusNotifierItem and the menu of /StatusNotifierItem/menu. Its
// methods fail the test they were attached in when the tray does not
// answer.
type Item struct {
	t testing.TB
	// Name is the item's unique bus name.
	Name    string
	item    dbus.BusObject
	menu    dbus.BusObject
	newIcon chan *dbus.Signal // the item's NewIcon signals
}

// Node is one menu item as com.canonical.dbusmenu describes it.
type Node struct {
	ID       int32 // what a click names
	Label    string
	Enabled  bool
	Visible  bool
	Checked  bool // a checkbox's toggle-state is on
	Children []*Node
}

// String draws the visible menu below n, one item a line, indented by
// depth, with "-" before disabled items and "[x]" before checked ones:
// what a failing test prints.
func (n *Node) String() string {
	if n == nil {
		return "<no menu>"
	}
	var b strings.Builder
	var walk func(n *Node, depth int)
	walk = func(n *Node, depth int) {
		if !n.Visible {
			return
		}
		mark := " "
		if !n.Enabled {
			mark = "-"
		}
		if n.Checked {
			mark += "[x]"
		}
		fmt.Fprintf(&b, "%s%s %s\n", strings.Repeat("    ", depth), mark, n.Label)
		for _, c := range n.Children {
			walk(c, depth+1)
		}
	}
	for _, c := range n.Children {
		walk(c, 0)
	}
	return b.String()
}

// Find returns the first visible item below n, depth first, whose label
// starts with prefix; nil when there is none.
func (n *Node) Find(prefix string) *Node {
	for _, c := range n.Children {
		if !c.Visible {
			continue
		}
		if strings.HasPrefix(c.Label, prefix) {
			return c
		}
		if f := c.Find(prefix); f != nil {
			return f
		}
	}
	return nil
}

// Layout reads the whole menu with GetLayout. Right after a change it may
// return one level only; WaitMenu reads until the menu is as expected.
func (it *Item) Layout() (*Node, error) {
	call := it.menu.Call("com.canonical.dbusmenu.GetLayout", 0, int32(0), int32(-1), []string{})
	if call.Err != nil {
		return nil, call.Err
	}
	if len(call.Body) != 2 {
		return nil, fmt.Errorf("GetLayout returned %d values", len(call.Body))
	}
	root, ok := call.Body[1].([]any)
	if !ok {
		return nil, fmt.Errorf("GetLayout returned a %T", call.Body[1])
	}
	return decodeNode(root)
}

func decodeNode(v []any) (*Node, error) {
	if len(v) != 3 {
		return nil, fmt.Errorf("menu layout of %d fields", len(v))
	}
	id, _ := v[0].(int32)
	props, _ := v[1].(map[string]dbus.Variant)
	n := &Node{ID: id, Enabled: true, Visible: true}
	if l, ok := props["label"]; ok {
		n.Label, _ = l.Value().(string)
	}
	if e, ok := props["enabled"]; ok {
		n.Enabled, _ = e.Value().(bool)
	}
	if e, ok := props["visible"]; ok {
		n.Visible, _ = e.Value().(bool)
	}
	if e, ok := props["toggle-state"]; ok {
		s, _ := e.Value().(int32)
		n.Checked = s == 1
	}
	kids, _ := v[2].([]dbus.Variant)
	for _, k := range kids {
		fields, ok := k.Value().([]any)
		if !ok {
			return nil, fmt.Errorf("menu child is a %T", k.Value())
		}
		c, err := decodeNode(fields)
		if err != nil {
			return nil, err
		}
		n.Children = append(n.Children, c)
	}
	return n, nil
}

// WaitMenu reads the menu until ok accepts it and returns that reading;
// after Patience it fails the test, naming what and showing the last
// reading.
func (it *Item) WaitMenu(what string, ok func(*Node) bool) *Node {
	it.t.Helper()
	deadline := time.Now().Add(Patience)
	var last *Node
	var err error
	for time.Now().Before(deadline) {
		last, err = it.Layout()
		if err == nil && ok(last) {
			return last
		}
		time.Sleep(poll)
	}
	it.t.Fatalf("menu never showed %s; last read (err %v):\n%v", what, err, last)
	return nil
}

// Click waits until an enabled item's label starts with prefix, then
// clicks it.
func (it *Item) Click(prefix string) {
	it.t.Helper()
	n := it.WaitMenu(fmt.Sprintf("an enabled %q", prefix), func(n *Node) bool {
		f := n.Find(prefix)
		return f != nil && f.Enabled
	})
	it.ClickID(n.Find(prefix).ID)
}

// ClickID clicks the item with id, failing the test when the tray does
// not take the click.
func (it *Item) ClickID(id int32) {
	it.t.Helper()
	if err := it.Send(id); err != nil {
		it.t.Fatalf("click item %d: %v", id, err)
	}
}

// Send clicks the item with id and returns the tray's answer; a tray that
// exits on the click may not answer.
func (it *Item) Send(id int32) error {
	return it.menu.Call("com.canonical.dbusmenu.Event", 0, id, "clicked", dbus.MakeVariant(""), uint32(time.Now().Unix())).Err
}

// Quit clicks Quit and returns the tray's exit status and output once p,
// its process, has ended.
func (it *Item) Quit(p *Process) (int, string) {
	it.t.Helper()
	n := it.WaitMenu("Quit", func(n *Node) bool { return n.Find("Quit") != nil })
	it.Send(n.Find("Quit").ID) // the tray may exit before it answers
	return p.Exit(Patience)
}

// Image is one of an item's IconPixmap images: ARGB32 bytes.
type Image struct {
	W, H int32
	Pix  []byte
}

// Pixmaps returns the item's IconPixmap: the icon at each size it offers.
func (it *Item) Pixmaps() []Image {
	it.t.Helper()
	v, err := it.item.GetProperty("org.kde.StatusNotifierItem.IconPixmap")
	if err != nil {
		it.t.Fatalf("read IconPixmap: %v", err)
	}
	var px []Image
	if err := dbus.Store([]any{v.Value()}, &px); err != nil {
		it.t.Fatalf("IconPixmap is a %T: %v", v.Value(), err)
	}
	if len(px) == 0 {
		it.t.Fatalf("IconPixmap holds no image")
	}
	return px
}

// Icon returns the largest image of the item's IconPixmap: width, height
// and ARGB bytes.
func (it *Item) Icon() (w, h int32, pix []byte) {
	it.t.Helper()
	px := it.Pixmaps()
	big := px[0]
	for _, p := range px[1:] {
		if p.W > big.W {
			big = p
		}
	}
	return big.W, big.H, big.Pix
}

// Status returns the item's Status: Active, Passive or NeedsAttention.
func (it *Item) Status() string {
	it.t.Helper()
	v, err := it.item.GetProperty("org.kde.StatusNotifierItem.Status")
	if err != nil {
		it.t.Fatalf("read Status: %v", err)
	}
	s, _ := v.Value().(string)
	return s
}

// WaitStatus waits until the item's Status is want.
func (it *Item) WaitStatus(want string) {
	it.t.Helper()
	deadline := time.Now().Add(Patience)
	var got string
	for time.Now().Before(deadline) {
		if got = it.Status(); got == want {
			return
		}
		time.Sleep(poll)
	}
	it.t.Fatalf("the item's Status stayed %q, want %q", got, want)
}

// WaitIcon waits until the item shows the icon of state s
// (assets.PNG(s)). Like a tray host, it reads the icon after a NewIcon
// signal, or when none came for a while: fyne systray replaces the
// exported icon in place, so a read while it sets one races inside
// systray.
func (it *Item) WaitIcon(s assets.State) {
	it.t.Helper()
	want, w, h, err := Pixmap(assets.PNG(s))
	if err != nil {
		it.t.Fatalf("the %s icon: %v", s, err)
	}
	for drained := false; !drained; {
		select {
		case <-it.newIcon:
		default:
			drained = true
		}
	}
	deadline := time.Now().Add(Patience)
	for time.Now().Before(deadline) {
		select {
		case <-it.newIcon:
		case <-time.After(time.Second):
		}
		gw, gh, pix := it.Icon()
		if gw == w && gh == h && bytes.Equal(pix, want) {
			return
		}
	}
	it.t.Fatalf("the tray icon never became the %s icon", s)
}

// Tooltip returns the title of the item's tooltip.
func (it *Item) Tooltip() string {
	it.t.Helper()
	v, err := it.item.GetProperty("org.kde.StatusNotifierItem.ToolTip")
	if err != nil {
		it.t.Fatalf("read ToolTip: %v", err)
	}
	fields, _ := v.Value().([]any)
	if len(fields) != 4 {
		it.t.Fatalf("ToolTip is %#v", v.Value())
	}
	s, _ := fields[2].(string)
	return s
}

// Pixmap converts a PNG into StatusNotifierItem's ARGB32 bytes (not
// premultiplied), as ctxfit's tray exports them, and returns them with the
// image's width and height.
func Pixmap(png []byte) (pix []byte, w, h int32, err error) {
	img, _, err := image.Decode(bytes.NewReader(png))
	if err != nil {
		return nil, 0, 0, fmt.Errorf("decode the icon: %w", err)
	}
	b := img.Bounds()
	pix = make([]byte, 0, b.Dx()*b.Dy()*4)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			pix = append(pix, c.A, c.R, c.G, c.B)
		}
	}
	return pix, int32(b.Dx()), int32(b.Dy()), nil
}
