package main

import (
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/ctxfit/ctxfit/internal/ollamahost"
	"github.com/ctxfit/ctxfit/ollama"
	"github.com/ctxfit/ctxfit/state"
)

// env is what a command may touch of the outside world, so that tests can
// run commands in-process with their own output buffers and environment.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	// loc is the time zone of times shown to the user; nil means the
	// machine's (tests use UTC without touching the global time.Local).
	loc *time.Location
}

// local returns t in the user's time zone.
func (e *env) local(t time.Time) time.Time {
	if e.loc != nil {
		return t.In(e.loc)
	}
	return t.Local()
}

// writeIndentedJSON writes v as the indented JSON every --json flag prints.
func writeIndentedJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// errUsage reports a command line that the flag package already explained.
var errUsage = errors.New("usage")

// flags returns a flag set for command name that prints its errors to stderr.
func (e *env) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("ctxfit "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	return fs
}

// parse parses args into fs, mapping -h and bad flags to errUsage.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errUsage
		}
		return errUsage
	}
	return nil
}

// host resolves the Ollama server from --host, OLLAMA_HOST or the default.
func (e *env) host(flagValue string) *url.URL {
	return ollamahost.Resolve(flagValue, e.getenv("OLLAMA_HOST"))
}

// client returns an Ollama API client for u.
func (e *env) client(u *url.URL) *api.Client { return ollama.NewClient(u) }

// state opens ctxfit's persistent state and reads it.
func (e *env) state() (*state.Store, *state.Data, error) {
	store, err := e.store()
	if err != nil {
		return nil, nil, err
	}
	data, err := store.Load()
	if err != nil {
		return nil, nil, err
	}
	return store, data, nil
}

// store opens ctxfit's persistent state.
func (e *env) store() (*state.Store, error) {
	dir, err := state.DefaultStateDir(e.getenv)
	if err != nil {
		return nil, err
	}
	return state.OpenStore(dir), nil
}

// hint returns a ctxfit command line for the user to run next, naming the
// server u with --host unless it is the one ctxfit finds by itself.
func (e *env) hint(u *url.URL, args ...string) string {
	line := "ctxfit " + strings.Join(args, " ")
	if !ollamahost.Same(u, e.host("")) {
		line += " --host " + u.Redacted()
	}
	return line
}
