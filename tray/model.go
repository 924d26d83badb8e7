package tray

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/ollama/ollama/format"

	"github.com/ctxfit/ctxfit/assets"
	"github.com/ctxfit/ctxfit/clients"
	"github.com/ctxfit/ctxfit/hub"
	"github.com/ctxfit/ctxfit/ollama"
	ctxstate "github.com/ctxfit/ctxfit/state"
	"github.com/ctxfit/ctxfit/watch"
)

// maxModels is how many loaded models the menu lists; more are counted on
// the status line. The menu has a fixed shape (items are hidden, never
// removed) because fyne systray can panic when a clicked item is removed.
const maxModels = 8

// maxFixes is how many "Fix now" items a model's submenu has: one per
// client that asks too much, so at least as many as there are clients.
const maxFixes = 12

// manualFixQuiet is how long after a "Fix now" click the config_fixed
// event it causes is not notified: the user asked for it.
const manualFixQuiet = 10 * time.Second

// action names what a click asks for.
type action int

const (
	actTune action = iota
	actFix
	actAutoFix
	actNotify
	actLogin
	actOpenLog
	actAboutPage
	actQuit
)

// state is everything the menu, the icon and the notifications are
// computed from: the daemon's state as its last update carried it, and
// what only the tray knows. The menu's event loop owns it, under menu.mu.
type state struct {
	hs      hub.State
	snap    watch.Snapshot // hs.Snapshot
	polled  bool           // at least one update from the backend
	version string         // ctxfit's own, for the first line and About

	login       bool
	loginErr    string // why start at login is unavailable
	loginKnown  bool
	logPath     string
	settingsErr string                  // the last settings change that failed
	tuning      map[string]tuneProgress // by ModelKey: a tune started from this menu
	fixing      map[string]bool         // by client name: a fix in flight
	results     map[string]string       // by ModelKey: how the last tune or fix ended
	quietFix    map[string]time.Time    // by client name: until when its config_fixed events are not told
	// pending holds settings clicked but not yet saved, so that an update
	// read before the save does not undo the checkbox on screen.
	pending map[action]bool
	// spilling holds, by ModelKey, the spills told, whose notification is
	// withdrawn when the model is whole on the GPU again or unloaded.
	spilling map[string]bool
	withdraw []string // keys of notifications whose news is over, to close
	// beside holds, by ModelKey, the models that keep unloading it
	// (eviction thrash) as `ctxfit tune --with` takes them: its tune is
	// then a joint one, which the backend runs (see Backend.Tune).
	beside map[string][]string
}

// tuneProgress is a tune started from this menu.
type tuneProgress struct {
	model     string
	cancelled bool // Cancel was clicked; the tuner is restoring the model
}

func newState() *state {
	return &state{
		tuning:   map[string]tuneProgress{},
		fixing:   map[string]bool{},
		results:  map[string]string{},
		quietFix: map[string]time.Time{},
		pending:  map[action]bool{},
		spilling: map[string]bool{},
		beside:   map[string][]string{},
	}
}

// settings returns the settings as the menu shows them.
func (s *state) settings() ctxstate.Settings { return s.hs.Settings }

// apply takes in an update from the daemon and returns the notifications
// it calls for. The daemon's hub already dropped the events of tunes and
// decided spill episodes, so each spill_started event is one true spill.
// With notifications off it returns none.
func (s *state) apply(u hub.Update, now time.Time) []Notification {
	s.hs = u.State
	for a, on := range s.pending {
		switch a { // a click not yet saved wins over an older state
		case actAutoFix:
			s.hs.Settings.AutoFix = on
		case actNotify:
			s.hs.Settings.NotificationsOff = !on
		}
	}
	s.snap = u.Snapshot
	s.polled = true
	var notes []Notification
	for _, e := range u.Events {
		switch e.Kind {
		case watch.EventSpillStarted:
			s.spilling[ollama.ModelKey(e.Model)] = true
			notes = append(notes, s.spillNote(e))
		case watch.EventThrash:
			notes = append(notes, Notification{Title: e.Model + " keeps reloading", Message: e.Message, Icon: assets.Warning})
		case watch.EventEvictionThrash:
			notes = append(notes, Notification{Title: e.Model + " and " + strings.Join(e.Companions, ", ") + " keep unloading each other", Message: e.Message, Icon: assets.Warning})
			s.beside[ollama.ModelKey(e.Model)] = e.Companions
		case watch.EventSwapRisk:
			notes = append(notes, Notification{Title: e.Model + " will not fit in memory", Message: e.Message, Icon: assets.Warning})
		case hub.EventConfigFixed:
			if !s.quiet(e.Client, now) {
				notes = append(notes, fixedNote(e))
			}
		case hub.EventTuned:
			notes = append(notes, s.tunedNote(e))
		case hub.EventTuneStale:
			notes = append(notes, staleNote(e))
		}
	}
	if u.Snapshot.Reachable { // a server that stops answering ends no spill
		for k := range s.spilling {
			if !slices.ContainsFunc(u.Snapshot.Models, func(m watch.Model) bool { return m.Spilled && ollama.ModelKey(m.Name) == k }) {
				delete(s.spilling, k)
				s.withdraw = append(s.withdraw, spillKey(k))
			}
		}
	}
	for k, t := range s.quietFix {
		if !t.After(now) {
			delete(s.quietFix, k)
		}
	}
	if s.hs.Settings.NotificationsOff {
		return nil
	}
	return notes
}

// takeWithdrawn returns the keys of notifications to close, and forgets
// them.
func (s *state) takeWithdrawn() []string {
	w := s.withdraw
	s.withdraw = nil
	return w
}

// spillKey is the notification key of model k's spill.
func spillKey(k string) string { return "spill " + k }

// fixedNote tells that ctxfit rewrote a client's config by itself, naming
// the client and the model, not the file.
func fixedNote(e hub.Event) Notification {
	if e.Client == "" || e.Model == "" || e.ContextLength <= 0 {
		return Notification{Title: "Client config fixed", Message: e.Message, Icon: assets.OK}
	}
	return Notification{
		Title:   "ctxfit fixed " + e.Client + "'s config",
		Message: fmt.Sprintf("%s now asks for context %d for %s, which stays on the GPU.", e.Client, e.ContextLength, e.Model),
		Icon:    assets.OK,
	}
}

// loaded names the loaded models, for noticing a change.
func (s *state) loaded() string {
	var b strings.Builder
	if s.snap.Reachable {
		for _, m := range s.snap.Models {
			b.WriteString(ollama.ModelKey(m.Name))
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// quiet reports whether a fix of client was asked for in the menu.
func (s *state) quiet(client string, now time.Time) bool {
	if client == "" {
		return len(s.fixing) > 0 || len(s.quietFix) > 0
	}
	return s.fixing[client] || s.quietFix[client].After(now)
}

// clientsAsking names the clients that ask model for more than fits.
func (s *state) clientsAsking(model string) []string {
	var names []string
	for _, a := range s.hs.TooLarge(model) {
		if !slices.Contains(names, a.Client) {
			names = append(names, a.Client)
		}
	}
	return names
}

// spillNote tells a spill and offers what helps, as the menu can: Fix now
// when clients ask for more than the tuned context, Tune when there is no
// tuned value. It stays until acted on or the spill ends.
func (s *state) spillNote(e hub.Event) Notification {
	m := watch.Model{Name: e.Model, Size: e.Size, Processor: e.Processor, ContextLength: e.ContextLength}
	for _, sm := range s.snap.Models {
		if ollama.SameModel(sm.Name, e.Model) {
			m = sm
		}
	}
	msg := fmt.Sprintf("%s, %s%s. Answers are slow while part of it runs on the CPU.",
		format.HumanBytes(m.Size), m.Processor, ctxSuffix(m.ContextLength))
	n := Notification{Title: m.Name + " spilled onto the CPU", Icon: assets.Warning, Key: spillKey(ollama.ModelKey(m.Name)), Persistent: true}
	asking := s.clientsAsking(m.Name)
	switch {
	case len(asking) > 0 && m.TunedContext != nil:
		verb := "asks"
		if len(asking) > 1 {
			verb = "ask"
		}
		msg += fmt.Sprintf(" %s %s for more than the %d that stays on the GPU.", strings.Join(asking, " and "), verb, *m.TunedContext)
		menu := make([]string, len(asking))
		for i, c := range asking {
			menu[i] = "Fix " + c + " now"
		}
		n.Actions = []Action{{ID: "fix", Label: "Fix now", Menu: strings.Join(menu, " and ")}}
	case m.TunedContext != nil:
		msg += fmt.Sprintf(" A context of %d stays on the GPU, and no client config ctxfit knows asks for more: set that client's context to %d, or use `ctxfit fix ollama %s` for clients that send none.",
			*m.TunedContext, *m.TunedContext, m.Name)
	case s.snap.GPU != ollama.GPUAbsent:
		msg += " Tune finds the largest context that stays on the GPU."
		n.Actions = []Action{{ID: "tune", Label: "Tune", Menu: "Tune context"}}
	}
	n.Message = msg
	return n
}

// tunedNote tells a finished tune and the next step.
func (s *state) tunedNote(e hub.Event) Notification {
	msg := e.Message
	if asking := s.tooLargeText(e.Model); asking != "" {
		msg += " " + asking + ": use Fix now in the ctxfit menu, or turn on Keep client configs fixed."
	} else if s.hs.Settings.AutoFix {
		msg += " Every client config asks for it."
	}
	return Notification{Title: "Tune finished", Message: msg, Icon: assets.OK}
}

// staleNote offers the re-tune of a model whose tune was measured under
// another GPU limit; its button tunes the model (see menu.action).
func staleNote(e hub.Event) Notification {
	return Notification{
		Title:   "Re-tune " + e.Model + " for the new GPU limit",
		Message: e.Message,
		Icon:    assets.OK,
		Key:     retuneKey(e.Model),
		Actions: []Action{{ID: "tune", Label: "Re-tune"}}, // the message names the command
	}
}

// retuneKey is the notification key of the re-tune offered for model.
func retuneKey(model string) string { return "retune " + model }

// tooLargeText says which clients ask model for more than fits:
// "Continue asks 131072; 25600 fits".
func (s *state) tooLargeText(model string) string {
	var parts []string
	seen := map[string]bool{}
	for _, a := range s.hs.TooLarge(model) {
		if seen[a.Client] {
			continue
		}
		seen[a.Client] = true
		parts = append(parts, fmt.Sprintf("%s asks %d; %d fits", a.Client, a.Context, a.Tuned))
	}
	return strings.Join(parts, ", ")
}

func ctxSuffix(n int) string {
	if n <= 0 {
		return ""
	}
	return fmt.Sprintf(" at context %d", n)
}

// itemView is what one menu item shows.
type itemView struct {
	Title    string
	Tooltip  string
	Hidden   bool
	Disabled bool
	Checked  bool
}

// modelView is one loaded model's line and its submenu.
type modelView struct {
	Name  string   // "" for an unused slot
	Line  itemView // name, size, split, context; the submenu's parent
	Tune  itemView
	Fixes [maxFixes]fixView // one per client asking too much; the first explains when none does
	Info  itemView          // the tuned value
	Note  itemView          // how the last tune or fix ended, or a memory warning
}

// fixView is one "Fix now" item and the client it fixes ("" for none).
type fixView struct {
	Client string
	Item   itemView
}

// view is the whole tray: icon, tooltip and every menu item, in menu order.
type view struct {
	Icon    assets.State
	Tooltip string
	// Attention asks the desktop to raise the icon: a model spilled.
	Attention bool
	// Title names ctxfit, its version and the overall state in words.
	Title  itemView
	Header itemView // the Ollama server
	Status itemView // the connection, or what else there is to say about the models
	// Problem is a settings error, below the connection's state, shortened
	// to what to do; the full text is its tooltip and in the log.
	Problem   itemView
	Models    [maxModels]modelView
	AutoFix   itemView
	Notify    itemView
	Login     itemView
	OpenLog   itemView
	About     itemView
	AboutInfo itemView // version, Go, OS
	AboutPage itemView // opens the project page
}

// projectPage is the page About opens.
const projectPage = "https://github.com/ctxfit/ctxfit"

// view computes what the tray shows in state s.
func (s *state) view() view {
	snap := s.snap
	v := view{Icon: s.icon(), Tooltip: s.tooltip(), Attention: s.attention()}

	v.Title = itemView{Title: "ctxfit " + s.versionOr() + " · " + s.overall(), Disabled: true}
	v.Header = itemView{Title: "Ollama" + version(snap.Version) + at(snap.Host) + share(s.hs.GPUShare), Disabled: true}
	v.Status = itemView{Disabled: true, Hidden: true}
	switch {
	case !s.polled || !snap.Reachable && snap.Error == "":
		v.Status = itemView{Title: "Connecting…", Disabled: true}
	case !snap.Reachable:
		v.Status = itemView{Title: actionable(snap.Error), Tooltip: snap.Error, Disabled: true}
	case len(s.listed()) == 0:
		v.Status = itemView{Title: "No model loaded", Disabled: true}
	case len(snap.Models) > maxModels:
		v.Status = itemView{Title: fmt.Sprintf("%d more models: see ctxfit status", len(snap.Models)-maxModels), Disabled: true}
	}
	v.Problem = itemView{Disabled: true, Hidden: true}
	if s.settingsErr != "" {
		v.Problem = itemView{Title: "⚠ " + actionable(s.settingsErr), Tooltip: s.settingsErr, Disabled: true}
	}

	models := s.listed()
	for i := range v.Models {
		if i >= len(models) {
			v.Models[i] = modelView{Line: itemView{Hidden: true}}
			for j := range v.Models[i].Fixes {
				v.Models[i].Fixes[j].Item.Hidden = true
			}
			continue
		}
		v.Models[i] = s.modelView(models[i])
	}

	set := s.settings()
	v.AutoFix = itemView{Title: "Keep client configs fixed", Checked: set.AutoFix, Disabled: !s.polled,
		Tooltip: "Write the tuned context into every client's config after each tune, and again whenever a client rewrites its file"}
	v.Notify = itemView{Title: "Notifications", Checked: !set.NotificationsOff, Disabled: !s.polled,
		Tooltip: "Tell me when a model spills onto the CPU, keeps reloading, or when ctxfit fixed a config"}
	v.Login = itemView{Title: "Start at login", Checked: s.login, Disabled: !s.loginKnown || s.loginErr != ""}
	if s.loginErr != "" {
		// The reason in the title: most Linux panels show no tooltips.
		v.Login.Title = "Start at login (unavailable: " + reason(s.loginErr) + ")"
		v.Login.Tooltip = s.loginErr
	}
	v.OpenLog = itemView{Title: "Open log", Tooltip: s.logPath, Disabled: s.logPath == ""}
	v.About = itemView{Title: "About ctxfit"}
	v.AboutInfo = itemView{Title: fmt.Sprintf("ctxfit %s · %s · %s/%s", s.versionOr(), runtime.Version(), runtime.GOOS, runtime.GOARCH), Disabled: true}
	v.AboutPage = itemView{Title: "Project page", Tooltip: projectPage}
	return v
}

// versionOr returns ctxfit's version, or "dev" when unknown.
func (s *state) versionOr() string {
	if s.version == "" {
		return "dev"
	}
	return s.version
}

// overall says in a few words how things stand, for the menu's first
// line.
func (s *state) overall() string {
	snap := s.snap
	switch {
	case !s.polled || !snap.Reachable && snap.Error == "":
		return "connecting to Ollama"
	case !snap.Reachable:
		return "Ollama does not answer"
	}
	for _, t := range s.hs.Tunes {
		return "tuning " + t.Model
	}
	for _, t := range s.tuning {
		return "tuning " + t.model
	}
	var spilled, swap, asking []string
	for _, m := range snap.Models {
		switch {
		case m.Spilled:
			spilled = append(spilled, m.Name)
		case m.RAMWarning != "":
			swap = append(swap, m.Name)
		case len(s.hs.TooLarge(m.Name)) > 0:
			asking = append(asking, m.Name)
		}
	}
	switch {
	case len(spilled) == 1:
		return spilled[0] + " spilled onto the CPU"
	case len(spilled) > 1:
		return fmt.Sprintf("%d models spilled onto the CPU", len(spilled))
	case len(swap) > 0:
		return strings.Join(swap, ", ") + " will not fit in memory"
	case len(asking) > 0:
		return "a client asks " + strings.Join(asking, ", ") + " for more than fits"
	case len(snap.Models) == 0:
		return "idle"
	case snap.GPU == ollama.GPUAbsent:
		return "everything fits in memory"
	}
	return "everything on the GPU"
}

// listed returns the models the menu lists: the loaded ones, and one being
// tuned even while it is not loaded (a tune reloads it, and the server may
// not answer for a moment), so that its progress and Cancel stay in view.
func (s *state) listed() []watch.Model {
	var models []watch.Model
	if s.snap.Reachable {
		models = s.snap.Models
	}
	add := func(name string) {
		if !slices.ContainsFunc(models, func(m watch.Model) bool { return ollama.SameModel(m.Name, name) }) {
			models = append(slices.Clip(models), watch.Model{Name: name})
		}
	}
	for _, t := range s.tuning {
		add(t.model)
	}
	for _, t := range s.hs.Tunes {
		add(t.Model)
	}
	return models
}

func (s *state) modelView(m watch.Model) modelView {
	k := ollama.ModelKey(m.Name)
	mv := modelView{Name: m.Name}

	parts := []string{m.Name, format.HumanBytes(m.Size), m.Processor}
	if m.ContextLength > 0 {
		parts = append(parts, fmt.Sprintf("context %d", m.ContextLength))
	}
	line := strings.Join(parts, " · ")
	mine, ours := s.tuning[k]
	running, tuning := s.hs.Tuning(m.Name)
	switch {
	case tuning || ours:
		progress := running.Line
		if progress == "" {
			progress = "starting…"
		}
		if mine.cancelled {
			progress = "cancelling…"
		}
		line = m.Name + " · tuning: " + progress
	case m.Spilled || m.RAMWarning != "" || len(s.hs.TooLarge(m.Name)) > 0:
		line = "⚠ " + line
	}
	mv.Line = itemView{Title: line}

	mv.Tune = itemView{Title: "Tune context",
		Tooltip: "Load the model a few times to find the largest context that stays 100% on the GPU"}
	if with := s.beside[k]; len(with) > 0 {
		mv.Tune = itemView{Title: "Tune context beside " + strings.Join(with, ", "),
			Tooltip: "It keeps unloading them: find the largest context at which they all stay 100% on the GPU together"}
	}
	switch {
	case ours && mine.cancelled:
		mv.Tune = itemView{Title: "Cancelling…", Disabled: true}
	case ours:
		mv.Tune = itemView{Title: "Cancel tuning"}
	case tuning:
		mv.Tune = itemView{Title: "Tune context (" + running.By + " is tuning it)", Disabled: true}
	case len(s.tuning) > 0 || len(s.hs.Tunes) > 0:
		mv.Tune.Title, mv.Tune.Disabled = "Tune context (another tune is running)", true
	case s.snap.GPU == ollama.GPUAbsent:
		mv.Tune.Title, mv.Tune.Disabled = "Tune context (this Ollama has no GPU)", true
	}

	mv.Fixes = s.fixViews(m, tuning || ours)

	mv.Info = itemView{Title: "Not tuned yet", Disabled: true}
	switch {
	case m.TunedContext != nil:
		mv.Info.Title = fmt.Sprintf("Tuned: context %d stays on the GPU", *m.TunedContext)
		if len(m.TunedBeside) > 0 {
			mv.Info.Title += " beside " + strings.Join(m.TunedBeside, ", ")
		}
	case tuning || ours:
		mv.Info.Hidden = true // the line shows the tune's progress
	}
	mv.Note = itemView{Disabled: true, Hidden: true}
	if r := s.results[k]; r != "" {
		mv.Note = itemView{Title: actionable(r), Tooltip: r, Disabled: true}
	} else if m.RAMWarning != "" {
		mv.Note = itemView{Title: actionable(m.RAMWarning), Tooltip: m.RAMWarning, Disabled: true}
	}
	return mv
}

// fixViews are the "Fix now" items of model m: one per client whose config
// asks for more than the tuned context, in the registry's order; when none
// does, the first says why there is nothing to fix.
func (s *state) fixViews(m watch.Model, tuning bool) [maxFixes]fixView {
	var out [maxFixes]fixView
	for i := range out {
		out[i].Item.Hidden = true
	}
	n := 0
	for _, c := range s.hs.Clients {
		var worst *clients.Ask
		for _, a := range c.Asks {
			if ollama.SameModel(a.Model, m.Name) && a.TooLarge() && (worst == nil || a.Context > worst.Context) {
				worst = &a
			}
		}
		if worst == nil || n == maxFixes {
			continue
		}
		item := itemView{Title: fmt.Sprintf("Fix %s now: %d → %d", c.Name, worst.Context, worst.Tuned),
			Tooltip: fmt.Sprintf("%s asks %d; %d fits. Write %d into %s", c.Name, worst.Context, worst.Tuned, worst.Tuned, c.Path)}
		switch {
		case s.fixing[c.Name]:
			item.Title, item.Disabled = fmt.Sprintf("Fix %s now (writing…)", c.Name), true
		case tuning:
			item.Title, item.Disabled = fmt.Sprintf("Fix %s now (tuning…)", c.Name), true
		case c.Held:
			item.Tooltip += "; you undid ctxfit's fix, so auto-fix leaves it alone until you change it or click here"
		}
		out[n] = fixView{Client: c.Name, Item: item}
		n++
	}
	if n == 0 {
		why := "No client asks for more than fits"
		switch {
		case tuning:
			why = "Fix now (tuning…)"
		case m.TunedContext == nil && s.snap.GPU == ollama.GPUAbsent:
			// "tune first" beside a Tune item greyed for want of a GPU
			// sent the user to an action that cannot be taken.
			why = "Fix now (no GPU to tune for)"
		case m.TunedContext == nil:
			why = "Fix now (tune first)"
		}
		out[0] = fixView{Item: itemView{Title: why, Disabled: true}}
	}
	return out
}

// fixEnabled reports whether the Fix item of client under model is enabled.
func (s *state) fixEnabled(model, client string) bool {
	for _, m := range s.listed() {
		if ollama.SameModel(m.Name, model) {
			_, tuning := s.hs.Tuning(m.Name)
			_, ours := s.tuning[ollama.ModelKey(m.Name)]
			for _, f := range s.fixViews(m, tuning || ours) {
				if f.Client == client {
					return !f.Item.Disabled
				}
			}
		}
	}
	return false
}

// icon is ok when nothing is loaded or everything is whole on the GPU,
// warning when a model spilled, will swap on a CPU-only host, or a client
// asks a loaded model for more than fits (it will spill at its next
// request), and unreachable when no Ollama answers. A model being tuned
// counts for neither: its loads are the tuner's.
func (s *state) icon() assets.State {
	if !s.snap.Reachable {
		return assets.Unreachable
	}
	for _, m := range s.snap.Models {
		if _, tuning := s.hs.Tuning(m.Name); tuning {
			continue
		}
		if m.Spilled || m.RAMWarning != "" || len(s.hs.TooLarge(m.Name)) > 0 {
			return assets.Warning
		}
	}
	return assets.OK
}

// attention reports whether a loaded model spilled onto the CPU (one
// being tuned aside): the item's status asks the desktop to raise it until
// that ends.
func (s *state) attention() bool {
	if !s.snap.Reachable {
		return false
	}
	return slices.ContainsFunc(s.snap.Models, func(m watch.Model) bool {
		_, tuning := s.hs.Tuning(m.Name)
		return m.Spilled && !tuning
	})
}

// tooltip is the one-line summary under the icon.
func (s *state) tooltip() string {
	snap := s.snap
	switch {
	case !s.polled || !snap.Reachable && snap.Error == "":
		return "ctxfit: connecting to Ollama" + at(snap.Host)
	case !snap.Reachable:
		return "ctxfit: Ollama" + at(snap.Host) + " does not answer"
	case len(snap.Models) == 0 && (len(s.tuning) > 0 || len(s.hs.Tunes) > 0):
		return "ctxfit: " + s.overall()
	case len(snap.Models) == 0:
		return "ctxfit: no model loaded"
	}
	var spilled, swap, asking []string
	for _, m := range snap.Models {
		if t, tuning := s.hs.Tuning(m.Name); tuning {
			return "ctxfit: tuning " + m.Name + " (" + t.By + ")"
		}
		switch {
		case m.Spilled:
			spilled = append(spilled, m.Name+" ("+m.Processor+")")
		case m.RAMWarning != "":
			swap = append(swap, m.Name)
		case len(s.hs.TooLarge(m.Name)) > 0:
			asking = append(asking, m.Name+": "+s.tooLargeText(m.Name))
		}
	}
	switch {
	case len(spilled) == 1:
		return "ctxfit: " + spilled[0] + " spilled onto the CPU"
	case len(spilled) > 1:
		return fmt.Sprintf("ctxfit: %d models spilled onto the CPU: %s", len(spilled), strings.Join(spilled, ", "))
	case len(swap) > 0:
		return "ctxfit: " + strings.Join(swap, ", ") + " will not fit in memory"
	case len(asking) > 0:
		return "ctxfit: " + strings.Join(asking, "; ")
	case len(snap.Models) == 1:
		m := snap.Models[0]
		return "ctxfit: " + m.Name + " " + m.Processor
	}
	if snap.GPU == ollama.GPUAbsent {
		return fmt.Sprintf("ctxfit: %d models loaded, all fit in memory", len(snap.Models))
	}
	return fmt.Sprintf("ctxfit: %d models loaded, none spilled", len(snap.Models))
}

func version(v string) string {
	if v == "" {
		return ""
	}
	return " " + v
}

// share adds an Apple Silicon server's GPU share of unified memory to its
// line: " · GPU may use 21.3 GiB of 32.0 GiB".
func share(s string) string {
	if s == "" {
		return ""
	}
	return " · " + s
}

func at(host string) string {
	if host == "" {
		return ""
	}
	return " at " + host
}

// menuWidth is the most characters a menu line shows.
const menuWidth = 100

// actionable shortens an error or a warning to a menu line that keeps what
// helps: what failed and what to do. ctxfit's messages read "what failed:
// cause: cause (what to do)" or "what happened. What to do": the line is
// the first part and the advice, dropping the chain of causes between
// them, which the tooltip and the log keep.
func actionable(msg string) string {
	msg = strings.TrimSpace(msg)
	if len([]rune(msg)) <= menuWidth {
		return msg
	}
	head := msg
	if i := strings.Index(msg, ": "); i > 0 {
		head = msg[:i]
	}
	var advice string
	switch {
	case strings.HasSuffix(msg, ")") && strings.LastIndex(msg, " (") > len(head):
		advice = msg[strings.LastIndex(msg, " (")+2 : len(msg)-1]
	case strings.Contains(msg, ". "):
		advice = msg[strings.LastIndex(msg, ". ")+2:]
	case strings.Contains(msg, "; "):
		advice = msg[strings.LastIndex(msg, "; ")+2:]
	}
	line := head
	if advice != "" && advice != head {
		line = head + " — " + advice
	}
	return shorten(line)
}

// reason shortens why something is unavailable to a few words for a menu
// item's title.
func reason(msg string) string {
	const max = 50
	short := msg
	for _, sep := range []string{": ", " (", "; ", ". "} {
		if i := strings.Index(short, sep); i > 0 {
			short = short[:i]
		}
	}
	if len([]rune(short)) > max {
		short = string([]rune(short)[:max-1]) + "…"
	}
	return short
}

// shorten cuts s to a menu's width.
func shorten(s string) string {
	if r := []rune(s); len(r) > menuWidth {
		return string(r[:menuWidth-1]) + "…"
	}
	return s
}
