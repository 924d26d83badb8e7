package tray

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ctxfit/ctxfit/assets"
	"github.com/ctxfit/ctxfit/clients"
	"github.com/ctxfit/ctxfit/hub"
	"github.com/ctxfit/ctxfit/ollama"
	ctxstate "github.com/ctxfit/ctxfit/state"
	"github.com/ctxfit/ctxfit/watch"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

const host = "http://127.0.0.1:11434"

func ptr(n int) *int { return &n }

// model returns a loaded model with the split Classify gives.
func model(name string, size, vram int64, ctx int, gpu ollama.GPUPresence) watch.Model {
	st, proc := ollama.Classify(size, vram)
	return watch.Model{Name: name, Size: size, SizeVRAM: vram, Processor: proc, ContextLength: ctx,
		State: st, Spilled: ollama.Spilled(st, gpu)}
}

func tuned(m watch.Model, n int) watch.Model { m.TunedContext = ptr(n); return m }

const gib = 1 << 30

var (
	llamaGPU     = model("llama3.1:8b", 6*gib, 6*gib, 8192, ollama.GPUPresent)
	llamaSpilled = tuned(model("llama3.1:8b", 9*gib, 7*gib, 32768, ollama.GPUPresent), 16384)
	qwenGPU      = model("qwen2.5-coder:7b", 5*gib, 5*gib, 4096, ollama.GPUPresent)
)

func snap(models ...watch.Model) watch.Snapshot {
	return watch.Snapshot{Host: host, Reachable: true, Version: "0.17.4", GPU: ollama.GPUPresent, Models: models, Time: time.Unix(1, 0)}
}

func unreachable() watch.Snapshot {
	return watch.Snapshot{Host: host, Error: "cannot reach Ollama at " + host + ": connection refused. Start it with `ollama serve`, or point ctxfit at it with --host or OLLAMA_HOST", Time: time.Unix(1, 0)}
}

// asking returns client name's state with one entry for model.
func asking(name, model string, context, tuned int) hub.Client {
	return hub.Client{Name: name, Path: "/home/u/." + strings.ToLower(name) + "/config", Installed: true,
		Asks: []clients.Ask{{Client: name, Model: model, Context: context, Tuned: tuned}}}
}

// known returns a state that has had an update and read the login service.
func known(s watch.Snapshot, cls ...hub.Client) *state {
	st := newState()
	st.apply(hub.Update{State: hub.State{Snapshot: s, Clients: cls}}, time.Unix(1, 0))
	st.loginKnown = true
	st.logPath = "/home/u/.local/state/ctxfit/ctxfit.log"
	return st
}

func TestIcon(t *testing.T) {
	cpuOnly := func(m watch.Model) watch.Model {
		m.SizeVRAM, m.State, m.Processor, m.Spilled = 0, ollama.StateCPU, "100% CPU", false
		return m
	}
	swapping := cpuOnly(llamaGPU)
	swapping.RAMWarning = "llama3.1:8b needs 6.4 GB but this machine has 4.0 GB of RAM; try llama3.2:3b"
	llamaFits := tuned(llamaGPU, 16384)
	for _, tt := range []struct {
		name  string
		state hub.State
		want  assets.State
	}{
		{"before the first poll", hub.State{Snapshot: watch.Snapshot{Host: host}}, assets.Unreachable},
		{"unreachable", hub.State{Snapshot: unreachable()}, assets.Unreachable},
		{"nothing loaded", hub.State{Snapshot: snap()}, assets.OK},
		{"all on the GPU", hub.State{Snapshot: snap(llamaGPU, qwenGPU)}, assets.OK},
		{"one spilled", hub.State{Snapshot: snap(qwenGPU, llamaSpilled)}, assets.Warning},
		{"CPU-only host, fits in RAM", hub.State{Snapshot: snap(cpuOnly(llamaGPU))}, assets.OK},
		{"CPU-only host, will swap", hub.State{Snapshot: snap(swapping)}, assets.Warning},
		{"on the GPU after a tune, but Continue asks for more", hub.State{Snapshot: snap(llamaFits),
			Clients: []hub.Client{asking("Continue", "llama3.1:8b", 131072, 16384)}}, assets.Warning},
		{"on the GPU and every client asks what fits", hub.State{Snapshot: snap(llamaFits),
			Clients: []hub.Client{asking("Continue", "llama3.1:8b", 16384, 16384)}}, assets.OK},
		{"spilled while being tuned: the tuner's probe", hub.State{Snapshot: snap(llamaSpilled),
			Tunes: []hub.Tune{{Model: "llama3.1:8b", By: "ctxfit tune"}}}, assets.OK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := newState()
			st.apply(hub.Update{State: tt.state}, time.Now())
			if got := st.icon(); got != tt.want {
				t.Errorf("icon = %s, want %s", got, tt.want)
			}
		})
	}
}

// TestFixItems checks the per-client Fix items under a model: one for each
// client that asks for more than fits, whatever the client.
func TestFixItems(t *testing.T) {
	const m = "llama3.1:8b"
	for _, tt := range []struct {
		name    string
		model   watch.Model
		clients []hub.Client
		edit    func(*state)
		want    []string // titles of the visible items, "-" before a disabled one
	}{
		{"Continue asks for more than fits", llamaSpilled, []hub.Client{asking("Continue", m, 32768, 16384)}, nil,
			[]string{"Fix Continue now: 32768 → 16384"}},
		{"Zed and Cline ask for more, Continue not", llamaSpilled, []hub.Client{
			asking("Cline", m, 65536, 16384), asking("Continue", m, 8192, 16384), asking("Zed", m, 32768, 16384)}, nil,
			[]string{"Fix Cline now: 65536 → 16384", "Fix Zed now: 32768 → 16384"}},
		{"a client registered later", llamaSpilled, []hub.Client{asking("opencode", m, 131072, 16384)}, nil,
			[]string{"Fix opencode now: 131072 → 16384"}},
		{"no client asks for more", llamaSpilled, []hub.Client{asking("Continue", m, 16384, 16384)}, nil,
			[]string{"-No client asks for more than fits"}},
		{"not tuned", llamaGPU, []hub.Client{asking("Continue", m, 32768, 0)}, nil,
			[]string{"-Fix now (tune first)"}},
		{"a fix is being written", llamaSpilled, []hub.Client{asking("Continue", m, 32768, 16384)},
			func(s *state) { s.fixing["Continue"] = true }, []string{"-Fix Continue now (writing…)"}},
		{"the model is being tuned elsewhere", llamaSpilled, []hub.Client{asking("Continue", m, 32768, 16384)},
			func(s *state) { s.hs.Tunes = []hub.Tune{{Model: m, By: "ctxfit tune"}} }, []string{"-Fix Continue now (tuning…)"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := known(snap(tt.model), tt.clients...)
			if tt.edit != nil {
				tt.edit(st)
			}
			var got []string
			for _, f := range st.view().Models[0].Fixes {
				if f.Item.Hidden {
					continue
				}
				title := f.Item.Title
				if f.Item.Disabled {
					title = "-" + title
				}
				got = append(got, title)
				if f.Client != "" && st.fixEnabled(m, f.Client) == f.Item.Disabled {
					t.Errorf("fixEnabled(%s) = %v, but the item is disabled=%v", f.Client, !f.Item.Disabled, f.Item.Disabled)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("Fix items %q, want %q", got, tt.want)
			}
		})
	}
}

// TestTuneBeside: after eviction thrash the model's tune item offers the
// joint tune that ends it.
func TestTuneBeside(t *testing.T) {
	st := known(snap(llamaGPU))
	if got := st.view().Models[0].Tune.Title; got != "Tune context" {
		t.Errorf("before: %q", got)
	}
	st.apply(hub.Update{State: hub.State{Snapshot: snap(llamaGPU)}, Events: []hub.Event{{Event: watch.Event{Kind: watch.EventEvictionThrash, Model: "llama3.1:8b",
		Companions: []string{"qwen2.5-coder:7b=4096"}, Message: "unloaded each other"}}}}, time.Unix(1000, 0))
	if got := st.view().Models[0].Tune; got.Title != "Tune context beside qwen2.5-coder:7b=4096" || got.Disabled {
		t.Errorf("after eviction thrash the tune item is %+v", got)
	}
}

// TestNotifications plays sequences of updates and checks which
// notifications each one raises. The hub decides spill episodes and drops
// the tuner's own events, so the tray tells each spill_started event.
func TestNotifications(t *testing.T) {
	t0 := time.Unix(1000, 0)
	upd := func(s watch.Snapshot, events ...hub.Event) hub.Update {
		return hub.Update{State: hub.State{Snapshot: s}, Events: events}
	}
	ev := func(kind watch.EventKind, model, msg string) hub.Event {
		return hub.Event{Event: watch.Event{Kind: kind, Model: model, Message: msg}}
	}
	fixed := func(client string) hub.Event {
		return hub.Event{Event: watch.Event{Kind: hub.EventConfigFixed, Model: "llama3.1:8b"}, Client: client}
	}
	type step struct {
		u    hub.Update
		edit func(*state) // before the update
		want []string     // titles
	}
	for _, tt := range []struct {
		name  string
		steps []step
	}{
		{"a spill is told once, by its event", []step{
			{u: upd(snap(llamaGPU))},
			{u: upd(snap(llamaSpilled), ev(watch.EventSpillStarted, "llama3.1:8b", "")), want: []string{"llama3.1:8b spilled onto the CPU"}},
			{u: upd(snap(llamaSpilled))},
		}},
		{"reload thrash, swap risk, tune", []step{
			{u: upd(snap(llamaGPU), ev(watch.EventThrash, "llama3.1:8b", "reloaded 3 times"),
				ev(watch.EventSwapRisk, "llama3.1:8b", "needs more RAM"), ev(hub.EventTuned, "llama3.1:8b", "16384 fits"),
				ev(watch.EventLoaded, "llama3.1:8b", ""), ev(watch.EventUnreachable, "", ""), ev(hub.EventTuneStarted, "llama3.1:8b", "")),
				want: []string{"llama3.1:8b keeps reloading", "llama3.1:8b will not fit in memory", "Tune finished"}},
		}},
		{"a tune made under another GPU limit", []step{
			{u: upd(snap(llamaGPU), ev(hub.EventTuneStale, "llama3.1:8b", "tuned with 21.3 GiB for the GPU")),
				want: []string{"Re-tune llama3.1:8b for the new GPU limit"}},
		}},
		{"eviction thrash", []step{
			{u: upd(snap(llamaGPU), hub.Event{Event: watch.Event{Kind: watch.EventEvictionThrash, Model: "llama3.1:8b", Companions: []string{"qwen2.5-coder:7b=4096"}, Message: "unloaded each other"}}),
				want: []string{"llama3.1:8b and qwen2.5-coder:7b=4096 keep unloading each other"}},
		}},
		{"an automatic fix is told", []step{
			{u: upd(snap(llamaGPU), fixed("Continue")), want: []string{"Client config fixed"}},
		}},
		{"a fix asked for in the menu is not", []step{
			{u: upd(snap(llamaGPU))},
			{edit: func(s *state) { s.fixing["Zed"] = true }, u: upd(snap(llamaGPU), fixed("Zed"))},
			{edit: func(s *state) { delete(s.fixing, "Zed"); s.quietFix["Zed"] = t0.Add(manualFixQuiet) },
				u: upd(snap(llamaGPU), fixed("Zed"), fixed("Continue")), want: []string{"Client config fixed"}},
			{edit: func(s *state) { s.quietFix["Zed"] = t0.Add(-time.Second) },
				u: upd(snap(llamaGPU), fixed("Zed")), want: []string{"Client config fixed"}},
		}},
		{"notifications off", []step{
			{u: hub.Update{State: hub.State{Snapshot: snap(llamaSpilled), Settings: ctxstate.Settings{NotificationsOff: true}},
				Events: []hub.Event{ev(watch.EventThrash, "llama3.1:8b", ""), ev(watch.EventSpillStarted, "llama3.1:8b", "")}}},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := newState()
			for i, s := range tt.steps {
				if s.edit != nil {
					s.edit(st)
				}
				var got []string
				for _, n := range st.apply(s.u, t0) {
					got = append(got, n.Title)
				}
				if fmt.Sprint(got) != fmt.Sprint(s.want) {
					t.Errorf("step %d: notifications %q, want %q", i, got, s.want)
				}
			}
		})
	}
}

// The spill notification's advice is what the menu can do, and its
// buttons do what the menu items do.
func TestSpillNoteSaysWhatToDo(t *testing.T) {
	spill := hub.Event{Event: watch.Event{Kind: watch.EventSpillStarted, Model: "llama3.1:8b"}}
	for _, tt := range []struct {
		name    string
		st      *state
		want    []string
		notWant string
		actions string // id:label:menu
	}{
		{"Zed asks for too much", known(snap(llamaSpilled), asking("Zed", "llama3.1:8b", 32768, 16384), asking("Continue", "llama3.1:8b", 8192, 16384)),
			[]string{"9.7 GB", "22%/78% CPU/GPU", "context 32768", "Zed asks for more than the 16384"}, "Continue", "[fix:Fix now:Fix Zed now]"},
		{"no client config asks for too much", known(snap(llamaSpilled), asking("Continue", "llama3.1:8b", 8192, 16384)),
			[]string{"16384 stays on the GPU", "no client config ctxfit knows asks for more", "ctxfit fix ollama"}, "Fix now", "[]"},
		{"not tuned", known(snap(model("llama3.1:8b", 9*gib, 7*gib, 8192, ollama.GPUPresent))),
			[]string{"Tune finds the largest context"}, "Fix", "[tune:Tune:Tune context]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := tt.st.spillNote(spill)
			for _, w := range tt.want {
				if !strings.Contains(n.Message, w) {
					t.Errorf("spill notification %q does not say %q", n.Message, w)
				}
			}
			if strings.Contains(n.Message, tt.notWant) {
				t.Errorf("spill notification %q says %q, which the menu cannot do here", n.Message, tt.notWant)
			}
			var acts []string
			for _, a := range n.Actions {
				acts = append(acts, a.ID+":"+a.Label+":"+a.Menu)
			}
			if got := "[" + strings.Join(acts, " ") + "]"; got != tt.actions {
				t.Errorf("actions %s, want %s", got, tt.actions)
			}
			if n.Icon != assets.Warning || !n.Persistent || n.Key != "spill llama3.1:8b" {
				t.Errorf("notification %+v: want a persistent warning keyed by the model", n)
			}
		})
	}
}

// A told spill's notification is withdrawn once the model is whole on the
// GPU again or unloaded, not when the server stops answering.
func TestSpillNotificationWithdrawn(t *testing.T) {
	st := known(snap(llamaSpilled))
	st.apply(hub.Update{State: hub.State{Snapshot: snap(llamaSpilled)}, Events: []hub.Event{{Event: watch.Event{Kind: watch.EventSpillStarted, Model: "llama3.1:8b"}}}}, time.Now())
	st.apply(hub.Update{State: hub.State{Snapshot: unreachable()}}, time.Now())
	if w := st.takeWithdrawn(); len(w) != 0 {
		t.Errorf("withdrawn while the server does not answer: %v", w)
	}
	st.apply(hub.Update{State: hub.State{Snapshot: snap(llamaGPU)}}, time.Now())
	if w := st.takeWithdrawn(); fmt.Sprint(w) != "[spill llama3.1:8b]" {
		t.Errorf("withdrawn %v, want the spill's key", w)
	}
}

// After a tune with auto-fix off, the tray says who asks for too much.
func TestTunedNoteAndTooltipName(t *testing.T) {
	st := known(snap(tuned(llamaGPU, 25600)), asking("Continue", "llama3.1:8b", 131072, 25600))
	n := st.tunedNote(hub.Event{Event: watch.Event{Kind: hub.EventTuned, Model: "llama3.1:8b", Message: "llama3.1:8b: num_ctx 25600 stays 100% on the GPU."}})
	if !strings.Contains(n.Message, "Continue asks 131072; 25600 fits") || !strings.Contains(n.Message, "Fix now") {
		t.Errorf("tune notification %q does not say who asks too much and what to do", n.Message)
	}
	if tip := st.view().Tooltip; !strings.Contains(tip, "Continue asks 131072; 25600 fits") {
		t.Errorf("tooltip %q does not say who asks too much", tip)
	}
}

// TestMenu compares whole menus with golden files under testdata/menu.
func TestMenu(t *testing.T) {
	k := ollama.ModelKey
	many := make([]watch.Model, maxModels+2)
	for i := range many {
		many[i] = model(fmt.Sprintf("model%02d", i), 1*gib, 1*gib, 2048, ollama.GPUPresent)
	}
	swapping := model("llama3.1:70b", 40*gib, 0, 8192, ollama.GPUAbsent)
	swapping.RAMWarning = "llama3.1:70b needs 40.0 GiB but this machine has 32.0 GiB of RAM: it will swap. llama3.1:8b would fit"
	for _, tt := range []struct {
		name string
		st   *state
	}{
		{"starting", newState()},
		{"connecting", func() *state {
			st := newState()
			st.apply(hub.Update{State: hub.State{Snapshot: watch.Snapshot{Host: host}}}, time.Now())
			return st
		}()},
		{"unreachable", known(unreachable())},
		{"idle", known(snap())},
		{"spilled", known(snap(qwenGPU, llamaSpilled), asking("Continue", "llama3.1:8b", 32768, 16384), asking("Zed", "llama3.1:8b", 65536, 16384))},
		{"tuned and Continue asks for more", known(snap(tuned(llamaGPU, 25600)), asking("Continue", "llama3.1:8b", 131072, 25600))},
		{"tuning", func() *state {
			st := known(snap(llamaSpilled, qwenGPU))
			st.tuning[k("llama3.1:8b")] = tuneProgress{model: "llama3.1:8b"}
			st.hs.Tunes = []hub.Tune{{Model: "llama3.1:8b", By: "the tray", Line: "16384: 100% GPU (3 loads)"}}
			st.results[k("qwen2.5-coder:7b")] = "Tune failed: qwen2.5-coder:7b does not fit on the GPU even at context 2048"
			return st
		}()},
		{"tuning from a terminal", func() *state {
			st := known(snap(llamaSpilled, qwenGPU))
			st.hs.Tunes = []hub.Tune{{Model: "llama3.1:8b", By: "ctxfit tune (pid 42 on box)", Line: "num_ctx 32768: 9.7 GB, 22%/78% CPU/GPU, 2.1 s"}}
			return st
		}()},
		{"settings", func() *state {
			st := known(snap(llamaGPU))
			st.hs.Settings = ctxstate.Settings{AutoFix: true, NotificationsOff: true}
			st.login, st.loginErr = false, errors.New("start at login needs systemd --user").Error()
			st.logPath = ""
			return st
		}()},
		{"settings failed", func() *state {
			st := known(snap())
			st.settingsErr = "Could not save the setting: open /home/u/.config/ctxfit/state.json: permission denied"
			return st
		}()},
		{"start at login failed while Ollama is down", func() *state {
			st := known(unreachable())
			st.settingsErr = "Could not save the setting: install /home/u/.config/systemd/user/ctxfit.service: systemctl --user enable ctxfit.service: exit status 1: Failed to connect to bus: No medium found (is a systemd user session running? `systemctl --user status` tells)"
			st.loginErr = "no systemd user session: `systemctl --user` cannot reach a user manager (Failed to connect to bus: No medium found); add `ctxfit run` to your desktop's autostart settings instead"
			return st
		}()},
		{"tuning a model that is not loaded", func() *state {
			st := known(snap())
			st.tuning[k("llama3.1:8b")] = tuneProgress{model: "llama3.1:8b"}
			st.hs.Tunes = []hub.Tune{{Model: "llama3.1:8b", By: "the tray", Line: "16384: 100% GPU (3 loads)"}}
			return st
		}()},
		{"tuned model reloading", func() *state {
			st := known(snap(qwenGPU))
			st.tuning[k("llama3.1:8b")] = tuneProgress{model: "llama3.1:8b"}
			st.hs.Tunes = []hub.Tune{{Model: "llama3.1:8b", By: "the tray", Line: "32768: 22%/78% CPU/GPU (2 loads)"}}
			return st
		}()},
		{"tuning while Ollama restarts", func() *state {
			st := known(unreachable())
			st.tuning[k("llama3.1:8b")] = tuneProgress{"llama3.1:8b", true}
			return st
		}()},
		{"swap risk", func() *state {
			s := snap(swapping)
			s.GPU = ollama.GPUAbsent
			return known(s)
		}()},
		{"more models than fit", known(snap(many...))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := render(tt.st.view())
			path := filepath.Join("testdata", "menu", strings.ReplaceAll(tt.name, " ", "_")+".txt")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./tray -run TestMenu -update)", err)
			}
			if got != string(want) {
				t.Errorf("menu differs from %s (go test ./tray -run TestMenu -update rewrites it)\ngot:\n%s\nwant:\n%s", path, got, want)
			}
		})
	}
}

// render writes a view as text: one line per visible item, "-" before a
// disabled one, "[x]"/"[ ]" for checkboxes, submenus indented.
func render(v view) string {
	var b strings.Builder
	fmt.Fprintf(&b, "icon: %s\ntooltip: %s\n", v.Icon, v.Tooltip)
	line := func(indent string, it itemView, checkbox bool) {
		if it.Hidden {
			return
		}
		b.WriteString(indent)
		if it.Disabled {
			b.WriteString("- ")
		} else {
			b.WriteString("  ")
		}
		if checkbox {
			if it.Checked {
				b.WriteString("[x] ")
			} else {
				b.WriteString("[ ] ")
			}
		}
		b.WriteString(it.Title)
		if it.Tooltip != "" {
			fmt.Fprintf(&b, "   (%s)", it.Tooltip)
		}
		b.WriteString("\n")
	}
	line("", v.Title, false)
	line("", v.Header, false)
	line("", v.Status, false)
	line("", v.Problem, false)
	for _, m := range v.Models {
		if m.Line.Hidden {
			continue
		}
		line("", m.Line, false)
		line("    ", m.Tune, false)
		for _, f := range m.Fixes {
			line("    ", f.Item, false)
		}
		line("    ", m.Info, false)
		line("    ", m.Note, false)
	}
	b.WriteString("----\n")
	line("", v.AutoFix, true)
	line("", v.Notify, true)
	line("", v.Login, true)
	b.WriteString("----\n")
	line("", v.OpenLog, false)
	b.WriteString("----\n")
	line("", v.About, false)
	line("    ", v.AboutInfo, false)
	line("    ", v.AboutPage, false)
	b.WriteString("  Quit\n")
	// The golden files hold no build details.
	return strings.NewReplacer(runtime.Version(), "GOVERSION", runtime.GOOS+"/"+runtime.GOARCH, "OS/ARCH").Replace(b.String())
}

func TestFixedNoteNamesClientAndModel(t *testing.T) {
	n := fixedNote(hub.Event{Event: watch.Event{Kind: hub.EventConfigFixed, Model: "llama3.1:8b", ContextLength: 16384,
		Message: "Continue: fixed /home/u/.continue/config.yaml: Llama (llama3.1:8b) → context 16384"}, Client: "Continue"})
	if n.Title != "ctxfit fixed Continue's config" || n.Message != "Continue now asks for context 16384 for llama3.1:8b, which stays on the GPU." {
		t.Errorf("fixed notification %q: %q", n.Title, n.Message)
	}
}

func TestActionable(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"short enough to keep whole", "short enough to keep whole"},
		{"Could not save the setting: install /home/u/.config/systemd/user/ctxfit.service: systemctl --user enable ctxfit.service: exit status 1: Failed to connect to bus: No medium found (is a systemd user session running? `systemctl --user status` tells)",
			"Could not save the setting — is a systemd user session running? `systemctl --user status` tells"},
		{"Tune failed: load qwen2.5-coder:7b at context 2048: the server refused the load: model requires more system memory (9.1 GiB) than is available (4.0 GiB). Close other programs",
			"Tune failed — Close other programs"},
	} {
		if got := actionable(tt.in); got != tt.want {
			t.Errorf("actionable(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
		if n := len([]rune(actionable(tt.in))); n > menuWidth {
			t.Errorf("actionable(%q) is %d characters, more than %d", tt.in, n, menuWidth)
		}
	}
}

// TestMenuHasNoEmptyLines: in every state the tests know, no visible item
// is blank, and "No model loaded" never stands beside a model's line.
func TestMenuHasNoEmptyLines(t *testing.T) {
	k := ollama.ModelKey
	tuningUnloaded := known(snap())
	tuningUnloaded.tuning[k("llama3.1:8b")] = tuneProgress{model: "llama3.1:8b"}
	tuningDown := known(unreachable())
	tuningDown.tuning[k("llama3.1:8b")] = tuneProgress{model: "llama3.1:8b"}
	for name, st := range map[string]*state{
		"starting": newState(), "idle": known(snap()), "spilled": known(snap(llamaSpilled)),
		"tuning unloaded": tuningUnloaded, "tuning while down": tuningDown,
	} {
		out := render(st.view())
		for i, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if l != "----" && strings.TrimLeft(l, " -") == "" {
				t.Errorf("%s: line %d is blank:\n%s", name, i, out)
			}
		}
		if strings.Contains(out, "No model loaded") && strings.Contains(out, "tuning:") {
			t.Errorf("%s: says No model loaded beside a tune:\n%s", name, out)
		}
	}
}

// BenchmarkPoll measures what the tray does for each update of the daemon
// while models are loaded: take in the update and compute the view.
func BenchmarkPoll(b *testing.B) {
	models := make([]watch.Model, maxModels)
	var cls []hub.Client
	for i := range models {
		models[i] = tuned(model(fmt.Sprintf("model%02d:7b", i), 9*gib, 7*gib, 32768, ollama.GPUPresent), 16384)
		cls = append(cls, asking(fmt.Sprintf("Client%d", i), models[i].Name, 32768, 16384))
	}
	st := known(snap(models...), cls...)
	u := hub.Update{State: hub.State{Snapshot: snap(models...), Clients: cls}}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		st.apply(u, now)
		_ = st.view()
	}
}
