package clients

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctxfit/ctxfit/internal/atomicfile"
	"github.com/ctxfit/ctxfit/internal/ollamahost"
)

// TestMain lets the test binary run fixes in child processes, for the
// tests of parallel fixes and of a fix killed midway.
func TestMain(m *testing.M) {
	if spec := os.Getenv("CTXFIT_TEST_FIX_CHILD"); spec != "" {
		os.Exit(fixChild(spec))
	}
	os.Exit(m.Run())
}

// fixChild runs fixes of Continue's config under home with state in state,
// each towards another context, and prints how many it wrote. spec is
// "home|state|count"; a count of 0 means forever.
func fixChild(spec string) int {
	parts := strings.Split(spec, "|")
	n, _ := strconv.Atoi(parts[2])
	f := &Fixer{Env: Env{Home: parts[0], Getenv: func(string) string { return "" }}, StateDir: parts[1], Keep: 100000}
	written := 0
	for i := 0; n == 0 || i < n; i++ {
		ctx := 1024 * (8 + rand.IntN(64))
		t := Target{Host: ollamahost.Parse(""), Tuned: func(string) (int, bool) { return ctx, true }}
		rep, err := f.Fix(context.Background(), continueClient{}, t, false)
		if err != nil && !strings.Contains(err.Error(), "kept changing") {
			fmt.Fprintln(os.Stderr, "fix:", err)
			return 1
		}
		if err == nil && rep.Written {
			written++
		}
	}
	fmt.Println(written)
	return 0
}

// raceConfig is a Continue config.yaml that another writer writes in round
// r, write w; its one entry asks for more than the tuned value.
func raceConfig(r, w int) []byte {
	return fmt.Appendf(nil, "# round %d, write %d\nmodels:\n  - name: Llama\n    provider: ollama\n    model: llama3.1:8b-instruct-fp16\n    defaultCompletionOptions:\n      contextLength: %d\n", r, w, 100000+r)
}

// otherWriters write a file as other programs do: in place, truncating at
// open or later, or by renaming a new version over it.
var otherWriters = []struct {
	name  string
	write func(path string, content []byte, rng *rand.Rand) error
}{
	{"in place", func(path string, content []byte, rng *rand.Rand) error {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC|os.O_CREATE, 0o644)
		if err != nil {
			return err
		}
		f.Write(content[:len(content)/2])
		time.Sleep(time.Duration(rng.IntN(100)) * time.Microsecond)
		f.Write(content[len(content)/2:])
		return f.Close()
	}},
	{"opened early, truncated late", func(path string, content []byte, rng *rand.Rand) error {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			return err
		}
		time.Sleep(time.Duration(rng.IntN(300)) * time.Microsecond)
		f.Truncate(0)
		f.WriteAt(content, 0)
		return f.Close()
	}},
	{"by rename", func(path string, content []byte, rng *rand.Rand) error {
		tmp := filepath.Join(filepath.Dir(path), fmt.Sprintf("other-%d.tmp", rng.Int()))
		if err := os.WriteFile(tmp, content, 0o644); err != nil {
			return err
		}
		return os.Rename(tmp, path)
	}},
}

// TestFixRace runs fixes, and a Keeper's auto-fixes, while another writer
// rewrites Continue's config in place and by rename at random moments, and
// checks after every round that the other writer's last content survives,
// as written or fixed. CTXFIT_RACE_ROUNDS sets the number of rounds.
func TestFixRace(t *testing.T) {
	rounds := 150
	if s := os.Getenv("CTXFIT_RACE_ROUNDS"); s != "" {
		rounds, _ = strconv.Atoi(s)
	}
	h := newTestHome(t)
	p := filepath.Join(h.dir, "config.yaml")
	os.WriteFile(p, raceConfig(-1, 0), 0o644)

	// A Keeper with auto-fix on races too.
	k := &Keeper{Fixer: h.fixer(), Clients: []Client{continueClient{}}, Target: func() (Target, error) { return testTarget(), nil }, Debounce: time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	keeperDone := make(chan error, 1)
	go func() { keeperDone <- k.Run(ctx) }()
	defer func() { cancel(); <-keeperDone }()

	f := h.fixer()
	fixed := func(src []byte) []byte {
		res, err := continueClient{}.Edit(Input{Path: p, Src: src}, testTarget())
		if err != nil {
			t.Fatal(err)
		}
		return res.Out
	}
	var written, startedOver, lost int
	for round := 0; round < rounds; round++ {
		rng := rand.New(rand.NewPCG(uint64(round), 7))
		var last []byte
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for w := 0; w <= rng.IntN(2); w++ {
				time.Sleep(time.Duration(rng.IntN(400)) * time.Microsecond)
				last = raceConfig(round, w)
				if err := otherWriters[rng.IntN(len(otherWriters))].write(p, last, rng); err != nil {
					t.Error(err)
				}
			}
		}()
		calls := 0
		f.beforeRename = func(string) { calls++ }
		rep, err := f.Fix(context.Background(), continueClient{}, testTarget(), false)
		if err != nil && !strings.Contains(err.Error(), "kept changing") && !errors.Is(err, ErrNotRegular) {
			var perr *ParseError
			if !errors.As(err, &perr) { // a half-written file read mid-write does not parse
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if err == nil && rep.Written {
			written++
		}
		if calls > 1 {
			startedOver += calls - 1
		}
		wg.Wait()
		// The Keeper may be in the middle of a swap: allow it to finish.
		var got []byte
		deadline := time.Now().Add(2 * time.Second)
		for {
			got, _ = os.ReadFile(p)
			if bytes.Equal(got, last) || bytes.Equal(got, fixed(last)) || time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Millisecond)
		}
		if !bytes.Equal(got, last) && !bytes.Equal(got, fixed(last)) {
			lost++
			t.Errorf("round %d: the config holds\n%s\nbut the other writer last wrote\n%s", round, got, last)
		}
	}
	t.Logf("%d rounds: %d fixes written, %d start-overs after a concurrent write, %d lost writes", rounds, written, startedOver, lost)
}

func TestFixDeletedMidway(t *testing.T) {
	h := newTestHome(t)
	p := h.put("yaml_basic.yaml")
	f := h.fixer()
	f.beforeRename = func(real string) { os.Remove(real) }
	_, err := f.Fix(context.Background(), continueClient{}, testTarget(), false)
	if !errors.Is(err, ErrDeleted) || !strings.Contains(err.Error(), p) {
		t.Fatalf("Fix of a config deleted midway: %v; want ErrDeleted naming it", err)
	}
	if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
		t.Error("the deleted config was created again")
	}
	assertNoDebris(t, h)
	if idx, _ := f.loadIndex(f.backupDir(continueClient{})); len(idx.Backups) != 0 {
		t.Errorf("the index lists %d backups of a fix that was not written", len(idx.Backups))
	}
}

// assertNoDebris fails when the config directory or the backup directory
// holds a temporary file, or the backup directory a backup that the index
// does not list.
func assertNoDebris(t *testing.T, h *testHome) {
	t.Helper()
	ents, _ := os.ReadDir(h.dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".ctxfit-") {
			t.Errorf("temporary file %s left beside the config", e.Name())
		}
	}
	dir := filepath.Join(h.state, "backups", "continue")
	idx, err := (&Fixer{StateDir: h.state}).loadIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{"index.json": true, "index.lock": true}
	for _, e := range idx.Backups {
		listed[e.File] = true
		if _, err := os.Stat(filepath.Join(dir, e.File)); err != nil {
			t.Errorf("the index lists %s, which is missing", e.File)
		}
	}
	ents, _ = os.ReadDir(dir)
	for _, e := range ents {
		if !listed[e.Name()] && !strings.HasPrefix(e.Name(), "recovered-") {
			t.Errorf("%s in the backup directory is not listed in the index", e.Name())
		}
	}
}

func TestFixHardLinked(t *testing.T) {
	h := newTestHome(t)
	p := h.put("yaml_basic.yaml")
	other := filepath.Join(t.TempDir(), "dotfiles-config.yaml")
	if err := os.Link(p, other); err != nil {
		t.Skipf("no hard links here: %v", err)
	}
	before := read(t, p)
	_, err := h.fixer().Fix(context.Background(), continueClient{}, testTarget(), false)
	if !errors.Is(err, ErrHardLinked) || !strings.Contains(err.Error(), "2 hard links") || !strings.Contains(err.Error(), "ln -sf") {
		t.Fatalf("Fix of a hard-linked config: %v; want ErrHardLinked saying what to do", err)
	}
	if !bytes.Equal(read(t, p), before) || !bytes.Equal(read(t, other), before) {
		t.Error("a refused fix changed a name of the file")
	}
	if fi1, _ := os.Stat(p); !os.SameFile(fi1, mustStat(t, other)) {
		t.Error("the names no longer share the file")
	}

	// Undo refuses too when the config got a second name after the fix.
	os.Remove(other)
	f := h.fixer()
	if _, err := f.Fix(context.Background(), continueClient{}, testTarget(), false); err != nil {
		t.Fatal(err)
	}
	os.Link(p, other)
	fixed := read(t, p)
	if _, err := f.Undo(context.Background(), continueClient{}); !errors.Is(err, ErrHardLinked) {
		t.Fatalf("Undo of a hard-linked config: %v; want ErrHardLinked", err)
	}
	if !bytes.Equal(read(t, p), fixed) || !bytes.Equal(read(t, other), fixed) {
		t.Error("a refused undo changed a name of the file")
	}
}

func mustStat(t *testing.T, p string) os.FileInfo {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

// TestUndoTamperedIndex edits the backup index by hand: undo must neither
// read a file outside the backup directory nor write anywhere but the
// client's config.
func TestUndoTamperedIndex(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(outside, []byte("models: []\n"), 0o600)
	victim := filepath.Join(t.TempDir(), "victim.yaml")
	tests := []struct {
		name   string
		tamper func(e *backupEntry)
		want   string
	}{
		{"backup outside the directory", func(e *backupEntry) { e.File = "../../../" + filepath.Base(outside) }, "edited by hand"},
		{"absolute backup path", func(e *backupEntry) { e.File = outside }, "edited by hand"},
		{"backup that is not ctxfit's", func(e *backupEntry) { e.File = "index.json" }, "edited by hand"},
		{"relative config path", func(e *backupEntry) { e.Path = "../victim.yaml" }, "edited by hand"},
		{"another file as the config", func(e *backupEntry) { e.Path = victim }, "not Continue's config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHome(t)
			p := h.put("yaml_basic.yaml")
			f := h.fixer()
			if _, err := f.Fix(context.Background(), continueClient{}, testTarget(), false); err != nil {
				t.Fatal(err)
			}
			fixedContent := read(t, p)
			os.WriteFile(victim, fixedContent, 0o644) // holds what the fix wrote, as undo requires
			dir := f.backupDir(continueClient{})
			var idx backupIndex
			json.Unmarshal(read(t, filepath.Join(dir, "index.json")), &idx)
			tt.tamper(&idx.Backups[0])
			b, _ := json.Marshal(idx)
			os.WriteFile(filepath.Join(dir, "index.json"), b, 0o600)

			_, err := f.Undo(context.Background(), continueClient{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Undo with a tampered index: %v; want an error saying %q", err, tt.want)
			}
			if !bytes.Equal(read(t, p), fixedContent) || !bytes.Equal(read(t, victim), fixedContent) {
				t.Error("Undo wrote a file although the index was tampered with")
			}
		})
	}
}

// childFixes starts a test binary child that fixes Continue's config under
// h count times (0: forever).
func childFixes(t *testing.T, h *testHome, count int) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "CTXFIT_TEST_FIX_CHILD="+filepath.Dir(h.dir)+"|"+h.state+"|"+strconv.Itoa(count))
	return cmd
}

// TestParallelFixProcesses runs fixes in four processes at once: every fix
// written must be listed in the backup index, with its backup.
func TestParallelFixProcesses(t *testing.T) {
	h := newTestHome(t)
	h.put("yaml_basic.yaml")
	var outs [4]bytes.Buffer
	var cmds []*exec.Cmd
	for i := range outs {
		cmd := childFixes(t, h, 15)
		cmd.Stdout, cmd.Stderr = &outs[i], &outs[i]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	written := 0
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child %d: %v: %s", i, err, outs[i].String())
		}
		n, err := strconv.Atoi(strings.TrimSpace(outs[i].String()))
		if err != nil {
			t.Fatalf("child %d said %q", i, outs[i].String())
		}
		written += n
	}
	f := h.fixer()
	idx, err := f.loadIndex(f.backupDir(continueClient{}))
	if err != nil {
		t.Fatal(err)
	}
	if len(idx.Backups) != written || written == 0 {
		t.Errorf("the index lists %d backups; the processes wrote %d fixes", len(idx.Backups), written)
	}
	assertNoDebris(t, h)
	t.Logf("4 processes wrote %d fixes, all listed", written)
}

// TestKilledFixLeavesNoDebris kills a process in the middle of its fixes,
// again and again; after each kill, Clean (as the next start does) leaves no
// temporary file and no unlisted backup, and the config is whole.
func TestKilledFixLeavesNoDebris(t *testing.T) {
	h := newTestHome(t)
	p := h.put("yaml_basic.yaml")
	f := h.fixer()
	removed := 0
	for round := 0; round < 20; round++ {
		cmd := childFixes(t, h, 0)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(20+rand.IntN(40)) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		r, err := f.Clean(context.Background(), []Client{continueClient{}})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range r {
			if c.Kept != "" {
				t.Errorf("round %d: Clean kept %s as another program's edit; nobody else wrote the config", round, c.Path)
			}
		}
		removed += len(r)
		assertNoDebris(t, h)
		if _, err := (continueClient{}).Asks(Input{Path: p, Src: read(t, p)}, testTarget()); err != nil {
			t.Fatalf("round %d: the config is damaged: %v", round, err)
		}
	}
	t.Logf("20 kills; Clean removed %d leftovers", removed)
}

// TestClean checks that Clean removes only ctxfit's own leftovers, and
// keeps a leftover that may be another program's edit.
func TestClean(t *testing.T) {
	h := newTestHome(t)
	p := h.put("yaml_basic.yaml")
	before := read(t, p)
	f := h.fixer()
	if _, err := f.Fix(context.Background(), continueClient{}, testTarget(), false); err != nil {
		t.Fatal(err)
	}
	dir := f.backupDir(continueClient{})
	ours := map[string][]byte{
		filepath.Join(h.dir, ".config.yaml.ctxfit-1.swap"):           read(t, p), // the fix's new version
		filepath.Join(h.dir, ".config.yaml.ctxfit-2.swap"):           before,     // the version it replaced, swapped out
		filepath.Join(h.dir, ".config.yaml.ctxfit-4.tmp"):            []byte("models: [] # half a fix"),
		filepath.Join(h.dir, ".config.json.ctxfit-9.tmp"):            []byte("{}"),
		filepath.Join(dir, ".index.json.ctxfit-55.tmp"):              []byte("x"),
		filepath.Join(dir, "20250101T000000.000000000Z-config.yaml"): []byte("x"),
	}
	theirs := filepath.Join(h.dir, ".config.yaml.ctxfit-3.swap") // swapped out when a fix was killed
	keep := []string{
		filepath.Join(h.dir, "config.yaml.bak"),
		filepath.Join(h.dir, ".other.ctxfit-1.tmp"),
		filepath.Join(dir, "notes.txt"),
	}
	for p, b := range ours {
		os.WriteFile(p, b, 0o600)
	}
	os.WriteFile(theirs, []byte("models: [] # another program's edit\n"), 0o600)
	for _, p := range keep {
		os.WriteFile(p, []byte("x"), 0o600)
	}
	cleaned, err := f.Clean(context.Background(), []Client{continueClient{}})
	if err != nil {
		t.Fatal(err)
	}
	for p := range ours {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("Clean left %s", p)
		}
	}
	for _, p := range keep {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("Clean removed %s, which is not ctxfit's", p)
		}
	}
	var kept []Cleaned
	for _, c := range cleaned {
		if c.Kept != "" {
			kept = append(kept, c)
		}
	}
	if len(cleaned) != len(ours)+1 || len(kept) != 1 || kept[0].Path != theirs {
		t.Fatalf("Clean = %+v; want %d removed and %s kept", cleaned, len(ours), theirs)
	}
	if b := read(t, kept[0].Kept); !strings.Contains(string(b), "another program's edit") || filepath.Dir(kept[0].Kept) != dir {
		t.Errorf("the kept version %s holds %q", kept[0].Kept, b)
	}
	if _, err := os.Stat(theirs); err == nil {
		t.Error("the kept version is still beside the config")
	}
	// A second Clean keeps what the first one kept.
	if again, _ := f.Clean(context.Background(), []Client{continueClient{}}); len(again) != 0 {
		t.Errorf("second Clean: %+v", again)
	}
}

var _ = atomicfile.ErrChanged

// TestKilledFixRacingAWriter kills fixing processes while another program
// writes the config: after Clean, that program's last write is in the
// config (as written or fixed) or kept by Clean in the backup directory;
// never gone.
func TestKilledFixRacingAWriter(t *testing.T) {
	h := newTestHome(t)
	p := filepath.Join(h.dir, "config.yaml")
	os.WriteFile(p, raceConfig(-1, 0), 0o644)
	f := h.fixer()
	dir := f.backupDir(continueClient{})
	kept := 0
	rounds := 30
	for round := 0; round < rounds; round++ {
		rng := rand.New(rand.NewPCG(uint64(round), 9))
		cmd := childFixes(t, h, 0)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// The writer writes until the kill: its last write races the
		// killed fix.
		var last []byte
		n := 5 + rng.IntN(20)
		for w := 0; w < n; w++ {
			time.Sleep(time.Duration(rng.IntN(2000)) * time.Microsecond)
			last = raceConfig(round, w)
			otherWriters[rng.IntN(len(otherWriters))].write(p, last, rng)
		}
		time.Sleep(time.Duration(rng.IntN(300)) * time.Microsecond)
		cmd.Process.Kill()
		cmd.Wait()
		cleaned, err := f.Clean(context.Background(), []Client{continueClient{}})
		if err != nil {
			t.Fatal(err)
		}
		assertNoDebris(t, h)
		got := read(t, p)
		if bytes.Contains(got, []byte(fmt.Sprintf("# round %d, write %d\n", round, n-1))) {
			continue
		}
		found := false
		for _, c := range cleaned {
			if c.Kept != "" && bytes.Equal(read(t, c.Kept), last) {
				found, kept = true, kept+1
			}
		}
		if !found {
			t.Errorf("round %d: the other writer's last write is neither in the config (%q) nor kept by Clean (%+v)", round, got, cleaned)
		}
	}
	ents, _ := os.ReadDir(dir)
	t.Logf("%d kills racing a writer: its last write kept by Clean %d times, in the config otherwise (%d files in the backup directory)", rounds, kept, len(ents))
}
