package autostart

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

func TestTrayExecutable(t *testing.T) {
	for in, want := range map[string]string{
		`C:\Users\ann\go\bin\ctxfit.exe`:     `C:\Users\ann\go\bin\ctxfit-tray.exe`,
		`C:\Program Files\ctxfit\ctxfit.exe`: `C:\Program Files\ctxfit\ctxfit-tray.exe`,
		"/tmp/x/ctxfit.exe":                  "/tmp/x/ctxfit-tray.exe",
	} {
		if got := TrayExecutable(in); got != want {
			t.Errorf("TrayExecutable(%s) = %s, want %s", in, got, want)
		}
	}
}

// TestRunKeyStartsAGUIExecutable builds ctxfit for Windows as `go install`
// does (a console program), lets the Run-key code make its tray
// executable, and checks that what the Run key's command line starts is a
// GUI-subsystem program, so that Windows opens no console window at
// login, while ctxfit.exe stays a console program for the CLI.
func TestRunKeyStartsAGUIExecutable(t *testing.T) {
	if testing.Short() {
		t.Skip("builds ctxfit for Windows (about 20 s); -short skips it")
	}
	dir := t.TempDir()
	exe := filepath.Join(dir, "ctxfit.exe")
	build := exec.Command("go", "build", "-o", exe, "github.com/ctxfit/ctxfit/cmd/ctxfit")
	build.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build ctxfit.exe: %v\n%s", err, out)
	}

	o := runKeyOptions(Options{Executable: exe})
	if err := writeTrayExecutable(exe, o.Executable); err != nil {
		t.Fatal(err)
	}
	line, err := runKeyCommand(o)
	if err != nil {
		t.Fatal(err)
	}
	args := splitWindowsCommandLine(line)
	if want := []string{filepath.Join(dir, TrayExeName), "run"}; !slices.Equal(args, want) {
		t.Fatalf("the Run key holds %s, want %q", line, want)
	}
	if s, err := PESubsystem(args[0]); err != nil || s != SubsystemGUI {
		t.Errorf("the Run key starts %s, subsystem %d (%v), want %d (GUI: no console window)", args[0], s, err, SubsystemGUI)
	}
	if s, err := PESubsystem(exe); err != nil || s != SubsystemConsole {
		t.Errorf("ctxfit.exe has subsystem %d (%v), want %d (console, for the CLI)", s, err, SubsystemConsole)
	}
	// The copy is a valid image: its checksum is what Windows computes.
	data, _ := os.ReadFile(args[0])
	if err := checkPEChecksum(data); err != nil {
		t.Error(err)
	}

	// Installing again leaves it; the GUI executable itself needs no copy.
	if err := writeTrayExecutable(exe, o.Executable); err != nil {
		t.Errorf("writing it again: %v", err)
	}
	if again := runKeyOptions(Options{Executable: args[0]}); again.Executable != args[0] {
		t.Errorf("from the tray executable, the Run key would start %s", again.Executable)
	}
	// Not a Windows program: refused.
	if err := writeTrayExecutable(filepath.Join("testdata", "not-an-exe"), filepath.Join(dir, "x.exe")); err == nil {
		t.Error("made a tray executable from a file that is not one")
	}
}

// checkPEChecksum recomputes the image checksum independently: the sum
// over all 16-bit words with the field read as zero must give the field.
func checkPEChecksum(b []byte) error {
	peOff := int(b[0x3c]) | int(b[0x3d])<<8 | int(b[0x3e])<<16 | int(b[0x3f])<<24
	field := peOff + 4 + 20 + 64
	want := uint32(b[field]) | uint32(b[field+1])<<8 | uint32(b[field+2])<<16 | uint32(b[field+3])<<24
	c := slices.Clone(b)
	copy(c[field:field+4], []byte{0, 0, 0, 0})
	var sum uint32
	for i := 0; i+1 < len(c); i += 2 {
		sum += uint32(c[i]) | uint32(c[i+1])<<8
		sum = (sum & 0xffff) + (sum >> 16)
	}
	if len(c)%2 == 1 {
		sum += uint32(c[len(c)-1])
		sum = (sum & 0xffff) + (sum >> 16)
	}
	if got := (sum & 0xffff) + uint32(len(c)); got != want {
		return fmt.Errorf("PE checksum %#x, recomputed %#x", want, got)
	}
	return nil
}
