package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/ctxfit/ctxfit/internal/hint"
	"github.com/ctxfit/ctxfit/internal/ollamahost"
	"github.com/ctxfit/ctxfit/ollama"
	"github.com/ctxfit/ctxfit/state"
)

// env is what a command may touch of the outside world, so that tests can
// run commands in-process with their own output buffers and environment.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	// prog is the name hints give for ctxfit: how it was started
	// ("ctxfit", or "go run ./cmd/ctxfit"); empty means "ctxfit".
	prog string
	// stderrTTY reports whether stderr is a terminal, where progress goes.
	stderrTTY bool
	// ram returns the memory a model may take on this machine without
	// swapping, for a tune of a local server; nil means localRAM.
	ram func() int64
	// totalRAM returns this machine's memory, which the RAM warning of a
	// model run on the CPU measures against; nil means ollama.TotalRAM.
	totalRAM func() int64
	// loc is the time zone of times shown to the user; nil means the
	// machine's (tests use UTC without touching the global time.Local).
	loc *time.Location
	// hintEnv lists environment assignments ("NAME=value") that every
	// command a hint names carries: the environment under which the demo,
	// or the running ctxfit a command talks to (localapi.Hello.Env), reads
	// the client configs, so that a hint copied as printed sees the same
	// files.
	hintEnv []string
	// demo reports whether this is `ctxfit demo`, whose daemon's messages
	// name commands as ctxfit was started, with hintEnv.
	demo bool
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

// flags returns a flag set for command name ("fix ollama" for a
// subcommand) that prints its errors to stderr. Its help is printed by
// main, from help.go, when parse returns a *helpRequest.
func (e *env) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("ctxfit "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {} // main prints the help, on stdout when asked for
	return fs
}

// helpRequest is -h or --help: main prints the help of fs and exits 0.
type helpRequest struct{ fs *flag.FlagSet }

func (h *helpRequest) Error() string { return "help requested" }

// parse parses args into fs: -h and --help become a *helpRequest, bad flags
// (which the flag package explained on stderr) a usage error. Boolean
// flags take the bare form (--json); --auto-fix also takes "on" or "off"
// as the next word.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(joinOnOff(fs, args)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return &helpRequest{fs}
		}
		return &usageError{sub: subcommand(fs), flagErr: err.Error()}
	}
	return nil
}

// subcommand returns "ollama" for the flag set of `fix ollama`, else "".
func subcommand(fs *flag.FlagSet) string {
	parts := strings.Fields(fs.Name())
	if len(parts) > 2 {
		return strings.Join(parts[2:], " ")
	}
	return ""
}

// host resolves the Ollama server from --host, OLLAMA_HOST or the default;
// an address Ollama would misread is a usage error.
func (e *env) host(flagValue string) (*url.URL, error) {
	u, err := ollamahost.Resolve(flagValue, e.getenv("OLLAMA_HOST"))
	if err != nil {
		return nil, usagef("%v", err)
	}
	return u, nil
}

// cmdline returns a command for the user to run, as a hint: the name ctxfit
// was started as, args, and --host when u is not the default server, so
// that the hint works as given.
func (e *env) cmdline(u *url.URL, args ...string) string {
	return "`" + strings.Join(append([]string{hint.Prefix(e.hintEnv, e.progOrDefault())}, args...), " ") + hint.HostFlag(u) + "`"
}

// useHintEnv makes hints carry the assignments of env (a running ctxfit's
// Hello.Env), even those this process has too: they may have been given
// for this command alone, and the next shell lacks them.
func (e *env) useHintEnv(env []string) {
	for _, kv := range env {
		if k, _, ok := strings.Cut(kv, "="); ok && k != "" && !slices.Contains(e.hintEnv, kv) {
			e.hintEnv = append(e.hintEnv, kv)
		}
	}
}

func (e *env) progOrDefault() string {
	if e.prog == "" {
		return "ctxfit"
	}
	return e.prog
}

// reprog rewrites the hints of messages from other packages ("`ctxfit
// tune M`") to the name ctxfit was started as.
func (e *env) reprog(msg string) string {
	if p := e.progOrDefault(); p != "ctxfit" {
		msg = strings.ReplaceAll(msg, "`ctxfit ", "`"+p+" ")
	}
	return msg
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

// isTerminal reports whether f is a terminal (a character device).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// onOff is a boolean flag that also reads on and off, for --auto-fix.
type onOff struct {
	set, on bool
}

func (o *onOff) String() string {
	if o == nil || !o.set {
		return ""
	}
	if o.on {
		return "on"
	}
	return "off"
}

func (o *onOff) Set(s string) error {
	switch strings.ToLower(s) {
	case "on", "true", "1", "yes":
		o.set, o.on = true, true
	case "off", "false", "0", "no":
		o.set, o.on = true, false
	default:
		return fmt.Errorf("%q: use on or off", s)
	}
	return nil
}

// IsBoolFlag lets the flag be given bare: --auto-fix means on.
func (o *onOff) IsBoolFlag() bool { return true }

// joinOnOff turns "--auto-fix on" into "--auto-fix=on" for the onOff flags
// of fs, since the flag package reads no separate value for a boolean flag.
func joinOnOff(fs *flag.FlagSet, args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		name := strings.TrimLeft(a, "-")
		if f := fs.Lookup(name); f != nil && strings.HasPrefix(a, "-") && i+1 < len(args) {
			if _, ok := f.Value.(*onOff); ok {
				switch strings.ToLower(args[i+1]) {
				case "on", "off", "true", "false":
					out = append(out, a+"="+args[i+1])
					i++
					continue
				}
			}
		}
		out = append(out, a)
	}
	return out
}

// hint is cmdline without the backquotes.
func (e *env) hint(u *url.URL, args ...string) string {
	return strings.Trim(e.cmdline(u, args...), "`")
}
