package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/ctxfit/ctxfit/internal/ollamahost"
	"github.com/ctxfit/ctxfit/localapi"
	"github.com/ctxfit/ctxfit/state"
)

// socket returns the control socket of the daemon for server u.
func (e *env) socket(store *state.Store, u *url.URL) string {
	return localapi.SocketPath(e.getenv("XDG_RUNTIME_DIR"), store.Dir(), ollamahost.Key(u))
}

// daemon connects to the running ctxfit for server u. It returns nil, with
// nothing said, when none runs (the command then works standalone), and
// nil after a warning when one runs that speaks another API version.
func (e *env) daemon(ctx context.Context, store *state.Store, u *url.URL, cmd string) (*localapi.Client, localapi.Hello) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	c, h, err := localapi.Connect(ctx, e.socket(store, u))
	if errors.Is(err, localapi.ErrNoDaemon) && e.getenv("XDG_RUNTIME_DIR") != "" {
		// A shell without the session's runtime directory (sudo, some SSH
		// setups) looks where a daemon without one listens, and the other
		// way round.
		c, h, err = localapi.Connect(ctx, localapi.SocketPath("", store.Dir(), ollamahost.Key(u)))
	}
	switch {
	case err == nil:
		e.useHintEnv(h.Env)
		return c, h
	case errors.Is(err, localapi.ErrNoDaemon):
	case localapi.IsCode(err, localapi.CodeVersion):
		fmt.Fprintf(e.stderr, "%s %s: %v. Going on without it.\n", e.progOrDefault(), cmd, err)
	default:
		fmt.Fprintf(e.stderr, "%s %s: the running ctxfit does not answer (%v); going on without it.\n", e.progOrDefault(), cmd, err)
	}
	return nil, h
}

// daemonHints makes hints carry the environment the running ctxfit for u
// reads the client configs under (localapi.Hello.Env), for a command that
// otherwise works without it; nothing is said when none answers.
func (e *env) daemonHints(ctx context.Context, store *state.Store, u *url.URL) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	for _, path := range []string{e.socket(store, u), localapi.SocketPath("", store.Dir(), ollamahost.Key(u))} {
		if h, err := localapi.NewClient(path).Hello(ctx); err == nil {
			e.useHintEnv(h.Env)
			return
		}
	}
}

// tuneMark tells a daemon that watches the server about a tune this
// process runs, so that it takes the probe loads for what they are and
// applies the result at once: through the control API when the daemon
// answers, else as a lease in the shared state that the daemon sees at its
// next poll.
type tuneMark interface {
	progress(line string)
	// end says how the tune ended (context 0: failed); for the API it
	// returns what the daemon did with the result.
	end(context int, message string) *localapi.TuneEnded
}

func tunerName() string {
	h, _ := os.Hostname()
	if h == "" {
		return fmt.Sprintf("ctxfit tune (pid %d)", os.Getpid())
	}
	return fmt.Sprintf("ctxfit tune (pid %d on %s)", os.Getpid(), h)
}

// beginTune marks the tune of model.
func (e *env) beginTune(ctx context.Context, store *state.Store, u *url.URL, model string) (tuneMark, error) {
	if c, _ := e.daemon(ctx, store, u, "tune"); c != nil {
		if err := c.BeginTune(ctx, model, tunerName()); err != nil {
			return nil, err
		}
		return &apiMark{c: c, model: model}, nil
	}
	return startLease(store, ollamahost.Key(u), model)
}

type apiMark struct {
	c     *localapi.Client
	model string
}

func (m *apiMark) progress(line string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	m.c.TuneProgress(ctx, m.model, line)
}

func (m *apiMark) end(n int, message string) *localapi.TuneEnded {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := m.c.EndTune(ctx, localapi.TuneEnd{Model: m.model, Context: n, Message: message})
	if err != nil {
		return nil
	}
	return &out
}

// leaseTTL is how long a lease lasts unless renewed; the tuner renews it
// at every load and every leaseRenew, so only a tuner that died lets it
// expire.
const (
	leaseTTL   = 90 * time.Second
	leaseRenew = 20 * time.Second
)

type leaseMark struct {
	store      *state.Store
	key, model string
	by         string
	started    time.Time
	stop       chan struct{}
	once       sync.Once
}

func startLease(store *state.Store, key, model string) (*leaseMark, error) {
	m := &leaseMark{store: store, key: key, model: model, by: tunerName(), started: time.Now().UTC(), stop: make(chan struct{})}
	if err := m.renew(); err != nil {
		return nil, fmt.Errorf("mark the tune in ctxfit's state, so that a running ctxfit ignores its loads: %w", err)
	}
	go func() {
		t := time.NewTicker(leaseRenew)
		defer t.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-t.C:
				m.renew()
			}
		}
	}()
	return m, nil
}

func (m *leaseMark) renew() error {
	return m.store.Update(func(d *state.Data) error {
		d.PutLease(state.TuneLease{Host: m.key, Model: m.model, By: m.by, Started: m.started, Expires: time.Now().Add(leaseTTL).UTC()})
		return nil
	})
}

func (m *leaseMark) progress(string) { m.renew() }

func (m *leaseMark) end(int, string) *localapi.TuneEnded {
	m.once.Do(func() {
		close(m.stop)
		m.store.Update(func(d *state.Data) error { d.DropLease(m.key, m.model); return nil })
	})
	return nil
}
