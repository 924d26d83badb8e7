package clients

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/ctxfit/ctxfit/clients/edit"
)

// Codex CLI (npm @openai/codex) reads $CODEX_HOME/config.toml (default
// ~/.codex): the root keys model, model_provider and model_context_window
// (the context it plans and compacts with), and [model_providers.<id>]
// tables with base_url. The id "ollama" is Codex's built-in provider, whose
// address comes from $CODEX_OSS_BASE_URL or $CODEX_OSS_PORT (default
// http://localhost:11434/v1); a user-defined provider has another id and a
// base_url ending in /v1. Codex calls /v1/responses with no context field:
// the server runs the model at its own num_ctx. Legacy [profiles.<name>]
// tables carry the same keys; newer profiles are files of their own,
// $CODEX_HOME/<name>.config.toml.
//
// ctxfit sets model to the derived model and model_context_window to the
// tuned value, at the root and in each [profiles.<name>] table that runs a
// tuned model on the watched server.

func init() { register(codexClient{}) }

var _ Client = codexClient{}

type codexClient struct{}

func (codexClient) Name() string { return "Codex" }

// Files returns config.toml in $CODEX_HOME or ~/.codex; the profile files
// beside it are overrides.
func (codexClient) Files(env Env) (Files, error) {
	dir := env.getenv("CODEX_HOME")
	if dir == "" {
		var err error
		if dir, err = env.joinHome(".codex"); err != nil {
			return Files{}, err
		}
	}
	path := filepath.Join(dir, "config.toml")
	f := Files{Watch: []string{path}}
	if exists(path) {
		f.Config = path
	}
	profiles, _ := filepath.Glob(filepath.Join(dir, "*.config.toml"))
	f.Overrides = append(f.Overrides, profiles...)
	return f, nil
}

// codexEntry is the root table or a legacy profile that runs a model on
// the watched server.
type codexEntry struct {
	where  string
	table  []string // nil for the root
	model  string
	window int  // model_context_window; 0 when unset
	own    bool // the table sets model itself (a profile may inherit it)
	// notNumber says what model_context_window holds when it is not a
	// number (Ask.NotNumber).
	notNumber string
}

// codexOSSBase is where Codex's built-in "ollama" provider talks to.
func codexOSSBase(env func(string) string) string {
	if u := env("CODEX_OSS_BASE_URL"); u != "" {
		return u
	}
	if p := env("CODEX_OSS_PORT"); p != "" {
		return "http://localhost:" + p + "/v1"
	}
	return "http://localhost:11434/v1"
}

// codexEntries returns the root and the profiles that run a model on
// t.Host's /v1 API. getenv reads CODEX_OSS_BASE_URL and CODEX_OSS_PORT.
func codexEntries(path string, src []byte, host *ollamaHost, getenv func(string) string) (*edit.TOML, []codexEntry, error) {
	d, err := edit.ParseTOML(src)
	if err != nil {
		return nil, nil, &ParseError{Path: path, Err: edit.Quiet(err)}
	}
	onHost := func(provider string) bool {
		if provider == "ollama" {
			return host.matchesV1(codexOSSBase(getenv))
		}
		return provider != "" && host.matchesV1(d.GetString("model_providers", provider, "base_url"))
	}
	rootProvider := d.GetString("model_provider")
	var out []codexEntry
	if m := d.GetString("model"); m != "" && onHost(rootProvider) {
		out = append(out, codexEntry{where: "model", model: m, window: d.GetInt("model_context_window"), own: true,
			notNumber: isNot("model_context_window", d.NotNumber("model_context_window"))})
	}
	for _, name := range d.Tables("profiles") {
		t := []string{"profiles", name}
		provider := d.GetString(append(t, "model_provider")...)
		if provider == "" {
			provider = rootProvider
		}
		m := d.GetString(append(t, "model")...)
		own := m != ""
		if !own {
			m = d.GetString("model")
		}
		if m == "" || !onHost(provider) {
			continue
		}
		out = append(out, codexEntry{where: "profiles." + name, table: t, model: m, own: own,
			window:    d.GetInt(append(t, "model_context_window")...),
			notNumber: isNot(strings.Join(append(t, "model_context_window"), "."), d.NotNumber(append(t, "model_context_window")...))})
	}
	return d, out, nil
}

// Edit selects the derived model and sets model_context_window at the root
// and in each legacy profile that runs a tuned model on t.Host.
func (c codexClient) Edit(in Input, t Target) (Result, error) {
	d, entries, err := codexEntries(in.Path, in.Src, newOllamaHost(t), in.getenv)
	if err != nil {
		return Result{}, err
	}
	res := Result{Out: in.Src}
	for _, e := range entries {
		n, ok := t.tuned(e.model)
		if !ok {
			continue
		}
		if e.notNumber != "" {
			res.Warnings = append(res.Warnings, notNumberWarning(e.where, "", e.model, e.notNumber, n))
			continue
		}
		want := t.derived(e.model, n)
		key := func(k string) []string { return append(append([]string(nil), e.table...), k) }
		var sets [][]string
		var values []any
		if want != e.model {
			sets, values = append(sets, key("model")), append(values, want)
		}
		if e.window != n {
			sets, values = append(sets, key("model_context_window")), append(values, n)
		}
		if len(sets) == 0 {
			continue
		}
		for _, k := range sets {
			if err = d.Settable(k...); err != nil {
				break
			}
		}
		if err != nil {
			res.Warnings = append(res.Warnings, fmt.Sprintf("%s: left as it is, because %v; set model = %q and model_context_window = %d there by hand", e.where, err, want, n))
			continue
		}
		for i, k := range sets {
			if err := d.Set(values[i], k...); err != nil {
				return Result{}, fmt.Errorf("%s: %w", in.Path, err)
			}
		}
		ch := Change{Where: e.where, Model: e.model, OldContext: e.window, NewContext: n}
		if want != e.model {
			ch.Derived = want
		}
		res.Changes = append(res.Changes, ch)
	}
	if len(res.Changes) == 0 {
		return res, nil
	}
	if t.Derive == nil {
		res.Warnings = append(res.Warnings, v1Note(c.Name()))
	}
	for _, p := range sortedKeys(in.Overrides) {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%s is a profile (`codex --profile %s`) whose model and model_context_window beat these; ctxfit leaves it alone", p, strings.TrimSuffix(filepath.Base(p), ".config.toml")))
	}
	if res.Out, res.spans, err = d.Finish(); err != nil {
		return Result{}, fmt.Errorf("%s: %w", in.Path, err)
	}
	return res, nil
}

// Asks reports model_context_window at the root and in each legacy profile
// on t.Host, with the tuned value and the derived model the fix selects.
func (c codexClient) Asks(in Input, t Target) ([]Ask, error) {
	_, entries, err := codexEntries(in.Path, in.Src, newOllamaHost(t), in.getenv)
	if err != nil {
		return nil, err
	}
	var asks []Ask
	for _, e := range entries {
		n, _ := t.tuned(e.model)
		a := Ask{Client: c.Name(), Path: in.Path, Where: e.where, Model: e.model, Context: e.window, Tuned: n, NotNumber: e.notNumber}
		if n > 0 {
			a.Derived = t.derived(e.model, n)
		}
		asks = append(asks, a)
	}
	return asks, nil
}

// redactDiff hides every value of a dry run's diff but the ones ctxfit
// writes: provider tables can hold tokens in http_headers. Context lines
// stay, with their values hidden too, and table headers stay whole, so
// that the diff says which table ([profiles.NAME] or the root) changes
// and its hunks keep the line counts their headers give.
func (codexClient) redactDiff(diff string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(diff, "\n") {
		body := strings.TrimRight(line, "\r\n")
		switch {
		case body == "":
		case strings.HasPrefix(body, "--- ") || strings.HasPrefix(body, "+++ ") || strings.HasPrefix(body, "@@"):
			b.WriteString(body + "\n")
		case strings.HasPrefix(body, "-") || strings.HasPrefix(body, "+") || strings.HasPrefix(body, " "):
			k, _, ok := strings.Cut(body[1:], "=")
			header := tomlHeader.FindString(body[1:])
			switch key := strings.TrimSpace(k); {
			case strings.TrimSpace(body[1:]) == "":
				b.WriteString(body[:1] + "\n") // a blank line
			case header != "":
				b.WriteString(body[:1] + header + "\n")
			case ok && (key == "model" || key == "model_context_window"):
				b.WriteString(body + "\n")
			case ok:
				b.WriteString(body[:1] + k + "= …\n")
			default:
				b.WriteString(body[:1] + "…\n")
			}
		}
	}
	return b.String()
}

// tomlHeader matches a table header at the start of a line, [a.b] or
// [[a."b c"]], without its comment. Its first key must be bare: an
// element of a multi-line array that is itself an array holds values, and
// a bare word there is a number, boolean or date, never a string that may
// be a secret (["token"] does not match).
var tomlHeader = regexp.MustCompile(`^\[\[?\s*[A-Za-z0-9_-]+(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"\\]*"))*\s*\]\]?`)

var _ diffRedacter = codexClient{}
