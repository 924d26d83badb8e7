//go:build (linux || freebsd || openbsd || netbsd) && !android

package tray

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	_ "image/png" // the icons are PNG
	"strings"
	"sync"
	"time"

	"fyne.io/systray"
	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/introspect"
	"github.com/godbus/dbus/v5/prop"

	"github.com/ctxfit/ctxfit/assets"
)

// StatusNotifierItem paths and interface, as fyne systray exports them.
const (
	sniPath  = "/StatusNotifierItem"
	sniMenu  = "/StatusNotifierItem/menu"
	sniIface = "org.kde.StatusNotifierItem"
)

// sni extends the StatusNotifierItem that fyne systray (v1.12) exports on
// Linux. systray hard-codes its Status property to "Active" and gives the
// host one pixmap, so a desktop cannot raise an item that needs attention,
// and scales a 64 px image down to the panel. systray talks over the
// process's shared session bus connection (dbus.SessionBus), so sni takes
// the same connection and, once systray has exported its item, exports
// its own org.freedesktop.DBus.Properties at the item's path in place of
// systray's: the same properties, with a Status ctxfit sets (Active, or
// NeedsAttention during a spill, announced with the NewStatus signal) and
// IconPixmap holding every size the icons are drawn at. systray keeps
// exporting the menu and sending NewIcon and NewToolTip when ctxfit
// changes them; hosts then read the values from sni, which ctxfit updates
// first. Nothing of systray is patched or vendored.
type sni struct {
	mu     sync.Mutex
	conn   *dbus.Conn
	props  *prop.Properties
	status string
	icon   assets.State
	tip    string
}

// pixmap is one StatusNotifierItem image: ARGB32 in network byte order.
type pixmap struct {
	W, H int32
	Pix  []byte
}

// toolTip is the StatusNotifierItem ToolTip: icon name, icon pixmaps,
// title, description.
type toolTip struct {
	V0 string
	V1 []pixmap
	V2 string
	V3 string
}

// newTrayItem returns the extension, not yet installed.
func newTrayItem() trayItem { return &sni{status: "Active"} }

// ready waits for systray's item to be exported, then exports sni's
// properties in place of systray's, with the icon, tooltip and status
// set so far. It returns an error when systray's item did not appear in
// time; the tray then works on without sni.
func (s *sni) ready(ctx context.Context) error {
	conn, err := dbus.SessionBus()
	if err != nil {
		return fmt.Errorf("the session bus: %w", err)
	}
	names := conn.Names()
	if len(names) == 0 {
		return fmt.Errorf("no name on the session bus")
	}
	self := conn.Object(names[0], sniPath)
	for {
		var xml string
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		err := self.CallWithContext(cctx, "org.freedesktop.DBus.Introspectable.Introspect", 0).Store(&xml)
		cancel()
		if err == nil && strings.Contains(xml, sniIface) {
			break // systray exported its properties before its introspection data
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("systray did not export its item in time: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	icon, tip := s.icon, s.tip
	ro := func(v any) *prop.Prop { return &prop.Prop{Value: v, Emit: prop.EmitTrue} }
	props, err := prop.Export(conn, sniPath, prop.Map{sniIface: {
		"Status":              ro(s.status),
		"Title":               ro("ctxfit"),
		"Id":                  ro("ctxfit"),
		"Category":            ro("ApplicationStatus"),
		"IconName":            ro(""),
		"IconPixmap":          ro(pixmaps(icon)),
		"AttentionIconName":   ro(""),
		"AttentionIconPixmap": ro(pixmaps(assets.Warning)),
		"IconThemePath":       ro(""),
		"ItemIsMenu":          ro(true),
		"Menu":                ro(dbus.ObjectPath(sniMenu)),
		"ToolTip":             ro(toolTip{V2: tip}),
	}})
	if err != nil {
		return fmt.Errorf("export the item's properties: %w", err)
	}
	node := introspect.Node{Name: sniPath, Interfaces: []introspect.Interface{
		introspect.IntrospectData, prop.IntrospectData, sniIntrospect,
	}}
	conn.Export(introspect.NewIntrospectable(&node), sniPath, "org.freedesktop.DBus.Introspectable")
	s.conn, s.props = conn, props
	// Hosts read the item when it registered; have them read it again.
	for _, sig := range []string{"NewIcon", "NewToolTip"} {
		conn.Emit(sniPath, sniIface+"."+sig)
	}
	conn.Emit(sniPath, sniIface+".NewStatus", s.status)
	return nil
}

// setIcon shows icon, through sni once installed.
func (s *sni) setIcon(icon assets.State) {
	s.mu.Lock()
	if s.props != nil && (icon != s.icon || s.icon == "") {
		s.props.SetMust(sniIface, "IconPixmap", pixmaps(icon))
	}
	s.icon = icon
	s.mu.Unlock()
	systray.SetIcon(assets.PNG(icon)) // sends NewIcon
}

// setTooltip shows tip, through sni once installed.
func (s *sni) setTooltip(tip string) {
	s.mu.Lock()
	if s.props != nil && tip != s.tip {
		s.props.SetMust(sniIface, "ToolTip", toolTip{V2: tip})
	}
	s.tip = tip
	s.mu.Unlock()
	systray.SetTooltip(tip) // sends NewToolTip
}

// setAttention sets Status to NeedsAttention (true) or Active, once
// installed, and tells the host with NewStatus.
func (s *sni) setAttention(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := statusOf(on)
	if st == s.status {
		return
	}
	s.status = st
	if s.props == nil {
		return
	}
	s.props.SetMust(sniIface, "Status", st)
	s.conn.Emit(sniPath, sniIface+".NewStatus", st)
}

func statusOf(attention bool) string {
	if attention {
		return "NeedsAttention"
	}
	return "Active"
}

// pixmaps returns the icon of st at every size it is drawn at.
func pixmaps(st assets.State) []pixmap {
	var px []pixmap
	for _, size := range assets.Sizes() {
		p, err := pngPixmap(assets.PNGAt(st, size))
		if err == nil {
			px = append(px, p)
		}
	}
	return px
}

// pngPixmap converts a PNG into a StatusNotifierItem pixmap: ARGB32, not
// premultiplied (as Qt's and GTK's hosts read it; systray's own
// conversion takes the low byte of premultiplied 16-bit values, which
// garbles the anti-aliased edges).
func pngPixmap(data []byte) (pixmap, error) {
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return pixmap{}, err
	}
	b := img.Bounds()
	pix := make([]byte, 0, b.Dx()*b.Dy()*4)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			pix = append(pix, c.A, c.R, c.G, c.B)
		}
	}
	return pixmap{W: int32(b.Dx()), H: int32(b.Dy()), Pix: pix}, nil
}

// sniIntrospect describes the item's interface for hosts that introspect.
var sniIntrospect = introspect.Interface{
	Name: sniIface,
	Properties: []introspect.Property{
		{Name: "Status", Type: "s", Access: "read"},
		{Name: "Title", Type: "s", Access: "read"},
		{Name: "Id", Type: "s", Access: "read"},
		{Name: "Category", Type: "s", Access: "read"},
		{Name: "IconName", Type: "s", Access: "read"},
		{Name: "IconPixmap", Type: "a(iiay)", Access: "read"},
		{Name: "AttentionIconName", Type: "s", Access: "read"},
		{Name: "AttentionIconPixmap", Type: "a(iiay)", Access: "read"},
		{Name: "IconThemePath", Type: "s", Access: "read"},
		{Name: "ItemIsMenu", Type: "b", Access: "read"},
		{Name: "Menu", Type: "o", Access: "read"},
		{Name: "ToolTip", Type: "(sa(iiay)ss)", Access: "read"},
	},
	Signals: []introspect.Signal{
		{Name: "NewIcon"}, {Name: "NewToolTip"}, {Name: "NewTitle"},
		{Name: "NewAttentionIcon"},
		{Name: "NewStatus", Args: []introspect.Arg{{Name: "status", Type: "s"}}},
	},
	Methods: []introspect.Method{
		{Name: "Activate", Args: []introspect.Arg{{Name: "x", Type: "i", Direction: "in"}, {Name: "y", Type: "i", Direction: "in"}}},
		{Name: "SecondaryActivate", Args: []introspect.Arg{{Name: "x", Type: "i", Direction: "in"}, {Name: "y", Type: "i", Direction: "in"}}},
		{Name: "ContextMenu", Args: []introspect.Arg{{Name: "x", Type: "i", Direction: "in"}, {Name: "y", Type: "i", Direction: "in"}}},
		{Name: "Scroll", Args: []introspect.Arg{{Name: "delta", Type: "i", Direction: "in"}, {Name: "orientation", Type: "s", Direction: "in"}}},
	},
}
