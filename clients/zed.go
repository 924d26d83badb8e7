package clients

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/ctxfit/ctxfit/clients/edit"

	"github.com/tailscale/hujson"
)

// Zed sends the max_tokens of a language_models.ollama.available_models
// entry as num_ctx with every request for that model. A model Zed discovers
// on the server without an entry gets a context guessed from its name, and
// language_models.ollama.context_window, when set, replaces max_tokens for
// every model.
//
// settings.json is JSON with comments and trailing commas, in
// ~/.config/zed (also on macOS; $XDG_CONFIG_HOME/zed on Linux) or
// %APPDATA%\Zed on Windows. Zed reloads it as soon as it changes.
//
// ctxfit sets max_tokens in the entries of tuned models, and, when the user
// already lists Ollama models there, adds an entry (name, display_name,
// max_tokens) for each tuned model that Zed's agent settings select
// (default_model, inline_assistant_model, favorite_models, ...) but the list
// lacks.

func init() { register(zedClient{}) }

var _ Client = zedClient{}

type zedClient struct{}

func (zedClient) Name() string { return "Zed" }

// Files returns Zed's settings.json.
func (zedClient) Files(env Env) (Files, error) {
	path, err := zedSettingsPath(env)
	if err != nil {
		return Files{}, err
	}
	f := Files{Watch: []string{path}}
	if exists(path) {
		f.Config = path
	}
	return f, nil
}

// zedSettingsPath returns where Zed keeps settings.json (its paths crate's
// config_dir).
func zedSettingsPath(env Env) (string, error) {
	switch env.GOOS {
	case "windows":
		if d := env.getenv("APPDATA"); d != "" {
			return filepath.Join(d, "Zed", "settings.json"), nil
		}
		return env.joinHome("AppData", "Roaming", "Zed", "settings.json")
	case "darwin":
		return env.joinHome(".config", "zed", "settings.json")
	}
	for _, k := range []string{"FLATPAK_XDG_CONFIG_HOME", "XDG_CONFIG_HOME"} {
		if d := env.getenv(k); d != "" && filepath.IsAbs(d) {
			return filepath.Join(d, "zed", "settings.json"), nil
		}
	}
	return env.joinHome(".config", "zed", "settings.json")
}

// zedAvailablePath is where the entries live, in the decoded settings.
var zedAvailablePath = []any{"language_models", "ollama", "available_models"}

// zedSettings is what ctxfit reads of settings.json.
type zedSettings struct {
	jd      *edit.JSON
	ollama  *hujson.Value // language_models.ollama; nil when absent or for another server
	list    *hujson.Array // its available_models; nil when absent or not an array
	window  int           // its context_window; 0 when unset
	entries []zedEntry
	picked  []zedPick // the Ollama models the agent settings select
}

// zedEntry is one element of available_models.
type zedEntry struct {
	where     string
	path      []any
	obj       *hujson.Value
	name      string
	display   string
	maxTokens int    // 0 when unset
	notNumber string // what max_tokens holds when it is not a number (Ask.NotNumber)
}

// zedPick is a model that a Zed setting selects.
type zedPick struct {
	where string // the setting: "agent.default_model"
	model string
}

// parseZed reads the Ollama part of settings.json for host.
func parseZed(path string, src []byte, host *ollamaHost) (*zedSettings, error) {
	jd, err := edit.ParseJSON(src)
	if err != nil {
		return nil, &ParseError{Path: path, Err: err}
	}
	root := jd.Root()
	if edit.Object(root) == nil {
		return nil, &ParseError{Path: path, Err: fmt.Errorf("the top level is not an object")}
	}
	z := &zedSettings{jd: jd}
	ol := edit.Member(edit.Member(root, "language_models"), "ollama")
	if edit.Object(ol) == nil || !host.matches("ollama", edit.Str(ol, "api_url"), edit.Member(ol, "api_url") != nil) {
		return z, nil
	}
	z.ollama = ol
	z.window = edit.Num(ol, "context_window")
	if list := edit.Array(edit.Member(ol, "available_models")); list != nil {
		z.list = list
		for i := range list.Elements {
			v := &list.Elements[i]
			if edit.Object(v) == nil || edit.Str(v, "name") == "" {
				continue
			}
			z.entries = append(z.entries, zedEntry{
				where:     fmt.Sprintf("language_models.ollama.available_models[%d]", i),
				path:      append(append([]any(nil), zedAvailablePath...), i),
				obj:       v,
				name:      edit.Str(v, "name"),
				display:   edit.Str(v, "display_name"),
				maxTokens: edit.Num(v, "max_tokens"),
				notNumber: isNot("max_tokens", edit.NotNumberJSON(v, "max_tokens")),
			})
		}
	}
	z.picked = zedPicks(root)
	return z, nil
}

// zedPicks returns the Ollama models that the agent settings (and the
// older assistant settings) select, each once.
func zedPicks(root *hujson.Value) []zedPick {
	var picks []zedPick
	one := func(v *hujson.Value, where string) {
		if edit.Str(v, "provider") != "ollama" || edit.Str(v, "model") == "" {
			return
		}
		for _, p := range picks {
			if sameModelName(p.model, edit.Str(v, "model")) {
				return
			}
		}
		picks = append(picks, zedPick{where: where, model: edit.Str(v, "model")})
	}
	for _, section := range []string{"agent", "assistant"} {
		s := edit.Member(root, section)
		if edit.Object(s) == nil {
			continue
		}
		for _, k := range []string{"default_model", "inline_assistant_model", "commit_message_model", "thread_summary_model", "subagent_model"} {
			one(edit.Member(s, k), section+"."+k)
		}
		for _, k := range []string{"favorite_models", "inline_alternatives"} {
			if a := edit.Array(edit.Member(s, k)); a != nil {
				for i := range a.Elements {
					one(&a.Elements[i], fmt.Sprintf("%s.%s[%d]", section, k, i))
				}
			}
		}
		if profiles := edit.Object(edit.Member(s, "profiles")); profiles != nil {
			for _, m := range profiles.Members {
				if lit, ok := m.Name.Value.(hujson.Literal); ok {
					one(edit.Member(&m.Value, "default_model"), fmt.Sprintf("%s.profiles.%s.default_model", section, lit.String()))
				}
			}
		}
	}
	return picks
}

// sameModelName reports whether two Ollama model names name one model: "m"
// and "m:latest" do, and Ollama ignores case.
func sameModelName(a, b string) bool {
	key := func(s string) string {
		s = strings.ToLower(strings.TrimSpace(s))
		if !strings.Contains(s[strings.LastIndex(s, "/")+1:], ":") {
			s += ":latest"
		}
		return s
	}
	return key(a) == key(b)
}

// listed reports whether available_models has an entry for model.
func (z *zedSettings) listed(model string) bool {
	for _, e := range z.entries {
		if sameModelName(e.name, model) {
			return true
		}
	}
	return false
}

// Edit sets max_tokens to the tuned value in the entries of tuned models,
// and adds entries for the tuned models the agent settings select when the
// list already has entries.
func (c zedClient) Edit(in Input, t Target) (Result, error) {
	z, err := parseZed(in.Path, in.Src, newOllamaHost(t))
	if err != nil {
		return Result{}, err
	}
	res := Result{Out: in.Src}
	if z.ollama == nil {
		return res, nil
	}
	for _, e := range z.entries {
		n, ok := t.tuned(e.name)
		if ok {
			n = in.keepContext(e.maxTokens, n)
		}
		if !ok || e.maxTokens == n {
			continue
		}
		if e.notNumber != "" {
			res.Warnings = append(res.Warnings, notNumberWarning(e.where, e.display, e.name, e.notNumber, n))
			continue
		}
		if err := z.jd.Set(e.obj, e.path, n, "max_tokens"); err != nil {
			res.Warnings = append(res.Warnings, fmt.Sprintf("%s %s: left as it is, because %v; set max_tokens %d by hand", e.where, e.name, err, n))
			continue
		}
		res.Changes = append(res.Changes, Change{Where: e.where, Title: e.display, Model: e.name, OldContext: e.maxTokens, NewContext: n})
	}

	var adds []zedNew
	for _, p := range z.picked {
		n, ok := t.tuned(p.model)
		if !ok || z.listed(p.model) {
			continue
		}
		if z.list == nil || len(z.list.Elements) == 0 {
			res.Warnings = append(res.Warnings, fmt.Sprintf("%s selects %s, which Zed runs at a context guessed from its name; list it in language_models.ollama.available_models with max_tokens %d so that it stays on the GPU",
				p.where, p.model, n))
			continue
		}
		adds = append(adds, zedNew{model: p.model, context: n})
	}

	if len(res.Changes) > 0 {
		if res.Out, res.spans, err = z.jd.Finish(); err != nil {
			return Result{}, fmt.Errorf("%s: %w", in.Path, err)
		}
	}
	if len(adds) > 0 {
		first := len(z.list.Elements)
		items := make([][]edit.Field, len(adds))
		for i, a := range adds {
			items[i] = []edit.Field{{Key: "name", Value: a.model}, {Key: "display_name", Value: a.model}, {Key: "max_tokens", Value: a.context}}
		}
		out, err := edit.AppendJSONArray(res.Out, items, "language_models", "ollama", "available_models")
		if err != nil {
			return Result{}, fmt.Errorf("%s: %w", in.Path, err)
		}
		res.Out, res.spans = out, nil // the spans of the first pass no longer describe the output
		for i, a := range adds {
			res.Changes = append(res.Changes, Change{Where: fmt.Sprintf("language_models.ollama.available_models[%d]", first+i),
				Title: a.model, Model: a.model, NewContext: a.context})
		}
	}
	if z.window > 0 && (len(res.Changes) > 0 || z.anyTuned(t)) {
		res.Warnings = append(res.Warnings, fmt.Sprintf("language_models.ollama.context_window (%d) replaces max_tokens for every Ollama model in Zed; remove it so that each model gets its tuned value", z.window))
	}
	return res, nil
}

func (z *zedSettings) anyTuned(t Target) bool {
	for _, e := range z.entries {
		if _, ok := t.tuned(e.name); ok {
			return true
		}
	}
	return false
}

// zedNew is an entry to add.
type zedNew struct {
	model   string
	context int
}

// Asks reports the context each Ollama model in Zed's settings asks for:
// the entries of available_models, and the models the agent settings select
// without an entry (which ask for Zed's guess, reported as 0).
func (c zedClient) Asks(in Input, t Target) ([]Ask, error) {
	z, err := parseZed(in.Path, in.Src, newOllamaHost(t))
	if err != nil {
		return nil, err
	}
	if z.ollama == nil {
		return nil, nil
	}
	var asks []Ask
	for _, e := range z.entries {
		n, _ := t.tuned(e.name)
		ctx := e.maxTokens
		if z.window > 0 {
			ctx = z.window
		}
		a := Ask{Client: c.Name(), Path: in.Path, Where: e.where, Title: e.display, Model: e.name, Context: ctx, Tuned: n, kept: n > 0 && in.keepContext(ctx, n) != n}
		if z.window <= 0 { // context_window, when set, is what Zed sends
			a.NotNumber = e.notNumber
		}
		asks = append(asks, a)
	}
	for _, p := range z.picked {
		if z.listed(p.model) {
			continue
		}
		n, _ := t.tuned(p.model)
		asks = append(asks, Ask{Client: c.Name(), Path: in.Path, Where: p.where, Model: p.model, Context: z.window, Tuned: n, kept: n > 0 && in.keepContext(z.window, n) != n})
	}
	return asks, nil
}
