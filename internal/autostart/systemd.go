package autostart

import (
	"errors"
	"fmt"
	"strings"
)

// systemd targets that start ctxfit at login.
const (
	// trayTarget is reached once a graphical session is up, with its
	// DISPLAY, WAYLAND_DISPLAY and session bus in the user manager's
	// environment; the tray needs them.
	trayTarget = "graphical-session.target"
	// headlessTarget is reached when the user manager starts, at login or
	// at boot with lingering enabled.
	headlessTarget = "default.target"
)

// systemdTarget returns the target whose .wants directory enables ctxfit.
func systemdTarget(headless bool) string {
	if headless {
		return headlessTarget
	}
	return trayTarget
}

// systemdUnit returns the systemd user unit that starts o's command.
//
// The default unit of kardianos/service is wrong for a user unit (it is
// wanted by multi-user.target, which a user manager never reaches) and uses
// Restart=always (Quit would not stay quit), so ctxfit writes its own:
// Restart=on-failure restarts a crash but not a Quit, and the start limit
// gives up on a tray that keeps failing, e.g. for lack of a display.
func systemdUnit(o Options) (string, error) {
	exec, err := execStart(o.command())
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("# Written by `ctxfit service install`; `ctxfit service uninstall` removes it.\n")
	b.WriteString("[Unit]\n")
	fmt.Fprintf(&b, "Description=%s\n", description)
	if !o.Headless {
		// Stop with the graphical session, and start after it.
		fmt.Fprintf(&b, "After=%s\nPartOf=%s\n", trayTarget, trayTarget)
	}
	b.WriteString("StartLimitIntervalSec=300\nStartLimitBurst=5\n")
	b.WriteString("\n[Service]\n")
	if o.Host != "" {
		if strings.ContainsFunc(o.Host, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			return "", fmt.Errorf("the host %q holds control characters, which a systemd unit cannot hold", o.Host)
		}
		fmt.Fprintf(&b, "Environment=\"OLLAMA_HOST=%s\"\n", envEscaper.Replace(o.Host))
	}
	fmt.Fprintf(&b, "ExecStart=%s\n", exec)
	b.WriteString("Restart=on-failure\nRestartSec=10\n")
	b.WriteString("\n[Install]\n")
	fmt.Fprintf(&b, "WantedBy=%s\n", systemdTarget(o.Headless))
	if strings.Contains(b.String(), "{{") {
		// kardianos/service reads the unit as a template.
		return "", fmt.Errorf(`the executable path %q holds "{{", which the service file writer cannot store; move ctxfit to a plain path`, o.Executable)
	}
	return b.String(), nil
}

// execStart quotes args for an ExecStart= line: each word in double quotes
// with % doubled, so that systemd expands no specifiers; in the arguments,
// backslash and quote are escaped and $ doubled, so that it expands no
// variables either. systemd refuses quotes and backslashes in the program's
// path and takes its $ literally (checked with systemd-analyze verify, 252).
func execStart(args []string) (string, error) {
	words := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsFunc(a, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			return "", fmt.Errorf("%q holds control characters, which a systemd unit cannot hold", a)
		}
		if i == 0 {
			if strings.ContainsAny(a, `"'\`) {
				return "", fmt.Errorf("systemd cannot start a program whose path holds quotes or backslashes (%q); move ctxfit to a plain path", a)
			}
			words[i] = `"` + strings.ReplaceAll(a, "%", "%%") + `"`
			continue
		}
		words[i] = `"` + execEscaper.Replace(a) + `"`
	}
	return strings.Join(words, " "), nil
}

var execEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, `%`, `%%`, `$`, `$$`)

// envEscaper quotes the value of an Environment= assignment: systemd
// expands specifiers there, but no variables.
var envEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, `%`, `%%`)

// unitHost returns the OLLAMA_HOST that unit's Environment= lines set, or "".
func unitHost(unit string) string {
	host := ""
	for line := range strings.Lines(unit) {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), "Environment=")
		if !ok {
			continue
		}
		words, err := splitExecStart("x " + v) // the same quoting; "x" stands for the program
		if err != nil {
			continue
		}
		for _, w := range words[1:] {
			if h, ok := strings.CutPrefix(w, "OLLAMA_HOST="); ok {
				host = h
			}
		}
	}
	return host
}

// unitExecStart returns the command line of the ExecStart= line in unit.
func unitExecStart(unit string) ([]string, error) {
	for line := range strings.Lines(unit) {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "ExecStart="); ok {
			return splitExecStart(v)
		}
	}
	return nil, errors.New("the unit has no ExecStart= line")
}

// splitExecStart splits an ExecStart= value into words the way systemd
// does for the cases ctxfit writes or wrote: words separated by blanks,
// double- or single-quoted, with C escapes (\\, \", \', \xHH, \n, \t),
// %% for %, and $$ for $ in the arguments (not in the program, where $ is
// literal). A leading -, @, +, ! or : prefix is dropped.
func splitExecStart(s string) ([]string, error) {
	var (
		words []string
		word  strings.Builder
		in    bool // inside a word
		quote byte
	)
	s = strings.TrimLeft(s, " \t")
	s = strings.TrimLeft(s, "-@+!:")
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			if i+1 == len(s) {
				return nil, errors.New("ExecStart= ends in a backslash")
			}
			i++
			switch e := s[i]; e {
			case 'n':
				word.WriteByte('\n')
			case 't':
				word.WriteByte('\t')
			case 'x':
				if i+2 >= len(s) {
					return nil, errors.New(`ExecStart= has a short \x escape`)
				}
				var v byte
				if _, err := fmt.Sscanf(s[i+1:i+3], "%02x", &v); err != nil {
					return nil, fmt.Errorf(`ExecStart= has a bad \x escape: %w`, err)
				}
				word.WriteByte(v)
				i += 2
			default:
				word.WriteByte(e)
			}
			in = true
		case (c == '%' || c == '$' && len(words) > 0) && i+1 < len(s) && s[i+1] == c:
			word.WriteByte(c)
			i++
			in = true
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				word.WriteByte(c)
			}
		case c == '"' || c == '\'':
			quote, in = c, true
		case c == ' ' || c == '\t':
			if in {
				words = append(words, word.String())
				word.Reset()
				in = false
			}
		default:
			word.WriteByte(c)
			in = true
		}
	}
	if quote != 0 {
		return nil, errors.New("ExecStart= has an unclosed quote")
	}
	if in {
		words = append(words, word.String())
	}
	if len(words) == 0 {
		return nil, errors.New("ExecStart= is empty")
	}
	return words, nil
}

// isEnabled interprets the output of `systemctl --user is-enabled UNIT`:
// whether the unit starts at login, and whether the output was understood.
func isEnabled(out string) (Answer, bool) {
	switch strings.TrimSpace(firstLine(out)) {
	case "enabled", "enabled-runtime":
		return Yes, true
	case "disabled", "static", "indirect", "linked", "linked-runtime",
		"masked", "masked-runtime", "alias", "generated", "transient", "not-found":
		return No, true
	}
	return Unknown, false
}

// isActive interprets the output of `systemctl --user is-active UNIT`:
// whether its process runs (or is about to), and whether the output was
// understood.
func isActive(out string) (Answer, bool) {
	switch strings.TrimSpace(firstLine(out)) {
	case "active", "reloading", "refreshing", "activating", "deactivating":
		return Yes, true
	case "inactive", "failed", "maintenance":
		return No, true
	}
	return Unknown, false
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
