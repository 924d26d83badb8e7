package logfile

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestDefaultPath(t *testing.T) {
	env := func(m map[string]string) func(string) string {
		return func(k string) string { return m[k] }
	}
	got, err := DefaultPath(env(map[string]string{DirEnv: "/tmp/ctxfit-logs"}))
	if err != nil || got != filepath.Join("/tmp/ctxfit-logs", "ctxfit.log") {
		t.Errorf("with %s: %q, %v", DirEnv, got, err)
	}
	if runtime.GOOS == "linux" {
		t.Setenv("XDG_CACHE_HOME", "/home/ann/.cache")
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	got, err = DefaultPath(env(nil))
	if want := filepath.Join(cache, "ctxfit", "ctxfit.log"); err != nil || got != want {
		t.Errorf("default: %q, %v; want %q", got, err, want)
	}
}

// files returns the log's files, current first, and their contents.
func files(t *testing.T, path string) (names []string, contents []string) {
	t.Helper()
	matches, err := filepath.Glob(path + "*")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(matches) // ctxfit.log sorts before ctxfit.log.1 ...
	for _, m := range matches {
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, filepath.Base(m))
		contents = append(contents, string(b))
	}
	return names, contents
}

func TestRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logs", "ctxfit.log")
	w, err := Open(path, Options{MaxSize: 100, Keep: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var lines []string
	for i := range 12 {
		line := fmt.Sprintf("record %02d %s\n", i, strings.Repeat("x", 19)) // 30 bytes
		lines = append(lines, line)
		if n, err := w.Write([]byte(line)); err != nil || n != len(line) {
			t.Fatalf("Write: %d, %v", n, err)
		}
	}
	names, contents := files(t, path)
	if want := []string{"ctxfit.log", "ctxfit.log.1", "ctxfit.log.2"}; !slices.Equal(names, want) {
		t.Fatalf("files %q, want %q", names, want)
	}
	// 3 records of 30 bytes fit in 100: files hold records 9-11, 6-8, 3-5.
	for i, c := range contents {
		if len(c) > 100 {
			t.Errorf("%s holds %d bytes, more than MaxSize", names[i], len(c))
		}
		first := 9 - 3*i
		if want := strings.Join(lines[first:first+3], ""); c != want {
			t.Errorf("%s = %q, want %q", names[i], c, want)
		}
	}
	fi, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 && runtime.GOOS != "windows" {
		t.Errorf("log directory mode %v, want 0700", fi.Mode().Perm())
	}
}

func TestRecordLargerThanMaxSize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctxfit.log")
	w, err := Open(path, Options{MaxSize: 10, Keep: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, rec := range []string{"small\n", strings.Repeat("L", 25) + "\n", "tail\n"} {
		if _, err := w.Write([]byte(rec)); err != nil {
			t.Fatal(err)
		}
	}
	_, contents := files(t, path)
	want := []string{"tail\n", strings.Repeat("L", 25) + "\n", "small\n"}
	if !slices.Equal(contents, want) {
		t.Errorf("contents %q, want %q", contents, want)
	}
}

func TestOpenAppendsAndRotatesAnOversizedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctxfit.log")
	if err := os.WriteFile(path, bytes.Repeat([]byte("o"), 150), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := Open(path, Options{MaxSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("new\n"))
	w.Close()
	names, contents := files(t, path)
	if !slices.Equal(names, []string{"ctxfit.log", "ctxfit.log.1"}) || contents[0] != "new\n" || len(contents[1]) != 150 {
		t.Errorf("files %q with %q", names, contents)
	}

	// A file under the limit is appended to.
	w, err = Open(path, Options{MaxSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("more\n"))
	w.Close()
	if b, _ := os.ReadFile(path); string(b) != "new\nmore\n" {
		t.Errorf("reopened log = %q, want both records", b)
	}
}

func TestRotationFailureKeepsLogging(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctxfit.log")
	// A directory where ctxfit.log.1 belongs makes the rename fail.
	blocker := path + ".1"
	if err := os.MkdirAll(filepath.Join(blocker, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	w, err := Open(path, Options{MaxSize: 100, Keep: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	rec := []byte(strings.Repeat("r", 29) + "\n")
	for range 4 { // 120 bytes: one failed rotation
		if _, err := w.Write(rec); err != nil {
			t.Fatalf("Write while rotation fails: %v", err)
		}
	}
	if b, _ := os.ReadFile(path); len(b) != 120 {
		t.Fatalf("log holds %d bytes, want all 120", len(b))
	}
	// Once the blocker is gone, rotation resumes after another tenth of MaxSize.
	if err := os.RemoveAll(blocker); err != nil {
		t.Fatal(err)
	}
	w.Write(rec)
	_, contents := files(t, path)
	if len(contents) != 2 || contents[0] != string(rec) || len(contents[1]) != 120 {
		t.Errorf("after the blocker went: %d files, current %q", len(contents), contents[0])
	}
}

func TestConcurrentWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctxfit.log")
	const (
		writers = 8
		records = 250
		maxSize = 4096
	)
	// Keep enough files that nothing is dropped, so every record can be found.
	w, err := Open(path, Options{MaxSize: maxSize, Keep: 100})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range records {
				log.Info("model spilled", "writer", g, "record", i, "model", "llama3.1:8b")
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("late\n")); err == nil {
		t.Error("Write after Close succeeded")
	}

	names, contents := files(t, path)
	if len(names) < 5 {
		t.Errorf("only %d files; the test should rotate several times", len(names))
	}
	seen := map[string]int{}
	for i, c := range contents {
		if len(c) > maxSize {
			t.Errorf("%s holds %d bytes, more than MaxSize", names[i], len(c))
		}
		if !strings.HasSuffix(c, "\n") {
			t.Errorf("%s ends in a partial record", names[i])
		}
		for line := range strings.Lines(c) {
			seen[line]++
		}
	}
	for g := range writers {
		for i := range records {
			line := fmt.Sprintf("level=INFO msg=\"model spilled\" writer=%d record=%d model=llama3.1:8b\n", g, i)
			if seen[line] != 1 {
				t.Fatalf("record %d of writer %d appears %d times", i, g, seen[line])
			}
		}
	}
	if len(seen) != writers*records {
		t.Errorf("%d distinct lines, want %d", len(seen), writers*records)
	}
}

func BenchmarkWrite(b *testing.B) {
	w, err := Open(filepath.Join(b.TempDir(), "ctxfit.log"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	rec := []byte(`time=2026-07-01T12:00:00.000+02:00 level=WARN msg="model spilled to CPU" model=llama3.1:8b processor="23%/77% CPU/GPU"` + "\n")
	b.SetBytes(int64(len(rec)))
	for b.Loop() {
		if _, err := w.Write(rec); err != nil {
			b.Fatal(err)
		}
	}
}
