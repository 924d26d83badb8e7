package localapi

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ctxfit/ctxfit/hub"
)

// fake is a Backend that records what it was asked.
type fake struct {
	h     *hub.Hub
	begun []string
	set   []Setting
}

func (f *fake) State() hub.State                       { return f.h.State() }
func (f *fake) Subscribe() (<-chan hub.Update, func()) { return f.h.Subscribe() }
func (f *fake) BeginTune(model, by string) error {
	f.begun = append(f.begun, model+" by "+by)
	return f.h.BeginTune(hub.Tune{Model: model, By: by})
}
func (f *fake) TuneProgress(model, line string) { f.h.TuneProgress(model, line) }
func (f *fake) Set(_ context.Context, s Setting) (Settings, error) {
	f.set = append(f.set, s)
	return Settings{AutoFix: s.On}, nil
}
func (f *fake) Undo(context.Context, string) (Undone, error) {
	return Undone{}, &Error{Code: CodeNothingToUndo, Message: "ctxfit has made no fix of Zed to undo"}
}
func (f *fake) EndTune(_ context.Context, end TuneEnd) (TuneEnded, error) {
	f.h.EndTune(end.Model, nil)
	return TuneEnded{AutoFix: true}, nil
}

// serve runs the API over b on a socket in a short temporary directory.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ctxfit-api")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := SocketPath("", dir, "http://127.0.0.1:11434")
	// A socket file left by a daemon that died is replaced.
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, path, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the socket outlived Serve: %v", err)
		}
	})
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the API never listened")
		}
	}
	return path
}

func TestRoundTrip(t *testing.T) {
	f := &fake{h: hub.New("http://127.0.0.1:11434", nil)}
	path := serve(t, Handler(f, "http://127.0.0.1:11434", nil))
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	ctx := context.Background()
	c, h, err := Connect(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if h.API != Version || h.PID != os.Getpid() || h.Host != "http://127.0.0.1:11434" {
		t.Errorf("hello %+v", h)
	}
	events, err := c.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	<-events // the current state comes first
	if err := c.BeginTune(ctx, "llama3.1:8b", "ctxfit tune (pid 1)"); err != nil {
		t.Fatal(err)
	}
	if err := c.BeginTune(ctx, "llama3.1:8b", "another"); !IsCode(err, CodeTuning) {
		t.Errorf("a second tune of the same model: %v, want code %s", err, CodeTuning)
	}
	c.TuneProgress(ctx, "llama3.1:8b", "num_ctx 8192: fits")
	st, err := c.State(ctx)
	if tu, ok := st.Tuning("llama3.1:8b"); err != nil || !ok || tu.Line != "num_ctx 8192: fits" {
		t.Errorf("state while tuning: %+v, %v", st.Tunes, err)
	}
	select {
	case u := <-events:
		if len(u.Events) != 1 || u.Events[0].Kind != hub.EventTuneStarted {
			t.Errorf("streamed update %+v", u)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no update streamed")
	}
	if out, err := c.EndTune(ctx, TuneEnd{Model: "llama3.1:8b", Context: 8192, Message: "8192 fits"}); err != nil || !out.AutoFix {
		t.Errorf("EndTune = %+v, %v", out, err)
	}
	if s, err := c.Set(ctx, Setting{Name: "auto-fix", On: true}); err != nil || !s.AutoFix || len(f.set) != 1 {
		t.Errorf("Set = %+v, %v (backend saw %v)", s, err, f.set)
	}
	if _, err := c.Undo(ctx, "zed"); !IsCode(err, CodeNothingToUndo) || !strings.Contains(err.Error(), "no fix of Zed") {
		t.Errorf("Undo = %v, want code %s with the daemon's message", err, CodeNothingToUndo)
	}
}

func TestNoDaemon(t *testing.T) {
	dir := t.TempDir()
	_, _, err := Connect(context.Background(), filepath.Join(dir, "absent.sock"))
	if !errors.Is(err, ErrNoDaemon) {
		t.Errorf("Connect to no socket: %v, want ErrNoDaemon", err)
	}
	// A socket file nobody listens on (a daemon that was killed).
	d, _ := os.MkdirTemp("", "ctxfit-api")
	defer os.RemoveAll(d)
	p := filepath.Join(d, "dead.sock")
	ln, err := net.Listen("unix", p)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, _, err := Connect(context.Background(), p); !errors.Is(err, ErrNoDaemon) {
		t.Errorf("Connect to a dead socket: %v, want ErrNoDaemon", err)
	}
}

// A CLI newer or older than the daemon says so, naming both versions and
// what to do.
func TestVersionMismatch(t *testing.T) {
	for _, tt := range []struct {
		name    string
		handler http.Handler
		want    []string
	}{
		{"the daemon is newer", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			json.NewEncoder(w).Encode(Hello{API: Version + 1, Version: "v9.9.9", PID: 4242})
		}), []string{"pid 4242", "ctxfit v9.9.9", "control API v2", "this ctxfit v1", "daemon is newer", "Restart it"}},
		{"the daemon is older and has no /v1", http.NotFoundHandler(), []string{"daemon is older", "Restart it"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := serve(t, tt.handler)
			_, _, err := Connect(context.Background(), path)
			if !IsCode(err, CodeVersion) {
				t.Fatalf("Connect: %v, want a version error", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not say %q", err, w)
				}
			}
		})
	}
	// And the daemon refuses a client of another version.
	f := &fake{h: hub.New("h", nil)}
	path := serve(t, Handler(f, "h", nil))
	c := NewClient(path)
	req, _ := http.NewRequest(http.MethodGet, "http://ctxfit/v1/state", nil)
	req.Header.Set(APIHeader, "7")
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e Error
	json.NewDecoder(resp.Body).Decode(&e)
	if resp.StatusCode != http.StatusBadRequest || e.Code != CodeVersion || !strings.Contains(e.Message, "daemon is older") {
		t.Errorf("a v7 request: %s %+v", resp.Status, e)
	}
}
