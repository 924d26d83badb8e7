//go:build (linux || freebsd || openbsd || netbsd) && !android

package tray

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/godbus/dbus/v5"

	"github.com/ctxfit/ctxfit/assets"
)

// The freedesktop notification service (Desktop Notifications
// Specification 1.2), which every Linux desktop runs.
const (
	notifyName  = "org.freedesktop.Notifications"
	notifyPath  = "/org/freedesktop/Notifications"
	notifyIface = "org.freedesktop.Notifications"
)

// dbusNotifier shows notifications through org.freedesktop.Notifications
// with action buttons, replaces one per key, closes it when withdrawn, and
// reports the button the user pressed (the ActionInvoked signal). It uses
// a private connection: fyne systray's goroutine on the shared one stops
// at any signal with fewer than three arguments, which ActionInvoked is.
// Without a notification service it falls back to beeep.
type dbusNotifier struct {
	ctx      context.Context
	log      *slog.Logger
	onAction func(key, action string)

	mu      sync.Mutex
	conn    *dbus.Conn
	caps    []string          // the server's capabilities
	ids     map[string]uint32 // notification IDs by key
	keys    map[uint32]string // keys by notification ID
	dialErr error             // why the bus cannot be used; then beeep
}

// newNotifier returns the platform's notifier; onAction receives the key
// of a notification and the ID of the action the user chose in it.
func newNotifier(ctx context.Context, log *slog.Logger, onAction func(key, action string)) notifier {
	return &dbusNotifier{ctx: ctx, log: log, onAction: onAction, ids: map[string]uint32{}, keys: map[uint32]string{}}
}

// connect opens the connection and starts following the signals, once;
// n.mu is held.
func (d *dbusNotifier) connect() error {
	if d.conn != nil || d.dialErr != nil {
		return d.dialErr
	}
	conn, err := dbus.SessionBusPrivateNoAutoStartup(dbus.WithContext(d.ctx))
	if err == nil {
		if err = conn.Auth(nil); err == nil {
			err = conn.Hello()
		}
		if err != nil {
			conn.Close()
		}
	}
	if err != nil {
		d.dialErr = fmt.Errorf("the DBus session bus: %w", err)
		return d.dialErr
	}
	signals := make(chan *dbus.Signal, 16)
	conn.Signal(signals)
	for _, member := range []string{"ActionInvoked", "NotificationClosed"} {
		if err := conn.AddMatchSignal(dbus.WithMatchObjectPath(notifyPath), dbus.WithMatchInterface(notifyIface), dbus.WithMatchMember(member)); err != nil {
			conn.Close()
			d.dialErr = fmt.Errorf("follow the notifications' %s: %w", member, err)
			return d.dialErr
		}
	}
	d.conn = conn
	go d.follow(signals)
	go func() {
		<-d.ctx.Done()
		conn.Close()
	}()
	return nil
}

// follow passes actions on and forgets closed notifications, and those
// acted on: servers close a notification once one of its actions is
// invoked, and a later notification with the same key must be a new one,
// not a replacement of one that is gone (which some servers update in
// place, unseen).
func (d *dbusNotifier) follow(signals <-chan *dbus.Signal) {
	for sig := range signals {
		if len(sig.Body) < 2 {
			continue
		}
		id, _ := sig.Body[0].(uint32)
		d.mu.Lock()
		key, known := d.keys[id]
		switch sig.Name {
		case notifyIface + ".NotificationClosed", notifyIface + ".ActionInvoked":
			if known {
				delete(d.keys, id)
				if d.ids[key] == id {
					delete(d.ids, key)
				}
			}
		}
		d.mu.Unlock()
		if action, _ := sig.Body[1].(string); known && sig.Name == notifyIface+".ActionInvoked" && action != "default" {
			d.onAction(key, action)
		}
	}
}

func (d *dbusNotifier) notify(n Notification) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.connect(); err != nil {
		return beeepNotify(n)
	}
	obj := d.conn.Object(notifyName, notifyPath)
	if d.caps == nil {
		if err := obj.CallWithContext(d.ctx, notifyIface+".GetCapabilities", 0).Store(&d.caps); err != nil {
			var de dbus.Error
			if errors.As(err, &de) && de.Name == "org.freedesktop.DBus.Error.ServiceUnknown" {
				return beeepNotify(n) // no notification service: notify-send may still work
			}
			return fmt.Errorf("ask the notification service what it shows: %w", err)
		}
	}
	msg, actions := n.Message, []string{}
	if slices.Contains(d.caps, "actions") {
		for _, a := range n.Actions {
			actions = append(actions, a.ID, a.Label)
		}
	} else {
		msg += menuHint(n)
	}
	if slices.Contains(d.caps, "body-markup") {
		msg = markupEscape(msg)
	}
	hints := map[string]dbus.Variant{"urgency": dbus.MakeVariant(byte(1))}
	timeout := int32(-1) // the server's default
	if n.Persistent {
		hints["urgency"] = dbus.MakeVariant(byte(2)) // critical: servers keep it until closed
		timeout = 0                                  // never expires
	}
	if img, ok := imageData(assets.PNG(n.Icon)); ok {
		hints["image-data"] = dbus.MakeVariant(img)
	}
	var replaces uint32
	if n.Key != "" {
		replaces = d.ids[n.Key]
	}
	var id uint32
	err := obj.CallWithContext(d.ctx, notifyIface+".Notify", 0,
		"ctxfit", replaces, "", n.Title, msg, actions, hints, timeout).Store(&id)
	if err != nil {
		return fmt.Errorf("show a notification: %w", err)
	}
	if n.Key != "" {
		if old, ok := d.ids[n.Key]; ok && old != id {
			delete(d.keys, old)
		}
		d.ids[n.Key], d.keys[id] = id, n.Key
	}
	return nil
}

func (d *dbusNotifier) withdraw(key string) error {
	d.mu.Lock()
	id, ok := d.ids[key]
	conn := d.conn
	if ok {
		delete(d.ids, key)
		delete(d.keys, id)
	}
	d.mu.Unlock()
	if !ok || conn == nil {
		return nil
	}
	err := conn.Object(notifyName, notifyPath).CallWithContext(d.ctx, notifyIface+".CloseNotification", 0, id).Err
	if err != nil {
		return fmt.Errorf("close notification %d: %w", id, err)
	}
	return nil
}

// markupEscape escapes the characters that notification body markup
// would read as tags or entities.
func markupEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// notifyImage is the image-data hint: width, height, rowstride, has
// alpha, bits per sample, channels, RGBA bytes.
type notifyImage struct {
	W, H, Stride int32
	Alpha        bool
	Bits, Chans  int32
	Data         []byte
}

// imageData converts a PNG into the image-data hint.
func imageData(data []byte) (notifyImage, bool) {
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return notifyImage{}, false
	}
	b := img.Bounds()
	pix := make([]byte, 0, b.Dx()*b.Dy()*4)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			pix = append(pix, c.R, c.G, c.B, c.A)
		}
	}
	return notifyImage{W: int32(b.Dx()), H: int32(b.Dy()), Stride: int32(4 * b.Dx()), Alpha: true, Bits: 8, Chans: 4, Data: pix}, true
}
