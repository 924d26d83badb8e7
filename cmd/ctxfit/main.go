// Command ctxfit keeps local LLMs served by Ollama fast: it watches which
// models spill from the GPU onto the CPU, finds the largest context length
// that stays on the GPU, and writes it into client configs.
//
// With no arguments it runs the tray app; see `ctxfit help` for the rest.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
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
		{"gpu-limit", "on Apple Silicon: the GPU's share of memory, and what more of it buys", runGPULimit},
	}
}

// exitError ends ctxfit with a status code after the command has already
// told the user what went wrong.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e := &env{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	os.Exit(e.main(ctx, os.Args[1:]))
}

// main runs ctxfit with args and returns its exit status.
func (e *env) main(ctx context.Context, args []string) int {
	if len(args) == 0 {
		args = []string{"run"}
	}
	name := args[0]
	if name == "help" || name == "-h" || name == "--help" || name == "-help" {
		e.usage(e.stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name != name {
			continue
		}
		err := c.run(ctx, e, args[1:])
		var code exitError
		switch {
		case err == nil:
			return 0
		case errors.As(err, &code):
			return int(code)
		case errors.Is(err, errUsage):
			return 2
		}
		fmt.Fprintf(e.stderr, "ctxfit %s: %s\n", name, termtext.Clean(err.Error()))
		return 1
	}
	fmt.Fprintf(e.stderr, "ctxfit: unknown command %q\n\n", name)
	e.usage(e.stderr)
	return 2
}

func (e *env) usage(w io.Writer) {
	var b strings.Builder
	b.WriteString("Usage: ctxfit [command] [flags]\n\nWith no command, ctxfit runs the tray app.\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-9s %s\n", c.name, c.summary)
	}
	b.WriteString("\nRun `ctxfit COMMAND -h` for a command's flags.\n")
	io.WriteString(w, b.String())
}
