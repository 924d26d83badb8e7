// Command pesubsystem checks the subsystem of Windows executables, for CI:
//
//	go run ./internal/cmd/pesubsystem dist/ctxfit.exe=console dist/ctxfit-tray.exe=gui
//
// It exits 1 when one is not as named: a tray started at login must be a
// GUI program (no console window), the CLI a console one.
package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/ctxfit/ctxfit/internal/autostart"
)

func main() {
	want := map[string]uint16{"gui": autostart.SubsystemGUI, "console": autostart.SubsystemConsole}
	failed := false
	for _, arg := range os.Args[1:] {
		path, kind, ok := strings.Cut(arg, "=")
		w, known := want[kind]
		if !ok || !known {
			fmt.Fprintf(os.Stderr, "pesubsystem: %s: want PATH=gui or PATH=console\n", arg)
			os.Exit(2)
		}
		got, err := autostart.PESubsystem(path)
		switch {
		case err != nil:
			fmt.Fprintln(os.Stderr, err)
			failed = true
		case got != w:
			fmt.Fprintf(os.Stderr, "%s: subsystem %d, want %d (%s)\n", path, got, w, kind)
			failed = true
		default:
			fmt.Printf("%s: %s\n", path, kind)
		}
	}
	if failed {
		os.Exit(1)
	}
}
