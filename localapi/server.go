package localapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/ctxfit/ctxfit/hub"
)

// Backend is what the API serves: the daemon of one server.
type Backend interface {
	// State returns the daemon's current state.
	State() hub.State
	// Subscribe follows the daemon's updates (hub.Hub.Subscribe).
	Subscribe() (<-chan hub.Update, func())
	// BeginTune, TuneProgress and EndTune register a tune that a
	// front-end runs itself.
	BeginTune(model, by string) error
	TuneProgress(model, line string)
	EndTune(ctx context.Context, end TuneEnd) (TuneEnded, error)
	// Set changes a setting now and persists it.
	Set(ctx context.Context, s Setting) (Settings, error)
	// Undo restores a client's config and holds it.
	Undo(ctx context.Context, client string) (Undone, error)
}

// Handler returns the API's HTTP handler over b; host names the watched
// server in Hello, and env the environment its commands need (Hello.Env).
func Handler(b Backend, host string, env []string) http.Handler {
	mux := http.NewServeMux()
	hello := Hello{API: Version, Version: buildVersion(), PID: os.Getpid(), Host: host, Env: env}
	mux.HandleFunc("GET /v1/hello", func(w http.ResponseWriter, r *http.Request) { reply(w, hello) })
	mux.HandleFunc("GET /v1/state", func(w http.ResponseWriter, r *http.Request) { reply(w, b.State()) })
	mux.HandleFunc("GET /v1/events", func(w http.ResponseWriter, r *http.Request) { stream(w, r, b) })
	mux.HandleFunc("POST /v1/tunes/begin", func(w http.ResponseWriter, r *http.Request) {
		var in TuneBegin
		if decode(w, r, &in) {
			if err := b.BeginTune(in.Model, in.By); err != nil {
				fail(w, http.StatusConflict, CodeTuning, err)
				return
			}
			reply(w, struct{}{})
		}
	})
	mux.HandleFunc("POST /v1/tunes/progress", func(w http.ResponseWriter, r *http.Request) {
		var in TuneProgress
		if decode(w, r, &in) {
			b.TuneProgress(in.Model, in.Line)
			reply(w, struct{}{})
		}
	})
	mux.HandleFunc("POST /v1/tunes/end", func(w http.ResponseWriter, r *http.Request) {
		var in TuneEnd
		if decode(w, r, &in) {
			out, err := b.EndTune(r.Context(), in)
			if err != nil {
				fail(w, http.StatusInternalServerError, "", err)
				return
			}
			reply(w, out)
		}
	})
	mux.HandleFunc("POST /v1/settings", func(w http.ResponseWriter, r *http.Request) {
		var in Setting
		if decode(w, r, &in) {
			s, err := b.Set(r.Context(), in)
			if err != nil {
				fail(w, http.StatusBadRequest, CodeBadRequest, err)
				return
			}
			reply(w, s)
		}
	})
	mux.HandleFunc("POST /v1/undo", func(w http.ResponseWriter, r *http.Request) {
		var in Undo
		if decode(w, r, &in) {
			u, err := b.Undo(r.Context(), in.Client)
			var e *Error
			switch {
			case errors.As(err, &e):
				fail(w, http.StatusConflict, e.Code, err)
			case err != nil:
				fail(w, http.StatusInternalServerError, "", err)
			default:
				reply(w, u)
			}
		}
	})
	return versioned(mux)
}

// versioned refuses requests of another API version.
func versioned(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v := r.Header.Get(APIHeader); v != "" && v != strconv.Itoa(Version) {
			n, _ := strconv.Atoi(v)
			e := versionError(n, Hello{API: Version, Version: buildVersion(), PID: os.Getpid()})
			fail(w, http.StatusBadRequest, CodeVersion, e)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(v); err != nil {
		fail(w, http.StatusBadRequest, CodeBadRequest, fmt.Errorf("bad request body: %w", err))
		return false
	}
	return true
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, status int, code string, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(Error{Code: code, Message: err.Error()})
}

// stream sends the current state, then every update, as JSON lines until
// the client goes away.
func stream(w http.ResponseWriter, r *http.Request, b Backend) {
	ch, stop := b.Subscribe()
	defer stop()
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	flush := func() {
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
	enc.Encode(hub.Update{State: b.State(), Events: []hub.Event{}})
	flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case u, ok := <-ch:
			if !ok {
				return
			}
			if enc.Encode(u) != nil {
				return
			}
			flush()
		}
	}
}

// Serve serves h on the socket at path until ctx ends. The caller holds
// the instance lock of the server, so a socket file already there was left
// by a daemon that died and is replaced.
func Serve(ctx context.Context, path string, h http.Handler) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create the directory of ctxfit's control socket: %w", err)
	}
	if err := removeStale(path); err != nil {
		return fmt.Errorf("ctxfit's control socket: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("listen on ctxfit's control socket %s: %w", path, err)
	}
	// On Windows the directory's ACL is the access control, and Chmod
	// cannot express it.
	if err := os.Chmod(path, 0o600); err != nil && runtime.GOOS != "windows" {
		ln.Close()
		os.Remove(path)
		return fmt.Errorf("make ctxfit's control socket private: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	err = srv.Serve(ln)
	<-done
	os.Remove(path)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
