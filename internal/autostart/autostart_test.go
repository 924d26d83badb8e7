package autostart

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNewChecksExecutable(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "ctxfit")
	if err := os.WriteFile(exe, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		exe     string
		wantErr string
	}{
		{"ctxfit", "not an absolute path"},
		{filepath.Join(dir, "missing"), "no such file"},
		{dir, "not a regular file"},
		{exe + "\n", "control characters"},
	}
	for _, tt := range tests {
		_, err := New(Options{Executable: tt.exe})
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("New(%q) error = %v, want one saying %q", tt.exe, err, tt.wantErr)
		}
	}
	m, err := New(Options{Executable: exe, Headless: true})
	if err != nil {
		t.Fatalf("New(%q): %v", exe, err)
	}
	if got := m.Options(); got.Executable != exe || !got.Headless {
		t.Errorf("Options() = %+v", got)
	}
}

func TestNewDefaultsToRunningBinary(t *testing.T) {
	m, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	want, err := Executable()
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Options().Executable; got != want || !filepath.IsAbs(got) {
		t.Errorf("Executable = %q, want the test binary %q", got, want)
	}
}

func TestArgs(t *testing.T) {
	if got := (Options{}).Args(); strings.Join(got, " ") != "run" {
		t.Errorf("tray args = %q", got)
	}
	if got := (Options{Headless: true}).Args(); strings.Join(got, " ") != "run --headless" {
		t.Errorf("headless args = %q", got)
	}
}

func TestStatusHeadless(t *testing.T) {
	tests := []struct {
		cmd  []string
		want bool
	}{
		{nil, false},
		{[]string{"/bin/ctxfit"}, false},
		{[]string{"/bin/ctxfit", "run"}, false},
		{[]string{"/bin/ctxfit", "run", "--headless"}, true},
		{[]string{"/bin/ctxfit", "run", "-headless"}, true},
		{[]string{"--headless"}, false}, // the program, not an argument
	}
	for _, tt := range tests {
		if got := (Status{Command: tt.cmd}).Headless(); got != tt.want {
			t.Errorf("Status{Command: %q}.Headless() = %v, want %v", tt.cmd, got, tt.want)
		}
	}
}

func TestAnswerString(t *testing.T) {
	for a, want := range map[Answer]string{Yes: "yes", No: "no", Unknown: "unknown"} {
		if got := a.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", a, got, want)
		}
	}
}

func TestCommandNotes(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "ctxfit")
	other := filepath.Join(dir, "other")
	for _, p := range []string{exe, other} {
		if err := os.WriteFile(p, nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	o := Options{Executable: exe}
	tests := []struct {
		name string
		st   Status
		want string // substring of the only note; "" for none
	}{
		{"not installed", Status{}, ""},
		{"current", Status{Installed: true, Current: true, Command: []string{exe, "run"}}, ""},
		{"gone", Status{Installed: true, Command: []string{"/gone/ctxfit", "run"}}, "/gone/ctxfit, which no longer exists"},
		{"other binary", Status{Installed: true, Command: []string{other, "run"}}, "replaces it"},
		{"other mode", Status{Installed: true, Command: []string{exe, "run", "--headless"}}, "replaces it"},
		{"other version", Status{Installed: true, Command: []string{exe, "run"}}, "another version"},
		{"other host", Status{Installed: true, Command: []string{exe, "run"}, Host: "http://gpu-box:11434"}, "It watches http://gpu-box:11434, not the default Ollama server"},
	}
	for _, tt := range tests {
		notes := commandNotes(tt.st, o, o.command())
		switch {
		case tt.want == "" && len(notes) != 0:
			t.Errorf("%s: notes %q, want none", tt.name, notes)
		case tt.want != "" && (len(notes) != 1 || !strings.Contains(notes[0], tt.want)):
			t.Errorf("%s: notes %q, want one saying %q", tt.name, notes, tt.want)
		}
	}
}
