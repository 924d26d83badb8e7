package hub

import (
	"strings"
	"testing"
	"time"

	"github.com/ctxfit/ctxfit/clients"
	"github.com/ctxfit/ctxfit/internal/fanout"
	"github.com/ctxfit/ctxfit/internal/hint"
	"github.com/ctxfit/ctxfit/ollama"
	"github.com/ctxfit/ctxfit/state"
	"github.com/ctxfit/ctxfit/watch"
)

const host = "http://127.0.0.1:11434"

func model(name string, spilled bool, ctx int) watch.Model {
	m := watch.Model{Name: name, Size: 10 << 30, SizeVRAM: 10 << 30, Processor: "100% GPU", ContextLength: ctx, State: ollama.StateGPU}
	if spilled {
		m.SizeVRAM, m.Processor, m.State, m.Spilled = 6<<30, "40%/60% CPU/GPU", ollama.StatePartial, true
	}
	return m
}

func snap(ms ...watch.Model) watch.Snapshot {
	return watch.Snapshot{Host: host, Reachable: true, GPU: ollama.GPUPresent, Models: ms}
}

func spill(m watch.Model) watch.Event {
	e := watch.SpillEvent(m, hint.Hints{})
	e.Host = host
	return e
}

// recv returns every update waiting on ch within a short while.
func recv(ch <-chan Update) []Update {
	var out []Update
	for {
		select {
		case u := <-ch:
			out = append(out, u)
		case <-time.After(100 * time.Millisecond):
			return out
		}
	}
}

func kinds(us []Update) []string {
	var ks []string
	for _, u := range us {
		for _, e := range u.Events {
			ks = append(ks, string(e.Kind))
		}
	}
	return ks
}

// One spill, seen by poll after poll, is one update with one event, and it
// names the client that asks for too much.
func TestOneUpdatePerSpill(t *testing.T) {
	h := New(host, nil)
	h.SetClient(Client{Name: "Continue", Installed: true, Asks: []clients.Ask{
		{Client: "Continue", Model: "llama3.1:8b", Context: 131072, Tuned: 24576}}})
	ch, stop := h.Subscribe()
	defer stop()
	spilled := model("llama3.1:8b", true, 131072)
	h.Watched(watch.Update{Snapshot: snap(spilled), Events: []watch.Event{spill(spilled)}})
	for range 5 { // the same snapshot, poll after poll: no change
		h.Watched(watch.Update{Snapshot: snap(spilled)})
	}
	us := recv(ch)
	if len(us) != 1 || len(us[0].Events) != 1 {
		t.Fatalf("got %d updates (%v) for one spill, want one with one event", len(us), kinds(us))
	}
	e := us[0].Events[0]
	if e.Kind != watch.EventSpillStarted || !strings.Contains(e.Message, "Continue asks llama3.1:8b for 131072 tokens; 24576 stays on the GPU") {
		t.Errorf("spill event %+v does not name Continue", e)
	}
	if !Warning(e.Kind) {
		t.Error("a spill is not a warning")
	}
}

// While a model is tuned the hub publishes none of its watcher events
// (others' pass), and when the tune ends it judges the model afresh: one
// spill if it is spilled now, none if not.
func TestTuneSilencesItsModelAndJudgesAfresh(t *testing.T) {
	for _, tt := range []struct {
		name      string
		after     watch.Model
		wantSpill bool
	}{
		{"the tune leaves the model on the GPU", model("llama3.1:8b", false, 24576), false},
		{"the tune failed and left it spilled", model("llama3.1:8b", true, 131072), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := New(host, nil)
			ch, stop := h.Subscribe()
			defer stop()
			if err := h.BeginTune(Tune{Model: "llama3.1:8b", By: "ctxfit tune"}); err != nil {
				t.Fatal(err)
			}
			if err := h.BeginTune(Tune{Model: "llama3.1:8b", By: "the tray"}); err == nil {
				t.Error("a second tune of the same model was accepted")
			}
			probe := model("llama3.1:8b", true, 65536)
			other := model("qwen2.5:7b", true, 32768)
			h.Watched(watch.Update{Snapshot: snap(probe, other), Events: []watch.Event{
				{Kind: watch.EventContextChanged, Model: probe.Name}, spill(probe), spill(other),
				{Kind: watch.EventThrash, Model: probe.Name}}})
			h.TuneProgress("llama3.1:8b", "num_ctx 65536: spills")
			h.Watched(watch.Update{Snapshot: snap(tt.after, other)})
			h.EndTune("llama3.1:8b", &Event{Event: watch.Event{Kind: EventTuned, Model: "llama3.1:8b", Message: "24576 fits"}})
			us := recv(ch)
			var got []string
			warnings := 0
			for _, u := range us {
				for _, e := range u.Events {
					got = append(got, string(e.Kind)+":"+e.Model)
					if Warning(e.Kind) && e.Model == "llama3.1:8b" {
						warnings++
					}
				}
			}
			want := "[tune_started:llama3.1:8b spill_started:qwen2.5:7b tuned:llama3.1:8b]"
			if tt.wantSpill {
				want = "[tune_started:llama3.1:8b spill_started:qwen2.5:7b tuned:llama3.1:8b spill_started:llama3.1:8b]"
			}
			if "["+strings.Join(got, " ")+"]" != want {
				t.Errorf("events %v, want %s", got, want)
			}
			if tt.wantSpill != (warnings == 1) || warnings > 1 {
				t.Errorf("%d warnings for the tuned model", warnings)
			}
			if st := h.State(); len(st.Tunes) != 0 {
				t.Errorf("tunes after the end: %+v", st.Tunes)
			}
			// The progress line reached consumers while the tune ran.
			seen := false
			for _, u := range us {
				if tu, ok := u.Tuning("llama3.1:8b"); ok && tu.Line == "num_ctx 65536: spills" {
					seen = true
				}
			}
			if !seen {
				t.Error("no update carried the tune's progress line")
			}
		})
	}
}

// Thrash names the clients that disagree.
func TestThrashNamesTheClients(t *testing.T) {
	h := New(host, nil)
	h.SetClient(Client{Name: "Continue", Installed: true, Asks: []clients.Ask{{Client: "Continue", Model: "m", Context: 131072, Tuned: 24576}}})
	h.SetClient(Client{Name: "Zed", Installed: true, Asks: []clients.Ask{{Client: "Zed", Model: "m", Context: 8192, Tuned: 24576}}})
	ch, stop := h.Subscribe()
	defer stop()
	h.Watched(watch.Update{Snapshot: snap(model("m", false, 8192)), Events: []watch.Event{{Kind: watch.EventThrash, Model: "m", Message: "m was reloaded 3 times"}}})
	us := recv(ch)
	if len(us) != 1 || !strings.Contains(us[0].Events[0].Message, "clients disagree: Continue asks for 131072, Zed asks for 8192; `ctxfit fix all` gives them all 24576") {
		t.Fatalf("updates %+v", us)
	}
}

// Settings and client asks are sent once per change, and the state in
// every update is whole.
func TestStateChangesAreSentOnce(t *testing.T) {
	h := New(host, nil)
	ch, stop := h.Subscribe()
	defer stop()
	h.SetSettings(state.Settings{AutoFix: true})
	h.SetSettings(state.Settings{AutoFix: true})
	c := Client{Name: "Zed", Installed: true, Asks: []clients.Ask{{Client: "Zed", Model: "m", Context: 8192}}}
	h.SetClient(c)
	h.SetClient(c)
	us := recv(ch)
	if len(us) != 2 {
		t.Fatalf("%d updates for two changes", len(us))
	}
	if !us[1].Settings.AutoFix || len(us[1].Clients) != 1 || us[1].Clients[0].Asks[0].Context != 8192 {
		t.Errorf("the last update's state is not whole: %+v", us[1].State)
	}
	if len(us[0].Events) != 0 || us[0].Events == nil {
		t.Errorf("events of a state change: %#v, want an empty list", us[0].Events)
	}
}

// A slow consumer holds up nothing and loses no event.
func TestSlowConsumerLosesNoEvent(t *testing.T) {
	h := New(host, nil)
	ch, stop := h.Subscribe()
	defer stop()
	for i := range 3 * fanout.MaxQueued {
		h.Publish(Event{Event: watch.Event{Kind: EventConfigFixed, Message: "fix", ContextLength: i + 1}})
	}
	n := 0
	for _, u := range recv(ch) {
		n += len(u.Events)
	}
	if n != 3*fanout.MaxQueued {
		t.Errorf("%d events arrived, want %d", n, 3*fanout.MaxQueued)
	}
}

// Clients that all ask for the same context do not disagree: the thrash
// message is then the watcher's own.
func TestThrashWithoutDisagreement(t *testing.T) {
	h := New(host, nil)
	h.SetClient(Client{Name: "Continue", Installed: true, Asks: []clients.Ask{{Client: "Continue", Model: "m", Context: 131072}}})
	h.SetClient(Client{Name: "Zed", Installed: true, Asks: []clients.Ask{{Client: "Zed", Model: "m", Context: 131072}}})
	ch, stop := h.Subscribe()
	defer stop()
	h.Watched(watch.Update{Snapshot: snap(model("m", false, 8192)), Events: []watch.Event{{Kind: watch.EventThrash, Model: "m", Message: "m was reloaded 3 times"}}})
	us := recv(ch)
	if len(us) != 1 || us[0].Events[0].Message != "m was reloaded 3 times" {
		t.Fatalf("updates %+v", us)
	}
}

// The hub's messages name commands by its hints: --host for another
// server, and the command instead of the tray's Fix now when headless.
func TestMessagesNameTheHost(t *testing.T) {
	const other = " --host http://127.0.0.1:18790"
	tests := []struct {
		name           string
		hints          hint.Hints
		spill, culprit string // the ends of the spill's and the thrash's messages
	}{
		{"default with tray", hint.Hints{},
			"Fix now in the tray, or `ctxfit fix all`, writes the tuned value",
			"; `ctxfit fix all` gives them all 24576, which stays on the GPU."},
		{"default headless", hint.Hints{Headless: true},
			". `ctxfit fix all` writes the tuned value",
			"; `ctxfit fix all` gives them all 24576, which stays on the GPU."},
		{"other host with tray", hint.Hints{Host: other},
			". Fix now in the tray, or `ctxfit fix all" + other + "`, writes the tuned value",
			"; `ctxfit fix all" + other + "` gives them all 24576, which stays on the GPU."},
		{"other host headless", hint.Hints{Host: other, Headless: true},
			". `ctxfit fix all" + other + "` writes the tuned value",
			"; `ctxfit fix all" + other + "` gives them all 24576, which stays on the GPU."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New(host, nil)
			h.SetHints(tt.hints)
			h.SetClient(Client{Name: "Continue", Installed: true, Asks: []clients.Ask{{Client: "Continue", Model: "m", Context: 131072, Tuned: 24576}}})
			h.SetClient(Client{Name: "Zed", Installed: true, Asks: []clients.Ask{{Client: "Zed", Model: "m", Context: 8192, Tuned: 24576}}})
			ch, stop := h.Subscribe()
			defer stop()
			h.Watched(watch.Update{Snapshot: snap(model("m", true, 131072)), Events: []watch.Event{spill(model("m", true, 131072)),
				{Kind: watch.EventThrash, Model: "m", Message: "m was reloaded 3 times"}}})
			var msgs []string
			for _, u := range recv(ch) {
				for _, e := range u.Events {
					msgs = append(msgs, e.Message)
				}
			}
			if len(msgs) != 2 || !strings.HasSuffix(msgs[0], tt.spill) || !strings.HasSuffix(msgs[1], tt.culprit) {
				t.Errorf("messages %q\nwant the spill's to end in %q and the thrash's in %q", msgs, tt.spill, tt.culprit)
			}
		})
	}
}
