package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/ctxfit/ctxfit/daemon"
	"github.com/ctxfit/ctxfit/internal/ollamahost"
)

// runOptions are the flags shared by `ctxfit run` and `ctxfit demo`.
type runOptions struct {
	host      string
	headless  bool
	logFormat string
	autoFix   string
}

func (o *runOptions) register(fs interface {
	StringVar(*string, string, string, string)
	BoolVar(*bool, string, bool, string)
}) {
	fs.StringVar(&o.host, "host", "", "Ollama server `URL` (default $OLLAMA_HOST, else "+ollamahost.Default+")")
	fs.BoolVar(&o.headless, "headless", false, "run without a tray icon, logging events (for servers and Docker hosts)")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&o.autoFix, "auto-fix", "", "on or off: keep client configs fixed with the tuned values (remembered)")
}

func runRun(ctx context.Context, e *env, args []string) error {
	var o runOptions
	fs := e.flags("run")
	o.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: ctxfit run [--headless] [--host URL] [--log-format text|json] [--auto-fix on|off]\n\nWatches the Ollama server: warns when a loaded model spills onto the CPU,\nand with auto-fix on keeps client configs at the tuned context.")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
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

// watch runs the watcher until ctx ends, headless or with the tray.
func (e *env) watch(ctx context.Context, o runOptions) error {
	logger, err := newLogger(e.stderr, o.logFormat)
	if err != nil {
		return err
	}
	store, err := e.store()
	if err != nil {
		return err
	}
	if o.autoFix != "" {
		on := o.autoFix == "on" || o.autoFix == "true"
		if !on && o.autoFix != "off" && o.autoFix != "false" {
			return fmt.Errorf("--auto-fix %q: use on or off", o.autoFix)
		}
		if err := store.Update(func(d *daemon.Data) error { d.Settings.AutoFix = on; return nil }); err != nil {
			return err
		}
	}
	u := e.host(o.host)
	w := daemon.NewWatcher(e.client(u), u, store, daemon.WatcherOptions{})
	logger.Info("ctxfit watching Ollama", "host", u.String(), "state", store.Dir())
	return runHeadless(ctx, w, logger)
}

// runHeadless logs every event of w until ctx ends.
func runHeadless(ctx context.Context, w *daemon.Watcher, logger *slog.Logger) error {
	updates, cancel := w.Subscribe()
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for u := range updates {
			for _, ev := range u.Events {
				daemon.LogEvent(logger, ev)
			}
		}
	}()
	w.Run(ctx)
	cancel()
	<-done
	logger.Info("ctxfit stopped")
	return nil
}
