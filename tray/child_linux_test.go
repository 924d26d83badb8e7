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
		u, perr := url.Parse(os.Getenv(ollamaEnv))
		if perr != nil {
			fmt.Println(perr)
			return 2
		}
		store := ctxstate.OpenStore(dir)
		w := watch.New(ollama.NewClient(u), u, store, watch.Options{
			FastInterval: 50 * time.Millisecond, IdleInterval: 50 * time.Millisecond,
			LocalGPU: func() ollama.GPUPresence { return ollama.GPUPresent },
		})
		go w.Run(ctx)
		err = Run(ctx, &scripted{Watcher: w, store: store, dir: dir, calls: calls}, opts)
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

// scripted is a backend over a real watcher and store, with a Continue
// config.json in a temporary directory standing in for the client fixer,
// a tune that reports one probe and then waits to be cancelled, and a
// login service that hangs.
type scripted struct {
	*watch.Watcher
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

func (b *scripted) ContinueConfigPath() string {
	return filepath.Join(b.dir, "continue", "config.json")
}
func (b *scripted) LogPath() string { return filepath.Join(b.dir, "ctxfit.log") }

func (b *scripted) readContinue() (continueConfig, error) {
	var c continueConfig
	data, err := os.ReadFile(b.ContinueConfigPath())
	if err == nil {
		err = json.Unmarshal(data, &c)
	}
	return c, err
}

func (b *scripted) ClientContext(model string) (string, int, bool) {
	c, err := b.readContinue()
	if err != nil {
		return "", 0, false
	}
	for _, m := range c.Models {
		if ollama.SameModel(m.Model, model) {
			return m.Title, m.ContextLength, true
		}
	}
	return "", 0, false
}

func (b *scripted) FixContinue(ctx context.Context, model string) error {
	b.calls.add("fix", model)
	d, err := b.store.Load()
	if err != nil {
		return err
	}
	t, ok := d.TunedFor(ollamahost.Key(b.Host()), model, "")
	if !ok {
		return fmt.Errorf("%s is not tuned", model)
	}
	c, err := b.readContinue()
	if err != nil {
		return err
	}
	for i := range c.Models {
		if ollama.SameModel(c.Models[i].Model, model) {
			c.Models[i].ContextLength = t.Context
		}
	}
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(b.ContinueConfigPath(), data, 0o644); err != nil {
		return err
	}
	// The fixer publishes what it did; the tray must not notify a fix the
	// user just asked for.
	b.Publish(watch.Event{Kind: watch.EventConfigFixed, Model: model, Message: "Continue: contextLength " + fmt.Sprint(t.Context)})
	return nil
}

func (b *scripted) Tune(ctx context.Context, model string, progress func(string)) error {
	b.calls.add("tune", model)
	progress("8192: 100% GPU (1 load)")
	<-ctx.Done()
	b.calls.add("tune-cancelled", model)
	return ctx.Err()
}

func (b *scripted) Settings() (ctxstate.Settings, error) {
	d, err := b.store.Load()
	if err != nil {
		return ctxstate.Settings{}, err
	}
	return d.Settings, nil
}

func (b *scripted) SetAutoFix(on bool) error {
	b.calls.add("autofix", fmt.Sprint(on))
	err := b.store.Update(func(d *ctxstate.Data) error { d.Settings.AutoFix = on; return nil })
	if on {
		// Turning auto-fix on fixes what is off at once.
		b.Publish(watch.Event{Kind: watch.EventConfigFixed, Model: "gemma2:9b", Message: "Continue: contextLength 8192 for gemma2:9b"})
	}
	return err
}

func (b *scripted) SetNotifications(on bool) error {
	b.calls.add("notifications", fmt.Sprint(on))
	return b.store.Update(func(d *ctxstate.Data) error { d.Settings.NotificationsOff = !on; return nil })
}

func (b *scripted) StartAtLogin() (bool, error) { return false, nil }

func (b *scripted) SetStartAtLogin(on bool) error {
	b.calls.add("login", fmt.Sprint(on))
	select {} // a login service that never answers
}

// stuck is a backend whose every method hangs.
type stuck struct{}

func (stuck) Subscribe() (<-chan watch.Update, func())         { select {} }
func (stuck) Snapshot() watch.Snapshot                         { select {} }
func (stuck) Tune(context.Context, string, func(string)) error { select {} }
func (stuck) ClientContext(string) (string, int, bool)         { select {} }
func (stuck) FixContinue(context.Context, string) error        { select {} }
func (stuck) ContinueConfigPath() string                       { select {} }
func (stuck) Settings() (ctxstate.Settings, error)             { select {} }
func (stuck) SetAutoFix(bool) error                            { select {} }
func (stuck) SetNotifications(bool) error                      { select {} }
func (stuck) StartAtLogin() (bool, error)                      { select {} }
func (stuck) SetStartAtLogin(bool) error                       { select {} }
func (stuck) LogPath() string                                  { select {} }
