package logfile

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// failing is a writer that always fails, as stderr does in a Windows
// service or a GUI-subsystem program.
type failing struct{ calls int }

func (f *failing) Write([]byte) (int, error) {
	f.calls++
	return 0, errors.New("the handle is invalid")
}

func TestTeeKeepsWritingPastAFailingWriter(t *testing.T) {
	tests := []struct {
		name    string
		writers func(a, b *bytes.Buffer, bad *failing) []io.Writer
		wantA   bool // a gets the record
		wantB   bool
		wantErr bool
	}{
		{"failing first", func(a, b *bytes.Buffer, bad *failing) []io.Writer { return []io.Writer{bad, a, b} }, true, true, false},
		{"failing between", func(a, b *bytes.Buffer, bad *failing) []io.Writer { return []io.Writer{a, bad, b} }, true, true, false},
		{"nil skipped", func(a, b *bytes.Buffer, bad *failing) []io.Writer { return []io.Writer{nil, a} }, true, false, false},
		{"all fail", func(a, b *bytes.Buffer, bad *failing) []io.Writer { return []io.Writer{bad, bad} }, false, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a, b bytes.Buffer
			bad := &failing{}
			w := Tee(tt.writers(&a, &b, bad)...)
			n, err := w.Write([]byte("line\n"))
			if (err != nil) != tt.wantErr {
				t.Fatalf("Write: n=%d err=%v, want error %v", n, err, tt.wantErr)
			}
			if !tt.wantErr && n != 5 {
				t.Errorf("Write wrote %d bytes, want 5", n)
			}
			if got := a.String() == "line\n"; got != tt.wantA {
				t.Errorf("first buffer %q", a.String())
			}
			if got := b.String() == "line\n"; got != tt.wantB {
				t.Errorf("second buffer %q", b.String())
			}
		})
	}
}

// TestLogWithoutStderr logs through slog as ctxfit does, with a stderr that
// fails on every write and is listed first: the file still gets every line.
func TestLogWithoutStderr(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	f, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stderr := &failing{}
	log := slog.New(slog.NewTextHandler(Tee(stderr, f), nil))
	for i := range 3 {
		log.Info("event", "n", i)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(got), "msg=event"); n != 3 || stderr.calls != 3 {
		t.Errorf("the file has %d of 3 lines (stderr tried %d times):\n%s", n, stderr.calls, got)
	}
}
