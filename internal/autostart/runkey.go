package autostart

import (
	"fmt"
	"strings"
)

// runKeyCommand returns the command line that the Windows Run key holds to
// start o's command: the executable always in double quotes, then each
// argument quoted as CommandLineToArgvW and Go's os.Args read it back.
func runKeyCommand(o Options) (string, error) {
	return windowsCommandLine(o.windowsCommand())
}

// windowsCommandLine joins args into a Windows command line; args[0] is the
// program, which may not contain a double quote (Windows paths cannot).
func windowsCommandLine(args []string) (string, error) {
	if len(args) == 0 || args[0] == "" {
		return "", fmt.Errorf("a command line needs a program")
	}
	if strings.ContainsAny(args[0], "\"\x00") {
		return "", fmt.Errorf("the program path %q holds a double quote or NUL", args[0])
	}
	var b strings.Builder
	b.WriteString(`"` + args[0] + `"`)
	for _, a := range args[1:] {
		if strings.ContainsRune(a, 0) {
			return "", fmt.Errorf("the argument %q holds a NUL", a)
		}
		b.WriteByte(' ')
		b.WriteString(windowsQuote(a))
	}
	return b.String(), nil
}

// windowsQuote quotes one argument the way syscall.EscapeArg does: as is
// when it needs nothing, else in double quotes, with the backslashes before
// a quote (or before the closing quote) doubled and quotes escaped.
func windowsQuote(s string) string {
	if s == "" {
		return `""`
	}
	if !strings.ContainsAny(s, "\"\\ \t") {
		return s
	}
	space := strings.ContainsAny(s, " \t")
	if !strings.ContainsAny(s, `"\`) {
		return `"` + s + `"`
	}
	var b strings.Builder
	if space {
		b.WriteByte('"')
	}
	slashes := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\':
			slashes++
		case '"':
			b.WriteString(strings.Repeat(`\`, slashes+1))
			slashes = 0
		default:
			slashes = 0
		}
		b.WriteByte(c)
	}
	if space {
		b.WriteString(strings.Repeat(`\`, slashes))
		b.WriteByte('"')
	}
	return b.String()
}

// splitWindowsCommandLine splits a command line the way CommandLineToArgvW
// does: the program is everything up to the next blank or, when quoted, up
// to the next quote; in the arguments, 2n backslashes before a quote stand
// for n backslashes and the quote opens or closes a quoted part, 2n+1 for n
// backslashes and a literal quote, and other backslashes are literal.
func splitWindowsCommandLine(s string) []string {
	var args []string
	s = strings.TrimLeft(s, " \t")
	if s == "" {
		return nil
	}
	if s[0] == '"' {
		prog, rest, _ := strings.Cut(s[1:], `"`)
		args = append(args, prog)
		s = rest
	} else {
		i := strings.IndexAny(s, " \t")
		if i < 0 {
			i = len(s)
		}
		args = append(args, s[:i])
		s = s[i:]
	}
	var (
		arg     strings.Builder
		inArg   bool
		quoted  bool
		slashes int
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			slashes++
			inArg = true
			continue
		case c == '"':
			arg.WriteString(strings.Repeat(`\`, slashes/2))
			if slashes%2 == 1 {
				arg.WriteByte('"')
			} else {
				quoted = !quoted
			}
			inArg = true
		case (c == ' ' || c == '\t') && !quoted:
			arg.WriteString(strings.Repeat(`\`, slashes))
			if inArg {
				args = append(args, arg.String())
				arg.Reset()
				inArg = false
			}
		default:
			arg.WriteString(strings.Repeat(`\`, slashes))
			arg.WriteByte(c)
			inArg = true
		}
		slashes = 0
	}
	arg.WriteString(strings.Repeat(`\`, slashes))
	if inArg {
		args = append(args, arg.String())
	}
	return args
}

// startupApproved interprets ctxfit's value under
// HKCU\...\Explorer\StartupApproved\Run, where Task Manager's Startup tab
// and Settings > Apps > Startup record a Run entry switched off: the first
// byte is even (02, 06) while enabled and odd (03, 07) while disabled. No
// value means enabled.
func startupApproved(b []byte) Answer {
	if len(b) == 0 {
		return Yes
	}
	return answer(b[0]%2 == 0)
}
