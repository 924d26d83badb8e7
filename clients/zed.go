package clients

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

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
	jd      *jsonDoc
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
	maxTokens int // 0 when unset
}

// zedPick is a model that a Zed setting selects.
type zedPick struct {
	where string // the setting: "agent.default_model"
	model string
}

// parseZed reads the Ollama part of settings.json for host.
func parseZed(path string, src []byte, host *ollamaHost) (*zedSettings, error) {
	jd, err := parseJSON(src)
	if err != nil {
		return nil, &ParseError{Path: path, Err: err}
	}
	root := &jd.root
	if object(root) == nil {
		return nil, &ParseError{Path: path, Err: fmt.Errorf("the top level is not an object")}
	}
	z := &zedSettings{jd: jd}
	ol := member(member(root, "language_models"), "ollama")
	if object(ol) == nil || !host.matches("ollama", str(ol, "api_url"), member(ol, "api_url") != nil) {
		return z, nil
	}
	z.ollama = ol
	z.window = num(ol, "context_window")
	if list := array(member(ol, "available_models")); list != nil {
		z.list = list
		for i := range list.Elements {
			v := &list.Elements[i]
			if object(v) == nil || str(v, "name") == "" {
				continue
			}
			z.entries = append(z.entries, zedEntry{
				where:     fmt.Sprintf("language_models.ollama.available_models[%d]", i),
				path:      append(append([]any(nil), zedAvailablePath...), i),
				obj:       v,
				name:      str(v, "name"),
				display:   str(v, "display_name"),
				maxTokens: num(v, "max_tokens"),
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
		if str(v, "provider") != "ollama" || str(v, "model") == "" {
			return
		}
		for _, p := range picks {
			if sameModelName(p.model, str(v, "model")) {
				return
			}
		}
		picks = append(picks, zedPick{where: where, model: str(v, "model")})
	}
	for _, section := range []string{"agent", "assistant"} {
		s := member(root, section)
		if object(s) == nil {
			continue
		}
		for _, k := range []string{"default_model", "inline_assistant_model", "commit_message_model", "thread_summary_model", "subagent_model"} {
			one(member(s, k), section+"."+k)
		}
		for _, k := range []string{"favorite_models", "inline_alternatives"} {
			if a := array(member(s, k)); a != nil {
				for i := range a.Elements {
					one(&a.Elements[i], fmt.Sprintf("%s.%s[%d]", section, k, i))
				}
			}
		}
		if profiles := object(member(s, "profiles")); profiles != nil {
			for _, m := range profiles.Members {
				if lit, ok := m.Name.Value.(hujson.Literal); ok {
					one(member(&m.Value, "default_model"), fmt.Sprintf("%s.profiles.%s.default_model", section, lit.String()))
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
		if !ok || e.maxTokens == n {
			continue
		}
		if err := z.jd.set(e.obj, e.path, n, "max_tokens"); err != nil {
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
		if res.Out, res.spans, err = z.jd.finish(); err != nil {
			return Result{}, fmt.Errorf("%s: %w", in.Path, err)
		}
	}
	if len(adds) > 0 {
		first := len(z.list.Elements)
		out, err := zedAppend(res.Out, adds)
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

// zedAppend returns src with an entry for each of adds appended to
// language_models.ollama.available_models, which must hold at least one
// element. The new elements follow the layout of the last one: on their own
// lines at its indentation (or on its line when the array is written on one
// line), as a one-line or multi-line object like it, with the file's line
// endings and trailing-comma style. It checks that the result decodes to
// the input plus the new elements.
func zedAppend(src []byte, adds []zedNew) ([]byte, error) {
	d, err := parseJSON(src)
	if err != nil {
		return nil, err
	}
	listV := member(member(member(&d.root, "language_models"), "ollama"), "available_models")
	list := array(listV)
	if list == nil || len(list.Elements) == 0 {
		return nil, fmt.Errorf("internal error: no list to add Zed's models to")
	}
	last := &list.Elements[len(list.Elements)-1]

	// The layout of the last element.
	elemNL := lastNewline(last.BeforeExtra)
	indent := ""
	if elemNL >= 0 {
		indent = indentAfter(last.BeforeExtra, elemNL)
	}
	sep, memberIndent, multiline := ": ", "", false
	if o := object(last); o != nil && len(o.Members) > 0 {
		sep = d.colon(o)
		if nl := lastNewline(o.Members[0].Name.BeforeExtra); nl >= 0 {
			multiline = true
			memberIndent = indentAfter(o.Members[0].Name.BeforeExtra, nl)
		}
	}
	if multiline && !strings.HasPrefix(memberIndent, indent) {
		memberIndent = indent + d.unit
	}

	elems := make([]string, len(adds))
	decoded := make([]any, len(adds))
	for i, a := range adds {
		kv := [][2]string{
			{"name", string(hujson.String(a.model))},
			{"display_name", string(hujson.String(a.model))},
			{"max_tokens", itoa(a.context)},
		}
		var b strings.Builder
		b.WriteByte('{')
		for j, p := range kv {
			if multiline {
				b.WriteString(d.nl + memberIndent)
			} else if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString(`"` + p[0] + `"` + sep + p[1])
			if multiline && j < len(kv)-1 {
				b.WriteByte(',')
			}
		}
		if multiline {
			b.WriteString(d.nl + indent)
		}
		b.WriteByte('}')
		elems[i] = b.String()
		decoded[i] = map[string]any{"name": a.model, "display_name": a.model, "max_tokens": json.Number(itoa(a.context))}
	}

	var spans []span
	trailing := last.AfterExtra != nil
	switch {
	case elemNL < 0: // [{...}, {...}] on one line
		text := ""
		for _, e := range elems {
			text += ", " + e
		}
		if trailing {
			at := last.EndOffset + len(last.AfterExtra) + 1
			spans = append(spans, span{at, at, strings.TrimPrefix(text, ",") + ","})
		} else {
			spans = append(spans, span{last.EndOffset, last.EndOffset, text})
		}
	case trailing:
		at := last.EndOffset + len(last.AfterExtra) + 1 // after the comma
		text := ""
		for _, e := range elems {
			text += d.nl + indent + e + ","
		}
		spans = append(spans, span{at, at, text})
	default:
		spans = append(spans, span{last.EndOffset, last.EndOffset, ","})
		closing := listV.EndOffset - 1
		extra := list.AfterExtra
		at := last.EndOffset
		if nl := lastNewline(extra); nl >= 0 { // after any comment on the last element's line
			at = closing - len(extra) + d.lineEnd(extra, nl)
		}
		text := ""
		for i, e := range elems {
			if i > 0 {
				text += ","
			}
			text += d.nl + indent + e
		}
		spans = append(spans, span{at, at, text})
	}
	body, err := splice(d.src, spans)
	if err != nil {
		return nil, err
	}

	before, err := decodeJSON(d.src)
	if err != nil {
		return nil, err
	}
	after, err := decodeJSON(body)
	if err != nil {
		return nil, fmt.Errorf("internal error: the edited file does not parse: %w", err)
	}
	old, _ := lookupPath(before, zedAvailablePath).([]any)
	want, err := assign(before, zedAvailablePath, append(append([]any(nil), old...), decoded...))
	if err != nil {
		return nil, err
	}
	if err := checkEdit(want, after, nil, nil); err != nil {
		return nil, err
	}
	return append(append([]byte(nil), utf8BOM[:d.bom]...), body...), nil
}

// lookupPath returns the value at path (map keys and list indexes) in a
// decoded document, or nil.
func lookupPath(tree any, path []any) any {
	for _, k := range path {
		switch k := k.(type) {
		case string:
			switch m := tree.(type) {
			case map[string]any:
				tree = m[k]
			case map[any]any:
				tree = m[k]
			default:
				return nil
			}
		case int:
			l, ok := tree.([]any)
			if !ok || k < 0 || k >= len(l) {
				return nil
			}
			tree = l[k]
		}
	}
	return tree
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
		asks = append(asks, Ask{Client: c.Name(), Path: in.Path, Where: e.where, Title: e.display, Model: e.name, Context: ctx, Tuned: n})
	}
	for _, p := range z.picked {
		if z.listed(p.model) {
			continue
		}
		n, _ := t.tuned(p.model)
		asks = append(asks, Ask{Client: c.Name(), Path: in.Path, Where: p.where, Model: p.model, Context: z.window, Tuned: n})
	}
	return asks, nil
}
