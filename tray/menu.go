//go:build cgo || !darwin

package tray

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"fyne.io/systray"

	"github.com/ctxfit/ctxfit/assets"
	"github.com/ctxfit/ctxfit/ollama"
	"github.com/ctxfit/ctxfit/watch"
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

	mu           sync.Mutex // guards everything below
	st           *state
	visible      view // what the items show now: clicks act on it
	tunes        map[string]context.CancelFunc
	refreshing   bool
	refreshAgain bool
	refreshed    time.Time // when the last refresh began
	models       string    // the loaded models at that refresh
	// Settings changes run in click order, one lane per setting, so that a
	// login service that hangs does not hold up the others. pending counts
	// changes not finished, gen all changes, so that a refresh that read
	// the backend before a change does not undo it on screen.
	lanes   map[action]*serial
	pending map[action]int
	gen     map[action]int

	rebuildCh chan struct{}
	clicks    chan click
	notes     chan noteOp
	calls     sync.WaitGroup // tunes and fixes, waited for at exit
}

func newMenu(b Backend, opts Options) *menu {
	st := newState()
	st.version = opts.Version
	return &menu{
		b:         b,
		opts:      opts,
		item:      newTrayItem(),
		st:        st,
		tunes:     map[string]context.CancelFunc{},
		lanes:     map[action]*serial{actAutoFix: {}, actNotify: {}, actLogin: {}},
		pending:   map[action]int{},
		gen:       map[action]int{},
		rebuildCh: make(chan struct{}, 1),
		clicks:    make(chan click, 256),
		notes:     make(chan noteOp, 32),
	}
}

// action names what a click asks for.
type action int

const (
	actTune action = iota
	actFix
	actAutoFix
	actNotify
	actLogin
	actOpenConfig
	actOpenLog
	actAboutPage
	actQuit
)

// click is one click on a menu item; slot is the model's place in the menu.
type click struct {
	act  action
	slot int
}

// items are the systray menu items, created once in menu order.
type items struct {
	title, header, status     *systray.MenuItem
	problem                   *systray.MenuItem
	models                    [maxModels]modelItems
	autoFix, notify, login    *systray.MenuItem
	openConfig, openLog, quit *systray.MenuItem
	about, aboutInfo          *systray.MenuItem
	aboutPage                 *systray.MenuItem
}

type modelItems struct {
	line, tune, fix, info, note *systray.MenuItem
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
		line := systray.AddMenuItem("", "")
		it.models[i] = modelItems{
			line: line,
			tune: line.AddSubMenuItem("Tune context", ""),
			fix:  line.AddSubMenuItem("Fix Continue now", ""),
			info: line.AddSubMenuItem("", ""),
			note: line.AddSubMenuItem("", ""),
		}
		m.forward(it.models[i].tune, click{actTune, i})
		m.forward(it.models[i].fix, click{actFix, i})
	}
	systray.AddSeparator()
	it.autoFix = systray.AddMenuItemCheckbox("Fix Continue automatically", "", false)
	it.notify = systray.AddMenuItemCheckbox("Notifications", "", false)
	it.login = systray.AddMenuItemCheckbox("Start at login", "", false)
	systray.AddSeparator()
	it.openConfig = systray.AddMenuItem("Open Continue config", "")
	it.openLog = systray.AddMenuItem("Open log", "")
	systray.AddSeparator()
	it.about = systray.AddMenuItem("About ctxfit", "")
	it.aboutInfo = it.about.AddSubMenuItem("", "")
	it.aboutPage = it.about.AddSubMenuItem("Project page", "")
	it.quit = systray.AddMenuItem("Quit", "Stop ctxfit")
	for item, a := range map[*systray.MenuItem]action{
		it.autoFix: actAutoFix, it.notify: actNotify, it.login: actLogin,
		it.openConfig: actOpenConfig, it.openLog: actOpenLog, it.aboutPage: actAboutPage,
		it.quit: actQuit,
	} {
		m.forward(item, click{act: a})
	}

	// Show the first view before onReady returns: tray hosts read the
	// layout only after that.
	m.mu.Lock()
	v := m.st.view()
	m.visible = v
	m.mu.Unlock()
	shown := v
	if setIconBeforeRun {
		// The icon, tooltip and status are those beforeRun set.
		shown.Icon, shown.Tooltip, shown.Attention = m.first.Icon, m.first.Tooltip, m.first.Attention
	}
	show(m.item, &it, v, nil, !setIconBeforeRun)

	go m.rebuildLoop(&it, shown)
	go m.clickLoop()
	go m.notifyLoop()
	go m.watch()
	m.refresh()
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

func (m *menu) rebuildLoop(it *items, shown view) {
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
		m.mu.Unlock()
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
	for i, mi := range it.models {
		mv, mw := v.Models[i], was.Models[i]
		set(mi.line, mv.Line, mw.Line, first)
		set(mi.tune, mv.Tune, mw.Tune, first)
		set(mi.fix, mv.Fix, mw.Fix, first)
		set(mi.info, mv.Info, mw.Info, first)
		set(mi.note, mv.Note, mw.Note, first)
	}
	set(it.autoFix, v.AutoFix, was.AutoFix, first)
	set(it.notify, v.Notify, was.Notify, first)
	set(it.login, v.Login, was.Login, first)
	set(it.openConfig, v.OpenConfig, was.OpenConfig, first)
	set(it.openLog, v.OpenLog, was.OpenLog, first)
	set(it.about, v.About, was.About, first)
	set(it.aboutInfo, v.AboutInfo, was.AboutInfo, first)
	set(it.aboutPage, v.AboutPage, was.AboutPage, first)
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

// watch follows the backend's updates.
func (m *menu) watch() {
	defer m.recoverTo("follow the watcher")
	ch, stop := m.b.Subscribe()
	defer stop()
	m.update(watch.Update{Snapshot: m.b.Snapshot()})
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

// refreshEvery is how often the backend is read again while nothing
// happens, to notice edits of Continue's config made by hand.
const refreshEvery = 10 * time.Second

func (m *menu) update(u watch.Update) {
	now := time.Now()
	m.mu.Lock()
	notes := m.st.apply(u, now)
	withdrawn := m.st.takeWithdrawn()
	stale := len(u.Events) > 0 || m.st.loaded() != m.models || now.Sub(m.refreshed) >= refreshEvery
	m.mu.Unlock()
	for _, n := range notes {
		m.send(noteOp{n: n})
	}
	for _, k := range withdrawn {
		m.send(noteOp{withdraw: k})
	}
	m.signal()
	if stale {
		m.refresh()
	}
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

// action acts on a notification's button: key names the notification,
// id the action ("fix", "tune"), as the menu items of that model would.
func (m *menu) action(key, id string) {
	defer m.recoverTo("act on a notification")
	k, ok := strings.CutPrefix(key, "spill ")
	if !ok {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	defer m.signal()
	var name string
	for _, md := range m.st.listed() {
		if ollama.ModelKey(md.Name) == k {
			name = md.Name
		}
	}
	m.opts.Logger.Info("tray: notification action", "action", id, "model", name)
	switch {
	case name == "":
		return // unloaded since
	case id == "fix":
		m.startFix(name)
	case id == "tune" && len(m.tunes) == 0:
		m.startTune(name)
	}
}

// refresh reads from the backend what the snapshots do not carry: the
// settings, the login service, Continue's config. It runs at start, after
// clicks, when the loaded models change or events come, and every
// refreshEvery. One read runs at a time; a request during one runs again
// after it.
func (m *menu) refresh() {
	m.mu.Lock()
	if m.refreshing {
		m.refreshAgain = true
		m.mu.Unlock()
		return
	}
	m.refreshing = true
	m.mu.Unlock()
	go func() {
		defer m.recoverTo("read the settings")
		for {
			m.mu.Lock()
			m.refreshAgain = false
			m.refreshed, m.models = time.Now(), m.st.loaded()
			gen := maps.Clone(m.gen)
			var names []string
			if m.st.snap.Reachable {
				for _, md := range m.st.snap.Models {
					names = append(names, md.Name)
				}
			}
			m.mu.Unlock()

			settings, settingsErr := m.b.Settings()
			login, loginErr := m.b.StartAtLogin()
			path, logPath := m.b.ContinueConfigPath(), m.b.LogPath()
			asks := map[string]ask{}
			for _, n := range names {
				client, n2, ok := m.b.ClientContext(n)
				asks[ollama.ModelKey(n)] = ask{client, n2, ok}
			}

			m.mu.Lock()
			st := m.st
			st.readErr = ""
			switch {
			case settingsErr != nil:
				st.readErr = "Cannot read ctxfit's settings: " + settingsErr.Error()
			default:
				if m.settled(actAutoFix, gen) {
					st.settings.AutoFix = settings.AutoFix
				}
				if m.settled(actNotify, gen) {
					st.settings.NotificationsOff = settings.NotificationsOff
				}
				st.settingsKnown = true
			}
			if m.settled(actLogin, gen) {
				st.login, st.loginKnown, st.loginErr = login, true, ""
				if loginErr != nil {
					st.loginErr = loginErr.Error()
				}
			}
			st.continuePath, st.logPath, st.asks, st.infoKnown = path, logPath, asks, true
			held := st.heldNotes()
			again := m.refreshAgain && m.ctx.Err() == nil
			m.refreshing = again
			m.mu.Unlock()
			for _, n := range held {
				m.send(noteOp{n: n})
			}
			m.signal()
			if !again {
				return
			}
		}
	}()
}

// settled reports whether setting a has no change in flight and none
// since gen was taken; m.mu is held.
func (m *menu) settled(a action, gen map[action]int) bool {
	return m.pending[a] == 0 && m.gen[a] == gen[a]
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
		name := m.visible.Models[c.slot].Name
		if name == "" {
			return
		}
		k := ollama.ModelKey(name)
		if cancel, ok := m.tunes[k]; ok {
			cancel()
			st.tuning[k] = tuneProgress{name, "cancelling…", true}
			return
		}
		m.startTune(name)
	case actFix:
		m.startFix(m.visible.Models[c.slot].Name)
	case actAutoFix:
		if !st.settingsKnown {
			return
		}
		on := !st.settings.AutoFix
		st.settings.AutoFix = on
		m.change(c.act, func() error { return m.b.SetAutoFix(on) })
	case actNotify:
		if !st.settingsKnown {
			return
		}
		on := st.settings.NotificationsOff
		st.settings.NotificationsOff = !on
		m.change(c.act, func() error { return m.b.SetNotifications(on) })
	case actLogin:
		if !st.loginKnown || st.loginErr != "" {
			return
		}
		on := !st.login
		st.login = on
		m.change(c.act, func() error { return m.b.SetStartAtLogin(on) })
	case actOpenConfig:
		m.openFile(st.continuePath)
	case actOpenLog:
		m.openFile(st.logPath)
	case actAboutPage:
		m.openFile(projectPage)
	}
}

// startTune starts a tune of name unless one runs; m.mu is held.
func (m *menu) startTune(name string) {
	if len(m.tunes) > 0 {
		return // one tune at a time: two would evict each other's loads
	}
	k := ollama.ModelKey(name)
	ctx, cancel := context.WithCancel(m.ctx)
	m.tunes[k] = cancel
	m.st.tuning[k] = tuneProgress{model: name, line: "starting…"}
	delete(m.st.results, k)
	m.calls.Add(1)
	go m.tune(ctx, name, k)
}

// startFix starts writing name's tuned context into Continue's config
// when the menu offers it; m.mu is held.
func (m *menu) startFix(name string) {
	k := ollama.ModelKey(name)
	if name == "" || m.st.fixing[k] || !m.st.fixEnabled(name) {
		return
	}
	m.st.fixing[k] = true
	delete(m.st.results, k)
	m.calls.Add(1)
	go m.fix(name, k)
}

// change runs a change of setting a on its lane; m.mu is held.
func (m *menu) change(a action, f func() error) {
	m.pending[a]++
	m.gen[a]++
	m.st.settingsErr = ""
	m.lanes[a].do(func() {
		defer m.recoverTo("change a setting")
		err := f()
		m.mu.Lock()
		m.pending[a]--
		if err != nil {
			m.st.settingsErr = "Could not save the setting: " + err.Error()
			m.opts.Logger.Warn("tray: cannot change a setting", "err", err)
		}
		m.mu.Unlock()
		// Read back what the backend has, failed or not.
		m.refresh()
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

func (m *menu) tune(ctx context.Context, name, k string) {
	defer m.calls.Done()
	defer m.recoverTo("tune " + name)
	err := m.b.Tune(ctx, name, func(line string) {
		m.mu.Lock()
		if _, running := m.tunes[k]; running && ctx.Err() == nil {
			m.st.tuning[k] = tuneProgress{model: name, line: line}
		}
		m.mu.Unlock()
		m.signal()
	})
	m.mu.Lock()
	delete(m.tunes, k)
	delete(m.st.tuning, k)
	var n *Notification
	switch {
	case ctx.Err() != nil && m.ctx.Err() == nil:
		m.st.results[k] = "Tuning cancelled"
	case err != nil:
		m.st.results[k] = "Tune failed: " + err.Error()
		m.opts.Logger.Warn("tray: tune failed", "model", name, "err", err)
		n = &Notification{Title: "Tuning " + name + " failed", Message: err.Error(), Icon: assets.Warning}
	}
	notify := n != nil && !m.st.settings.NotificationsOff
	m.mu.Unlock()
	if notify {
		m.send(noteOp{n: *n})
	}
	m.signal()
	m.refresh()
}

func (m *menu) fix(name, k string) {
	defer m.calls.Done()
	defer m.recoverTo("fix Continue for " + name)
	err := m.b.FixContinue(m.ctx, name)
	m.mu.Lock()
	delete(m.st.fixing, k)
	m.st.quietFix[k] = time.Now().Add(manualFixQuiet)
	if err != nil {
		m.st.results[k] = "Fix failed: " + err.Error()
		m.opts.Logger.Warn("tray: fix failed", "model", name, "err", err)
	} else {
		m.st.results[k] = "Continue's config was updated"
	}
	m.mu.Unlock()
	m.signal()
	m.refresh()
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
