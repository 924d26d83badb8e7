package tray

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/ollama/ollama/format"

	"github.com/ctxfit/ctxfit/assets"
	"github.com/ctxfit/ctxfit/ollama"
	ctxstate "github.com/ctxfit/ctxfit/state"
	"github.com/ctxfit/ctxfit/watch"
)

// maxModels is how many loaded models the menu lists; more are counted on
// the status line. The menu has a fixed shape (items are hidden, never
// removed) because fyne systray can panic when a clicked item is removed.
const maxModels = 8

// manualFixQuiet is how long after a "Fix Continue now" click the
// config_fixed event it causes is not notified: the user asked for it.
const manualFixQuiet = 10 * time.Second

// state is everything the menu, the icon and the notifications are
// computed from. The menu's event loop owns it, under menu.mu.
type state struct {
	snap    watch.Snapshot
	polled  bool   // at least one snapshot from the backend
	version string // ctxfit's own, for the first line and About

	settings      ctxstate.Settings
	settingsKnown bool
	login         bool
	loginErr      string // why start at login is unavailable
	loginKnown    bool
	continuePath  string // "" when Continue has no config
	logPath       string
	infoKnown     bool                    // the paths and asks below were read at least once
	asks          map[string]ask          // by ollama.ModelKey: what Continue asks for
	settingsErr   string                  // the last settings change that failed
	readErr       string                  // why the settings cannot be read
	tuning        map[string]tuneProgress // by ModelKey: a running tune
	fixing        map[string]bool         // by ModelKey: a Continue fix in flight
	results       map[string]string       // by ModelKey: how the last tune or fix ended
	quietFix      map[string]time.Time    // by ModelKey: until when its config_fixed events are not told
	spilling      map[string]bool         // by ModelKey: models in a spill episode
	withdraw      []string                // keys of notifications whose news is over, to close
	// heldSpill holds, by ModelKey, spills not told yet because what
	// Continue asks for that model is not read yet (the notification's
	// Fix now depends on it): told after the next refresh, or after
	// holdSpill at the latest.
	heldSpill map[string]time.Time
	// beside holds, by ModelKey, the models that keep unloading it
	// (eviction thrash) as `ctxfit tune --with` takes them: its tune is
	// then a joint one, which the backend runs (see Backend.Tune).
	beside map[string][]string
}

// holdSpill is how long a spill's notification may wait for the refresh
// that reads what Continue asks for.
const holdSpill = 3 * time.Second

// tuneProgress is a running tune: the model, and the tuner's last line.
type tuneProgress struct {
	model, line string
	cancelled   bool // Cancel was clicked; the tuner is restoring the model
}

// ask is what Continue asks Ollama for when it uses one model.
type ask struct {
	client  string
	context int
	ok      bool
}

func newState() *state {
	return &state{
		asks:      map[string]ask{},
		tuning:    map[string]tuneProgress{},
		fixing:    map[string]bool{},
		results:   map[string]string{},
		quietFix:  map[string]time.Time{},
		spilling:  map[string]bool{},
		heldSpill: map[string]time.Time{},
		beside:    map[string][]string{},
	}
}

// apply takes in an update from the backend and returns the notifications
// it calls for: a spill, once per episode per model (an episode ends when
// the model is whole on the GPU again or unloaded, which withdraws the
// notification; a server that stops answering ends none); reload thrash; a
// model that will swap on a CPU-only host; a client config that ctxfit
// fixed by itself; a finished tune. With notifications off it returns
// none, but still follows the episodes, so that turning them on does not
// replay old spills.
func (s *state) apply(u watch.Update, now time.Time) []Notification {
	s.snap = u.Snapshot
	s.polled = true
	var notes []Notification
	if u.Snapshot.Reachable {
		spilling := map[string]bool{}
		for _, m := range u.Snapshot.Models {
			if !m.Spilled {
				continue
			}
			k := ollama.ModelKey(m.Name)
			spilling[k] = true
			_, asked := s.asks[k]
			held, isHeld := s.heldSpill[k]
			switch {
			case s.spilling[k] && !isHeld:
				// Told already.
			case s.infoKnown && !asked && (!isHeld || now.Sub(held) < holdSpill):
				if !isHeld {
					s.heldSpill[k] = now
				}
			default:
				delete(s.heldSpill, k)
				notes = append(notes, s.spillNote(m))
			}
		}
		for k := range s.spilling {
			if !spilling[k] {
				if _, held := s.heldSpill[k]; held {
					delete(s.heldSpill, k) // never told
				} else {
					s.withdraw = append(s.withdraw, spillKey(k))
				}
			}
		}
		s.spilling = spilling
	}
	for _, e := range u.Events {
		switch e.Kind {
		case watch.EventThrash:
			notes = append(notes, Notification{Title: e.Model + " keeps reloading", Message: e.Message, Icon: assets.Warning})
		case watch.EventEvictionThrash:
			notes = append(notes, Notification{Title: e.Model + " and " + strings.Join(e.Companions, ", ") + " keep unloading each other", Message: e.Message, Icon: assets.Warning})
			s.beside[ollama.ModelKey(e.Model)] = e.Companions
		case watch.EventSwapRisk:
			notes = append(notes, Notification{Title: e.Model + " will not fit in memory", Message: e.Message, Icon: assets.Warning})
		case watch.EventConfigFixed:
			if !s.quiet(e.Model, now) {
				notes = append(notes, fixedNote(e))
			}
		case watch.EventTuned:
			notes = append(notes, Notification{Title: "Tune finished", Message: e.Message, Icon: assets.OK})
		}
	}
	for k, t := range s.quietFix {
		if !t.After(now) {
			delete(s.quietFix, k)
		}
	}
	if s.settings.NotificationsOff {
		return nil
	}
	return notes
}

// heldNotes returns the notifications of the spills held until what
// Continue asks for was read, now that it is (or the wait is over); m.mu
// is held. With notifications off it returns none.
func (s *state) heldNotes() []Notification {
	var notes []Notification
	for _, m := range s.snap.Models {
		k := ollama.ModelKey(m.Name)
		if _, held := s.heldSpill[k]; held && m.Spilled {
			delete(s.heldSpill, k)
			notes = append(notes, s.spillNote(m))
		}
	}
	if s.settings.NotificationsOff {
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
func fixedNote(e watch.Event) Notification {
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

// quiet reports whether a config fix of model was asked for in the menu
// (model "" is a fix of every model).
func (s *state) quiet(model string, now time.Time) bool {
	if model == "" {
		return len(s.fixing) > 0 || len(s.quietFix) > 0
	}
	k := ollama.ModelKey(model)
	return s.fixing[k] || s.quietFix[k].After(now)
}

// spillNote tells of a spill and offers what helps: Fix now when Continue
// asks for more than the tuned context, Tune when there is no tuned value.
// It stays until acted on or the spill ends.
func (s *state) spillNote(m watch.Model) Notification {
	k := ollama.ModelKey(m.Name)
	msg := fmt.Sprintf("%s, %s%s. Answers are slow while part of it runs on the CPU.",
		format.HumanBytes(m.Size), m.Processor, ctxSuffix(m.ContextLength))
	n := Notification{Title: m.Name + " spilled onto the CPU", Icon: assets.Warning, Key: spillKey(k), Persistent: true}
	a := s.asks[k]
	switch {
	case m.TunedContext != nil && s.fixEnabled(m.Name):
		asks := "its default context"
		if a.context > 0 {
			asks = fmt.Sprint(a.context)
		}
		msg += fmt.Sprintf(" Continue (%s) asks for %s; %d stays on the GPU.", a.client, asks, *m.TunedContext)
		n.Actions = []Action{{ID: "fix", Label: "Fix now", Menu: "Fix Continue now"}}
	case m.TunedContext != nil:
		msg += fmt.Sprintf(" A context of %d stays on the GPU.", *m.TunedContext)
	case s.snap.GPU != ollama.GPUAbsent:
		msg += " Tune finds the largest context that stays on the GPU."
		n.Actions = []Action{{ID: "tune", Label: "Tune", Menu: "Tune context"}}
	}
	n.Message = msg
	return n
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
	Name string   // "" for an unused slot
	Line itemView // name, size, split, context; the submenu's parent
	Tune itemView
	Fix  itemView
	Info itemView // the tuned value
	Note itemView // how the last tune or fix ended, or a memory warning
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
	Problem    itemView
	Models     [maxModels]modelView
	AutoFix    itemView
	Notify     itemView
	Login      itemView
	OpenConfig itemView
	OpenLog    itemView
	About      itemView
	AboutInfo  itemView // version, Go, OS
	AboutPage  itemView // opens the project page
}

// projectPage is the page About opens.
const projectPage = "https://github.com/ctxfit/ctxfit"

// view computes what the tray shows in state s.
func (s *state) view() view {
	snap := s.snap
	v := view{Icon: s.icon(), Tooltip: s.tooltip(), Attention: s.attention()}

	v.Title = itemView{Title: "ctxfit " + s.versionOr() + " · " + s.overall(), Disabled: true}
	v.Header = itemView{Title: "Ollama" + version(snap.Version) + at(snap.Host), Disabled: true}
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
	switch {
	case s.settingsErr != "":
		v.Problem = itemView{Title: "⚠ " + actionable(s.settingsErr), Tooltip: s.settingsErr, Disabled: true}
	case s.readErr != "":
		v.Problem = itemView{Title: "⚠ " + actionable(s.readErr), Tooltip: s.readErr, Disabled: true}
	}

	models := s.listed()
	for i := range v.Models {
		if i >= len(models) {
			v.Models[i] = modelView{Line: itemView{Hidden: true}}
			continue
		}
		v.Models[i] = s.modelView(models[i])
	}

	v.AutoFix = itemView{Title: "Fix Continue automatically", Checked: s.settings.AutoFix, Disabled: !s.settingsKnown,
		Tooltip: "Rewrite Continue's config with the tuned context after each tune and whenever the file changes"}
	v.Notify = itemView{Title: "Notifications", Checked: !s.settings.NotificationsOff, Disabled: !s.settingsKnown,
		Tooltip: "Tell me when a model spills onto the CPU, keeps reloading, or when ctxfit fixed a config"}
	v.Login = itemView{Title: "Start at login", Checked: s.login, Disabled: !s.loginKnown || s.loginErr != ""}
	if s.loginErr != "" {
		// The reason in the title: most Linux panels show no tooltips.
		v.Login.Title = "Start at login (unavailable: " + reason(s.loginErr) + ")"
		v.Login.Tooltip = s.loginErr
	}
	v.OpenConfig = itemView{Title: "Open Continue config", Tooltip: s.continuePath, Disabled: s.continuePath == ""}
	if s.infoKnown && s.continuePath == "" {
		v.OpenConfig.Title = "Open Continue config (none found)"
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
	for _, t := range s.tuning {
		return "tuning " + t.model
	}
	var spilled, swap []string
	for _, m := range snap.Models {
		switch {
		case m.Spilled:
			spilled = append(spilled, m.Name)
		case m.RAMWarning != "":
			swap = append(swap, m.Name)
		}
	}
	switch {
	case len(spilled) == 1:
		return spilled[0] + " spilled onto the CPU"
	case len(spilled) > 1:
		return fmt.Sprintf("%d models spilled onto the CPU", len(spilled))
	case len(swap) > 0:
		return strings.Join(swap, ", ") + " will not fit in memory"
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
	for k, t := range s.tuning {
		if !slices.ContainsFunc(models, func(m watch.Model) bool { return ollama.ModelKey(m.Name) == k }) {
			models = append(slices.Clip(models), watch.Model{Name: t.model})
		}
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
	if m.Spilled || m.RAMWarning != "" {
		line = "⚠ " + line
	}
	progress, tuning := s.tuning[k]
	if tuning {
		line = m.Name + " · tuning: " + progress.line
	}
	mv.Line = itemView{Title: line}

	mv.Tune = itemView{Title: "Tune context",
		Tooltip: "Load the model a few times to find the largest context that stays 100% on the GPU"}
	if with := s.beside[k]; len(with) > 0 {
		mv.Tune = itemView{Title: "Tune context beside " + strings.Join(with, ", "),
			Tooltip: "It keeps unloading them: find the largest context at which they all stay 100% on the GPU together"}
	}
	switch {
	case tuning && progress.cancelled:
		mv.Tune = itemView{Title: "Cancelling…", Disabled: true}
	case tuning:
		mv.Tune = itemView{Title: "Cancel tuning"}
	case len(s.tuning) > 0:
		mv.Tune.Title, mv.Tune.Disabled = "Tune context (another tune is running)", true
	case s.snap.GPU == ollama.GPUAbsent:
		mv.Tune.Title, mv.Tune.Disabled = "Tune context (this Ollama has no GPU)", true
	}

	mv.Fix = s.fixView(m, k)

	mv.Info = itemView{Title: "Not tuned yet", Disabled: true}
	switch {
	case m.TunedContext != nil:
		mv.Info.Title = fmt.Sprintf("Tuned: context %d stays on the GPU", *m.TunedContext)
		if len(m.TunedBeside) > 0 {
			mv.Info.Title += " beside " + strings.Join(m.TunedBeside, ", ")
		}
	case tuning:
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

// fixView is the "Fix Continue now" item: enabled when a tuned value
// exists and Continue asks for a different one.
func (s *state) fixView(m watch.Model, k string) itemView {
	const title = "Fix Continue now"
	a, known := s.asks[k]
	v := itemView{Title: title, Disabled: true}
	switch {
	case s.fixing[k]:
		v.Title = title + " (writing…)"
	case s.tuning[k] != tuneProgress{}:
		v.Title = title + " (tuning…)"
	case !s.infoKnown || !known:
		// Not read yet.
	case s.continuePath == "":
		v.Title = title + " (Continue not found)"
	case !a.ok:
		v.Title = title + " (Continue does not use this model)"
	case m.TunedContext == nil:
		v.Title = title + " (tune first)"
	case a.context == *m.TunedContext:
		v.Title = fmt.Sprintf("%s (Continue asks for %d)", title, a.context)
	default:
		v.Disabled = false
		from := "default"
		if a.context > 0 {
			from = fmt.Sprint(a.context)
		}
		v.Title = fmt.Sprintf("%s: %s → %d", title, from, *m.TunedContext)
		v.Tooltip = fmt.Sprintf("Set contextLength of %q in %s to %d", a.client, s.continuePath, *m.TunedContext)
	}
	return v
}

// fixEnabled reports whether "Fix Continue now" is enabled for model.
func (s *state) fixEnabled(model string) bool {
	for _, m := range s.listed() {
		if ollama.SameModel(m.Name, model) {
			return !s.fixView(m, ollama.ModelKey(m.Name)).Disabled
		}
	}
	return false
}

// icon is ok when nothing is loaded or everything is whole on the GPU,
// warning when a model spilled or will swap on a CPU-only host, and
// unreachable when no Ollama answers.
func (s *state) icon() assets.State {
	if !s.snap.Reachable {
		return assets.Unreachable
	}
	for _, m := range s.snap.Models {
		if m.Spilled || m.RAMWarning != "" {
			return assets.Warning
		}
	}
	return assets.OK
}

// attention reports whether a loaded model spilled onto the CPU: the
// item's status asks the desktop to raise it until that ends.
func (s *state) attention() bool {
	if !s.snap.Reachable {
		return false
	}
	return slices.ContainsFunc(s.snap.Models, func(m watch.Model) bool { return m.Spilled })
}

// tooltip is the one-line summary under the icon.
func (s *state) tooltip() string {
	snap := s.snap
	switch {
	case !s.polled || !snap.Reachable && snap.Error == "":
		return "ctxfit: connecting to Ollama" + at(snap.Host)
	case !snap.Reachable:
		return "ctxfit: Ollama" + at(snap.Host) + " does not answer"
	case len(snap.Models) == 0 && len(s.tuning) > 0:
		return "ctxfit: " + s.overall()
	case len(snap.Models) == 0:
		return "ctxfit: no model loaded"
	}
	var spilled, swap []string
	for _, m := range snap.Models {
		switch {
		case m.Spilled:
			spilled = append(spilled, m.Name+" ("+m.Processor+")")
		case m.RAMWarning != "":
			swap = append(swap, m.Name)
		}
	}
	switch {
	case len(spilled) == 1:
		return "ctxfit: " + spilled[0] + " spilled onto the CPU"
	case len(spilled) > 1:
		return fmt.Sprintf("ctxfit: %d models spilled onto the CPU: %s", len(spilled), strings.Join(spilled, ", "))
	case len(swap) > 0:
		return "ctxfit: " + strings.Join(swap, ", ") + " will not fit in memory"
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
