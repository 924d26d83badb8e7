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

// known returns a state that has read everything from the backend.
func known(s watch.Snapshot, asks map[string]ask) *state {
	st := newState()
	st.apply(watch.Update{Snapshot: s}, time.Unix(1, 0))
	st.settingsKnown, st.loginKnown, st.infoKnown = true, true, true
	st.continuePath = "/home/u/.continue/config.yaml"
	st.logPath = "/home/u/.local/state/ctxfit/ctxfit.log"
	st.asks = asks
	if st.asks == nil {
		st.asks = map[string]ask{}
	}
	return st
}

func TestIcon(t *testing.T) {
	cpuOnly := func(m watch.Model) watch.Model {
		m.SizeVRAM, m.State, m.Processor, m.Spilled = 0, ollama.StateCPU, "100% CPU", false
		return m
	}
	swapping := cpuOnly(llamaGPU)
	swapping.RAMWarning = "llama3.1:8b needs 6.4 GB but this machine has 4.0 GB of RAM; try llama3.2:3b"
	for _, tt := range []struct {
		name string
		snap watch.Snapshot
		want assets.State
	}{
		{"before the first poll", watch.Snapshot{Host: host}, assets.Unreachable},
		{"unreachable", unreachable(), assets.Unreachable},
		{"nothing loaded", snap(), assets.OK},
		{"all on the GPU", snap(llamaGPU, qwenGPU), assets.OK},
		{"one spilled", snap(qwenGPU, llamaSpilled), assets.Warning},
		{"CPU-only host, fits in RAM", snap(cpuOnly(llamaGPU)), assets.OK},
		{"CPU-only host, will swap", snap(swapping), assets.Warning},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := newState()
			st.apply(watch.Update{Snapshot: tt.snap}, time.Now())
			if got := st.icon(); got != tt.want {
				t.Errorf("icon = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestFixItem(t *testing.T) {
	k := ollama.ModelKey(llamaSpilled.Name)
	for _, tt := range []struct {
		name    string
		model   watch.Model
		asks    map[string]ask
		edit    func(*state)
		title   string
		enabled bool
	}{
		{"Continue asks for more than fits", llamaSpilled, map[string]ask{k: {"Llama", 32768, true}}, nil,
			"Fix Continue now: 32768 → 16384", true},
		{"Continue sets no contextLength", llamaSpilled, map[string]ask{k: {"Llama", 0, true}}, nil,
			"Fix Continue now: default → 16384", true},
		{"Continue asks for less than fits", llamaSpilled, map[string]ask{k: {"Llama", 8192, true}}, nil,
			"Fix Continue now: 8192 → 16384", true},
		{"Continue already asks for the tuned value", llamaSpilled, map[string]ask{k: {"Llama", 16384, true}}, nil,
			"Fix Continue now (Continue asks for 16384)", false},
		{"not tuned", llamaGPU, map[string]ask{k: {"Llama", 32768, true}}, nil,
			"Fix Continue now (tune first)", false},
		{"Continue does not use the model", llamaSpilled, map[string]ask{k: {}}, nil,
			"Fix Continue now (Continue does not use this model)", false},
		{"no Continue config", llamaSpilled, map[string]ask{k: {}}, func(s *state) { s.continuePath = "" },
			"Fix Continue now (Continue not found)", false},
		{"not read yet", llamaSpilled, nil, func(s *state) { s.infoKnown = false },
			"Fix Continue now", false},
		{"a fix is being written", llamaSpilled, map[string]ask{k: {"Llama", 32768, true}}, func(s *state) { s.fixing[k] = true },
			"Fix Continue now (writing…)", false},
		{"the model is being tuned", llamaSpilled, map[string]ask{k: {"Llama", 32768, true}}, func(s *state) { s.tuning[k] = tuneProgress{model: "llama3.1:8b", line: "starting…"} },
			"Fix Continue now (tuning…)", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := known(snap(tt.model), tt.asks)
			if tt.edit != nil {
				tt.edit(st)
			}
			v := st.view().Models[0].Fix
			if v.Title != tt.title || v.Disabled == tt.enabled {
				t.Errorf("Fix item = %q enabled=%v, want %q enabled=%v", v.Title, !v.Disabled, tt.title, tt.enabled)
			}
			if got := st.fixEnabled(tt.model.Name); got != tt.enabled {
				t.Errorf("fixEnabled = %v, want %v", got, tt.enabled)
			}
		})
	}
}

// TestTuneBeside: after eviction thrash the model's tune item offers the
// joint tune that ends it.
func TestTuneBeside(t *testing.T) {
	st := known(snap(llamaGPU), nil)
	if got := st.view().Models[0].Tune.Title; got != "Tune context" {
		t.Errorf("before: %q", got)
	}
	st.apply(watch.Update{Snapshot: snap(llamaGPU), Events: []watch.Event{{Kind: watch.EventEvictionThrash, Model: "llama3.1:8b",
		Companions: []string{"qwen2.5-coder:7b=4096"}, Message: "unloaded each other"}}}, time.Unix(1000, 0))
	if got := st.view().Models[0].Tune; got.Title != "Tune context beside qwen2.5-coder:7b=4096" || got.Disabled {
		t.Errorf("after eviction thrash the tune item is %+v", got)
	}
}

// TestNotifications plays sequences of updates and checks which
// notifications each one raises.
func TestNotifications(t *testing.T) {
	t0 := time.Unix(1000, 0)
	upd := func(s watch.Snapshot, events ...watch.Event) watch.Update {
		return watch.Update{Snapshot: s, Events: events}
	}
	ev := func(kind watch.EventKind, model, msg string) watch.Event {
		return watch.Event{Kind: kind, Model: model, Message: msg}
	}
	type step struct {
		u        watch.Update
		edit     func(*state) // before the update
		want     []string     // titles
		withdraw []string     // keys of notifications closed
	}
	for _, tt := range []struct {
		name  string
		steps []step
	}{
		{"a spill is told once per episode", []step{
			{u: upd(snap(llamaGPU))},
			{u: upd(snap(llamaSpilled), ev(watch.EventSpillStarted, "llama3.1:8b", "")), want: []string{"llama3.1:8b spilled onto the CPU"}},
			{u: upd(snap(llamaSpilled))},
			{u: upd(snap(llamaSpilled))},
		}},
		{"back on the GPU ends the episode", []step{
			{u: upd(snap(llamaSpilled)), want: []string{"llama3.1:8b spilled onto the CPU"}},
			{u: upd(snap(llamaGPU)), withdraw: []string{"spill llama3.1:8b"}},
			{u: upd(snap(llamaSpilled)), want: []string{"llama3.1:8b spilled onto the CPU"}},
		}},
		{"an unload ends the episode", []step{
			{u: upd(snap(llamaSpilled)), want: []string{"llama3.1:8b spilled onto the CPU"}},
			{u: upd(snap()), withdraw: []string{"spill llama3.1:8b"}},
			{u: upd(snap(llamaSpilled)), want: []string{"llama3.1:8b spilled onto the CPU"}},
		}},
		{"a server that stops answering ends no episode", []step{
			{u: upd(snap(llamaSpilled)), want: []string{"llama3.1:8b spilled onto the CPU"}},
			{u: upd(unreachable())},
			{u: upd(snap(llamaSpilled))},
		}},
		{"episodes are per model", []step{
			{u: upd(snap(llamaSpilled)), want: []string{"llama3.1:8b spilled onto the CPU"}},
			{u: upd(snap(llamaSpilled, model("qwen2.5-coder:7b", 5*gib, 1*gib, 4096, ollama.GPUPresent))),
				want: []string{"qwen2.5-coder:7b spilled onto the CPU"}},
		}},
		{"the model name's tag does not matter", []step{
			{u: upd(snap(model("llama3.1", 9*gib, 7*gib, 32768, ollama.GPUPresent))), want: []string{"llama3.1 spilled onto the CPU"}},
			{u: upd(snap(model("llama3.1:latest", 9*gib, 7*gib, 32768, ollama.GPUPresent)))},
		}},
		{"reload thrash, swap risk, tune", []step{
			{u: upd(snap(llamaGPU), ev(watch.EventThrash, "llama3.1:8b", "reloaded 3 times"),
				ev(watch.EventSwapRisk, "llama3.1:8b", "needs more RAM"), ev(watch.EventTuned, "llama3.1:8b", "16384 fits"),
				ev(watch.EventLoaded, "llama3.1:8b", ""), ev(watch.EventUnreachable, "", "")),
				want: []string{"llama3.1:8b keeps reloading", "llama3.1:8b will not fit in memory", "Tune finished"}},
		}},
		{"eviction thrash", []step{
			{u: upd(snap(llamaGPU), watch.Event{Kind: watch.EventEvictionThrash, Model: "llama3.1:8b", Companions: []string{"qwen2.5-coder:7b=4096"}, Message: "unloaded each other"}),
				want: []string{"llama3.1:8b and qwen2.5-coder:7b=4096 keep unloading each other"}},
		}},
		{"an automatic fix is told", []step{
			{u: upd(snap(llamaGPU), ev(watch.EventConfigFixed, "llama3.1:8b", "Continue: contextLength 16384")), want: []string{"Client config fixed"}},
		}},
		{"a fix asked for in the menu is not", []step{
			{u: upd(snap(llamaGPU))},
			{edit: func(s *state) { s.fixing["llama3.1:8b"] = true },
				u: upd(snap(llamaGPU), ev(watch.EventConfigFixed, "llama3.1:8b", ""))},
			{edit: func(s *state) { delete(s.fixing, "llama3.1:8b"); s.quietFix["llama3.1:8b"] = t0.Add(manualFixQuiet) },
				u: upd(snap(llamaGPU), ev(watch.EventConfigFixed, "llama3.1:8b", ""), ev(watch.EventConfigFixed, "", ""))},
			{edit: func(s *state) { s.quietFix["llama3.1:8b"] = t0.Add(-time.Second) },
				u:    upd(snap(llamaGPU), ev(watch.EventConfigFixed, "llama3.1:8b", "")),
				want: []string{"Client config fixed"}},
		}},
		{"notifications off", []step{
			{edit: func(s *state) { s.settings.NotificationsOff = true },
				u: upd(snap(llamaSpilled), ev(watch.EventThrash, "llama3.1:8b", ""))},
			{edit: func(s *state) { s.settings.NotificationsOff = false }, u: upd(snap(llamaSpilled))},
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
				if w := st.takeWithdrawn(); fmt.Sprint(w) != fmt.Sprint(s.withdraw) {
					t.Errorf("step %d: withdrew %q, want %q", i, w, s.withdraw)
				}
			}
		})
	}
}

func TestSpillNoteSaysWhatToDo(t *testing.T) {
	asksMore := map[string]ask{"llama3.1:8b": {client: "Llama chat", context: 32768, ok: true}}
	for _, tt := range []struct {
		name    string
		st      *state
		m       watch.Model
		says    []string
		actions string
	}{
		{"Continue asks too much: Fix now", known(snap(llamaSpilled), asksMore), llamaSpilled,
			[]string{"9.7 GB", "22%/78% CPU/GPU", "context 32768", "Continue (Llama chat) asks for 32768; 16384 stays on the GPU."}, "fix:Fix now"},
		{"tuned, Continue not read yet", newState(), llamaSpilled,
			[]string{"A context of 16384 stays on the GPU."}, ""},
		{"not tuned: Tune", known(snap(), nil), model("gemma2:9b", 9*gib, 7*gib, 8192, ollama.GPUPresent),
			[]string{"gemma2:9b", "Tune finds the largest context that stays on the GPU."}, "tune:Tune"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.st.snap.Models = append(tt.st.snap.Models, tt.m)
			n := tt.st.spillNote(tt.m)
			for _, want := range tt.says {
				if !strings.Contains(n.Title+" "+n.Message, want) {
					t.Errorf("spill notification %q: %q does not say %q", n.Title, n.Message, want)
				}
			}
			if strings.Contains(n.Message, "/") && !strings.Contains(n.Message, "CPU/GPU") {
				t.Errorf("spill notification %q shows a path", n.Message)
			}
			var acts []string
			for _, a := range n.Actions {
				acts = append(acts, a.ID+":"+a.Label)
			}
			if got := strings.Join(acts, " "); got != tt.actions {
				t.Errorf("actions %q, want %q", got, tt.actions)
			}
			if n.Icon != assets.Warning || !n.Persistent || n.Key != "spill "+ollama.ModelKey(tt.m.Name) {
				t.Errorf("icon %s, persistent %v, key %q: want a persistent warning keyed by the model", n.Icon, n.Persistent, n.Key)
			}
		})
	}
}

func TestFixedNoteNamesClientAndModel(t *testing.T) {
	n := fixedNote(watch.Event{Kind: watch.EventConfigFixed, Client: "Continue", Model: "llama3.1:8b", ContextLength: 16384,
		Message: "Continue: fixed /home/u/.continue/config.yaml: Llama (llama3.1:8b) → context 16384"})
	if n.Title != "ctxfit fixed Continue's config" || n.Message != "Continue now asks for context 16384 for llama3.1:8b, which stays on the GPU." {
		t.Errorf("fixed notification %q: %q", n.Title, n.Message)
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
			st.apply(watch.Update{Snapshot: watch.Snapshot{Host: host}}, time.Now())
			return st
		}()},
		{"unreachable", known(unreachable(), nil)},
		{"idle", known(snap(), nil)},
		{"spilled", known(snap(qwenGPU, llamaSpilled), map[string]ask{
			k("llama3.1:8b"): {"Llama 3.1", 32768, true}, k("qwen2.5-coder:7b"): {}})},
		{"tuning", func() *state {
			st := known(snap(llamaSpilled, qwenGPU), nil)
			st.tuning[k("llama3.1:8b")] = tuneProgress{model: "llama3.1:8b", line: "16384: 100% GPU (3 loads)"}
			st.results[k("qwen2.5-coder:7b")] = "Tune failed: qwen2.5-coder:7b does not fit on the GPU even at context 2048"
			return st
		}()},
		{"settings", func() *state {
			st := known(snap(llamaGPU), nil)
			st.settings = ctxstate.Settings{AutoFix: true, NotificationsOff: true}
			st.login, st.loginErr = false, errors.New("start at login needs systemd --user").Error()
			st.continuePath, st.logPath = "", ""
			return st
		}()},
		{"settings failed", func() *state {
			st := known(snap(), nil)
			st.settingsErr = "Could not save the setting: open /home/u/.config/ctxfit/state.json: permission denied"
			return st
		}()},
		{"start at login failed while Ollama is down", func() *state {
			st := known(unreachable(), nil)
			st.settingsErr = "Could not save the setting: install /home/u/.config/systemd/user/ctxfit.service: systemctl --user enable ctxfit.service: exit status 1: Failed to connect to bus: No medium found (is a systemd user session running? `systemctl --user status` tells)"
			st.loginErr = "no systemd user session: `systemctl --user` cannot reach a user manager (Failed to connect to bus: No medium found); add `ctxfit run` to your desktop's autostart settings instead"
			return st
		}()},
		{"tuning a model that is not loaded", func() *state {
			st := known(snap(), nil)
			st.tuning[k("llama3.1:8b")] = tuneProgress{model: "llama3.1:8b", line: "16384: 100% GPU (3 loads)"}
			return st
		}()},
		{"tuned model reloading", func() *state {
			st := known(snap(qwenGPU), nil)
			st.tuning[k("llama3.1:8b")] = tuneProgress{model: "llama3.1:8b", line: "32768: 22%/78% CPU/GPU (2 loads)"}
			return st
		}()},
		{"tuning while Ollama restarts", func() *state {
			st := known(unreachable(), nil)
			st.tuning[k("llama3.1:8b")] = tuneProgress{"llama3.1:8b", "cancelling…", true}
			return st
		}()},
		{"settings unreadable", func() *state {
			st := known(snap(), nil)
			st.settingsKnown = false
			st.readErr = "Cannot read ctxfit's settings: state.json: invalid character 'x' looking for beginning of value"
			return st
		}()},
		{"swap risk", func() *state {
			s := snap(swapping)
			s.GPU = ollama.GPUAbsent
			return known(s, nil)
		}()},
		{"more models than fit", known(snap(many...), nil)},
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
		for _, it := range []itemView{m.Tune, m.Fix, m.Info, m.Note} {
			line("    ", it, false)
		}
	}
	b.WriteString("----\n")
	line("", v.AutoFix, true)
	line("", v.Notify, true)
	line("", v.Login, true)
	b.WriteString("----\n")
	line("", v.OpenConfig, false)
	line("", v.OpenLog, false)
	b.WriteString("----\n")
	line("", v.About, false)
	line("    ", v.AboutInfo, false)
	line("    ", v.AboutPage, false)
	b.WriteString("  Quit\n")
	// The golden files hold no build details.
	return strings.NewReplacer(runtime.Version(), "GOVERSION", runtime.GOOS+"/"+runtime.GOARCH, "OS/ARCH").Replace(b.String())
}

// BenchmarkPoll measures what the tray does for each poll of the watcher
// while models are loaded: take in the update and compute the view.
func BenchmarkPoll(b *testing.B) {
	models := make([]watch.Model, maxModels)
	asks := map[string]ask{}
	for i := range models {
		models[i] = tuned(model(fmt.Sprintf("model%02d:7b", i), 9*gib, 7*gib, 32768, ollama.GPUPresent), 16384)
		asks[ollama.ModelKey(models[i].Name)] = ask{"Model", 32768, true}
	}
	st := known(snap(models...), asks)
	u := watch.Update{Snapshot: snap(models...)}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		st.apply(u, now)
		_ = st.view()
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
	tuningUnloaded := known(snap(), nil)
	tuningUnloaded.tuning[k("llama3.1:8b")] = tuneProgress{model: "llama3.1:8b", line: "8192: 100% GPU (1 load)"}
	tuningDown := known(unreachable(), nil)
	tuningDown.tuning[k("llama3.1:8b")] = tuneProgress{model: "llama3.1:8b", line: "starting…"}
	for name, st := range map[string]*state{
		"starting": newState(), "idle": known(snap(), nil), "spilled": known(snap(llamaSpilled), nil),
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

// TestSpillWaitsForWhatContinueAsks: a model that spills as it loads is
// told once what Continue asks for it has been read, so that the
// notification can offer Fix now; or after holdSpill without it.
func TestSpillWaitsForWhatContinueAsks(t *testing.T) {
	t0 := time.Unix(1000, 0)
	st := known(snap(), nil)
	if notes := st.apply(watch.Update{Snapshot: snap(llamaSpilled)}, t0); len(notes) != 0 {
		t.Fatalf("told before Continue was read: %+v", notes)
	}
	if notes := st.apply(watch.Update{Snapshot: snap(llamaSpilled)}, t0.Add(time.Second)); len(notes) != 0 {
		t.Fatalf("told before Continue was read: %+v", notes)
	}
	st.asks[ollama.ModelKey("llama3.1:8b")] = ask{client: "Llama", context: 32768, ok: true}
	notes := st.heldNotes()
	if len(notes) != 1 || len(notes[0].Actions) != 1 || notes[0].Actions[0].ID != "fix" {
		t.Fatalf("after the refresh: %+v, want one notification offering Fix now", notes)
	}
	if notes := st.apply(watch.Update{Snapshot: snap(llamaSpilled)}, t0.Add(2*time.Second)); len(notes) != 0 {
		t.Errorf("told twice: %+v", notes)
	}

	// No refresh comes: told after holdSpill, without Fix now.
	st = known(snap(), nil)
	st.apply(watch.Update{Snapshot: snap(llamaSpilled)}, t0)
	notes = st.apply(watch.Update{Snapshot: snap(llamaSpilled)}, t0.Add(holdSpill))
	if len(notes) != 1 {
		t.Errorf("after %v without a refresh: %+v, want the spill told", holdSpill, notes)
	}
	// A spill that ends while held is never told, nor withdrawn.
	st = known(snap(), nil)
	st.apply(watch.Update{Snapshot: snap(llamaSpilled)}, t0)
	st.apply(watch.Update{Snapshot: snap(llamaGPU)}, t0.Add(time.Second))
	if w := st.takeWithdrawn(); len(w) != 0 || len(st.heldNotes()) != 0 {
		t.Errorf("a spill over before it was told: withdrew %q", w)
	}
}
