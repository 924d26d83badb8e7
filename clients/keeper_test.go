package clients

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ctxfit/ctxfit/internal/ollamahost"
)

// These tests use real files and real fsnotify. A change must be fixed
// within a second of settling (issue 5); the tests allow a few seconds on a
// loaded machine, and count the writes ctxfit makes.

const settle = 5 * time.Second

// keeperRun is a Keeper running over a testHome.
type keeperRun struct {
	t       *testing.T
	h       *testHome
	k       *Keeper
	writes  atomic.Int32
	notices chan Notice
	auto    atomic.Bool
	mu      sync.Mutex
	target  Target
	stop    func()
}

func startKeeper(t *testing.T, h *testHome, auto bool) *keeperRun {
	t.Helper()
	r := &keeperRun{t: t, h: h, notices: make(chan Notice, 100), target: testTarget()}
	r.auto.Store(auto)
	f := h.fixer()
	f.beforeRename = func(string) { r.writes.Add(1) }
	r.k = &Keeper{
		Fixer:   f,
		Clients: []Client{continueClient{}},
		Target: func() (Target, error) {
			r.mu.Lock()
			defer r.mu.Unlock()
			return r.target, nil
		},
		AutoFix:  r.auto.Load,
		Notify:   func(n Notice) { r.notices <- n },
		Debounce: 50 * time.Millisecond,
	}
	ready := make(chan struct{})
	r.k.ready = func() { close(ready) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.k.Run(ctx) }()
	r.stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(r.stop)
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Run ended early: %v", err)
	case <-time.After(settle):
		t.Fatal("Keeper did not start watching")
	}
	return r
}

// wait returns the next notice of kind, failing on a failure notice or
// when none comes in time.
func (r *keeperRun) wait(kind NoticeKind) Notice {
	r.t.Helper()
	deadline := time.After(settle)
	for {
		select {
		case n := <-r.notices:
			if n.Kind == kind {
				return n
			}
			if n.Kind == NoticeFailed {
				r.t.Fatalf("unexpected failure: %s", n)
			}
		case <-deadline:
			r.t.Fatalf("no %s notice within %v", kind, settle)
		}
	}
}

// quiet checks that no write and no notice happens for a while.
func (r *keeperRun) quiet(writes int32) {
	r.t.Helper()
	select {
	case n := <-r.notices:
		r.t.Errorf("unexpected notice: %s", n)
	case <-time.After(400 * time.Millisecond):
	}
	if got := r.writes.Load(); got != writes {
		r.t.Errorf("ctxfit wrote %d times, want %d", got, writes)
	}
}

func testdataFile(t *testing.T, name string) []byte {
	t.Helper()
	return read(t, filepath.Join("testdata", "continue", name))
}

func TestKeeperFixesAnExternalEditOnce(t *testing.T) {
	h := newTestHome(t)
	p := filepath.Join(h.dir, "config.yaml")
	os.WriteFile(p, golden(t, "yaml_basic.yaml"), 0o644) // already right
	r := startKeeper(t, h, true)
	r.quiet(0)

	os.WriteFile(p, testdataFile(t, "yaml_basic.yaml"), 0o644) // contextLength: 131072 is back
	n := r.wait(NoticeFixed)
	if n.Path != p || len(n.Report.Changes) != 2 {
		t.Errorf("notice %s", n)
	}
	if !bytes.Equal(read(t, p), golden(t, "yaml_basic.yaml")) {
		t.Errorf("file not fixed:\n%s", read(t, p))
	}
	r.quiet(1) // its own write makes no second write
}

func TestKeeperFixesAtStart(t *testing.T) {
	h := newTestHome(t)
	p := h.put("json_comments.json")
	r := startKeeper(t, h, true)
	r.wait(NoticeFixed)
	if !bytes.Equal(read(t, p), golden(t, "json_comments.json")) {
		t.Errorf("file not fixed:\n%s", read(t, p))
	}
	r.quiet(1)
}

func TestKeeperEditorRenameOver(t *testing.T) {
	h := newTestHome(t)
	p := filepath.Join(h.dir, "config.json")
	os.WriteFile(p, golden(t, "json_tabs.json"), 0o644)
	r := startKeeper(t, h, true)

	for i := 0; i < 2; i++ { // the watch must survive the first replace
		tmp := filepath.Join(h.dir, ".config.json.swp")
		os.WriteFile(tmp, testdataFile(t, "json_tabs.json"), 0o644)
		if err := os.Rename(tmp, p); err != nil {
			t.Fatal(err)
		}
		r.wait(NoticeFixed)
		if !bytes.Equal(read(t, p), golden(t, "json_tabs.json")) {
			t.Fatalf("round %d: file not fixed", i)
		}
	}
	r.quiet(2)
}

func TestKeeperDeleteAndRecreate(t *testing.T) {
	h := newTestHome(t)
	p := filepath.Join(h.dir, "config.yaml")
	os.WriteFile(p, golden(t, "yaml_crlf.yaml"), 0o644)
	r := startKeeper(t, h, true)

	os.Remove(p)
	r.quiet(0)
	os.WriteFile(p, testdataFile(t, "yaml_crlf.yaml"), 0o644)
	r.wait(NoticeFixed)
	if !bytes.Equal(read(t, p), golden(t, "yaml_crlf.yaml")) {
		t.Errorf("file not fixed:\n%q", read(t, p))
	}
	r.quiet(1)
}

func TestKeeperSymlinkedConfig(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symlinks need privileges on Windows")
	}
	h := newTestHome(t)
	dotfiles := filepath.Join(h.env.Home, "dotfiles")
	os.MkdirAll(dotfiles, 0o755)
	target := filepath.Join(dotfiles, "continue.yaml")
	os.WriteFile(target, golden(t, "yaml_bom.yaml"), 0o644)
	link := filepath.Join(h.dir, "config.yaml")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	r := startKeeper(t, h, true)

	// Written through the target's own path: only a watch on the target's
	// directory sees it.
	os.WriteFile(target, testdataFile(t, "yaml_bom.yaml"), 0o644)
	r.wait(NoticeFixed)
	if !bytes.Equal(read(t, target), golden(t, "yaml_bom.yaml")) {
		t.Errorf("target not fixed")
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("config.yaml is no longer a symlink")
	}
	r.quiet(1)
}

func TestKeeperDirectoryCreatedLater(t *testing.T) {
	home := t.TempDir()
	h := &testHome{t: t, env: Env{Home: home, Getenv: func(string) string { return "" }},
		dir: filepath.Join(home, ".continue"), state: filepath.Join(t.TempDir(), "state")}
	r := startKeeper(t, h, true)

	// Continue installed after ctxfit started.
	if err := os.Mkdir(h.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := h.put("json_trailing_commas.json")
	r.wait(NoticeFixed)
	if !bytes.Equal(read(t, p), golden(t, "json_trailing_commas.json")) {
		t.Errorf("file not fixed:\n%s", read(t, p))
	}
	r.quiet(1)
}

// Another program that keeps putting its value back ends in a back-off, not
// a loop.
func TestKeeperBacksOffFromAFight(t *testing.T) {
	h := newTestHome(t)
	p := filepath.Join(h.dir, "config.yaml")
	bad := testdataFile(t, "yaml_basic.yaml")
	os.WriteFile(p, golden(t, "yaml_basic.yaml"), 0o644)
	r := startKeeper(t, h, true)

	stop := make(chan struct{})
	fought := make(chan struct{})
	go func() { // the other writer: puts 131072 back whenever it is gone
		defer close(fought)
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			if b, err := os.ReadFile(p); err == nil && !bytes.Equal(b, bad) {
				os.WriteFile(p, bad, 0o644)
			}
		}
	}()
	n := r.wait(NoticeBackedOff)
	close(stop)
	<-fought
	if got := r.writes.Load(); got != maxReverts+1 {
		t.Errorf("ctxfit wrote %d times before backing off, want %d", got, maxReverts+1)
	}
	if n.Until.Before(time.Now().Add(time.Minute)) {
		t.Errorf("backs off until %v, want about 10 minutes", n.Until)
	}
	writes := r.writes.Load()
	os.WriteFile(p, append(bad, "# again\n"...), 0o644)
	r.quiet(writes) // left alone while backing off

	// The user's "Fix Continue now" still works, and ends the back-off.
	rep, err := r.k.Fix(context.Background(), continueClient{})
	if err != nil || !rep.Written {
		t.Fatalf("Fix = %+v, %v", rep, err)
	}
	r.wait(NoticeFixed)
}

func TestKeeperWarnsWithoutAutoFix(t *testing.T) {
	h := newTestHome(t)
	p := filepath.Join(h.dir, "config.json")
	os.WriteFile(p, golden(t, "json_several.json"), 0o644)
	r := startKeeper(t, h, false)
	r.quiet(0)

	os.WriteFile(p, testdataFile(t, "json_several.json"), 0o644)
	n := r.wait(NoticeTooLarge)
	want := "Continue asks llama3.1:8b-instruct-fp16 for 131072 tokens; 24576 stays on the GPU"
	if n.String() != want {
		t.Errorf("warning %q, want %q", n, want)
	}
	// The same content again (a touch) says nothing new.
	os.WriteFile(p, testdataFile(t, "json_several.json"), 0o644)
	r.quiet(0)

	if _, err := r.k.Fix(context.Background(), continueClient{}); err != nil {
		t.Fatal(err)
	}
	r.wait(NoticeFixed)
	if !bytes.Equal(read(t, p), golden(t, "json_several.json")) {
		t.Error("Fix did not fix the file")
	}
	r.quiet(1)
}

// A new tune changes the target: Check applies it, and a file that is right
// for the new target is not written again.
func TestKeeperCheckAfterTune(t *testing.T) {
	h := newTestHome(t)
	p := filepath.Join(h.dir, "config.yaml")
	os.WriteFile(p, golden(t, "yaml_crlf.yaml"), 0o644)
	r := startKeeper(t, h, true)
	r.quiet(0)

	r.mu.Lock()
	r.target = Target{Host: ollamahost.Parse("localhost"), Tuned: func(string) (int, bool) { return 20480, true }}
	r.mu.Unlock()
	r.k.Check(context.Background())
	r.wait(NoticeFixed)
	if !bytes.Contains(read(t, p), []byte("contextLength: 20480\r\n")) || bytes.Contains(read(t, p), []byte("maxTokens")) {
		t.Errorf("file after the new tune:\n%q", read(t, p))
	}
	r.k.Check(context.Background())
	r.quiet(1)
}

// A config saved broken is reported once and left exactly as it is.
func TestKeeperLeavesABrokenFileAlone(t *testing.T) {
	h := newTestHome(t)
	p := filepath.Join(h.dir, "config.json")
	os.WriteFile(p, golden(t, "json_comments.json"), 0o644)
	r := startKeeper(t, h, true)

	broken := []byte("{\n  \"models\": [\n    { \"provider\": \"ollama\", \"model\": \"llama3.1:8b-instruct-fp16\", \"contextLength\": 131072\n")
	os.WriteFile(p, broken, 0o644)
	var n Notice
	select {
	case n = <-r.notices:
	case <-time.After(settle):
		t.Fatal("no notice about the broken file")
	}
	if n.Kind != NoticeFailed || !strings.Contains(n.String(), "does not parse") {
		t.Fatalf("notice %s, want a failure saying the file does not parse", n)
	}
	os.WriteFile(p, broken, 0o644) // saved again, unchanged
	r.quiet(0)
	if !bytes.Equal(read(t, p), broken) {
		t.Error("the broken file changed")
	}
}

// An undo sticks: auto-fix leaves the restored file alone, even on a
// recheck after a tune, until the user changes it; then it is kept fixed
// again.
func TestKeeperUndoHoldsUntilTheUserEdits(t *testing.T) {
	h := newTestHome(t)
	p := filepath.Join(h.dir, "config.yaml")
	os.WriteFile(p, testdataFile(t, "yaml_basic.yaml"), 0o644) // asks 131072
	r := startKeeper(t, h, true)
	r.wait(NoticeFixed)
	var held []bool
	r.k.mu.Lock()
	r.k.Checked = func(c Client, h bool) { held = append(held, h) }
	r.k.mu.Unlock()

	if _, err := r.k.Undo(context.Background(), continueClient{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(read(t, p), testdataFile(t, "yaml_basic.yaml")) {
		t.Fatalf("undo did not restore the file:\n%s", read(t, p))
	}
	r.quiet(2)                      // the fix and the undo; the undo's own change is not fixed
	r.k.Check(context.Background()) // a tune or auto-fix switched on
	r.quiet(2)                      // still held
	r.k.mu.Lock()
	if len(held) == 0 || !held[len(held)-1] {
		t.Errorf("Checked reported held %v, want true last", held)
	}
	r.k.mu.Unlock()

	// The user edits the file: the hold ends and the file is kept fixed.
	os.WriteFile(p, append(testdataFile(t, "yaml_basic.yaml"), "# edited\n"...), 0o644)
	r.wait(NoticeFixed)
	if !strings.Contains(string(read(t, p)), "# edited") || bytes.Contains(read(t, p), []byte("131072")) {
		t.Errorf("after the edit the file was not fixed (or the edit was lost):\n%s", read(t, p))
	}
}

// A context value that is not a number is said once, naming the file, the
// entry and what to do, whether or not auto-fix is on; auto-fix leaves it
// as it is, fixes the other entries, and takes it up once the user writes a
// number there.
func TestKeeperSaysNotANumber(t *testing.T) {
	for _, auto := range []bool{true, false} {
		t.Run(map[bool]string{true: "auto-fix on", false: "auto-fix off"}[auto], func(t *testing.T) {
			h := newTestHome(t)
			p := h.put("not_a_number.yaml")
			r := startKeeper(t, h, auto)
			n := r.wait(NoticeNotNumber)
			text := n.String()
			for _, want := range []string{"Continue: models[0] Llama (llama3.1:8b-instruct-fp16) in " + p, `defaultCompletionOptions.contextLength is the string "notanumber", not a whole number of tokens`, "24576 stays on the GPU"} {
				if !strings.Contains(text, want) {
					t.Errorf("notice %q does not say %q", text, want)
				}
			}
			writes := int32(0)
			if auto {
				if fixed := r.wait(NoticeFixed); len(fixed.Report.Changes) != 1 || fixed.Report.Changes[0].Model != "qwen2.5-coder:1.5b" {
					t.Errorf("auto-fix changed %+v, want Qwen's entry alone", fixed.Report.Changes)
				}
				writes = 1
			} else if over := r.wait(NoticeTooLarge); len(over.Asks) != 1 || over.Asks[0].Model != "qwen2.5-coder:1.5b" {
				t.Errorf("too large: %s; want Qwen's entry alone", over)
			}
			if !bytes.Contains(read(t, p), []byte("contextLength: notanumber")) {
				t.Fatalf("the value was overwritten:\n%s", read(t, p))
			}
			r.quiet(writes) // said once

			os.WriteFile(p, bytes.Replace(read(t, p), []byte("contextLength: notanumber"), []byte("contextLength: 65536"), 1), 0o644)
			if auto {
				r.wait(NoticeFixed)
				if !bytes.Contains(read(t, p), []byte("contextLength: 24576")) {
					t.Errorf("a number written there is not fixed:\n%s", read(t, p))
				}
			} else {
				r.wait(NoticeTooLarge)
			}
		})
	}
}
