//go:build cgo || !darwin

package tray

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"fyne.io/systray"

	"github.com/ctxfit/ctxfit/assets"
	"github.com/ctxfit/ctxfit/hub"
	"github.com/ctxfit/ctxfit/ollama"
)

// ran records that systray.Run was called: it keeps process-wide state and
// runs once per process.
var ran atomic.Bool

// Run shows the tray until the user picks Quit (it returns nil) or ctx ends
// (it returns ctx's error). It must be called from the main goroutine, and
// once per process. Without a tray host it returns an error wrapping
// ErrNoTray within a few seconds (or after opts.HostWait), having shown
// nothing; the caller may then carry on without a tray and call Run again
// later.
func Run(ctx context.Context, b Backend, opts Options) error {
	if ran.Load() {
		return errAgain
	}
	if err := waitForHost(ctx, opts.HostWait); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return run(ctx, b, opts)
}

var errAgain = errors.New("tray: the system tray already ran in this process; it can run once")

// run runs systray once a tray host is known to be there.
func run(ctx context.Context, b Backend, opts Options) (err error) {
	if !ran.CompareAndSwap(false, true) {
		return errAgain
	}
	opts.defaults()
	m := newMenu(b, opts)
	m.ctx, m.cancel = context.WithCancel(ctx)
	m.notifier = funcNotifier{show: opts.Notify, close: opts.Withdraw}
	if opts.Notify == nil {
		m.notifier = newNotifier(m.ctx, opts.Logger, m.action)
	}
	defer func() {
		if r := recover(); r != nil && !m.quitClicked.Load() {
			// fyne systray panics in places (Quit without a session bus).
			err = fmt.Errorf("%w: the system tray failed: %v", ErrNoTray, r)
		}
		m.stop()
	}()
	m.first = m.st.view()
	if setIconBeforeRun {
		beforeRun(m.item, m.first)
	}
	go func() {
		<-m.ctx.Done()
		systray.Quit()
	}()
	systray.Run(m.onReady, nil)
	if m.quitClicked.Load() {
		return nil
	}
	return ctx.Err()
}

// menu is the tray's menu and its event loop, after Tailscale's
// client/systray: one mutex for the whole state, a buffered rebuild
// channel, and one loop that receives every click. The systray items are
// owned by the rebuild goroutine; clicks read the view it last applied.
type menu struct {
	b    Backend
	opts Options

	ctx         context.Context
	cancel      context.CancelFunc
	quitClicked atomic.Bool
	first       view     // the view before systray runs
	item        trayItem // the icon in the panel
	notifier    notifier

	mu     sync.Mutex // guards everything below
	st     *state
	others []*state // the states of Options.Others, in order
	// otherTunes are the tunes the menu started on each of Options.Others;
	// visibleOthers what their sections show now.
	otherTunes    []map[string]context.CancelFunc
	visibleOthers []section
	visible       view // what the items show now: clicks act on it
	tunes         map[string]context.CancelFunc
	// Settings changes run in click order, one lane per setting, so that a
	// login service that hangs does not hold up the others. pending counts
	// changes not finished, so that an update from before a change does
	// not undo it on screen.
	lanes   map[action]*serial
	pending map[action]int

	rebuildCh chan struct{}
	clicks    chan click
	notes     chan noteOp
	calls     sync.WaitGroup // tunes and fixes, waited for at exit
}

func newMenu(b Backend, opts Options) *menu {
	st := newState()
	st.version = opts.Version
	others := make([]*state, len(opts.Others))
	otherTunes := make([]map[string]context.CancelFunc, len(opts.Others))
	for i := range others {
		others[i], otherTunes[i] = newState(), map[string]context.CancelFunc{}
	}
	return &menu{
		others:     others,
		otherTunes: otherTunes,
		b:          b,
		opts:       opts,
		item:       newTrayItem(),
		st:         st,
		tunes:      map[string]context.CancelFunc{},
		lanes:      map[action]*serial{actAutoFix: {}, actNotify: {}, actLogin: {}},
		pending:    map[action]int{},
		rebuildCh:  make(chan struct{}, 1),
		clicks:     make(chan click, 256),
		notes:      make(chan noteOp, 32),
	}
}

// click is one click on a menu item; slot is the model's place in the
// menu, fix the Fix item's place in the model's submenu.
type click struct {
	act       action
	slot, fix int
	srv       int // 0: the Backend's server, i: Options.Others[i-1]
}

// items are the systray menu items, created once in menu order.
type items struct {
	title, header, status  *systray.MenuItem
	problem                *systray.MenuItem
	about, aboutInfo       *systray.MenuItem
	aboutPage              *systray.MenuItem
	models                 [maxModels]modelItems
	autoFix, notify, login *systray.MenuItem
	openLog, quit          *systray.MenuItem
	others                 []sectionItems // a section per Options.Others
}

type modelItems struct {
	line, tune, info, note *systray.MenuItem
	fixes                  [maxFixes]*systray.MenuItem
}

// clickBuffer is how many clicks on one item may wait. fyne systray drops
// a click when its send on ClickedCh would block, and DBus delivers clicks
// concurrently; a buffered ClickedCh takes them all.
const clickBuffer = 64

func (m *menu) onReady() {
	defer m.recoverTo("build the menu")
	var it items
	it.title = systray.AddMenuItem("", "")
	it.header = systray.AddMenuItem("", "")
	it.status = systray.AddMenuItem("", "")
	it.problem = systray.AddMenuItem("", "")
	for i := range it.models {
		it.models[i] = m.addModel(click{slot: i})
	}
	it.others = make([]sectionItems, len(m.others))
	for i := range it.others {
		it.others[i] = m.addSection(i + 1)
	}
	systray.AddSeparator()
	it.autoFix = systray.AddMenuItemCheckbox("Keep client configs fixed", "", false)
	it.notify = systray.AddMenuItemCheckbox("Notifications", "", false)
	it.login = systray.AddMenuItemCheckbox("Start at login", "", false)
	systray.AddSeparator()
	it.openLog = systray.AddMenuItem("Open log", "")
	it.about = systray.AddMenuItem("About ctxfit", "")
	it.aboutInfo = it.about.AddSubMenuItem("", "")
	it.aboutPage = it.about.AddSubMenuItem("Project page", "")
	systray.AddSeparator()
	it.quit = systray.AddMenuItem("Quit", "Stop ctxfit")
	for item, a := range map[*systray.MenuItem]action{
		it.autoFix: actAutoFix, it.notify: actNotify, it.login: actLogin,
		it.openLog: actOpenLog, it.aboutPage: actAboutPage, it.quit: actQuit,
	} {
		m.forward(item, click{act: a})
	}

	// Show the first view before onReady returns: tray hosts read the
	// layout only after that.
	m.mu.Lock()
	v := m.st.view()
	m.visible = v
	secs := m.sections()
	m.mu.Unlock()
	showSections(it.others, secs, nil)
	shown := v
	if setIconBeforeRun {
		// The icon, tooltip and status are those beforeRun set.
		shown.Icon, shown.Tooltip, shown.Attention = m.first.Icon, m.first.Tooltip, m.first.Attention
	}
	show(m.item, &it, v, nil, !setIconBeforeRun)

	go m.rebuildLoop(&it, shown, secs)
	go m.clickLoop()
	go m.notifyLoop()
	go m.watch()
	for i, b := range m.opts.Others {
		go m.watchOther(i, b)
	}
	m.refresh()
}

// addModel adds the items of one model's slot: its line and submenu,
// whose clicks carry at's server and slot.
func (m *menu) addModel(at click) modelItems {
	line := systray.AddMenuItem("", "")
	mi := modelItems{line: line, tune: line.AddSubMenuItem("Tune context", "")}
	m.forward(mi.tune, click{act: actTune, slot: at.slot, srv: at.srv})
	for j := range mi.fixes {
		mi.fixes[j] = line.AddSubMenuItem("", "")
		m.forward(mi.fixes[j], click{act: actFix, slot: at.slot, fix: j, srv: at.srv})
	}
	mi.info = line.AddSubMenuItem("", "")
	mi.note = line.AddSubMenuItem("", "")
	return mi
}

// forward passes every click on item to the click loop. It swaps item's
// ClickedCh for a buffered channel before the menu is shown, so that
// systray's non-blocking send never finds it full; the later updates of
// the item (under systray's item lock) publish the new channel to the
// goroutines that deliver clicks.
func (m *menu) forward(item *systray.MenuItem, c click) {
	ch := make(chan struct{}, clickBuffer)
	item.ClickedCh = ch
	go func() {
		for {
			select {
			case <-ch:
				select {
				case m.clicks <- c:
				case <-m.ctx.Done():
					return
				}
			case <-m.ctx.Done():
				return
			}
		}
	}()
}

// signal asks for a rebuild of the menu; it never blocks.
func (m *menu) signal() {
	select {
	case m.rebuildCh <- struct{}{}:
	default:
	}
}

// startupQuiet is how long the icon and tooltip stay as beforeRun set
// them. fyne systray exports them while it starts and loses a change made
// in that moment; changing them later is safe.
const startupQuiet = 500 * time.Millisecond

func (m *menu) rebuildLoop(it *items, shown view, shownSecs []section) {
	defer m.recoverTo("update the menu")
	iconsOn := !setIconBeforeRun
	quiet := time.NewTimer(startupQuiet)
	defer quiet.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-quiet.C:
			iconsOn = true
			go m.itemReady()
		case <-m.rebuildCh:
		}
		m.mu.Lock()
		v := m.st.view()
		m.visible = v
		v = withOthers(v, m.st, m.others)
		secs := m.sections()
		m.mu.Unlock()
		showSections(it.others, secs, shownSecs)
		shownSecs = secs
		show(m.item, it, v, &shown, iconsOn)
		if !iconsOn {
			v.Icon, v.Tooltip, v.Attention = shown.Icon, shown.Tooltip, shown.Attention
		}
		shown = v
	}
}

// itemReady extends the panel's item once systray has exported it (on
// Linux: the NeedsAttention status and an icon at every size).
func (m *menu) itemReady() {
	ctx, cancel := context.WithTimeout(m.ctx, 10*time.Second)
	defer cancel()
	if err := m.item.ready(ctx); err != nil && m.ctx.Err() == nil {
		m.opts.Logger.Warn("tray: the icon cannot ask for attention or show sized icons", "err", err)
	}
}

// show makes the items show v; have is what they show now (nil: nothing
// yet). Only what changed is sent, since every change is a DBus signal.
// With icons false the icon, tooltip and status are left alone.
func show(t trayItem, it *items, v view, have *view, icons bool) {
	var was view
	first := have == nil
	if !first {
		was = *have
	}
	// The tooltip first: hosts read both when the icon's NewIcon signal
	// comes.
	if icons && (first || v.Tooltip != was.Tooltip) {
		t.setTooltip(v.Tooltip)
	}
	if icons && (first || v.Icon != was.Icon) {
		t.setIcon(v.Icon)
	}
	if icons && (first || v.Attention != was.Attention) {
		t.setAttention(v.Attention)
	}
	set(it.title, v.Title, was.Title, first)
	set(it.header, v.Header, was.Header, first)
	set(it.status, v.Status, was.Status, first)
	set(it.problem, v.Problem, was.Problem, first)
	showModels(&it.models, &v.Models, &was.Models, first)
	set(it.autoFix, v.AutoFix, was.AutoFix, first)
	set(it.notify, v.Notify, was.Notify, first)
	set(it.login, v.Login, was.Login, first)
	set(it.openLog, v.OpenLog, was.OpenLog, first)
	set(it.about, v.About, was.About, first)
	set(it.aboutInfo, v.AboutInfo, was.AboutInfo, first)
	set(it.aboutPage, v.AboutPage, was.AboutPage, first)
}

// showModels makes the model items show v; was is what they show now.
func showModels(it *[maxModels]modelItems, v, was *[maxModels]modelView, first bool) {
	for i, mi := range it {
		mv, mw := v[i], was[i]
		set(mi.line, mv.Line, mw.Line, first)
		set(mi.tune, mv.Tune, mw.Tune, first)
		for j, f := range mi.fixes {
			set(f, mv.Fixes[j].Item, mw.Fixes[j].Item, first)
		}
		set(mi.info, mv.Info, mw.Info, first)
		set(mi.note, mv.Note, mw.Note, first)
	}
}

func set(item *systray.MenuItem, want, have itemView, first bool) {
	if first || want.Title != have.Title {
		item.SetTitle(want.Title)
	}
	if first || want.Tooltip != have.Tooltip {
		item.SetTooltip(want.Tooltip)
	}
	if first || want.Disabled != have.Disabled {
		if want.Disabled {
			item.Disable()
		} else {
			item.Enable()
		}
	}
	if first || want.Checked != have.Checked {
		if want.Checked {
			item.Check()
		} else {
			item.Uncheck()
		}
	}
	if first || want.Hidden != have.Hidden {
		if want.Hidden {
			item.Hide()
		} else {
			item.Show()
		}
	}
}

// watch follows the daemon's updates: each carries the whole state, so
// nothing is read again per update.
func (m *menu) watch() {
	defer m.recoverTo("follow the daemon")
	ch, stop := m.b.Subscribe()
	defer stop()
	m.update(hub.Update{State: m.b.State()})
	for {
		select {
		case <-m.ctx.Done():
			return
		case u, ok := <-ch:
			if !ok {
				return
			}
			m.update(u)
		}
	}
}

func (m *menu) update(u hub.Update) {
	now := time.Now()
	m.mu.Lock()
	notes := m.st.apply(u, now)
	withdrawn := m.st.takeWithdrawn()
	m.mu.Unlock()
	for _, n := range notes {
		m.send(noteOp{n: n})
	}
	for _, k := range withdrawn {
		m.send(noteOp{withdraw: k})
	}
	m.signal()
}

// noteOp is a notification to show, or the key of one to withdraw.
type noteOp struct {
	n        Notification
	withdraw string
}

// send queues op for the notify loop without blocking.
func (m *menu) send(op noteOp) {
	select {
	case m.notes <- op:
	default:
		m.opts.Logger.Warn("tray: too many notifications at once; dropped one", "title", op.n.Title, "withdraw", op.withdraw)
	}
}

func (m *menu) notifyLoop() {
	defer m.recoverTo("show notifications")
	for {
		select {
		case <-m.ctx.Done():
			return
		case op := <-m.notes:
			if op.withdraw != "" {
				if err := m.notifier.withdraw(op.withdraw); err != nil {
					m.opts.Logger.Warn("tray: cannot close a notification", "key", op.withdraw, "err", err)
				}
				continue
			}
			if err := m.notifier.notify(op.n); err != nil {
				m.opts.Logger.Warn("tray: cannot show a desktop notification", "title", op.n.Title, "err", err)
			}
		}
	}
}

// action acts on a notification's button: key names the notification
// (prefixed with the server's name for another server's, see watchOther),
// id the action ("fix", "tune"), as the menu items of that model on that
// server would: "fix" fixes every client that asks the model for more
// than fits; "tune" on a re-tune's notification tunes its model, loaded
// or not.
func (m *menu) action(key, id string) {
	defer m.recoverTo("act on a notification")
	m.mu.Lock()
	defer m.mu.Unlock()
	defer m.signal()
	srv := m.server(0)
	for i, st := range m.others {
		if rest, ok := strings.CutPrefix(key, serverName(st.snap.Host)+" "); ok {
			srv, key = m.server(i+1), rest
		}
	}
	if model, ok := strings.CutPrefix(key, "retune "); ok {
		m.opts.Logger.Info("tray: notification action", "action", id, "model", model, "host", srv.st.snap.Host)
		if id == "tune" {
			m.startTune(srv, model)
		}
		return
	}
	k, ok := strings.CutPrefix(key, "spill ")
	if !ok {
		return
	}
	var name string
	for _, md := range srv.st.listed() {
		if ollama.ModelKey(md.Name) == k {
			name = md.Name
		}
	}
	m.opts.Logger.Info("tray: notification action", "action", id, "model", name, "host", srv.st.snap.Host)
	switch {
	case name == "":
		return // unloaded since
	case id == "fix":
		for _, c := range srv.st.clientsAsking(name) {
			m.startFix(srv, name, c)
		}
	case id == "tune":
		m.startTune(srv, name)
	}
}

// refresh reads what the daemon's updates do not carry: the login service
// (a systemctl or launchctl call, so only at start and after a click on
// Start at login) and the log's path.
func (m *menu) refresh() {
	go func() {
		defer m.recoverTo("read the login service")
		login, loginErr := m.b.StartAtLogin()
		logPath := m.b.LogPath()
		m.mu.Lock()
		st := m.st
		if m.pending[actLogin] == 0 {
			st.login, st.loginKnown, st.loginErr = login, true, ""
			if loginErr != nil {
				st.loginErr = loginErr.Error()
			}
		}
		st.logPath = logPath
		m.mu.Unlock()
		m.signal()
	}()
}

func (m *menu) clickLoop() {
	defer m.recoverTo("handle a click")
	for {
		select {
		case <-m.ctx.Done():
			return
		case c := <-m.clicks:
			m.handle(c)
		}
	}
}

// handle acts on one click. It never waits for the backend: calls run in
// goroutines, settings changes in click order on their lanes.
func (m *menu) handle(c click) {
	m.mu.Lock()
	defer m.mu.Unlock()
	defer m.signal()
	st := m.st
	switch c.act {
	case actQuit:
		m.quitClicked.Store(true)
		m.cancel()
	case actTune:
		srv := m.server(c.srv)
		name := m.visibleModels(c.srv)[c.slot].Name
		if name == "" {
			return
		}
		k := ollama.ModelKey(name)
		if cancel, ok := srv.tunes[k]; ok {
			cancel()
			srv.st.tuning[k] = tuneProgress{name, true}
			return
		}
		m.startTune(srv, name)
	case actFix:
		mv := m.visibleModels(c.srv)[c.slot]
		m.startFix(m.server(c.srv), mv.Name, mv.Fixes[c.fix].Client)
	case actAutoFix:
		if !st.polled {
			return
		}
		on := !st.hs.Settings.AutoFix
		st.hs.Settings.AutoFix = on
		st.pending[actAutoFix] = on
		m.change(c.act, func() error { return m.b.SetAutoFix(on) })
	case actNotify:
		if !st.polled {
			return
		}
		on := st.hs.Settings.NotificationsOff
		st.hs.Settings.NotificationsOff = !on
		st.pending[actNotify] = on
		m.change(c.act, func() error { return m.b.SetNotifications(on) })
	case actLogin:
		if !st.loginKnown || st.loginErr != "" {
			return
		}
		on := !st.login
		st.login = on
		m.change(c.act, func() error { return m.b.SetStartAtLogin(on) })
	case actOpenLog:
		m.openFile(st.logPath)
	case actAboutPage:
		m.openFile(projectPage)
	}
}

// startTune starts a tune of name unless one runs; m.mu is held.
func (m *menu) startTune(srv server, name string) {
	if len(srv.tunes) > 0 || len(srv.st.hs.Tunes) > 0 {
		return // one tune at a time: two would evict each other's loads
	}
	k := ollama.ModelKey(name)
	ctx, cancel := context.WithCancel(m.ctx)
	srv.tunes[k] = cancel
	srv.st.tuning[k] = tuneProgress{model: name}
	delete(srv.st.results, k)
	m.calls.Add(1)
	go m.tune(ctx, srv, name, k)
}

// startFix starts writing the tuned values into client's config when the
// menu offers it for model name; m.mu is held.
func (m *menu) startFix(srv server, name, client string) {
	if name == "" || client == "" || srv.st.fixing[client] || !srv.st.fixEnabled(name, client) {
		return
	}
	srv.st.fixing[client] = true
	delete(srv.st.results, ollama.ModelKey(name))
	m.calls.Add(1)
	go m.fix(srv, name, client)
}

// change runs a change of setting a on its lane; m.mu is held.
func (m *menu) change(a action, f func() error) {
	m.pending[a]++
	m.st.settingsErr = ""
	m.lanes[a].do(func() {
		defer m.recoverTo("change a setting")
		err := f()
		m.mu.Lock()
		m.pending[a]--
		if m.pending[a] == 0 {
			delete(m.st.pending, a)
		}
		if err != nil {
			m.st.settingsErr = "Could not save the setting: " + err.Error()
			m.opts.Logger.Warn("tray: cannot change a setting", "err", err)
		}
		m.mu.Unlock()
		if a == actLogin {
			m.refresh() // read back what the login service has, failed or not
		}
		if err != nil {
			m.update(hub.Update{State: m.b.State()}) // show the setting as it is
		}
	})
}

func (m *menu) openFile(path string) {
	if path == "" {
		return
	}
	go func() {
		defer m.recoverTo("open a file")
		if err := m.opts.Open(m.ctx, path); err != nil {
			m.opts.Logger.Warn("tray: cannot open a file", "path", path, "err", err)
			// Say so, with the path, so that it can be opened by hand.
			m.send(noteOp{n: Notification{Title: "Cannot open " + filepath.Base(path),
				Message: "No program opened it. It is at " + path, Icon: assets.Warning}})
		}
	}()
}

func (m *menu) tune(ctx context.Context, srv server, name, k string) {
	defer m.calls.Done()
	defer m.recoverTo("tune " + name)
	err := srv.b.Tune(ctx, name, nil) // progress comes with the daemon's updates
	m.mu.Lock()
	delete(srv.tunes, k)
	st := srv.st
	delete(st.tuning, k)
	var n *Notification
	switch {
	case ctx.Err() != nil && m.ctx.Err() == nil:
		st.results[k] = "Tuning cancelled"
	case err != nil:
		st.results[k] = "Tune failed: " + err.Error()
		m.opts.Logger.Warn("tray: tune failed", "model", name, "err", err)
		n = &Notification{Title: "Tuning " + name + " failed", Message: err.Error(), Icon: assets.Warning}
	}
	notify := n != nil && !st.hs.Settings.NotificationsOff
	m.mu.Unlock()
	if notify {
		m.send(noteOp{n: *n})
	}
	m.signal()
}

func (m *menu) fix(srv server, name, client string) {
	defer m.calls.Done()
	defer m.recoverTo("fix " + client)
	err := srv.b.Fix(m.ctx, client)
	k := ollama.ModelKey(name)
	m.mu.Lock()
	st := srv.st
	delete(st.fixing, client)
	st.quietFix[client] = time.Now().Add(manualFixQuiet)
	if err != nil {
		m.opts.Logger.Warn("tray: fix failed", "client", client, "model", name, "err", err)
		st.results[k] = "Fix failed: " + err.Error()
	} else {
		st.results[k] = client + "'s config was updated"
	}
	m.mu.Unlock()
	m.signal()
}

// stop ends everything Run started, waiting a little for tunes and fixes
// to notice: a cancelled tune puts the model back as it found it.
func (m *menu) stop() {
	m.cancel()
	done := make(chan struct{})
	go func() {
		m.calls.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		m.opts.Logger.Warn("tray: quit while a tune or a fix was still running")
	}
}

// recoverTo keeps a panic in the tray's own goroutines from ending ctxfit:
// it is logged, and the tray closes.
func (m *menu) recoverTo(what string) {
	if r := recover(); r != nil {
		m.opts.Logger.Error("tray: internal error; closing the tray", "while", what, "panic", r)
		m.cancel()
	}
}

// serial runs functions one at a time, in the order given, without ever
// blocking the caller.
type serial struct {
	mu      sync.Mutex
	queue   []func()
	running bool
}

func (s *serial) do(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, f)
	if s.running {
		return
	}
	s.running = true
	go func() {
		for {
			s.mu.Lock()
			if len(s.queue) == 0 {
				s.running = false
				s.mu.Unlock()
				return
			}
			f := s.queue[0]
			s.queue = s.queue[1:]
			s.mu.Unlock()
			f()
		}
	}()
}
