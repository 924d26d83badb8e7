package clients

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ctxfit/ctxfit/clients/edit"
	"github.com/ctxfit/ctxfit/internal/ollamahost"
)

// The conformance suite runs every registered client through the same
// checks, in the manner of rclone's fstests, from the fixtures under
// testdata/<name>/ (name in lower case):
//
//   - client.json, the manifest (conformance below): the config's path for
//     the edits, the keys a fix may change, the files per OS, the secrets
//     its fixtures hold;
//   - NAME.EXT: a config as the client's documentation and users write it,
//     with NAME.fixed.EXT (the fixed file), NAME.report (the changes and
//     warnings), NAME.asks (what Asks reports before the fix) and, when it
//     exists, NAME.conf.EXT (passed as the override the manifest names);
//   - broken/*: files the client must refuse as a *ParseError, touching
//     nothing.
//
// A new client gets all of it by adding its fixtures; go test -update
// writes the golden files.

// conformance is a client's manifest, testdata/<name>/client.json.
type conformance struct {
	// Config is the path Edit sees in the golden edits; "{ext}" stands for
	// the input's extension (Continue picks its format by it).
	Config string `json:"config"`
	// Override is where NAME.conf.EXT is, for Edit.
	Override string `json:"override,omitempty"`
	// Keys are the keys a fix may set or add: a decoded fixed file differs
	// from its input only under them (or by list entries appended).
	Keys []string `json:"keys"`
	// Files is the table of where the client's files are, per OS.
	Files []filesCase `json:"files"`
	// Secrets are strings in the fixtures that a dry run's diff, a report
	// and an error must never show.
	Secrets []string `json:"secrets,omitempty"`
}

// filesCase is one row of the Files table. Paths start with ~/ (the home
// directory) or $WORK/ (the working directory), both temporary, and use /.
type filesCase struct {
	Name      string            `json:"name"`
	GOOS      string            `json:"goos"`
	Env       map[string]string `json:"env,omitempty"`
	Make      []string          `json:"make,omitempty"` // files to create first
	Config    string            `json:"config"`         // the expected Files.Config; "" for none
	Watch     []string          `json:"watch,omitempty"`
	Overrides []string          `json:"overrides,omitempty"`
}

// expand turns a table path into a real one under home and work.
func expand(p, home, work string) string {
	switch {
	case p == "":
		return ""
	case strings.HasPrefix(p, "~/"):
		return filepath.Join(home, filepath.FromSlash(p[2:]))
	case strings.HasPrefix(p, "$WORK/"):
		return filepath.Join(work, filepath.FromSlash(p[6:]))
	}
	return filepath.FromSlash(p)
}

func (fc filesCase) env(home, work string) Env {
	vars := map[string]string{}
	for k, v := range fc.Env {
		vars[k] = expand(v, home, work)
	}
	return Env{Home: home, GOOS: fc.GOOS, WorkDir: work, Getenv: func(k string) string { return vars[k] }}
}

// fixtureDir is where a client's fixtures live.
func fixtureDir(c Client) string { return filepath.Join("testdata", strings.ToLower(c.Name())) }

func loadConformance(t testing.TB, c Client) conformance {
	t.Helper()
	var m conformance
	b, err := os.ReadFile(filepath.Join(fixtureDir(c), "client.json"))
	if err != nil {
		t.Fatalf("%s has no conformance manifest: %v", c.Name(), err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s/client.json: %v", fixtureDir(c), err)
	}
	if m.Config == "" || len(m.Keys) == 0 || len(m.Files) == 0 {
		t.Fatalf("%s/client.json lacks config, keys or files", fixtureDir(c))
	}
	return m
}

// goldenInputs returns a client's golden inputs: the files under its
// fixture directory but client.json, the goldens and the overrides.
func goldenInputs(t testing.TB, c Client) []string {
	t.Helper()
	ents, err := os.ReadDir(fixtureDir(c))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		ext := filepath.Ext(n)
		if e.IsDir() || n == "client.json" || ext == ".report" || ext == ".asks" || ext == ".diff" ||
			strings.Contains(n, ".fixed.") || strings.Contains(n, ".conf.") {
			continue
		}
		out = append(out, filepath.Join(fixtureDir(c), n))
	}
	if len(out) == 0 {
		t.Fatalf("no golden inputs under %s", fixtureDir(c))
	}
	return out
}

// input returns the Input of a golden file as the manifest places it.
func (m conformance) input(t testing.TB, file string) Input {
	ext := filepath.Ext(file)
	in := Input{Path: strings.ReplaceAll(m.Config, "{ext}", ext), Src: readFile(t, file)}
	if conf, err := os.ReadFile(strings.TrimSuffix(file, ext) + ".conf" + ext); err == nil {
		in.Overrides = map[string][]byte{m.Override: conf}
	}
	return in
}

// TestConformanceCoversEveryClient keeps the registry and the fixtures in
// step: a client without fixtures would skip the suite silently.
func TestConformanceCoversEveryClient(t *testing.T) {
	dirs := map[string]bool{}
	for _, c := range All() {
		dirs[strings.ToLower(c.Name())] = true
		loadConformance(t, c)
	}
	ents, _ := os.ReadDir("testdata")
	for _, e := range ents {
		if e.IsDir() && e.Name() != "fuzz" && !dirs[e.Name()] {
			t.Errorf("testdata/%s belongs to no registered client", e.Name())
		}
	}
	if len(All()) < 9 {
		t.Errorf("%d clients registered, want the nine ctxfit supports", len(All()))
	}
}

// TestConformance runs the suite over every registered client.
func TestConformance(t *testing.T) {
	for _, c := range All() {
		t.Run(c.Name(), func(t *testing.T) {
			m := loadConformance(t, c)
			t.Run("golden", func(t *testing.T) { conformGolden(t, c, m) })
			t.Run("broken", func(t *testing.T) { conformBroken(t, c, m) })
			t.Run("files", func(t *testing.T) { conformFiles(t, c, m) })
			t.Run("fixer", func(t *testing.T) { conformFixer(t, c, m) })
			t.Run("not a number", func(t *testing.T) { conformNotNumber(t, c, m) })
		})
	}
}

// conformNotNumber checks the golden inputs named not_a_number.*, which
// every client has: one entry's context key holds notanumber. The fix
// leaves that value as it is, with a warning that names the key, says it
// is not a number and what to do, and fixes the other entries; Asks marks
// the entry (Ask.NotNumber) and does not count it as one a fix would change.
func conformNotNumber(t *testing.T, c Client, m conformance) {
	var files []string
	for _, file := range goldenInputs(t, c) {
		if strings.HasPrefix(filepath.Base(file), "not_a_number.") {
			files = append(files, file)
		}
	}
	if len(files) == 0 {
		t.Fatalf("%s has no golden input not_a_number.* whose context key holds notanumber", fixtureDir(c))
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			in := m.input(t, file)
			res, err := c.Edit(in, clientTarget())
			if err != nil {
				t.Fatalf("Edit: %v", err)
			}
			if !bytes.Contains(res.Out, []byte("notanumber")) {
				t.Errorf("the fix overwrote the value it cannot read:\n%s", res.Out)
			}
			warned := slices.ContainsFunc(res.Warnings, func(w string) bool {
				return strings.Contains(w, `"notanumber", not a whole number of tokens`) && strings.Contains(w, "leaves the entry alone") &&
					strings.Contains(w, "write a whole number of tokens there")
			})
			if !warned {
				t.Errorf("no warning says the value is not a number and what to do: %q", res.Warnings)
			}
			asks, err := c.Asks(in, clientTarget())
			if err != nil {
				t.Fatal(err)
			}
			if len(asks) > 1 && len(res.Changes) == 0 {
				t.Error("the other entries were not fixed")
			}
			i := slices.IndexFunc(asks, func(a Ask) bool { return strings.Contains(a.NotNumber, "notanumber") })
			if i < 0 {
				t.Fatalf("Asks does not mark the entry: %+v", asks)
			}
			a := asks[i]
			if a.Differs() || a.TooLarge() || a.Context != 0 {
				t.Errorf("Asks counts the entry as one to fix: %+v", a)
			}
			if txt := a.NotNumberText(); !strings.Contains(txt, in.Path) || !strings.Contains(txt, a.Where) || !strings.Contains(txt, "not a whole number") {
				t.Errorf("NotNumberText names no file, entry or problem: %q", txt)
			}
		})
	}
}

// conformGolden edits every golden input and compares the output, the
// report and what Asks says before the fix with the goldens; each edit must
// also pass checkClientEdit and checkEditScope.
func conformGolden(t *testing.T, c Client, m conformance) {
	changed := 0
	for _, file := range goldenInputs(t, c) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			in := m.input(t, file)
			res, err := c.Edit(in, clientTarget())
			if err != nil {
				t.Fatalf("Edit: %v", err)
			}
			checkClientEdit(t, c, in, res, clientTarget())
			checkEditScope(t, m, in, res)
			if len(res.Changes) > 0 {
				changed++
			}
			base := strings.TrimSuffix(file, filepath.Ext(file))
			compareGolden(t, base+".fixed"+filepath.Ext(file), res.Out)
			compareGolden(t, base+".report", []byte(clientReport(res)))
			asks, err := c.Asks(in, clientTarget())
			if err != nil {
				t.Fatalf("Asks: %v", err)
			}
			compareGolden(t, base+".asks", []byte(asksReport(asks)))
			for _, ch := range res.Changes {
				for _, a := range asks {
					if a.Where == ch.Where && !a.Differs() {
						t.Errorf("%s changed, but Asks said it needs no fix: %+v", ch.Where, a)
					}
				}
			}
		})
	}
	if changed == 0 {
		t.Errorf("no golden input of %s changes anything", c.Name())
	}
}

// asksReport renders what Asks reported, for the .asks golden files.
func asksReport(asks []Ask) string {
	var b strings.Builder
	for _, a := range asks {
		fmt.Fprintf(&b, "%s %s (max tokens %s)", a.Where, a, unsetOr(a.MaxTokens))
		if a.Derived != "" {
			fmt.Fprintf(&b, ", selects %s", a.Derived)
		}
		if a.Differs() {
			b.WriteString(", differs")
		}
		if a.NotNumber != "" {
			fmt.Fprintf(&b, ", not a number: %s", a.NotNumber)
		}
		b.WriteByte('\n')
	}
	if b.Len() == 0 {
		b.WriteString("no entries\n")
	}
	return b.String()
}

// decode reads a config by its extension.
func decode(path string, src []byte) (any, error) {
	body, _ := edit.CutBOM(src)
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
		return edit.DecodeYAML(body)
	case ".toml":
		return edit.DecodeTOML(body)
	}
	return edit.DecodeJSON(body)
}

// checkEditScope checks that the edit changed only values under the
// manifest's keys: the output equals the input outside the edit's spans
// (when it reports them), and decoded, it differs from the input only at
// those keys or by appended list entries.
func checkEditScope(t testing.TB, m conformance, in Input, res Result) {
	t.Helper()
	if len(res.Changes) == 0 {
		return
	}
	if res.spans != nil {
		got, err := edit.Splice(in.Src, res.spans)
		if err != nil || !bytes.Equal(got, res.Out) {
			t.Fatalf("the spans do not make the output (%v): the file changed outside them", err)
		}
		for _, sp := range res.spans {
			if bytes.ContainsAny(in.Src[sp.Start:sp.End], "\n\r") {
				t.Errorf("span %d..%d replaces several lines: %q", sp.Start, sp.End, in.Src[sp.Start:sp.End])
			}
		}
	}
	before, err := decode(in.Path, in.Src)
	if err != nil {
		t.Fatal(err)
	}
	after, err := decode(in.Path, res.Out)
	if err != nil {
		t.Fatalf("the output does not parse: %v\n%s", err, res.Out)
	}
	for _, p := range diffPaths(before, after, nil) {
		if len(p) == 0 && before == nil {
			continue // an empty file became the first entries
		}
		if len(p) == 0 {
			t.Errorf("the fix replaced the whole document")
			continue
		}
		key := ""
		for i := len(p) - 1; i >= 0; i-- {
			if s, ok := p[i].(string); ok {
				key = s
				break
			}
		}
		if _, appended := p[len(p)-1].(int); appended || slices.Contains(m.Keys, key) {
			continue
		}
		t.Errorf("the fix changed %v, which is not one of the client's keys %v", p, m.Keys)
	}
}

// diffPaths returns the paths at which a and b differ: a changed or added
// map key or list element. A longer list's extra elements show as paths
// ending in their index.
func diffPaths(a, b any, at []any) [][]any {
	sub := func(k any) []any { return append(append([]any(nil), at...), k) }
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok {
			break
		}
		var out [][]any
		for k, v := range y {
			if w, ok := x[k]; ok {
				out = append(out, diffPaths(w, v, sub(k))...)
			} else {
				out = append(out, sub(k))
			}
		}
		for k := range x {
			if _, ok := y[k]; !ok {
				out = append(out, sub(k))
			}
		}
		return out
	case []any:
		y, ok := b.([]any)
		if !ok || len(y) < len(x) {
			break
		}
		var out [][]any
		for i := range y {
			if i < len(x) {
				out = append(out, diffPaths(x[i], y[i], sub(i))...)
			} else {
				out = append(out, sub(i))
			}
		}
		return out
	}
	if reflect.DeepEqual(a, b) {
		return nil
	}
	return [][]any{at}
}

// conformBroken checks that every file under broken/ is refused by Edit and
// Asks as a *ParseError whose message shows no secret, and that a fix
// through the Fixer leaves it byte for byte alone.
func conformBroken(t *testing.T, c Client, m conformance) {
	files, _ := filepath.Glob(filepath.Join(fixtureDir(c), "broken", "*"))
	if len(files) == 0 {
		t.Fatalf("no broken files under %s/broken", fixtureDir(c))
	}
	fc := m.Files[0]
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			src := readFile(t, file)
			in := Input{Path: strings.ReplaceAll(m.Config, "{ext}", filepath.Ext(file)), Src: src}
			var pe *ParseError
			if _, err := c.Edit(in, clientTarget()); !errors.As(err, &pe) {
				t.Errorf("Edit = %v, want a ParseError", err)
			} else {
				checkNoSecret(t, m, "the error", err.Error())
			}
			if _, err := c.Asks(in, clientTarget()); !errors.As(err, &pe) {
				t.Errorf("Asks = %v, want a ParseError", err)
			}

			home, work := t.TempDir(), t.TempDir()
			env := fc.env(home, work)
			path := writeConfig(t, c, env, fc, filepath.Ext(file), src)
			f := &Fixer{Env: env, StateDir: t.TempDir(), Derive: testDeriveModel}
			if _, err := f.Fix(context.Background(), c, clientTarget(), false); !errors.As(err, &pe) {
				t.Errorf("Fix = %v, want a ParseError", err)
			}
			if !bytes.Equal(readFile(t, path), src) {
				t.Error("the fix changed a file that does not parse")
			}
		})
	}
}

// writeConfig creates the config that Files finds in env (fc's first file
// with extension ext, else its config) holding src, and returns its path.
func writeConfig(t testing.TB, c Client, env Env, fc filesCase, ext string, src []byte) string {
	t.Helper()
	want := fc.Config
	for _, p := range fc.Make {
		if filepath.Ext(p) == ext && !strings.HasPrefix(p, "$WORK/") {
			want = p
			break
		}
	}
	path := expand(want, env.Home, env.WorkDir)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, src, 0o640); err != nil {
		t.Fatal(err)
	}
	files, err := c.Files(env)
	if err != nil || files.Config != path {
		t.Fatalf("Files = %+v, %v; want the config at %s", files, err, path)
	}
	return path
}

// conformFiles checks the Files table, for each OS.
func conformFiles(t *testing.T, c Client, m conformance) {
	for _, fc := range m.Files {
		t.Run(fc.Name, func(t *testing.T) {
			home, work := t.TempDir(), t.TempDir()
			for _, p := range fc.Make {
				p = expand(p, home, work)
				os.MkdirAll(filepath.Dir(p), 0o755)
				if err := os.WriteFile(p, []byte("{}\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			files, err := c.Files(fc.env(home, work))
			if err != nil {
				t.Fatal(err)
			}
			if want := expand(fc.Config, home, work); files.Config != want {
				t.Errorf("Config = %q, want %q", files.Config, want)
			}
			for _, w := range fc.Watch {
				if w = expand(w, home, work); !slices.Contains(files.Watch, w) {
					t.Errorf("Watch = %q, lacks %q", files.Watch, w)
				}
			}
			if fc.Config != "" && !slices.Contains(files.Watch, files.Config) {
				t.Errorf("Watch = %q, lacks the config", files.Watch)
			}
			var want []string
			for _, o := range fc.Overrides {
				want = append(want, expand(o, home, work))
			}
			if !slices.Equal(files.Overrides, want) {
				t.Errorf("Overrides = %q, want %q", files.Overrides, want)
			}
		})
	}
}

// conformFixer fixes each golden input that changes as the real file
// Files finds, through the Fixer: a dry run's diff shows the change and no
// secret, the fix writes the golden bytes and creates the derived models
// the changes select, keeps the file's mode, a second fix writes nothing,
// and undo restores the original bytes.
func conformFixer(t *testing.T, c Client, m conformance) {
	fc := m.Files[0]
	for _, file := range goldenInputs(t, c) {
		in := m.input(t, file)
		res, err := c.Edit(in, clientTarget())
		if err != nil || len(res.Changes) == 0 || in.Overrides != nil {
			continue // the golden test covers it; overrides need files of their own
		}
		t.Run(filepath.Base(file), func(t *testing.T) {
			home, work := t.TempDir(), t.TempDir()
			env := fc.env(home, work)
			path := writeConfig(t, c, env, fc, filepath.Ext(file), in.Src)
			var derived []string
			f := &Fixer{Env: env, StateDir: t.TempDir(), Derive: func(ctx context.Context, model string, n int) (string, error) {
				name, err := testDeriveModel(ctx, model, n)
				derived = append(derived, name)
				return name, err
			}}
			ctx := context.Background()

			dry, err := f.Fix(ctx, c, clientTarget(), true)
			if err != nil {
				t.Fatal(err)
			}
			if dry.Diff == "" || !bytes.Equal(readFile(t, path), in.Src) || len(derived) != 0 {
				t.Fatalf("dry run: diff %q, file or server changed", dry.Diff)
			}
			if ch := res.Changes[0]; !strings.Contains(dry.Diff, strconv.Itoa(ch.NewContext)) && !strings.Contains(dry.Diff, strconv.Itoa(ch.NewMaxTokens)) && (ch.Derived == "" || !strings.Contains(dry.Diff, ch.Derived)) {
				t.Errorf("the dry run's diff shows neither the new value %d (max tokens %d) nor the derived model:\n%s", ch.NewContext, ch.NewMaxTokens, dry.Diff)
			}
			checkNoSecret(t, m, "the dry run's diff", dry.Diff)
			checkNoSecret(t, m, "the report", clientReport(Result{Changes: dry.Changes, Warnings: dry.Warnings}))

			rep, err := f.Fix(ctx, c, clientTarget(), false)
			if err != nil {
				t.Fatal(err)
			}
			base := strings.TrimSuffix(file, filepath.Ext(file))
			if want := readFile(t, base+".fixed"+filepath.Ext(file)); !rep.Written || !bytes.Equal(readFile(t, path), want) {
				t.Errorf("the fixed file differs from the golden one:\n%s", edit.Diff("want", "got", want, readFile(t, path)))
			}
			var want []string
			for _, ch := range rep.Changes {
				if ch.Derived != "" && ch.Derived != ch.Model {
					want = append(want, ch.Derived)
				}
			}
			if !slices.Equal(derived, want) {
				t.Errorf("the fix created %q on the server, want %q", derived, want)
			}
			if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
				t.Errorf("mode %v after the fix, want 0640", fi.Mode().Perm())
			}
			if again, err := f.Fix(ctx, c, clientTarget(), false); err != nil || again.Written {
				t.Errorf("second fix = %+v, %v; want nothing to do", again, err)
			}
			// undo --dry-run: the diff back to the original, no secret,
			// nothing written.
			fixed := readFile(t, path)
			plan, err := f.UndoDryRun(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			if plan.Diff == "" || plan.Path != path || !bytes.Equal(readFile(t, path), fixed) || !bytes.Equal(plan.After, in.Src) {
				t.Fatalf("undo dry run: %+v; the file changed or the plan does not restore the original", plan)
			}
			for _, ch := range f.UndoChanges(c, plan, clientTarget()) {
				if ch.OldContext == ch.NewContext && ch.OldMaxTokens == ch.NewMaxTokens && ch.Derived == "" {
					t.Errorf("undo dry run lists an entry it does not change: %+v", ch)
				}
			}
			checkNoSecret(t, m, "the undo dry run's diff", plan.Diff)
			if _, err := f.Undo(ctx, c); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(readFile(t, path), in.Src) {
				t.Error("undo did not restore the original bytes")
			}
		})
	}
}

func checkNoSecret(t testing.TB, m conformance, what, s string) {
	t.Helper()
	for _, secret := range m.Secrets {
		if strings.Contains(s, secret) {
			t.Errorf("%s shows the secret %q:\n%s", what, secret, s)
		}
	}
}

// FuzzClients checks, for every client and any file, that Edit either
// refuses it or returns a file that parses, holds the tuned values (a
// second edit changes nothing), and changes only the client's keys. The
// seeds are every client's golden inputs.
func FuzzClients(f *testing.F) {
	cs := All()
	ms := make([]conformance, len(cs))
	for i, c := range cs {
		ms[i] = loadConformance(f, c)
		for _, file := range goldenInputs(f, c) {
			f.Add(c.Name(), filepath.Ext(file), readFile(f, file))
		}
	}
	f.Fuzz(func(t *testing.T, name, ext string, src []byte) {
		i := slices.IndexFunc(cs, func(c Client) bool { return c.Name() == name })
		if i < 0 {
			i = len(name) % len(cs)
		}
		c, m := cs[i], ms[i]
		in := Input{Path: strings.ReplaceAll(m.Config, "{ext}", ext), Src: src}
		orig := bytes.Clone(src)
		res, err := c.Edit(in, clientTarget())
		if !bytes.Equal(src, orig) {
			t.Fatal("Edit modified its input")
		}
		if err != nil {
			if strings.Contains(err.Error(), "internal error") {
				t.Fatalf("%s refused a file it should fix or call broken: %v", c.Name(), err)
			}
			checkNoSecret(t, m, "the error", err.Error())
			return
		}
		checkClientEdit(t, c, in, res, clientTarget())
		checkEditScope(t, m, in, res)
	})
}

// TestFuzzCorpusPresent keeps the committed corpus from going missing: the
// seeds there are inputs that once broke or nearly broke the editors.
func TestFuzzCorpusPresent(t *testing.T) {
	m, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzClients", "*"))
	if len(m) == 0 {
		t.Fatal("testdata/fuzz/FuzzClients is empty")
	}
}

// derivedTag matches the suffix of a derived model's tag, as the ollama
// package names them ("-ctx24k").
var derivedTag = regexp.MustCompile(`(^|-)ctx[0-9]+k?$`)

// testDerive names a derived model as ollama.DerivedName does, without
// the server: the tests' Target.Derive.
func testDerive(model string, n int) (string, error) {
	repo, tag := model, ""
	if i := strings.LastIndex(model, ":"); i > strings.LastIndex(model, "/") {
		repo, tag = model[:i], model[i+1:]
	}
	tag = derivedTag.ReplaceAllString(tag, "")
	label := "ctx" + strconv.Itoa(n)
	if n%1024 == 0 {
		label = "ctx" + strconv.Itoa(n/1024) + "k"
	}
	if tag == "" || strings.EqualFold(tag, "latest") {
		return repo + ":" + label, nil
	}
	return repo + ":" + tag + "-" + label, nil
}

// testDeriveModel stands for the server's side of Fixer.Derive.
func testDeriveModel(_ context.Context, model string, n int) (string, error) {
	return testDerive(model, n)
}

// testBase returns the model a derived name was made from.
func testBase(model string) (string, bool) {
	i := strings.LastIndex(model, ":")
	if i <= strings.LastIndex(model, "/") || !derivedTag.MatchString(model[i+1:]) {
		return "", false
	}
	if tag := derivedTag.ReplaceAllString(model[i+1:], ""); tag != "" {
		return model[:i] + ":" + tag, true
	}
	return model[:i], true
}

// The helpers below serve the per-client tests as well.

// clientTuned are the tuned values those tests fix towards, on the default
// host.
var clientTuned = map[string]int{
	"llama3.1:8b-instruct-fp16": 24576,
	"qwen2.5-coder:1.5b":        32768,
	"mistral-nemo:latest":       16384,
	"tiny:1b":                   6144, // below 2 × Continue's default maxTokens
}

// clientTarget is the Target of the tests: clientTuned on the default
// host, derived names answering with their base's value, as the commands'
// Target does.
func clientTarget() Target {
	tuned := func(model string) (int, bool) {
		for m, n := range clientTuned {
			if sameModelName(m, model) {
				return n, true
			}
		}
		return 0, false
	}
	return Target{
		Host:   ollamahost.Parse(""),
		Derive: testDerive,
		Tuned: func(model string) (int, bool) {
			if n, ok := tuned(model); ok {
				return n, true
			}
			if base, ok := testBase(model); ok {
				return tuned(base)
			}
			return 0, false
		},
	}
}

// clientReport renders what Edit reported, for the .report golden files.
func clientReport(res Result) string {
	var b strings.Builder
	for _, c := range res.Changes {
		fmt.Fprintf(&b, "%s %s: context %s → %d", c.Where, c.Label(), unsetOr(c.OldContext), c.NewContext)
		if c.OldMaxTokens != c.NewMaxTokens {
			fmt.Fprintf(&b, ", max tokens %s → %d", unsetOr(c.OldMaxTokens), c.NewMaxTokens)
		}
		if c.Derived != "" {
			fmt.Fprintf(&b, ", model → %s", c.Derived)
		}
		b.WriteByte('\n')
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", w)
	}
	if b.Len() == 0 {
		b.WriteString("no changes\n")
	}
	return b.String()
}

func unsetOr(n int) string {
	if n == 0 {
		return "unset"
	}
	return fmt.Sprint(n)
}

// editGolden runs c.Edit, as on a file called configName, on every input
// under testdata/DIR (the files matching pattern but not *.fixed.* or
// *.conf.*), and compares the output with NAME.fixed.EXT and the report
// with NAME.report; -update rewrites them. When NAME.conf.EXT exists, it is
// passed as the override overrideName. Each edit must also pass
// checkClientEdit.
func editGolden(t *testing.T, c Client, dir, pattern, configName, overrideName string, tgt Target) {
	t.Helper()
	inputs, err := filepath.Glob(filepath.Join("testdata", dir, pattern))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, in := range inputs {
		if strings.Contains(filepath.Base(in), ".fixed.") || strings.Contains(filepath.Base(in), ".conf.") {
			continue
		}
		n++
		t.Run(filepath.Base(in), func(t *testing.T) {
			src := readFile(t, in)
			input := Input{Path: configName, Src: src}
			ext := filepath.Ext(in)
			if conf, err := os.ReadFile(strings.TrimSuffix(in, ext) + ".conf" + ext); err == nil {
				input.Overrides = map[string][]byte{overrideName: conf}
			}
			res, err := c.Edit(input, tgt)
			if err != nil {
				t.Fatalf("Edit: %v", err)
			}
			checkClientEdit(t, c, input, res, tgt)
			fixedPath := strings.TrimSuffix(in, ext) + ".fixed" + ext
			reportPath := strings.TrimSuffix(in, ext) + ".report"
			compareGolden(t, fixedPath, res.Out)
			compareGolden(t, reportPath, []byte(clientReport(res)))
		})
	}
	if n == 0 {
		t.Fatalf("no inputs under testdata/%s", dir)
	}
}

func compareGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it):\n%s", path, edit.Diff("want", "got", want, got))
	}
}

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkClientEdit checks what must hold for every edit: nothing changes
// when nothing is reported; otherwise a second edit of the output changes
// nothing, and every changed entry now asks for its tuned value (or a
// warning says what overrides it).
func checkClientEdit(t testing.TB, c Client, in Input, res Result, tgt Target) {
	t.Helper()
	if len(res.Changes) == 0 {
		if !bytes.Equal(res.Out, in.Src) {
			t.Fatal("no changes reported, but the output differs from the input")
		}
		return
	}
	again, err := c.Edit(Input{Path: in.Path, Src: res.Out, Overrides: in.Overrides, V1Readers: in.V1Readers, Getenv: in.Getenv}, tgt)
	if err != nil {
		t.Fatalf("second Edit: %v\n%s", err, res.Out)
	}
	if len(again.Changes) != 0 {
		t.Fatalf("second Edit changed %+v again\n%s", again.Changes, res.Out)
	}
	asks, err := c.Asks(Input{Path: in.Path, Src: res.Out, V1Readers: in.V1Readers, Getenv: in.Getenv}, tgt)
	if err != nil {
		t.Fatalf("Asks on the output: %v", err)
	}
	for _, ch := range res.Changes {
		found := false
		for _, a := range asks {
			if a.Where != ch.Where {
				continue
			}
			found = true
			if a.Context != ch.NewContext && len(res.Warnings) == 0 {
				t.Errorf("%s asks for %d after the fix, want %d", a.Where, a.Context, ch.NewContext)
			}
		}
		if !found {
			t.Errorf("Asks on the output has no entry at %s", ch.Where)
		}
	}
}

// TestFindUnsettable finds Kilo Code, Roo Code and VS Code's built-in
// Ollama provider where they live, and nothing in an empty home.
func TestFindUnsettable(t *testing.T) {
	home := t.TempDir()
	env := Env{Home: home, GOOS: "linux", Getenv: func(string) string { return "" }}
	if got := FindUnsettable(env); len(got) != 0 {
		t.Fatalf("empty home: %+v", got)
	}
	for _, p := range []string{
		".vscode/extensions/kilocode.kilo-code-4.2.0",
		".cursor/extensions/rooveterinaryinc.roo-cline-3.1.0",
		".vscode/extensions/ms-python.python-2026.1.0",
	} {
		os.MkdirAll(filepath.Join(home, p), 0o755)
	}
	models := filepath.Join(home, ".config", "Code", "User", "chatLanguageModels.json")
	os.MkdirAll(filepath.Dir(models), 0o755)
	os.WriteFile(models, readFile(t, filepath.Join("testdata", "copilot", "builtin_only.json")), 0o644)
	var got []string
	for _, u := range FindUnsettable(env) {
		got = append(got, u.Name+" at "+strings.TrimPrefix(u.Where, home))
	}
	want := []string{
		"Kilo Code at /.vscode/extensions/kilocode.kilo-code-4.2.0",
		"Roo Code at /.cursor/extensions/rooveterinaryinc.roo-cline-3.1.0",
		"VS Code's Ollama provider at /.config/Code/User/chatLanguageModels.json",
	}
	if !slices.Equal(got, want) {
		t.Errorf("FindUnsettable = %q, want %q", got, want)
	}
}
