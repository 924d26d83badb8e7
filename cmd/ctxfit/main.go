// Command ctxfit keeps local LLMs served by Ollama fast: it watches which
// models spill from the GPU onto the CPU, finds the largest context length
// that stays on the GPU, and writes it into client configs.
//
// With no command it runs the tray app (`ctxfit --host X` too); see
// `ctxfit help` for the rest.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/ctxfit/ctxfit/internal/termtext"
)

// command is one ctxfit subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e *env, args []string) error
}

// commands lists the subcommands in the order `ctxfit help` shows them.
// Each one's help text is in help.go, under the same name.
func commands() []command {
	return []command{
		{"status", "show the Ollama server and each loaded model: size, CPU/GPU split, context", runStatus},
		{"run", "run the watcher (the tray app, or --headless for servers)", runRun},
		{"demo", "run ctxfit against a simulated 32 GB Mac whose model spills", runDemo},
		{"tune", "find the largest context that stays 100% on the GPU", runTune},
		{"bench", "measure time to first token and tokens per second", runBench},
		{"fix", "write tuned context lengths into a client's config", runFix},
		{"undo", "restore a client's config (or all) as it was before ctxfit's last fix", runUndo},
		{"clients", "list the clients found on this machine and what they ask for", runClients},
		{"settings", "show every setting ctxfit remembers", runSettings},
		{"set", "change a setting: auto-fix or notifications, on or off", runSet},
		{"logs", "print the log of `ctxfit run`; -f follows it", runLogs},
		{"service", "install, remove or control ctxfit's start at login", runService},
		{"version", "print ctxfit's version, commit, Go version and OS/arch", runVersion},
		{"completion", "print a shell completion script: bash, zsh, fish or powershell", runCompletion},
		{"gpu-limit", "on Apple Silicon: the GPU's share of memory, and what more of it buys", runGPULimit},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e := &env{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, prog: progName(os.Args[0]), stderrTTY: isTerminal(os.Stderr)}
	os.Exit(e.main(ctx, os.Args[1:]))
}

// progName returns the name hints give for ctxfit: the base name it was
// started as, or `go run ./cmd/ctxfit` for a temporary `go run` build.
func progName(arg0 string) string {
	if strings.Contains(arg0, string(filepath.Separator)+"go-build") {
		return "go run ./cmd/ctxfit"
	}
	name := strings.TrimSuffix(filepath.Base(arg0), ".exe")
	if name == "" || name == "." {
		return "ctxfit"
	}
	return name
}

// isTempBuild reports whether path is a binary that will be gone at the
// next login: built by `go run` or `go test`, or anywhere in the
// temporary directory.
func isTempBuild(path string) bool {
	sep := string(filepath.Separator)
	return strings.Contains(path, sep+"go-build") || strings.HasPrefix(path, os.TempDir()+sep)
}

// main runs ctxfit with args and returns its exit status. It alone turns
// errors into messages and exit statuses: 0 for success and for help asked
// for, 2 for a usage error, 130 after Ctrl-C, 1 for the rest. With --json an
// error is {"error": "..."} on stdout.
func (e *env) main(ctx context.Context, args []string) int {
	if e.prog == "" {
		e.prog = "ctxfit"
	}
	switch {
	case len(args) == 0:
		args = []string{"run"}
	case args[0] == "-h" || args[0] == "--help" || args[0] == "-help" || (args[0] == "help" && len(args) == 1):
		e.usage(e.stdout)
		return 0
	case args[0] == "help":
		// `help fix ollama` is `fix ollama --help`.
		args = append(args[1:], "--help")
	case args[0] == "--version" || args[0] == "-version":
		args = append([]string{"version"}, args[1:]...)
	case strings.HasPrefix(args[0], "-"):
		// `ctxfit --host X` starts the app, as `ctxfit` alone does.
		args = append([]string{"run"}, args...)
	}
	name := args[0]
	for _, c := range commands() {
		if c.name == name {
			err := c.run(ctx, e, args[1:])
			if sub, _, ok := clientArg(args[1:]); ok && name == "fix" && strings.EqualFold(sub, "ollama") {
				name = "fix ollama" // its messages name it
			}
			return e.exit(name, args[1:], err)
		}
	}
	return e.exit("", args, usagef("unknown command %q", name))
}

// exit reports err of command name run with args, and returns the status.
func (e *env) exit(name string, args []string, err error) int {
	var (
		code  exitError
		help  *helpRequest
		usage *usageError
		fail  *cmdError
	)
	switch {
	case err == nil:
		return 0
	case errors.As(err, &help):
		e.printHelp(e.stdout, help.fs)
		return 0
	case errors.As(err, &code):
		return int(code) // the command said it all
	case errors.As(err, &usage):
		if wantsJSON(args) {
			msg := usage.msg
			if msg == "" {
				why := usage.flagErr
				if why == "" {
					why = "wrong arguments"
				}
				msg = fmt.Sprintf("%s; run `%s help %s` for usage", why, e.prog, usage.cmd(name))
			}
			writeIndentedJSON(e.stdout, errorJSON{msg})
			return 2
		}
		if usage.msg != "" {
			fmt.Fprintf(e.stderr, "%s: %s\n", strings.TrimSpace(e.prog+" "+name), usage.msg)
		}
		if name == "" {
			e.usage(e.stderr)
		} else {
			fmt.Fprintf(e.stderr, "Run `%s help %s` for usage.\n", e.prog, usage.cmd(name))
		}
		return 2
	case errors.Is(err, context.Canceled):
		e.fail(name, args, "stopped.")
		return 130
	case errors.As(err, &fail):
		e.fail(name, args, fail.msg)
		return fail.code
	}
	e.fail(name, args, err.Error())
	return 1
}

// fail prints msg: {"error": msg} on stdout with --json, else on stderr.
func (e *env) fail(name string, args []string, msg string) {
	if wantsJSON(args) {
		writeIndentedJSON(e.stdout, errorJSON{msg})
		return
	}
	// Server-supplied text is shown escaped (no terminal control sequences).
	fmt.Fprintf(e.stderr, "%s %s: %s\n", e.prog, name, termtext.Clean(msg))
}

// errorJSON is what every command prints on stdout for an error with --json.
type errorJSON struct {
	Error string `json:"error"`
}

// wantsJSON reports whether args ask for JSON output.
func wantsJSON(args []string) bool {
	for _, a := range args {
		switch a {
		case "--json", "-json", "--json=true", "-json=true":
			return true
		case "--":
			return false
		}
	}
	return false
}

// exitError ends ctxfit with a status code after the command has already
// told the user what went wrong.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// cmdError is a failure whose message main prints, with its exit status.
type cmdError struct {
	code int
	msg  string
}

func (e *cmdError) Error() string { return e.msg }

// failf returns a failure with exit status code and a message for main to print.
func failf(code int, format string, args ...any) error {
	return &cmdError{code, fmt.Sprintf(format, args...)}
}

// errUsage reports a command line that the flag package already explained.
var errUsage = &usageError{}

// usageError is a command line ctxfit cannot run: main prints msg (when
// not empty) and where the usage is, and exits with status 2.
type usageError struct {
	msg string
	sub string // a subcommand ("ollama" of `fix ollama`) for the help hint
	// flagErr is the flag package's explanation, which it printed on
	// stderr already; --json repeats it in {"error": …}.
	flagErr string
}

func (e *usageError) Error() string {
	if e.msg == "" {
		return "usage"
	}
	return e.msg
}

// Is makes every usage error errors.Is(err, errUsage).
func (e *usageError) Is(target error) bool { return target == errUsage }

// cmd returns the command whose help the hint names.
func (e *usageError) cmd(name string) string {
	if strings.HasSuffix(name, " "+e.sub) {
		return name
	}
	return strings.TrimSpace(name + " " + e.sub)
}

// usagef returns a usage error with a message.
func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

func (e *env) usage(w io.Writer) {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage:\n  %[1]s [flags]            run the tray app (the flags of `%[1]s run`)\n  %[1]s COMMAND [flags]\n\nCommands:\n", e.prog)
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(&b, "\nFlags:\n  -h, --help     show help\n  --version      print the version\n\nRun `%s help COMMAND` for a command's flags and examples.\n", e.prog)
	io.WriteString(w, b.String())
}
