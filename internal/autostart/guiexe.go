package autostart

import (
	"bytes"
	"debug/pe"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/ctxfit/ctxfit/internal/atomicfile"
)

// TrayExeName is the name of the Windows executable the Run key starts:
// ctxfit linked for the GUI subsystem, which Windows starts without a
// console window (closing that window would end the tray), beside the
// console ctxfit.exe that the CLI keeps — as Ollama ships "ollama app.exe"
// beside ollama.exe and Tailscale tailscale-ipn.exe beside tailscale.exe.
// Release builds link it with -ldflags -H=windowsgui; Install writes it
// from ctxfit.exe when it is missing or stale (a `go install` builds only
// the console program).
const TrayExeName = "ctxfit-tray.exe"

// The PE optional header's Subsystem values.
const (
	SubsystemGUI     = 2 // IMAGE_SUBSYSTEM_WINDOWS_GUI
	SubsystemConsole = 3 // IMAGE_SUBSYSTEM_WINDOWS_CUI
)

// TrayExecutable returns where the GUI-subsystem ctxfit belongs for the
// console ctxfit at exe: beside it, named TrayExeName.
func TrayExecutable(exe string) string {
	return exe[:strings.LastIndexAny(exe, `\/`)+1] + TrayExeName
}

// PESubsystem returns the Subsystem of the Windows executable at path.
func PESubsystem(path string) (uint16, error) {
	f, err := pe.Open(path)
	if err != nil {
		return 0, fmt.Errorf("read %s as a Windows executable: %w", path, err)
	}
	defer f.Close()
	switch h := f.OptionalHeader.(type) {
	case *pe.OptionalHeader64:
		return h.Subsystem, nil
	case *pe.OptionalHeader32:
		return h.Subsystem, nil
	}
	return 0, fmt.Errorf("%s has no PE optional header", path)
}

// guiImage returns the bytes of the Windows executable exe with its
// Subsystem set to GUI and its checksum recomputed: what
// `editbin /SUBSYSTEM:WINDOWS` does, and all that -H=windowsgui changes in
// what the program does.
func guiImage(exe []byte) ([]byte, error) {
	if _, err := pe.NewFile(bytes.NewReader(exe)); err != nil {
		return nil, fmt.Errorf("not a Windows executable: %w", err)
	}
	if len(exe) < 0x40 {
		return nil, errors.New("not a Windows executable: too short")
	}
	peOff := int(binary.LittleEndian.Uint32(exe[0x3c:]))
	opt := peOff + 4 + 20 // "PE\0\0", then the COFF file header
	const checksumOff, subsystemOff = 64, 68
	if opt+subsystemOff+2 > len(exe) {
		return nil, errors.New("not a Windows executable: truncated optional header")
	}
	out := bytes.Clone(exe)
	binary.LittleEndian.PutUint16(out[opt+subsystemOff:], SubsystemGUI)
	binary.LittleEndian.PutUint32(out[opt+checksumOff:], peChecksum(out, opt+checksumOff))
	return out, nil
}

// peChecksum computes the PE image checksum (as CheckSumMappedFile does):
// the one's-complement sum of the file's 16-bit words, skipping the
// checksum field at skip, plus the file's length.
func peChecksum(b []byte, skip int) uint32 {
	var sum uint64
	for i := 0; i+1 < len(b); i += 2 {
		if i == skip || i == skip+2 {
			continue
		}
		sum += uint64(binary.LittleEndian.Uint16(b[i:]))
		sum = (sum & 0xffff) + (sum >> 16)
	}
	if len(b)%2 == 1 {
		sum += uint64(b[len(b)-1])
		sum = (sum & 0xffff) + (sum >> 16)
	}
	sum = (sum & 0xffff) + (sum >> 16)
	return uint32(sum) + uint32(len(b))
}

// runKeyOptions returns o with Executable the program the Run key should
// start: o's own when it is a GUI-subsystem executable already (a release's
// ctxfit-tray.exe, or the tray itself ticking Start at login), else
// TrayExecutable beside it, which writeTrayExecutable makes.
func runKeyOptions(o Options) Options {
	if s, err := PESubsystem(o.Executable); err == nil && s == SubsystemGUI {
		return o
	}
	o.Executable = TrayExecutable(o.Executable)
	return o
}

// writeTrayExecutable writes the GUI-subsystem copy of the console
// executable src at dst, unless dst holds it already. When dst cannot be
// replaced (the tray runs from it) but is a GUI executable, it is kept.
func writeTrayExecutable(src, dst string) error {
	if src == dst {
		return nil
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("read %s: %w", src, err)
	}
	gui, err := guiImage(data)
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	if have, err := os.ReadFile(dst); err == nil && bytes.Equal(have, gui) {
		return nil
	}
	if err := atomicfile.WriteFile(dst, gui, 0o755); err != nil {
		if s, serr := PESubsystem(dst); serr == nil && s == SubsystemGUI {
			return nil // in use, and a tray executable all the same
		}
		return fmt.Errorf("write the tray executable %s (started at login without a console window): %w", dst, err)
	}
	return nil
}
