// Package termtext makes strings that come from outside (an Ollama
// server's model names, versions and error messages) safe to print on a
// terminal or into a log: control characters, escape sequences, invisible
// and bidirectional formatting characters and invalid UTF-8 are shown as
// escapes (\x1b, \u202e) instead of acting on the terminal.
package termtext

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Clean returns s with every character that could act on a terminal or
// disguise text written as an escape: C0 and C1 controls (newlines and tabs
// included, so that one string stays one line), DEL, bidirectional
// controls, zero-width and other invisible format characters, and invalid
// UTF-8 bytes. Printable text, including non-Latin scripts, is kept.
func Clean(s string) string {
	if isClean(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafe(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// isClean reports whether s needs no escapes, the common case.
func isClean(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c >= 0x80 {
			if c < 0x80 {
				return false
			}
			for _, r := range s[i:] {
				if r == utf8.RuneError || r < 0x20 || r == 0x7f || unsafe(r) {
					return false
				}
			}
			return true
		}
	}
	return true
}

// unsafe reports whether a non-ASCII rune is a control or an invisible
// format character: C1 controls, bidi controls, zero-width characters,
// line and paragraph separators, and the rest of Unicode's Cf, Cc, Co, Cs
// and Zl/Zp categories.
func unsafe(r rune) bool {
	return r >= 0x80 && r <= 0x9f || unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs, unicode.Zl, unicode.Zp) || r == utf8.RuneError
}
