package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// newTemp writes content to a temporary file beside path, as Replace's
// callers do.
func newTemp(t *testing.T, path, content string) string {
	t.Helper()
	f, err := os.CreateTemp(filepath.Dir(path), TempPattern(filepath.Base(path)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

func TestReplace(t *testing.T) {
	tests := []struct {
		name    string
		before  string // the file's content when Replace runs; "-" for none
		want    string // what the caller read
		wantErr error
		after   string // the file's content afterwards; "-" for none
	}{
		{"unchanged", "old", "old", nil, "new"},
		{"changed by someone", "theirs", "old", ErrChanged, "theirs"},
		{"grown by someone", "old plus theirs", "old", ErrChanged, "old plus theirs"},
		{"emptied by someone", "", "old", ErrChanged, ""},
		{"deleted by someone", "-", "old", ErrGone, "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "config.json")
			if tt.before != "-" {
				os.WriteFile(p, []byte(tt.before), 0o644)
			}
			tmp := newTemp(t, p, "new")
			err := Replace(p, tmp, []byte(tt.want))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Replace: %v, want %v", err, tt.wantErr)
			}
			b, err := os.ReadFile(p)
			switch {
			case tt.after == "-" && !errors.Is(err, os.ErrNotExist):
				t.Errorf("file exists (%q, %v); want it to stay deleted", b, err)
			case tt.after != "-" && string(b) != tt.after:
				t.Errorf("file holds %q (%v), want %q", b, err, tt.after)
			}
			assertOnly(t, dir, tt.after != "-")
		})
	}
}

// assertOnly fails unless dir holds the config alone (or nothing): no
// temporary file is left behind.
func assertOnly(t *testing.T, dir string, config bool) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	want := 0
	if config {
		want = 1
	}
	if len(names) != want {
		t.Errorf("directory holds %q; want only the config", names)
	}
}

func TestReplaceByRename(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c")
	os.WriteFile(p, []byte("old"), 0o644)
	if err := replaceByRename(p, newTemp(t, p, "new"), []byte("old")); err != nil {
		t.Fatal(err)
	}
	if err := replaceByRename(p, newTemp(t, p, "newer"), []byte("old")); !errors.Is(err, ErrChanged) {
		t.Fatalf("replace of a changed file: %v, want ErrChanged", err)
	}
	os.Remove(p)
	if err := replaceByRename(p, newTemp(t, p, "newer"), []byte("new")); !errors.Is(err, ErrGone) {
		t.Fatalf("replace of a deleted file: %v, want ErrGone", err)
	}
	assertOnly(t, dir, false)
}

func TestReadRegular(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("hello"), 0o644)
	if b, _, err := ReadRegular(file, 0); err != nil || string(b) != "hello" {
		t.Fatalf("ReadRegular(file) = %q, %v", b, err)
	}
	if _, _, err := ReadRegular(file, 3); !errors.Is(err, ErrTooLarge) {
		t.Errorf("ReadRegular over the limit: %v, want ErrTooLarge", err)
	}
	if _, _, err := ReadRegular(dir, 0); !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), "a directory") {
		t.Errorf("ReadRegular(dir): %v, want ErrNotRegular naming a directory", err)
	}
}
