//go:build linux

package traytest

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"testing"

	"github.com/godbus/dbus/v5"

	"github.com/ctxfit/ctxfit/assets"
)

// layout builds GetLayout's reply for one item and its children, as
// godbus delivers it: (id, properties, children as variants).
func layout(id int32, props map[string]any, kids ...[]any) []any {
	p := map[string]dbus.Variant{}
	for k, v := range props {
		p[k] = dbus.MakeVariant(v)
	}
	vs := []dbus.Variant{}
	for _, k := range kids {
		vs = append(vs, dbus.MakeVariant(k))
	}
	return []any{id, p, vs}
}

func TestDecodeFindString(t *testing.T) {
	root, err := decodeNode(layout(0, nil,
		layout(1, map[string]any{"label": "Ollama 0.17.4 at http://h", "enabled": false}),
		layout(2, map[string]any{"label": "llama · 100% GPU"},
			layout(3, map[string]any{"label": "Tune context"}),
			layout(4, map[string]any{"label": "Fix Continue now", "enabled": false})),
		layout(5, map[string]any{"label": "hidden Tune", "visible": false}),
		layout(6, map[string]any{"label": "Notifications", "toggle-state": int32(1)}),
		layout(7, map[string]any{"label": "Quit"}),
	))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		prefix  string
		id      int32 // 0: not found
		enabled bool
	}{
		{"Ollama", 1, false},
		{"Tune", 3, true}, // depth first, and the hidden item is skipped
		{"Fix Continue", 4, false},
		{"hidden", 0, false},
		{"Quit", 7, true},
		{"Nothing", 0, false},
	}
	for _, tt := range tests {
		n := root.Find(tt.prefix)
		switch {
		case tt.id == 0 && n != nil:
			t.Errorf("Find(%q) = item %d, want none", tt.prefix, n.ID)
		case tt.id != 0 && (n == nil || n.ID != tt.id || n.Enabled != tt.enabled):
			t.Errorf("Find(%q) = %+v, want item %d enabled %v", tt.prefix, n, tt.id, tt.enabled)
		}
	}
	if !root.Find("Notifications").Checked {
		t.Error("toggle-state 1 is not Checked")
	}
	want := "- Ollama 0.17.4 at http://h\n  llama · 100% GPU\n      Tune context\n    - Fix Continue now\n [x] Notifications\n  Quit\n"
	if got := root.String(); got != want {
		t.Errorf("String() =\n%s\nwant\n%s", got, want)
	}

	if _, err := decodeNode([]any{int32(1)}); err == nil {
		t.Error("a layout of one field decoded")
	}
	if _, err := decodeNode([]any{int32(0), map[string]dbus.Variant{}, []dbus.Variant{dbus.MakeVariant("x")}}); err == nil {
		t.Error("a child that is a string decoded")
	}
}

func TestPixmap(t *testing.T) {
	img := image.NewNRGBA(image.Rect(0, 0, 2, 1))
	img.Set(0, 0, color.NRGBA{R: 0xff, A: 0xff})
	img.Set(1, 0, color.NRGBA{})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	pix, w, h, err := Pixmap(b.Bytes())
	if err != nil || w != 2 || h != 1 || !bytes.Equal(pix, []byte{0xff, 0xff, 0, 0, 0, 0, 0, 0}) {
		t.Errorf("Pixmap = % x %dx%d %v, want ARGB ff ff 00 00 00 00 00 00, 2x1", pix, w, h, err)
	}
	for _, s := range assets.States() {
		if _, w, h, err := Pixmap(assets.PNG(s)); err != nil || w != 64 || h != 64 {
			t.Errorf("the %s icon: %dx%d, %v; the tray shows 64x64 icons", s, w, h, err)
		}
	}
	if _, _, _, err := Pixmap([]byte("not a png")); err == nil {
		t.Error("Pixmap of garbage succeeded")
	}
}

func TestOnlySystrayRace(t *testing.T) {
	systray := "WARNING: DATA RACE\nWrite at fyne.io/systray.refresh()\nPrevious read at fyne.io/systray.(*tray).GetLayout()\n"
	other := "WARNING: DATA RACE\nWrite at main.(*app).Tune()\n"
	tests := []struct {
		name string
		out  string
		want bool
	}{
		{"no race", "PASS\n", false},
		{"systray's", "start\n" + systray, true},
		{"systray's twice", systray + systray, true},
		{"another", other, false},
		{"systray's and another", systray + other, false},
	}
	for _, tt := range tests {
		if got := OnlySystrayRace(tt.out); got != tt.want {
			t.Errorf("%s: OnlySystrayRace = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestWatcherAttach registers a fake item with the Watcher, as fyne
// systray does, and reads and clicks its menu through the Item.
func TestWatcherAttach(t *testing.T) {
	addr := StartBus(t)
	w := NewWatcher(t, Connect(t, addr))
	tray := Connect(t, addr)
	if err := tray.Export(fakeMenu{}, "/StatusNotifierItem/menu", "com.canonical.dbusmenu"); err != nil {
		t.Fatal(err)
	}
	watcher := tray.Object(WatcherName, "/StatusNotifierWatcher")
	if err := watcher.Call(WatcherName+".RegisterStatusNotifierItem", 0, "/StatusNotifierItem").Err; err != nil {
		t.Fatalf("register an item: %v", err)
	}
	it := w.Attach(t, nil)
	if it.Name != tray.Names()[0] {
		t.Errorf("attached to %s, want %s", it.Name, tray.Names()[0])
	}
	m := it.WaitMenu("Quit", func(n *Node) bool { return n.Find("Quit") != nil })
	if m.Find("Quit").ID != 7 {
		t.Errorf("menu:\n%v", m)
	}
	it.Click("Quit")
}

// fakeMenu is a dbusmenu of one Quit item that accepts clicks on it.
type fakeMenu struct{}

// wireNode is a menu item as dbusmenu sends it: (ia{sv}av).
type wireNode struct {
	ID       int32
	Props    map[string]dbus.Variant
	Children []dbus.Variant
}

func (fakeMenu) GetLayout(parent, depth int32, props []string) (uint32, wireNode, *dbus.Error) {
	quit := wireNode{7, map[string]dbus.Variant{"label": dbus.MakeVariant("Quit")}, []dbus.Variant{}}
	return 1, wireNode{0, map[string]dbus.Variant{}, []dbus.Variant{dbus.MakeVariant(quit)}}, nil
}

func (fakeMenu) Event(id int32, event string, data dbus.Variant, ts uint32) *dbus.Error {
	if id != 7 || event != "clicked" {
		return dbus.MakeFailedError(fmt.Errorf("no item %d to %s", id, event))
	}
	return nil
}
