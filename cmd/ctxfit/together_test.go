package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ollama/ollama/api"
	"github.com/tailscale/hujson"

	"github.com/ctxfit/ctxfit/clients"
	"github.com/ctxfit/ctxfit/internal/gpusim"
	"github.com/ctxfit/ctxfit/ollama"
	"github.com/ctxfit/ctxfit/state"
)

// continueTogether is a Continue config.json with a chat model and an
// autocomplete model on the Ollama at base.
func continueTogether(base string, chatCtx int) string {
	return `{
  // chat and tab autocomplete, both on the local Ollama
  "models": [
    {"title": "Chat", "provider": "ollama", "model": "` + togetherChatModel + `", "apiBase": "` + base + `", "contextLength": ` + strconv.Itoa(chatCtx) + `},
  ],
  "tabAutocompleteModel": {"title": "Autocomplete", "provider": "ollama", "model": "` + togetherACModel + `", "apiBase": "` + base + `", "contextLength": 4096},
}
`
}

// continueContexts reads the contextLength of the chat model and the
// autocomplete model from a Continue config.json, as Continue does.
func continueContexts(t *testing.T, path string) (chat, ac int) {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v, err := hujson.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	v.Standardize()
	var cfg struct {
		Models []struct {
			ContextLength int `json:"contextLength"`
		} `json:"models"`
		Tab struct {
			ContextLength int `json:"contextLength"`
		} `json:"tabAutocompleteModel"`
	}
	if err := json.Unmarshal(v.Pack(), &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg.Models[0].ContextLength, cfg.Tab.ContextLength
}

// alternate plays a user who alternates chat and autocomplete n times, each
// request with the context Continue sends, and returns how many loads the
// server made and how many times /api/ps, read after each request, did not
// list both models 100% on the GPU.
func alternate(t *testing.T, sim *gpusim.Server, client *api.Client, chatCtx, acCtx, n int) (loads, apart int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	before := sim.Loads()
	stream := false
	for i := 0; i < n; i++ {
		chat := &api.ChatRequest{Model: togetherChatModel, Stream: &stream,
			Messages: []api.Message{{Role: "user", Content: "Explain this function."}},
			Options:  map[string]any{"num_ctx": chatCtx, "num_predict": 16}}
		if err := client.Chat(ctx, chat, func(api.ChatResponse) error { return nil }); err != nil {
			t.Fatalf("chat %d: %v", i, err)
		}
		apart += notTogether(t, ctx, client)
		ac := &api.GenerateRequest{Model: togetherACModel, Stream: &stream, Prompt: "func main() {",
			Options: map[string]any{"num_ctx": acCtx, "num_predict": 8}}
		if err := client.Generate(ctx, ac, func(api.GenerateResponse) error { return nil }); err != nil {
			t.Fatalf("autocomplete %d: %v", i, err)
		}
		apart += notTogether(t, ctx, client)
	}
	return sim.Loads() - before, apart
}

// notTogether returns 1 unless /api/ps lists both models whole on the GPU.
func notTogether(t *testing.T, ctx context.Context, client *api.Client) int {
	t.Helper()
	ps, err := client.ListRunning(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, m := range ps.Models {
		if (ollama.SameModel(m.Name, togetherChatModel) || ollama.SameModel(m.Name, togetherACModel)) && m.Size == m.SizeVRAM {
			found++
		}
	}
	if found == 2 {
		return 0
	}
	return 1
}

// TestChatAndAutocompleteE2E is issue 16's acceptance test: a Continue
// config with a chat model and an autocomplete model on a simulated 24 GB
// GPU ends, after one tune and one fix, with both models resident at 100%
// GPU while the user alternates them: no reloads over 20 alternations.
func TestChatAndAutocompleteE2E(t *testing.T) {
	gpu, _ := gpusim.LookupGPU("24GB")
	sim := gpusim.New(gpusim.Config{GPU: gpu})
	base, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	x := newE2E(t, base)
	config := filepath.Join(x.vars["CONTINUE_GLOBAL_DIR"], "config.json")
	if err := os.WriteFile(config, []byte(continueTogether(base, 131072)), 0o644); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	client := ollama.NewClient(u)

	// Before: the chat model asks for its whole trained context and every
	// switch reloads one of the two.
	const n = 20
	chatCtx, acCtx := continueContexts(t, config)
	loadsBefore, apartBefore := alternate(t, sim, client, chatCtx, acCtx, n)
	t.Logf("before: %d alternations at num_ctx %d and %d: %d loads, %d of %d /api/ps reads without both on the GPU",
		n, chatCtx, acCtx, loadsBefore, apartBefore, 2*n)
	if loadsBefore < 2*n-1 {
		t.Errorf("before the fix %d loads in %d alternations: the scene does not thrash", loadsBefore, n)
	}

	// One tune, one fix.
	simLoads := sim.Loads()
	code, out, errOut := x.ctxfit("tune", togetherChatModel, "--with", togetherACModel+"=4096", "--json")
	if code != 0 {
		t.Fatalf("tune --with: exit %d\n%s%s", code, out, errOut)
	}
	var res tuneJSON
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("tune --json: %v\n%s", err, out)
	}
	if sim.Loads()-simLoads > res.Loads || len(res.Companions) != 1 || res.CompanionLoads == 0 {
		t.Errorf("tune reports %d loads (%d of the companion), companions %+v; the server saw %d", res.Loads, res.CompanionLoads, res.Companions, sim.Loads()-simLoads)
	}
	data, err := x.store().Load()
	if err != nil {
		t.Fatal(err)
	}
	joint, ok := data.TunedSet(data.Tuned[0].Host, []string{togetherChatModel, togetherACModel})
	if !ok || joint.Context != res.Context {
		t.Errorf("stored %+v, %v; the tune found %d", joint, ok, res.Context)
	}
	if code, out, errOut = x.ctxfit("fix", "continue"); code != 0 {
		t.Fatalf("fix continue: exit %d\n%s%s", code, out, errOut)
	}
	if strings.Contains(errOut, "measured with the model alone") {
		t.Errorf("fix warns about a set that was tuned together:\n%s", errOut)
	}
	chatCtx, acCtx = continueContexts(t, config)
	if chatCtx != joint.Context || acCtx != 4096 {
		t.Errorf("after the fix Continue asks for %d and %d, want %d and 4096", chatCtx, acCtx, joint.Context)
	}

	// After: both stay loaded, whole on the GPU, however the user switches.
	loadsAfter, apartAfter := alternate(t, sim, client, chatCtx, acCtx, n)
	t.Logf("after one tune (%d loads, %d of them of the companion) and one fix: %d alternations at num_ctx %d and %d: %d loads, %d of %d /api/ps reads without both on the GPU",
		res.Loads, res.CompanionLoads, n, chatCtx, acCtx, loadsAfter, apartAfter, 2*n)
	if loadsAfter != 0 || apartAfter != 0 {
		t.Errorf("after the fix: %d reloads and %d /api/ps reads without both models on the GPU over %d alternations, want none", loadsAfter, apartAfter, n)
	}

	// status shows which value applies.
	code, out, _ = x.ctxfit("status")
	if code != 0 || !strings.Contains(out, strconv.Itoa(joint.Context)+" beside "+togetherACModel) {
		t.Errorf("status does not show the joint value beside %s:\n%s", togetherACModel, out)
	}
	// In the table too: the TUNED column of each loaded model gives the
	// joint value that applies, though neither was tuned alone.
	for model, want := range map[string]string{
		togetherChatModel: fmt.Sprintf("%d beside %s", joint.Context, togetherACModel),
		togetherACModel:   fmt.Sprintf("4096 beside %s", togetherChatModel),
	} {
		row := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(model) + ` .*\S  +(\S.*)$`).FindStringSubmatch(out)
		if row == nil || row[1] != want {
			t.Errorf("status: the TUNED column of %s is %q, want %q:\n%s", model, row, want, out)
		}
	}
	code, out, _ = x.ctxfit("status", "--json")
	var st statusJSON
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil {
		t.Fatalf("status --json: exit %d, %v\n%s", code, err, out)
	}
	for _, m := range st.Models {
		if want := map[string]int{togetherChatModel: joint.Context, togetherACModel: 4096}[m.Model]; m.Tuned != want || m.TunedParallel != 1 {
			t.Errorf("status --json: %s tuned %d (parallel %d), want the joint %d (parallel 1)", m.Model, m.Tuned, m.TunedParallel, want)
		}
	}
}

// TestDemoTogetherE2E plays `ctxfit demo --together`: the simulated user's
// switches are reported as eviction thrash, and after the tune and fix the
// demo prints, both models stay loaded on the GPU.
func TestDemoTogetherE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about 15 s of wall time; run without -short")
	}
	x := newE2E(t, "")
	wait := startDemoTogether(t, x)
	host := wait("server address", regexp.MustCompile(`listens at (http://127\.0\.0\.1:[0-9]+)`), 20*time.Second)[1]
	dir := wait("Continue folder", regexp.MustCompile(`CONTINUE_GLOBAL_DIR=(\S+)`), time.Second)[1]
	wait("eviction thrash", regexp.MustCompile(`unloaded each other 3 times`), 20*time.Second)

	y := &e2e{t: t, vars: maps.Clone(x.vars)}
	y.vars["OLLAMA_HOST"] = host
	y.vars["CONTINUE_GLOBAL_DIR"] = dir
	code, tuned, _ := y.ctxfit("tune", togetherChatModel, "--with", togetherACModel+"=4096")
	if code != 0 {
		t.Fatalf("tune --with: exit %d", code)
	}
	// The demo's ctxfit knows the demo's Continue config: it says that the
	// chat entry asks for more than the joint value, the value fix writes.
	asked, _ := continueContexts(t, filepath.Join(dir, "config.json"))
	m := regexp.MustCompile(`Continue asks ` + regexp.QuoteMeta(togetherChatModel) + ` for ([0-9]+) tokens; ([0-9]+) fits\.`).FindStringSubmatch(tuned)
	if m == nil || m[1] != strconv.Itoa(asked) {
		t.Errorf("tune --with does not say that Continue's chat entry asks %d, more than the joint value:\n%s", asked, tuned)
	}
	if n := strings.Count(tuned, " asks "); n != 1 {
		t.Errorf("tune --with names %d entries that ask too much, want Continue's chat entry alone:\n%s", n, tuned)
	}
	wait("the daemon's count", regexp.MustCompile(`"tune applied".* still_too_large=1 `), time.Second)
	if code, _, _ := y.ctxfit("fix", "continue"); code != 0 {
		t.Fatalf("fix continue: exit %d", code)
	}
	if chat, _ := continueContexts(t, filepath.Join(dir, "config.json")); m != nil && m[2] != strconv.Itoa(chat) {
		t.Errorf("tune --with said %s fits, fix continue wrote %d", m[2], chat)
	}
	time.Sleep(4 * time.Second) // four switches of the simulated user
	code, status, _ := y.ctxfit("status")
	if code != 0 || strings.Count(status, "100% GPU") != 2 || strings.Count(status, " beside ") < 2 {
		t.Errorf("after the tune and fix, status does not show both models on the GPU with their joint values:\n%s", status)
	}
}

// TestForSet: the values fix writes for a client's set of models.
func TestForSet(t *testing.T) {
	now := time.Now()
	d := &state.Data{}
	d.PutTuned(state.Tuned{Host: "h", Model: "chat", Context: 32768, MeasuredAt: now})
	d.PutTuned(state.Tuned{Host: "h", Model: "chat", Context: 12288, MeasuredAt: now,
		Companions: []state.Companion{{Model: "ac", Context: 4096}}})
	use := func(models ...string) []clients.Use {
		var us []clients.Use
		for _, m := range models {
			us = append(us, clients.Use{Model: m, Context: 2048})
		}
		return us
	}
	tests := []struct {
		set   []clients.Use
		joint bool
		want  map[string]int
		warns string
	}{
		{use("chat", "ac"), true, map[string]int{"chat": 12288, "ac": 4096}, ""},
		{use("ac", "chat"), true, map[string]int{"chat": 12288, "ac": 4096}, ""},
		{use("chat", "ac", "emb"), true, map[string]int{"chat": 12288, "ac": 4096}, "tuned beside ac but not beside emb"},
		{use("chat", "other"), false, nil, "chat's tuned value 32768 was measured with the model alone on the GPU; it leaves no room for other"},
		{use("untuned", "ac"), false, nil, ""},
	}
	for _, tt := range tests {
		tuned, joint, warns := forSet(d, "h", tt.set)
		if joint != tt.joint || (tuned == nil) != (tt.want == nil) {
			t.Errorf("%+v: joint %v, tuned %v", tt.set, joint, tuned != nil)
			continue
		}
		for m, n := range tt.want {
			if got, ok := tuned(m); !ok || got != n {
				t.Errorf("%+v: %s gets %d, %v; want %d", tt.set, m, got, ok, n)
			}
		}
		w := strings.Join(warns, "\n")
		if tt.warns == "" && w != "" || !strings.Contains(w, tt.warns) {
			t.Errorf("%+v: warnings %q, want %q", tt.set, w, tt.warns)
		}
		if strings.Contains(tt.warns, "alone") && !strings.Contains(w, "`ctxfit tune chat --with other=2048`") {
			t.Errorf("%+v: warning %q names no joint tune", tt.set, w)
		}
	}
}

// TestDemoCommandsWorkAsPrinted runs the commands `ctxfit demo --together`
// prints, and those its tune and fix print in turn, as a user copies them
// into another terminal whose environment knows nothing of the demo: the
// `fix all` the tune (and the demo's thrash warning) names fixes the demo's
// Continue config, and the `undo` that fix names restores it.
func TestDemoCommandsWorkAsPrinted(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about 10 s of wall time; run without -short")
	}
	x := newE2E(t, "")
	delete(x.vars, "CONTINUE_GLOBAL_DIR") // the user's shell: no Continue folder set
	wait := startDemoTogether(t, x)
	// run runs a printed command line as a POSIX shell would: leading
	// NAME=value words set variables for it, then ctxfit and its arguments.
	run := func(line string) (int, string) {
		t.Helper()
		words := shellWords(t, line)
		y := &e2e{t: t, vars: maps.Clone(x.vars)}
		for len(words) > 0 && strings.Contains(words[0], "=") {
			k, v, _ := strings.Cut(words[0], "=")
			y.vars[k] = v
			words = words[1:]
		}
		if len(words) == 0 || words[0] != "ctxfit" {
			t.Fatalf("%q does not run ctxfit", line)
		}
		code, stdout, stderr := y.ctxfit(words[1:]...)
		return code, stdout + stderr
	}

	tryBlock := wait("the commands to try", regexp.MustCompile(`Try, in another terminal:\n((?:  .*\n)+)`), 20*time.Second)[1]
	var tuneLine, statusLine string
	for _, l := range strings.Split(strings.TrimSpace(tryBlock), "\n") {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "CONTINUE_GLOBAL_DIR=") {
			t.Errorf("the demo prints %q without the Continue folder it uses", l)
		}
		switch {
		case strings.Contains(l, " tune "):
			tuneLine = l
		case strings.Contains(l, " status "):
			statusLine = l
		}
	}
	config := filepath.Join(wait("Continue folder", regexp.MustCompile(`Continue's config \((\S+)\)`), time.Second)[1])
	before := readFileString(t, config)
	// The demo's own thrash warning names the joint tune and fix all.
	thrash := wait("the thrash warning's fix all", regexp.MustCompile("unloaded each other [^\n]*then `([^`]*fix all[^`]*)`"), 20*time.Second)[1]

	code, tuned := run(tuneLine)
	if code != 0 {
		t.Fatalf("%s: exit %d\n%s", tuneLine, code, tuned)
	}
	want := regexp.MustCompile(`num_ctx ([0-9]+) stays 100% on the GPU beside`).FindStringSubmatch(tuned)
	fixAll := regexp.MustCompile("`([^`]* fix all [^`]*)`").FindStringSubmatch(tuned)
	if want == nil || fixAll == nil {
		t.Fatalf("the tune names no result or no `fix all`:\n%s", tuned)
	}
	if thrash != fixAll[1] {
		t.Errorf("the demo's warning names %q, the tune %q", thrash, fixAll[1])
	}

	code, fixed := run(fixAll[1])
	if code != 0 {
		t.Errorf("%s: exit %d\n%s", fixAll[1], code, fixed)
	}
	if chat, _ := continueContexts(t, config); strconv.Itoa(chat) != want[1] {
		t.Fatalf("%s did not write %s into the demo's Continue config (it holds %d):\n%s", fixAll[1], want[1], chat, fixed)
	}
	undo := regexp.MustCompile("`([^`]* undo continue[^`]*)` restores it").FindStringSubmatch(fixed)
	if undo == nil {
		t.Fatalf("the fix names no undo:\n%s", fixed)
	}
	// Through the demo's ctxfit, which then leaves the file alone.
	if !strings.Contains(undo[1], " --host http://") {
		t.Errorf("the fix's undo %q does not name the demo's server", undo[1])
	}
	if code, undone := run(undo[1]); code != 0 || readFileString(t, config) != before {
		t.Errorf("%s: exit %d\n%s\nthe config:\n%s", undo[1], code, undone, readFileString(t, config))
	}
	if code, status := run(statusLine); code != 0 || !strings.Contains(status, "llama3.1:8b-instruct-fp16") {
		t.Errorf("%s: exit %d\n%s", statusLine, code, status)
	}
}

// startDemoTogether runs `ctxfit demo --together` (the user switching every
// second) in x's environment until the test ends, and returns a function
// that waits for its output to match re, returning the submatches.
func startDemoTogether(t *testing.T, x *e2e) (wait func(what string, re *regexp.Regexp, d time.Duration) []string) {
	ctx, cancel := context.WithCancel(context.Background())
	var out lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- (&env{stdout: &out, stderr: &out, getenv: x.getenv}).main(ctx,
			[]string{"demo", "--together", "--headless", "--listen", "127.0.0.1:0", "--switch-every", "1s"})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			t.Logf("ctxfit demo --together → exit %d\n%s", code, out.String())
		case <-time.After(10 * time.Second):
			t.Errorf("ctxfit demo did not stop within 10 s of its context ending")
		}
	})
	return func(what string, re *regexp.Regexp, d time.Duration) []string {
		t.Helper()
		deadline := time.Now().Add(d)
		for time.Now().Before(deadline) {
			if m := re.FindStringSubmatch(out.String()); m != nil {
				return m
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("no %s within %s:\n%s", what, d, out.String())
		return nil
	}
}

// shellWords splits a command line as a POSIX shell does for the words
// ctxfit prints: spaces separate, single quotes quote.
func shellWords(t *testing.T, line string) []string {
	t.Helper()
	var words []string
	var w strings.Builder
	in, started := false, false
	for _, r := range line {
		switch {
		case r == '\'':
			in, started = !in, true
		case r == ' ' && !in:
			if started {
				words = append(words, w.String())
				w.Reset()
				started = false
			}
		default:
			w.WriteRune(r)
			started = true
		}
	}
	if in {
		t.Fatalf("unclosed quote in %q", line)
	}
	if started {
		words = append(words, w.String())
	}
	return words
}

func readFileString(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
