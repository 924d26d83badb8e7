package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"runtime/debug"
	"time"

	"github.com/ctxfit/ctxfit/clients"
	"github.com/ctxfit/ctxfit/daemon"
	"github.com/ctxfit/ctxfit/internal/autostart"
	"github.com/ctxfit/ctxfit/internal/instance"
	"github.com/ctxfit/ctxfit/internal/logfile"
	"github.com/ctxfit/ctxfit/internal/memlimit"
	"github.com/ctxfit/ctxfit/internal/ollamahost"
	"github.com/ctxfit/ctxfit/metrics"
	"github.com/ctxfit/ctxfit/state"
)

// runOptions are the flags shared by `ctxfit run` and `ctxfit demo`.
type runOptions struct {
	host      string
	hosts     []string // every --host, in order; host is the first
	headless  bool
	logFormat string
	autoFix   onOff
	trayWait  time.Duration
	// metricsAddr is --metrics-addr: where to serve Prometheus metrics,
	// "off" to stop, "" to keep the remembered setting.
	metricsAddr string
}

func (o *runOptions) register(fs *flag.FlagSet) {
	fs.Var(hostsFlag{o}, "host", "Ollama server `URL`: host, host:port, :port or http://host:port (default $OLLAMA_HOST, else the remembered list, else "+ollamahost.Default+"); repeat it to watch several servers (remembered)")
	fs.BoolVar(&o.headless, "headless", false, "run without a tray icon, logging events (for servers and Docker hosts)")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.Var(&o.autoFix, "auto-fix", "keep client configs fixed with the tuned values: on (bare --auto-fix) or off; remembered")
	fs.StringVar(&o.metricsAddr, "metrics-addr", "", "serve Prometheus metrics at `HOST:PORT`/metrics, e.g. 127.0.0.1:9464; off to stop (remembered)")
	o.registerTrayWait(fs)
}

// registerTrayWait adds --tray-wait. Started at login, ctxfit may be up
// before the desktop's panel; the watcher runs meanwhile, so waiting costs
// nothing but the "no system tray" message coming later.
func (o *runOptions) registerTrayWait(fs *flag.FlagSet) {
	fs.DurationVar(&o.trayWait, "tray-wait", 30*time.Second, "how long to wait for the desktop's tray before carrying on headless")
}

func runRun(ctx context.Context, e *env, args []string) error {
	var o runOptions
	fs := e.flags("run")
	o.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected %q; run takes only flags (`%s help` lists the commands)", fs.Arg(0), e.progOrDefault())
	}
	return e.watch(ctx, o)
}

// newLogger returns the logger for events: text or JSON lines on w.
func newLogger(w io.Writer, format string) (*slog.Logger, error) {
	switch format {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, nil)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, nil)), nil
	}
	return nil, fmt.Errorf("--log-format %q: use text or json", format)
}

// openLog returns a logger that writes to ctxfit's log file (size-bounded,
// rotated) and to stderr, and a function that closes the file. The file
// comes first and a failing stderr never stops it: a Windows service and
// the GUI-subsystem tray have no valid stderr. When the file cannot be
// opened the logger says so and uses stderr alone.
func (e *env) openLog(format string) (*slog.Logger, func(), error) {
	if _, err := newLogger(io.Discard, format); err != nil {
		return nil, nil, usagef("%v", err)
	}
	path, err := logfile.DefaultPath(e.getenv)
	var f *logfile.Writer
	if err == nil {
		f, err = logfile.Open(path, logfile.Options{})
	}
	if err != nil {
		logger, _ := newLogger(e.stderr, format)
		logger.Warn("no log file; logging to the terminal only", "err", err)
		return logger, func() {}, nil
	}
	logger, _ := newLogger(logfile.Tee(f, e.stderr), format)
	return logger, func() { f.Close() }, nil
}

// watch runs the watcher until ctx ends, headless or with the tray.
func (e *env) watch(ctx context.Context, o runOptions) error {
	store, err := e.store()
	if err != nil {
		return err
	}
	// A server address that is not one is a usage error, told before
	// anything starts.
	hosts, err := e.watchHosts(store, o)
	if err != nil {
		return err
	}
	logger, closeLog, err := e.openLog(o.logFormat)
	if err != nil {
		return err
	}
	defer closeLog()
	// A daemon runs for days: give back what collection freed.
	memlimit.Govern(ctx)
	if o.autoFix.set {
		if err := store.Update(func(d *state.Data) error { d.Settings.AutoFix = o.autoFix.on; return nil }); err != nil {
			return err
		}
	}
	switch o.metricsAddr {
	case "":
	case "off":
		if err := store.Update(func(d *state.Data) error { d.Settings.MetricsAddr = ""; return nil }); err != nil {
			return err
		}
	default:
		// Remembered only once it serves (see serveMetrics): an address
		// that is none, or busy, would stop every later start too (the
		// tray at login).
		if err := metrics.CheckAddr(o.metricsAddr); err != nil {
			return err
		}
	}
	if len(hosts) > 1 {
		return e.watchMany(ctx, o, store, logger, hosts)
	}
	u := hosts[0]
	lock, err := instance.Acquire(store.Dir(), ollamahost.Key(u))
	if errors.Is(err, instance.ErrRunning) {
		// Logged too: the GUI-subsystem tray of Windows has no stderr.
		logger.Warn("another ctxfit watches this server; this one stops", "err", err)
		return failf(1, "%v.\nUse that one (its tray icon, or its log at %s), or stop it first: Quit in its menu, or %s.", err, e.cmdline(u, "status"), e.cmdline(nil, "service", "stop"))
	}
	if err != nil {
		return err
	}
	defer lock.Release()
	m, err := e.serveMetrics(ctx, store, logger, o.metricsAddr)
	if err != nil {
		return err
	}
	d := e.newDaemon(store, logger, m, u, o.headless)
	logger.Info("ctxfit watching Ollama", "host", u.String(), "state", store.Dir(), "control_socket", e.socket(store, u))
	err = autostart.Serve(ctx, func(ctx context.Context) error {
		if o.headless {
			return d.Run(ctx)
		}
		return d.RunWithTray(ctx, o.trayWait)
	})
	logger.Info("ctxfit stopped")
	return err
}

// newDaemon returns the daemon of server u, with the CLI's fixer and target;
// headless: no tray shows it.
func (e *env) newDaemon(store *state.Store, logger *slog.Logger, m *metrics.Collector, u *url.URL, headless bool) *daemon.Daemon {
	cfg := daemon.Config{
		Host: u, Client: e.client(u), Store: store, Logger: logger, Getenv: e.getenv, Headless: headless,
		Socket:  e.socket(store, u),
		Metrics: m,
		Target:  func(d *state.Data) clients.Target { return tunedTarget(d, u, e.serverParallel(u)) },
		Fixer:   newFixer(e, store.Dir(), u),
		GPUBudget: func(ctx context.Context) int64 {
			if _, mac, ok := e.unifiedInfo(ctx, u); ok {
				return mac.Budget()
			}
			return 0
		},
		GPUShare: func(ctx context.Context) string {
			if _, mac, ok := e.unifiedInfo(ctx, u); ok {
				return mac.Short()
			}
			return ""
		},
		RAM: e.localRAM,
	}
	if e.demo {
		cfg.HintEnv, cfg.HintProg = e.hintEnv, e.progOrDefault()
	}
	return daemon.New(cfg)
}

// serveMetrics starts the Prometheus endpoint at flag (--metrics-addr,
// remembered once it serves), else at the address the settings remember,
// and returns its collector; nil when metrics are off. An address given
// now that cannot be served is an error; a remembered one that cannot
// (another program took the port since) is logged, and ctxfit watches on
// without metrics.
func (e *env) serveMetrics(ctx context.Context, store *state.Store, logger *slog.Logger, flag string) (*metrics.Collector, error) {
	addr := flag
	if flag == "" || flag == "off" {
		data, err := store.Load()
		if err != nil || data.Settings.MetricsAddr == "" {
			return nil, nil // a damaged state file is reported by the watcher
		}
		addr, flag = data.Settings.MetricsAddr, ""
	}
	ln, err := metrics.Listen(addr)
	if err != nil && flag != "" {
		return nil, err
	}
	if err != nil {
		logger.Warn("no Prometheus metrics this time: "+err.Error()+"; ctxfit watches on without them", "addr", addr)
		return nil, nil
	}
	if flag != "" {
		if err := store.Update(func(d *state.Data) error { d.Settings.MetricsAddr = addr; return nil }); err != nil {
			ln.Close()
			return nil, err
		}
	}
	m := metrics.New(buildVersion())
	go func() {
		if err := metrics.Serve(ctx, ln, m); err != nil {
			logger.Error("metrics stopped", "addr", addr, "err", err)
		}
	}()
	if metrics.IsLoopback(addr) {
		logger.Info("serving Prometheus metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	} else {
		logger.Warn("serving Prometheus metrics beyond this machine: whoever reaches this address sees the Ollama servers, model names and sizes", "url", "http://"+ln.Addr().String()+"/metrics")
	}
	return m, nil
}

// buildVersion returns ctxfit's module version, "devel" for a build from a
// checkout.
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
