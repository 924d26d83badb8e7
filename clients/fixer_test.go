package clients

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ctxfit/ctxfit/internal/ollamahost"
)

// testHome is a home directory with a .continue folder and a state
// directory, for tests that write real files.
type testHome struct {
	t     *testing.T
	env   Env
	dir   string // ~/.continue
	state string
}

func newTestHome(t *testing.T) *testHome {
	t.Helper()
	home := t.TempDir()
	h := &testHome{t: t, env: Env{Home: home, Getenv: func(string) string { return "" }},
		dir: filepath.Join(home, ".continue"), state: filepath.Join(t.TempDir(), "state")}
	if err := os.MkdirAll(h.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *testHome) fixer() *Fixer {
	return &Fixer{Env: h.env, StateDir: h.state, Derive: testDeriveModel}
}

// put writes testdata/continue/NAME to ~/.continue/config.EXT and returns
// its path.
func (h *testHome) put(name string) string {
	h.t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", "continue", name))
	if err != nil {
		h.t.Fatal(err)
	}
	p := filepath.Join(h.dir, "config"+filepath.Ext(name))
	if err := os.WriteFile(p, src, 0o644); err != nil {
		h.t.Fatal(err)
	}
	return p
}

// golden returns the fixed version of testdata/continue/NAME.
func golden(t *testing.T, name string) []byte {
	t.Helper()
	ext := filepath.Ext(name)
	b, err := os.ReadFile(filepath.Join("testdata", "continue", strings.TrimSuffix(name, ext)+".fixed"+ext))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func read(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFixWritesAndBacksUp(t *testing.T) {
	h := newTestHome(t)
	p := h.put("yaml_basic.yaml")
	orig := read(t, p)
	rep, err := h.fixer().Fix(context.Background(), continueClient{}, testTarget(), false)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Written || len(rep.Changes) != 2 || rep.Path != p {
		t.Fatalf("report = %+v", rep)
	}
	if got := read(t, p); !bytes.Equal(got, golden(t, "yaml_basic.yaml")) {
		t.Errorf("fixed file:\n%s", got)
	}
	if got := read(t, rep.Backup); !bytes.Equal(got, orig) {
		t.Errorf("backup holds %q, want the original", got)
	}
	if !strings.HasPrefix(rep.Backup, filepath.Join(h.state, "backups", "continue")) {
		t.Errorf("backup at %s, want under the state directory", rep.Backup)
	}
	ents, _ := os.ReadDir(h.dir)
	if len(ents) != 1 {
		t.Errorf("~/.continue holds %d entries, want only config.yaml (temporary file left?)", len(ents))
	}
}

func TestFixDryRun(t *testing.T) {
	h := newTestHome(t)
	p := h.put("json_comments.json")
	orig := read(t, p)
	rep, err := h.fixer().Fix(context.Background(), continueClient{}, testTarget(), true)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Written || !bytes.Equal(read(t, p), orig) {
		t.Fatal("a dry run wrote the file")
	}
	if _, err := os.Stat(h.state); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a dry run created the state directory: %v", err)
	}
	diff := strings.ReplaceAll(rep.Diff, p, "~/.continue/config.json")
	goldenPath := filepath.Join("testdata", "dry_run.diff")
	if *update {
		os.WriteFile(goldenPath, []byte(diff), 0o644)
	}
	if want := string(read(t, goldenPath)); diff != want {
		t.Errorf("diff:\n%s\nwant:\n%s", diff, want)
	}
}

func TestFixSymlink(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symlinks need privileges on Windows")
	}
	h := newTestHome(t)
	dotfiles := filepath.Join(h.env.Home, "dotfiles", "continue")
	os.MkdirAll(dotfiles, 0o755)
	target := filepath.Join(dotfiles, "config.json")
	os.WriteFile(target, read(t, filepath.Join("testdata", "continue", "json_tabs.json")), 0o600)
	link := filepath.Join(h.dir, "config.json")
	if err := os.Symlink(filepath.Join("..", "dotfiles", "continue", "config.json"), link); err != nil {
		t.Fatal(err)
	}
	if _, err := h.fixer().Fix(context.Background(), continueClient{}, testTarget(), false); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(link)
	if err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link is no longer a symlink: %v, %v", fi.Mode(), err)
	}
	if got := read(t, target); !bytes.Equal(got, golden(t, "json_tabs.json")) {
		t.Errorf("target:\n%s", got)
	}
	if fi, _ := os.Stat(target); fi.Mode().Perm() != 0o600 {
		t.Errorf("target mode = %v, want 0600", fi.Mode().Perm())
	}
}

func TestFixReadOnlyFile(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows cannot rename over a read-only file")
	}
	h := newTestHome(t)
	p := h.put("json_crlf.json")
	os.Chmod(p, 0o444)
	before := read(t, p)
	_, err := h.fixer().Fix(context.Background(), continueClient{}, testTarget(), false)
	if !errors.Is(err, ErrReadOnly) || !strings.Contains(err.Error(), "--force") || !strings.Contains(err.Error(), p) {
		t.Fatalf("Fix of a read-only config: %v; want ErrReadOnly naming the file and --force", err)
	}
	if got := read(t, p); !bytes.Equal(got, before) {
		t.Fatal("a refused fix changed the file")
	}
	f := h.fixer()
	f.Force = true
	if _, err := f.Fix(context.Background(), continueClient{}, testTarget(), false); err != nil {
		t.Fatal(err)
	}
	if got := read(t, p); !bytes.Equal(got, golden(t, "json_crlf.json")) {
		t.Errorf("fixed file:\n%q", got)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o444 {
		t.Errorf("mode = %v, want 0444 kept", fi.Mode().Perm())
	}
}

func TestFixBothFilesPresent(t *testing.T) {
	h := newTestHome(t)
	jp := h.put("json_comments.json")
	yp := h.put("yaml_missing.yaml")
	jsonBefore := read(t, jp)
	rep, err := h.fixer().Fix(context.Background(), continueClient{}, testTarget(), false)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Path != yp {
		t.Errorf("fixed %s, want config.yaml, which Continue reads when both exist", rep.Path)
	}
	if !bytes.Equal(read(t, jp), jsonBefore) {
		t.Error("config.json changed although config.yaml is the active file")
	}
	if !bytes.Equal(read(t, yp), golden(t, "yaml_missing.yaml")) {
		t.Error("config.yaml not fixed")
	}
}

func TestFixNotInstalled(t *testing.T) {
	home := t.TempDir()
	f := &Fixer{Env: Env{Home: home, Getenv: func(string) string { return "" }}, StateDir: t.TempDir()}
	_, err := f.Fix(context.Background(), continueClient{}, testTarget(), false)
	if !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("Fix = %v, want ErrNotInstalled", err)
	}
	if _, err := os.Stat(filepath.Join(home, ".continue")); !errors.Is(err, os.ErrNotExist) {
		t.Error("Fix created ~/.continue")
	}
}

func TestFixLeavesBrokenFileAlone(t *testing.T) {
	h := newTestHome(t)
	p := filepath.Join(h.dir, "config.json")
	broken := []byte("{\n  \"models\": [\n    {\"provider\": \"ollama\", \"model\": \"llama3.1:8b-instruct-fp16\",,}\n  ]\n}\n")
	os.WriteFile(p, broken, 0o644)
	_, err := h.fixer().Fix(context.Background(), continueClient{}, testTarget(), false)
	var pe *ParseError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "left it alone") {
		t.Fatalf("Fix = %v, want a ParseError saying the file was left alone", err)
	}
	if !bytes.Equal(read(t, p), broken) {
		t.Error("the broken file changed")
	}
}

func TestFixNothingToChange(t *testing.T) {
	h := newTestHome(t)
	h.put("json_fixed_already.json")
	rep, err := h.fixer().Fix(context.Background(), continueClient{}, testTarget(), false)
	if err != nil || rep.Written || len(rep.Changes) != 0 {
		t.Fatalf("Fix = %+v, %v; want nothing written", rep, err)
	}
	if _, err := os.Stat(h.state); !errors.Is(err, os.ErrNotExist) {
		t.Error("a fix that changed nothing made a backup")
	}
}

// A writer that changes the file between ctxfit's read and its rename makes
// the fix start over from the new content: both edits survive.
func TestFixConcurrentWriterStartsOver(t *testing.T) {
	h := newTestHome(t)
	p := h.put("yaml_basic.yaml")
	f := h.fixer()
	calls := 0
	f.beforeRename = func(real string) {
		calls++
		if calls == 1 {
			b := read(t, real)
			os.WriteFile(real, bytes.Replace(b, []byte("temperature: 0.2"), []byte("temperature: 0.7"), 1), 0o644)
		}
	}
	rep, err := f.Fix(context.Background(), continueClient{}, testTarget(), false)
	if err != nil {
		t.Fatal(err)
	}
	if calls != 2 {
		t.Errorf("wrote %d times, want 2 (a start over after the other write)", calls)
	}
	got := read(t, p)
	want := bytes.Replace(golden(t, "yaml_basic.yaml"), []byte("temperature: 0.2"), []byte("temperature: 0.7"), 1)
	if !bytes.Equal(got, want) {
		t.Errorf("file lost an edit:\n%s", got)
	}
	if b := read(t, rep.Backup); !bytes.Contains(b, []byte("temperature: 0.7")) {
		t.Error("the backup is not the version the fix replaced")
	}
}

func TestUndo(t *testing.T) {
	h := newTestHome(t)
	p := h.put("json_several.json")
	orig := read(t, p)
	f := h.fixer()
	ctx := context.Background()
	if _, err := f.Fix(ctx, continueClient{}, testTarget(), false); err != nil {
		t.Fatal(err)
	}
	u, err := f.Undo(ctx, continueClient{})
	if err != nil {
		t.Fatal(err)
	}
	if u.Path != p || !bytes.Equal(read(t, p), orig) {
		t.Errorf("Undo restored %s to %q, want the original", u.Path, read(t, p))
	}
	if _, err := f.Undo(ctx, continueClient{}); !errors.Is(err, ErrNothingToUndo) {
		t.Errorf("second Undo = %v, want ErrNothingToUndo", err)
	}
}

// TestUndoAfterUndo undoes twice. The second undo goes one fix further
// back only when the file still holds exactly what that earlier fix wrote;
// otherwise (the first undo put back a version someone else wrote, or the
// user edited the file since) it says plainly that nothing of ctxfit's is
// left to undo, names the earlier backup, and changes no byte.
func TestUndoAfterUndo(t *testing.T) {
	at := func(n int) Target {
		return Target{Host: ollamahost.Parse(""), Tuned: func(string) (int, bool) { return n, true }}
	}
	edit := func(t *testing.T, p string, from, to string) {
		t.Helper()
		b := read(t, p)
		if !bytes.Contains(b, []byte(from)) {
			t.Fatalf("%s does not hold %q:\n%s", p, from, b)
		}
		os.WriteFile(p, bytes.Replace(b, []byte(from), []byte(to), 1), 0o644)
	}
	tests := []struct {
		name string
		// between runs after the first fix and before the second (nil: no
		// second fix); after runs after the first undo.
		between, after func(t *testing.T, p string)
		// stepBack: the second undo restores the original file; else it
		// reports ErrNothingToUndo with want in its message.
		stepBack bool
		want     []string
	}{
		{name: "one fix", want: []string{"nothing more to undo for Continue", "only fix", "fixed nothing since"}},
		{
			name:     "consecutive fixes",
			between:  func(t *testing.T, p string) {},
			stepBack: true,
		},
		{
			name: "the client rewrote the file between the fixes",
			between: func(t *testing.T, p string) {
				edit(t, p, `"contextLength": 8192`, `"contextLength": 65536`)
				edit(t, p, `"title": "Llama local"`, `"title": "Llama, renamed in the client"`)
			},
			want: []string{"nothing more to undo for Continue", "holds what that undo put back", "not what ctxfit's earlier fix wrote", "copy it back by hand"},
		},
		{
			name: "the user edited the file after the undo",
			between: func(t *testing.T, p string) {
				edit(t, p, `"contextLength": 8192`, `"contextLength": 65536`)
			},
			after: func(t *testing.T, p string) {
				edit(t, p, `"title": "Llama local"`, `"title": "Llama, my edit"`)
			},
			want: []string{"nothing more to undo for Continue", "changed after that undo", "leaves your edits alone"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHome(t)
			p := h.put("json_several.json")
			orig := read(t, p)
			f := h.fixer()
			ctx := context.Background()
			first, err := f.Fix(ctx, continueClient{}, at(8192), false)
			if err != nil {
				t.Fatal(err)
			}
			if tt.between != nil {
				tt.between(t, p)
				time.Sleep(2 * time.Millisecond) // distinct backup names
				if rep, err := f.Fix(ctx, continueClient{}, at(9216), false); err != nil || !rep.Written {
					t.Fatalf("second fix: %+v, %v", rep, err)
				}
			}
			if _, err := f.Undo(ctx, continueClient{}); err != nil {
				t.Fatalf("first undo: %v", err)
			}
			if tt.after != nil {
				tt.after(t, p)
			}
			before := read(t, p)
			u, err := f.Undo(ctx, continueClient{})
			if tt.stepBack {
				if err != nil {
					t.Fatalf("second undo: %v", err)
				}
				if !bytes.Equal(read(t, p), orig) {
					t.Errorf("the second undo did not restore the original:\n%s", read(t, p))
				}
				if u.LaterUndone.IsZero() || !u.LaterUndone.After(u.FixedAt) {
					t.Errorf("the second undo does not say it went past an undone fix: %+v", u)
				}
				return
			}
			if !errors.Is(err, ErrNothingToUndo) {
				t.Fatalf("second undo = %v, %v; want ErrNothingToUndo", u, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("second undo says %q; want it to say %q", err, w)
				}
			}
			if tt.between != nil && !strings.Contains(err.Error(), filepath.Base(first.Backup)) {
				t.Errorf("second undo does not name the earlier backup %s: %v", first.Backup, err)
			}
			if !bytes.Equal(read(t, p), before) {
				t.Errorf("the refused undo changed the file:\n%s", read(t, p))
			}
			// A fix after the undo is undone as any other.
			if rep, err := f.Fix(ctx, continueClient{}, at(10240), false); err != nil || !rep.Written {
				t.Fatalf("fix after the undo: %+v, %v", rep, err)
			}
			if u, err := f.Undo(ctx, continueClient{}); err != nil || !u.LaterUndone.IsZero() || !bytes.Equal(read(t, p), before) {
				t.Errorf("undo of a fix made after an undo: %+v, %v\n%s", u, err, read(t, p))
			}
		})
	}
}

func TestUndoKeepsLaterEdits(t *testing.T) {
	h := newTestHome(t)
	p := h.put("yaml_basic.yaml")
	f := h.fixer()
	ctx := context.Background()
	rep, err := f.Fix(ctx, continueClient{}, testTarget(), false)
	if err != nil {
		t.Fatal(err)
	}
	edited := append(read(t, p), "# my own edit\n"...)
	os.WriteFile(p, edited, 0o644)
	_, err = f.Undo(ctx, continueClient{})
	if err == nil || !strings.Contains(err.Error(), rep.Backup) {
		t.Fatalf("Undo = %v, want a refusal naming the backup", err)
	}
	if !bytes.Equal(read(t, p), edited) {
		t.Error("Undo overwrote an edit made after the fix")
	}
}

func TestBackupsAreBounded(t *testing.T) {
	h := newTestHome(t)
	h.put("json_comments.json")
	f := h.fixer()
	f.Keep = 3
	for i := 0; i < 5; i++ {
		n := 8192 + 1024*i
		tgt := Target{Host: ollamahost.Parse(""), Tuned: func(string) (int, bool) { return n, true }}
		if rep, err := f.Fix(context.Background(), continueClient{}, tgt, false); err != nil || !rep.Written {
			t.Fatalf("fix %d: %+v, %v", i, rep, err)
		}
	}
	ents, err := os.ReadDir(filepath.Join(h.state, "backups", "continue"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 5 { // three backups, index.json and index.lock
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("backup directory holds %v, want 3 backups, index.json and index.lock", names)
	}
	// Undo walks back through the kept versions, newest first.
	for i := 0; i < 3; i++ {
		if _, err := f.Undo(context.Background(), continueClient{}); err != nil {
			t.Fatalf("undo %d: %v", i, err)
		}
	}
	if !bytes.Contains(read(t, filepath.Join(h.dir, "config.json")), []byte(`"contextLength": 9216`)) {
		t.Errorf("after three undos the file is not the second fix's:\n%s", read(t, filepath.Join(h.dir, "config.json")))
	}
}

func TestAllAsks(t *testing.T) {
	h := newTestHome(t)
	h.put("yaml_several.yaml")
	asks := h.fixer().AllAsks(All(), testTarget())
	var over []string
	for _, a := range asks {
		if a.TooLarge() {
			over = append(over, a.String())
		}
	}
	want := "Continue asks llama3.1:8b-instruct-fp16 for 131072 tokens; 24576 stays on the GPU"
	if len(over) != 1 || over[0] != want {
		t.Errorf("too large: %q, want [%q]", over, want)
	}
}

// TestFixKeepsTheUsersSmallerContext: a context the user set below the
// tuned one is kept, by a fix and by a later fix after a larger tune, while
// a value ctxfit wrote itself follows the new tune; and the entry the fix
// keeps does not count as asking for something else.
func TestFixKeepsTheUsersSmallerContext(t *testing.T) {
	h := newTestHome(t)
	p := filepath.Join(h.dir, "config.json")
	src := `{"models": [
  {"title": "big", "provider": "ollama", "model": "llama3.1:8b-instruct-fp16", "contextLength": 131072},
  {"title": "mine", "provider": "ollama", "model": "llama3.1:8b-instruct-fp16", "contextLength": 8192, "completionOptions": {"maxTokens": 2048}}
]}
`
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	f := h.fixer()
	at := func(n int) Target {
		return Target{Host: ollamahost.Parse(""), Tuned: func(string) (int, bool) { return n, true }}
	}
	for _, n := range []int{16384, 32768} {
		rep, err := f.Fix(context.Background(), continueClient{}, at(n), false)
		if err != nil || !rep.Written {
			t.Fatalf("fix at %d: %+v, %v", n, rep, err)
		}
		got := read(t, p)
		if want := fmt.Sprintf(`"title": "big", "provider": "ollama", "model": "llama3.1:8b-instruct-fp16", "contextLength": %d}`, n); !bytes.Contains(got, []byte(want)) {
			t.Errorf("after the fix at %d the big entry is not at it:\n%s", n, got)
		}
		if !bytes.Contains(got, []byte(`"contextLength": 8192, "completionOptions": {"maxTokens": 2048}`)) {
			t.Errorf("the fix at %d replaced the user's smaller context:\n%s", n, got)
		}
		_, asks, err := f.Asks(continueClient{}, at(n))
		if err != nil || len(asks) != 2 || asks[0].Differs() || asks[1].Differs() {
			t.Errorf("after the fix at %d: asks %+v, %v; want two that do not differ", n, asks, err)
		}
	}
}
