package tray

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ctxfit/ctxfit/clients"
	"github.com/ctxfit/ctxfit/hub"
	"github.com/ctxfit/ctxfit/internal/atomicfile"
	"github.com/ctxfit/ctxfit/internal/ollamahost"
	"github.com/ctxfit/ctxfit/ollama"
	ctxstate "github.com/ctxfit/ctxfit/state"
	"github.com/ctxfit/ctxfit/watch"
)

// The tray tests run the tray in a child process: systray.Run wants the
// main goroutine and runs once per process. The test binary re-executes
// itself with childEnv naming a scenario; TestMain then runs the tray.
const (
	childEnv  = "CTXFIT_TRAY_CHILD"
	ollamaEnv = "CTXFIT_TRAY_TEST_OLLAMA" // the simulated Ollama's URL
	dirEnv    = "CTXFIT_TRAY_TEST_DIR"    // state, Continue's config, the call log
	// busNotifyEnv set to 1 makes the child notify through the session
	// bus's notification service, as ctxfit does, instead of the call log.
	busNotifyEnv = "CTXFIT_TRAY_TEST_BUS_NOTIFY"
	// openFailsEnv set to 1 makes every open fail, as xdg-open does when
	// no program is registered for the file.
	openFailsEnv = "CTXFIT_TRAY_TEST_OPEN_FAILS"
	// ollama2Env, when set, is a second simulated Ollama the tray watches
	// (Options.Others), with its state, Continue's config and call log
	// under the directory's "second".
	ollama2Env = "CTXFIT_TRAY_TEST_OLLAMA2"
)

func TestMain(m *testing.M) {
	if scenario := os.Getenv(childEnv); scenario != "" {
		os.Exit(child(scenario))
	}
	os.Exit(m.Run())
}

// child runs one scenario's tray and returns the exit code.
func child(scenario string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := os.Getenv(dirEnv)
	calls := &callLog{path: filepath.Join(dir, "calls")}
	opts := Options{
		Notify: func(n Notification) error { calls.add("notify", n.Title); return nil },
		Open:   func(_ context.Context, path string) error { calls.add("open", path); return nil },
	}
	if os.Getenv(busNotifyEnv) == "1" {
		opts.Notify = nil
	}
	if os.Getenv(openFailsEnv) == "1" {
		opts.Open = func(_ context.Context, path string) error {
			calls.add("open", path)
			return errors.New("xdg-open: no method available for opening '" + path + "'")
		}
	}
	opts.Version = "v1.2.3"
	var err error
	switch scenario {
	case "watcher":
		b, perr := watched(ctx, os.Getenv(ollamaEnv), dir, calls)
		if perr != nil {
			fmt.Println(perr)
			return 2
		}
		if second := os.Getenv(ollama2Env); second != "" {
			d2 := filepath.Join(dir, "second")
			b2, perr := watched(ctx, second, d2, &callLog{path: filepath.Join(d2, "calls")})
			if perr != nil {
				fmt.Println(perr)
				return 2
			}
			opts.Others = []Backend{b2}
		}
		err = Run(ctx, b, opts)
	case "stuck":
		err = Run(ctx, stuck{}, opts)
	case "nobus":
		// Past the host check, the session bus is gone: systray cannot
		// connect, and its Quit then panics on a nil connection.
		os.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path="+filepath.Join(dir, "no-bus"))
		ctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		err = run(ctx, stuck{}, opts)
	default:
		fmt.Println("unknown scenario", scenario)
		return 2
	}
	fmt.Printf("tray.Run returned: %v\n", err)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrNoTray):
		return 3
	}
	return 1
}

// watched returns a scripted backend over a running watcher of the
// simulated Ollama at rawURL, keeping its state in dir.
func watched(ctx context.Context, rawURL, dir string, calls *callLog) (*scripted, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	store := ctxstate.OpenStore(dir)
	b := &scripted{Hub: hub.New(u.String(), nil), host: u, store: store, dir: dir, calls: calls}
	w := watch.New(ollama.NewClient(u), u, store, watch.Options{
		FastInterval: 50 * time.Millisecond, IdleInterval: 50 * time.Millisecond,
		LocalGPU: func() ollama.GPUPresence { return ollama.GPUPresent },
		// As the daemon does when a tune is stored, the asks follow
		// the tuned values.
		OnUpdate: func(u watch.Update) { b.refreshContinue(); b.Watched(u) },
	})
	b.refreshContinue()
	go w.Run(ctx)
	return b, nil
}

// callLog records what the tray asked of the backend, the notifier and
// the opener, one line per call, for the parent test to read.
type callLog struct {
	mu   sync.Mutex
	path string
}

func (l *callLog) add(what, arg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, err := os.OpenFile(l.path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		panic(err)
	}
	defer f.Close()
	fmt.Fprintf(f, "%s %s\n", what, arg)
}

// scripted is a backend over a real watcher, hub and store, with a
// Continue config.json in a temporary directory standing in for the client
// fixer, a tune that reports one probe and then waits to be cancelled, and
// a login service that hangs.
type scripted struct {
	*hub.Hub
	host  *url.URL
	store *ctxstate.Store
	dir   string
	calls *callLog
}

// continueConfig is the part of Continue's config.json the test uses.
type continueConfig struct {
	Models []struct {
		Title         string `json:"title"`
		Provider      string `json:"provider"`
		Model         string `json:"model"`
		ContextLength int    `json:"contextLength,omitempty"`
	} `json:"models"`
}

func (b *scripted) continuePath() string {
	return filepath.Join(b.dir, "continue", "config.json")
}
func (b *scripted) LogPath() string { return filepath.Join(b.dir, "ctxfit.log") }

func (b *scripted) readContinue() (continueConfig, error) {
	var c continueConfig
	data, err := os.ReadFile(b.continuePath())
	if err == nil {
		err = json.Unmarshal(data, &c)
	}
	return c, err
}

// refreshContinue tells the hub what Continue asks for, as the daemon does
// after each look at a config.
func (b *scripted) refreshContinue() {
	c, err := b.readContinue()
	d, derr := b.store.Load()
	if err != nil || derr != nil {
		return
	}
	hc := hub.Client{Name: "Continue", Path: b.continuePath(), Installed: true}
	for _, m := range c.Models {
		a := clients.Ask{Client: "Continue", Title: m.Title, Model: m.Model, Context: m.ContextLength}
		if t, ok := d.TunedFor(ollamahost.Key(b.host), m.Model, ""); ok {
			a.Tuned = t.Context
		}
		hc.Asks = append(hc.Asks, a)
	}
	b.SetClient(hc)
	b.SetSettings(d.Settings)
}

func (b *scripted) Fix(ctx context.Context, client string) error {
	b.calls.add("fix", client)
	d, err := b.store.Load()
	if err != nil {
		return err
	}
	c, err := b.readContinue()
	if err != nil {
		return err
	}
	for i := range c.Models {
		t, ok := d.TunedFor(ollamahost.Key(b.host), c.Models[i].Model, "")
		if ok {
			c.Models[i].ContextLength = t.Context
		}
	}
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(b.continuePath(), data, 0o644); err != nil {
		return err
	}
	b.refreshContinue()
	// The keeper publishes what it did; the tray must not notify a fix the
	// user just asked for.
	b.Publish(hub.Event{Event: watch.Event{Kind: hub.EventConfigFixed, Message: "Continue: contextLength fixed"}, Client: "Continue"})
	return nil
}

func (b *scripted) Tune(ctx context.Context, model string, progress func(string)) error {
	b.calls.add("tune", model)
	if err := b.BeginTune(hub.Tune{Model: model, By: "the tray"}); err != nil {
		return err
	}
	b.TuneProgress(model, "8192: 100% GPU (1 load)")
	<-ctx.Done()
	b.EndTune(model, nil)
	b.calls.add("tune-cancelled", model)
	return ctx.Err()
}

func (b *scripted) SetAutoFix(on bool) error {
	b.calls.add("autofix", fmt.Sprint(on))
	err := b.store.Update(func(d *ctxstate.Data) error { d.Settings.AutoFix = on; return nil })
	b.refreshContinue()
	if on {
		// Turning auto-fix on fixes what is off at once.
		b.Publish(hub.Event{Event: watch.Event{Kind: hub.EventConfigFixed, Model: "gemma2:9b", Message: "Zed: max_tokens 8192 for gemma2:9b"}, Client: "Zed"})
	}
	return err
}

func (b *scripted) SetNotifications(on bool) error {
	b.calls.add("notifications", fmt.Sprint(on))
	err := b.store.Update(func(d *ctxstate.Data) error { d.Settings.NotificationsOff = !on; return nil })
	b.refreshContinue()
	return err
}

func (b *scripted) StartAtLogin() (bool, error) { return false, nil }

func (b *scripted) SetStartAtLogin(on bool) error {
	b.calls.add("login", fmt.Sprint(on))
	select {} // a login service that never answers
}

// stuck is a backend whose every method hangs.
type stuck struct{}

func (stuck) Subscribe() (<-chan hub.Update, func())           { select {} }
func (stuck) State() hub.State                                 { select {} }
func (stuck) Tune(context.Context, string, func(string)) error { select {} }
func (stuck) Fix(context.Context, string) error                { select {} }
func (stuck) SetAutoFix(bool) error                            { select {} }
func (stuck) SetNotifications(bool) error                      { select {} }
func (stuck) StartAtLogin() (bool, error)                      { select {} }
func (stuck) SetStartAtLogin(bool) error                       { select {} }
func (stuck) LogPath() string                                  { select {} }
