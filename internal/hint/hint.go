// Package hint builds the ctxfit commands that messages tell the user to
// run, so that the daemon's events and the CLI's output name a server the
// same way: every command repeats --host for a server other than the
// default one, and a daemon without a tray names commands instead of tray
// items.
package hint

import (
	"net/url"
	"strings"

	"github.com/ctxfit/ctxfit/internal/ollamahost"
)

// HostFlag returns what a command for the server at u needs to reach it:
// "" for nil or the default server (ollamahost.Default, which every ctxfit
// command reaches without --host when OLLAMA_HOST is unset), else
// " --host " and u. The daemon's environment need not be the user's
// terminal's, so OLLAMA_HOST does not count: a hint that names the server
// works in either.
func HostFlag(u *url.URL) string {
	if u == nil || ollamahost.Same(u, ollamahost.Parse("")) {
		return ""
	}
	return " --host " + u.String()
}

// Hints builds the commands of one daemon's messages. The zero value names
// commands without --host and tray items where the tray has them.
type Hints struct {
	// Host is HostFlag of the server: "" or " --host URL".
	Host string
	// Headless reports whether no tray shows the daemon, so that messages
	// name commands instead of tray items.
	Headless bool
	// Prefix is what each command starts with in place of "ctxfit"
	// (Prefix): the environment a command needs to see what this daemon
	// sees and the name ctxfit was started as, for `ctxfit demo`, whose
	// commands must work as printed. "" means "ctxfit".
	Prefix string
}

// Prefix returns the start of a command that runs ctxfit as prog ("" for
// "ctxfit") with the environment assignments env ("NAME=value", quoted for
// a POSIX shell where the value needs it):
// "CONTINUE_GLOBAL_DIR=/tmp/d go run ./cmd/ctxfit".
func Prefix(env []string, prog string) string {
	if prog == "" {
		prog = "ctxfit"
	}
	parts := make([]string, 0, len(env)+1)
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		parts = append(parts, k+"="+ShellQuote(v))
	}
	return strings.Join(append(parts, prog), " ")
}

// ShellQuote returns s as one word of a POSIX shell: as it is when it
// holds only characters that need no quoting, else in single quotes.
func ShellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:@%+,=") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// For returns the hints of a daemon for the server at u.
func For(u *url.URL, headless bool) Hints {
	return Hints{Host: HostFlag(u), Headless: headless}
}

// Line is the command "ctxfit ARGS" for the server, without backquotes,
// starting with Prefix when it is set.
func (h Hints) Line(args ...string) string {
	start := h.Prefix
	if start == "" {
		start = "ctxfit"
	}
	return strings.Join(append([]string{start}, args...), " ") + h.Host
}

// Cmd is Line in backquotes, as messages quote a command.
func (h Hints) Cmd(args ...string) string { return "`" + h.Line(args...) + "`" }

// FixWrites says how to write the tuned values into one client's config
// now, or into every client's when client is "all": "Fix now in the tray,
// or `ctxfit fix all`, writes the tuned value", and without a tray
// "`ctxfit fix all` writes the tuned value".
func (h Hints) FixWrites(client string) string {
	cmd := h.Cmd("fix", strings.ToLower(client))
	if h.Headless {
		return cmd + " writes the tuned value"
	}
	return "Fix now in the tray, or " + cmd + ", writes the tuned value"
}

// UseFix says how to fix one client's config now: "use Fix Continue now"
// (the tray's item), and without a tray "run `ctxfit fix continue`".
func (h Hints) UseFix(client string) string {
	if h.Headless {
		return "run " + h.Cmd("fix", strings.ToLower(client))
	}
	return "use Fix " + client + " now"
}
