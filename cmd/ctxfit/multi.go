package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/ctxfit/ctxfit/daemon"
	"github.com/ctxfit/ctxfit/internal/autostart"
	"github.com/ctxfit/ctxfit/internal/instance"
	"github.com/ctxfit/ctxfit/internal/ollamahost"
	"github.com/ctxfit/ctxfit/internal/termtext"
	"github.com/ctxfit/ctxfit/state"
)

// hostsFlag is `ctxfit run`'s --host: each use adds a server, the first
// is runOptions.host.
type hostsFlag struct{ o *runOptions }

func (f hostsFlag) String() string {
	if f.o == nil {
		return ""
	}
	return strings.Join(f.o.hosts, ",")
}

func (f hostsFlag) Set(v string) error {
	if strings.TrimSpace(v) == "" {
		return errors.New("empty server URL")
	}
	f.o.hosts = append(f.o.hosts, v)
	f.o.host = f.o.hosts[0]
	return nil
}

// watchHosts returns the servers `ctxfit run` watches: every --host (two
// or more are remembered for the next run without one), else the one
// OLLAMA_HOST names, else the remembered list, else the default server.
func (e *env) watchHosts(store *state.Store, o runOptions) ([]*url.URL, error) {
	if len(o.hosts) < 2 {
		if len(o.hosts) == 0 && o.host == "" {
			if hosts := e.rememberedHosts(); len(hosts) > 1 {
				return hosts, nil
			}
		}
		u, err := e.host(o.host)
		if err != nil {
			return nil, err
		}
		return []*url.URL{u}, nil
	}
	hosts, err := distinctHosts(o.hosts)
	if err != nil {
		return nil, err
	}
	if len(hosts) > 1 {
		list := make([]string, len(hosts))
		for i, u := range hosts {
			list[i] = u.String()
		}
		if err := store.Update(func(d *state.Data) error { d.Settings.WatchHosts = list; return nil }); err != nil {
			return nil, err
		}
	}
	return hosts, nil
}

// rememberedHosts returns the servers remembered by `ctxfit run --host A
// --host B` (two or more) when OLLAMA_HOST names none; nil otherwise.
func (e *env) rememberedHosts() []*url.URL {
	if e.getenv("OLLAMA_HOST") != "" {
		return nil
	}
	store, err := e.store()
	if err != nil {
		return nil
	}
	data, err := store.Load()
	if err != nil {
		return nil
	}
	hosts, _ := distinctHosts(data.Settings.WatchHosts) // set-watch-hosts stored only valid ones
	return hosts
}

// distinctHosts parses each server URL as Ollama does, dropping repeats
// (localhost and 127.0.0.1 are the same server); an address that is not
// one is a usage error.
func distinctHosts(list []string) ([]*url.URL, error) {
	var hosts []*url.URL
	seen := map[string]bool{}
	for _, h := range list {
		u, err := ollamahost.Resolve(h, "")
		if err != nil {
			return nil, usagef("%v", err)
		}
		if k := ollamahost.Key(u); !seen[k] {
			seen[k] = true
			hosts = append(hosts, u)
		}
	}
	return hosts, nil
}

// setWatchHosts is `ctxfit set watch-hosts URL,URL|off`.
func (e *env) setWatchHosts(asJSON bool, value string) error {
	var list []string
	if v := strings.ToLower(strings.TrimSpace(value)); v != "off" && v != "" {
		hosts, err := distinctHosts(strings.Split(value, ","))
		if err != nil {
			return e.jsonOrUsage(asJSON, "set", err)
		}
		for _, u := range hosts {
			list = append(list, u.String())
		}
	}
	if len(list) == 1 {
		return e.jsonOrUsage(asJSON, "set", fmt.Errorf("watch-hosts %q names one server; name two or more, separated by commas (one server alone is --host or OLLAMA_HOST), or off", value))
	}
	store, err := e.store()
	if err != nil {
		return e.jsonOrErr(asJSON, err)
	}
	if err := store.Update(func(d *state.Data) error { d.Settings.WatchHosts = list; return nil }); err != nil {
		return e.jsonOrErr(asJSON, err)
	}
	if asJSON {
		if list == nil {
			list = []string{}
		}
		return writeIndentedJSON(e.stdout, map[string][]string{"watch_hosts": list})
	}
	if len(list) == 0 {
		fmt.Fprintln(e.stdout, "watch-hosts is now off; `ctxfit run` without --host watches $OLLAMA_HOST, else "+ollamahost.Default+".")
		return nil
	}
	fmt.Fprintf(e.stdout, "watch-hosts is now %s; `ctxfit run` and `ctxfit status` without --host use them (a running ctxfit keeps its servers until restarted).\n", strings.Join(list, ", "))
	return nil
}

// watchMany runs one daemon per server in this process, each with its own
// lock, state entries, control socket and keeper (whose target covers only
// its server's entries), sharing the log and the metrics. One tray shows
// them all: a section per server, the icon the worst state of all.
func (e *env) watchMany(ctx context.Context, o runOptions, store *state.Store, logger *slog.Logger, hosts []*url.URL) error {
	var watched []*url.URL
	for _, u := range hosts {
		lock, err := instance.Acquire(store.Dir(), ollamahost.Key(u))
		if errors.Is(err, instance.ErrRunning) {
			logger.Warn("another ctxfit watches this server; this one leaves it to that one", "host", u.Redacted(), "err", err)
			continue
		}
		if err != nil {
			return err
		}
		defer lock.Release()
		watched = append(watched, u)
	}
	if len(watched) == 0 {
		fmt.Fprintf(e.stderr, "Other ctxfit processes watch every one of these servers.\nUse those (their tray icons, or `ctxfit status`), or stop them first.\n")
		return exitError(1)
	}
	m, err := e.serveMetrics(ctx, store, logger, o.metricsAddr)
	if err != nil {
		return err
	}
	ds := make([]*daemon.Daemon, len(watched))
	for i, u := range watched {
		ds[i] = e.newDaemon(store, logger.With("server", u.Redacted()), m, u, o.headless)
		logger.Info("ctxfit watching Ollama", "host", u.String(), "state", store.Dir(), "control_socket", e.socket(store, u))
	}
	err = autostart.Serve(ctx, func(ctx context.Context) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		errs := make(chan error, len(ds))
		for _, d := range ds[1:] {
			go func() { errs <- d.Run(ctx) }()
		}
		var err error
		if o.headless {
			err = ds[0].Run(ctx)
		} else {
			err = ds[0].RunWithTray(ctx, o.trayWait, ds[1:]...)
		}
		cancel() // Quit in the tray ends them all
		for range ds[1:] {
			if e := <-errs; err == nil {
				err = e
			}
		}
		return err
	})
	logger.Info("ctxfit stopped")
	return err
}

// statusAll is `ctxfit status` for every remembered server: each one's
// status in turn, asked of its daemon when one runs; with --json a list of
// `ctxfit status --json` objects. The exit status is 1 when any server
// could not be reached.
func (e *env) statusAll(ctx context.Context, hosts []*url.URL, asJSON bool) error {
	var list []json.RawMessage
	failed := false
	for i, u := range hosts {
		var out, errOut bytes.Buffer
		one := *e
		one.stdout, one.stderr = &out, &errOut
		args := []string{"--host", u.String()}
		if asJSON {
			args = append(args, "--json")
		}
		err := runStatus(ctx, &one, args)
		var code exitError
		var fail *cmdError
		switch {
		case errors.As(err, &fail) && !asJSON:
			// A server that does not answer is one server's news: the
			// others are still shown (it used to end the whole status
			// there, before their headers).
			fmt.Fprintln(&errOut, termtext.Clean(fail.msg))
		case err != nil && !errors.As(err, &code):
			return fmt.Errorf("%s: %w", u.Redacted(), err)
		}
		failed = failed || err != nil
		if asJSON {
			list = append(list, json.RawMessage(bytes.TrimSpace(out.Bytes())))
			continue
		}
		if i > 0 {
			fmt.Fprintln(e.stdout)
		}
		fmt.Fprintf(e.stdout, "== %s ==\n", u.Redacted())
		e.stdout.Write(out.Bytes())
		e.stdout.Write(errOut.Bytes())
	}
	if asJSON {
		if err := writeIndentedJSON(e.stdout, list); err != nil {
			return err
		}
	}
	if failed {
		return exitError(1)
	}
	return nil
}
