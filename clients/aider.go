package clients

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/ctxfit/ctxfit/clients/edit"

	"go.yaml.in/yaml/v3"
)

// aider, the terminal pair programmer, sends extra_params.num_ctx of the
// .aider.model.settings.yml entry whose name is exactly the model it runs
// ("ollama_chat/llama3.1:8b", or "ollama/llama3.1:8b"). Without one it sizes
// num_ctx to each request (1.25 times the prompt's tokens plus 8192), so
// every longer chat makes Ollama reload the model; a fixed num_ctx stops
// that. An "aider/extra_params" entry applies to every model and wins.
//
// aider reads ~/.aider.model.settings.yml, then the one in the git root,
// then the one in the working directory, each entry replacing an earlier
// one of the same name, and only when it starts. ~/.aider.conf.yml (and its
// copies in those places) names the models it runs: model, weak-model and
// editor-model.
//
// ctxfit sets num_ctx in the entries of tuned Ollama models, and adds an
// entry for each tuned Ollama model that an .aider.conf.yml names but the
// settings lack.
//
// The server: an entry's extra_params.api_base, else OLLAMA_API_BASE, which
// LiteLLM reads from aider's environment, else http://localhost:11434.
// aider puts the set-env values of its .aider.conf.yml into its environment
// when it starts, so OLLAMA_API_BASE=… there beats the shell's.

func init() { register(aiderClient{}) }

var _ Client = aiderClient{}

type aiderClient struct{}

func (aiderClient) Name() string { return "aider" }

const (
	aiderSettingsName = ".aider.model.settings.yml"
	aiderConfName     = ".aider.conf.yml"
)

// Files returns ~/.aider.model.settings.yml. Its overrides are the copies in
// the git root and the working directory, and the .aider.conf.yml files
// there and in the home directory, which name the models aider runs.
func (aiderClient) Files(env Env) (Files, error) {
	home, err := env.joinHome(aiderSettingsName)
	if err != nil {
		return Files{}, err
	}
	f := Files{Watch: []string{home, filepath.Join(env.Home, aiderConfName)}}
	if exists(home) {
		f.Config = home
	}
	dirs := []string{env.Home}
	if env.WorkDir != "" {
		if root := gitRoot(env.WorkDir); root != "" {
			dirs = append(dirs, root)
		}
		dirs = append(dirs, env.WorkDir)
	}
	seen := map[string]bool{home: true}
	for _, dir := range dirs {
		for _, name := range []string{aiderConfName, aiderSettingsName} {
			p := filepath.Join(dir, name)
			if !seen[p] && exists(p) {
				f.Overrides = append(f.Overrides, p)
			}
			seen[p] = true
		}
	}
	return f, nil
}

// gitRoot returns the nearest directory at or above dir that holds .git, or
// "".
func gitRoot(dir string) string {
	for {
		if exists(filepath.Join(dir, ".git")) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// aiderPrefixes are the LiteLLM providers that talk to Ollama's native API.
var aiderPrefixes = []string{"ollama_chat/", "ollama/"}

// aiderModel returns the Ollama model of an aider model name, and whether
// it is one.
func aiderModel(name string) (string, bool) {
	for _, p := range aiderPrefixes {
		if m, ok := strings.CutPrefix(name, p); ok && m != "" {
			return m, true
		}
	}
	return "", false
}

// aiderEntry is one entry of the settings for an Ollama model.
type aiderEntry struct {
	where  string
	index  int
	node   *yaml.Node
	name   string // as aider matches it: "ollama_chat/llama3.1:8b"
	model  string // "llama3.1:8b"
	numCtx int    // 0 when unset
	hasCtx bool
	// notNumber says what extra_params.num_ctx holds when it is not a
	// number (Ask.NotNumber).
	notNumber string
}

// aiderSettings is what ctxfit reads of a settings file.
type aiderSettings struct {
	yd      *edit.YAML
	list    *yaml.Node // the top-level sequence; nil for an empty file
	names   map[string]bool
	entries []aiderEntry // for Ollama models on the host
	global  int          // num_ctx of the aider/extra_params entry; 0 when unset
}

// aiderAPIBase returns the address aider reaches Ollama at for entries
// without their own api_base: OLLAMA_API_BASE from the set-env of the
// .aider.conf.yml files among in.Overrides (the most specific file wins:
// the working directory's, then the git root's, then the home one's; in a
// file the last assignment wins), else from the environment; "" when
// neither sets it (LiteLLM then uses http://localhost:11434).
func aiderAPIBase(in Input) string {
	var confs []string
	for path := range in.Overrides {
		if filepath.Base(path) == aiderConfName {
			confs = append(confs, path)
		}
	}
	// Deeper directories are more specific: cwd under the git root under home.
	sort.Slice(confs, func(i, j int) bool { return len(confs[i]) > len(confs[j]) })
	for _, path := range confs {
		var conf map[string]any
		if yaml.Unmarshal(in.Overrides[path], &conf) != nil {
			continue
		}
		var sets []string
		switch v := conf["set-env"].(type) {
		case string:
			sets = []string{v}
		case []any:
			for _, x := range v {
				if s, ok := x.(string); ok {
					sets = append(sets, s)
				}
			}
		}
		base, found := "", false
		for _, set := range sets {
			name, value, ok := strings.Cut(set, "=")
			if ok && strings.TrimSpace(name) == "OLLAMA_API_BASE" {
				base, found = strings.TrimSpace(value), true
			}
		}
		if found {
			return base
		}
	}
	return strings.TrimSpace(in.getenv("OLLAMA_API_BASE"))
}

// matchesAider reports whether aider entries without an api_base, which
// talk to apiBase ("" for LiteLLM's default), talk to the watched server.
func (h *ollamaHost) matchesAider(apiBase string) bool {
	return h.matches("ollama", apiBase, apiBase != "")
}

func parseAider(path string, src []byte, host *ollamaHost, defaultBase string) (*aiderSettings, error) {
	yd, err := edit.ParseYAML(src)
	if err != nil {
		return nil, &ParseError{Path: path, Err: err}
	}
	a := &aiderSettings{yd: yd, names: map[string]bool{}}
	if yd.Root() == nil || (yd.Root().Kind == yaml.ScalarNode && yd.Root().ShortTag() == "!!null") {
		return a, nil // aider skips an empty file
	}
	if yd.Root().Kind != yaml.SequenceNode {
		return nil, &ParseError{Path: path, Err: fmt.Errorf("the top level is not a list of model settings (- name: ...), so aider cannot read it either")}
	}
	a.list = yd.Root()
	for i, item := range yd.Root().Content {
		if edit.Mapping(item) == nil {
			continue
		}
		name := edit.Text(item, "name")
		a.names[name] = true
		_, extra := edit.Get(item, "extra_params")
		if name == "aider/extra_params" {
			a.global = edit.Integer(extra, "num_ctx")
			continue
		}
		model, ok := aiderModel(name)
		if !ok {
			continue
		}
		base, _ := edit.Get(extra, "api_base")
		if base != nil && !host.matches("ollama", edit.Text(extra, "api_base"), true) || base == nil && !host.matchesAider(defaultBase) {
			continue
		}
		k, _ := edit.Get(extra, "num_ctx")
		a.entries = append(a.entries, aiderEntry{
			where: fmt.Sprintf("[%d]", i), index: i, node: item,
			name: name, model: model,
			numCtx: edit.Integer(extra, "num_ctx"), hasCtx: k != nil,
			notNumber: isNot("extra_params.num_ctx", edit.NotNumberYAML(extra, "num_ctx")),
		})
	}
	return a, nil
}

// aiderNew is an entry to add.
type aiderNew struct {
	name    string // "ollama_chat/llama3.1:8b"
	context int
}

// Edit sets extra_params.num_ctx to the tuned value in every entry for a
// tuned Ollama model on t.Host, and adds entries for the tuned Ollama models
// that aider's .aider.conf.yml files name but the settings lack.
func (c aiderClient) Edit(in Input, t Target) (Result, error) {
	defaultBase := aiderAPIBase(in)
	a, err := parseAider(in.Path, in.Src, newOllamaHost(t), defaultBase)
	if err != nil {
		return Result{}, err
	}
	res := Result{Out: in.Src}
	for _, e := range a.entries {
		n, ok := t.tuned(e.model)
		if ok && e.hasCtx {
			n = in.keepContext(e.numCtx, n)
		}
		if !ok || (e.hasCtx && e.numCtx == n) {
			continue
		}
		if e.notNumber != "" {
			res.Warnings = append(res.Warnings, notNumberWarning(e.where, e.name, e.model, e.notNumber, n))
			continue
		}
		if err := a.yd.Set(e.node, []any{e.index}, n, "extra_params", "num_ctx"); err != nil {
			res.Warnings = append(res.Warnings, fmt.Sprintf("%s %s: left as it is, because %v; set extra_params.num_ctx %d by hand", e.where, e.name, err, n))
			continue
		}
		res.Changes = append(res.Changes, Change{Where: e.where, Title: e.name, Model: e.model, OldContext: e.numCtx, NewContext: n})
	}

	// Entries to add: the models aider is configured to run, then every
	// tuned model, as ollama_chat/<model> (the prefix aider recommends).
	var adds []aiderNew
	names := aiderConfModels(in)
	for _, m := range t.Models {
		names = append(names, "ollama_chat/"+m)
	}
	for _, name := range names {
		model, _ := aiderModel(name)
		n, ok := t.tuned(model)
		if !ok || a.names[name] || !newOllamaHost(t).matchesAider(defaultBase) {
			continue // entries for another server need an api_base, which ctxfit leaves to the user
		}
		if a.hasModel(model) || slices.ContainsFunc(adds, func(ad aiderNew) bool { m, _ := aiderModel(ad.name); return sameModelName(m, model) }) {
			continue
		}
		if a.list != nil && a.list.Style&yaml.FlowStyle != 0 {
			res.Warnings = append(res.Warnings, fmt.Sprintf("aider runs %s, which has no entry; the list is written in flow style ([...]), so add - name: %s with extra_params: {num_ctx: %d} by hand", name, name, n))
			continue
		}
		adds = append(adds, aiderNew{name: name, context: n})
	}

	if len(res.Changes) > 0 {
		if res.Out, res.spans, err = a.yd.Finish(); err != nil {
			return Result{}, fmt.Errorf("%s: %w", in.Path, err)
		}
	}
	if len(adds) > 0 {
		first := 0
		if a.list != nil {
			first = len(a.list.Content)
		}
		items := make([][]edit.Field, len(adds))
		for i, ad := range adds {
			items[i] = []edit.Field{{Key: "name", Value: ad.name}, {Key: "extra_params", Value: []edit.Field{{Key: "num_ctx", Value: ad.context}}}}
		}
		out, err := edit.AppendYAMLList(res.Out, items)
		if err != nil {
			return Result{}, fmt.Errorf("%s: %w", in.Path, err)
		}
		res.Out, res.spans = out, nil
		for i, ad := range adds {
			model, _ := aiderModel(ad.name)
			res.Changes = append(res.Changes, Change{Where: fmt.Sprintf("[%d]", first+i), Title: ad.name, Model: model, NewContext: ad.context})
		}
	}
	if len(res.Changes) == 0 {
		return res, nil
	}
	if a.global > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("the aider/extra_params entry sets num_ctx %d for every model, which beats the per-model values; remove num_ctx there", a.global))
	}
	res.Warnings = append(res.Warnings, aiderOverrides(in, res.Changes)...)
	res.Warnings = append(res.Warnings, "aider reads its model settings only when it starts: restart running aider sessions")
	return res, nil
}

// hasModel reports whether an entry already sets model's settings.
func (a *aiderSettings) hasModel(model string) bool {
	for _, e := range a.entries {
		if sameModelName(e.model, model) {
			return true
		}
	}
	return false
}

// aiderConfModels returns the Ollama models that the .aider.conf.yml files
// among in.Overrides name, each once, in the order found.
func aiderConfModels(in Input) []string {
	var out []string
	seen := map[string]bool{}
	for _, path := range sortedKeys(in.Overrides) {
		if filepath.Base(path) != aiderConfName {
			continue
		}
		var conf map[string]any
		if yaml.Unmarshal(in.Overrides[path], &conf) != nil {
			continue
		}
		for _, k := range []string{"model", "weak-model", "editor-model"} {
			name, _ := conf[k].(string)
			if _, ok := aiderModel(name); ok && !seen[name] {
				seen[name] = true
				out = append(out, name)
			}
		}
	}
	return out
}

// aiderOverrides warns about the settings files that aider reads after this
// one and that hold an entry of a changed name (which replaces it whole),
// and about a model-settings-file named in a .aider.conf.yml.
func aiderOverrides(in Input, changes []Change) []string {
	var warns []string
	for _, path := range sortedKeys(in.Overrides) {
		src := in.Overrides[path]
		if filepath.Base(path) == aiderConfName {
			var conf map[string]any
			if yaml.Unmarshal(src, &conf) == nil {
				if f, _ := conf["model-settings-file"].(string); f != "" {
					warns = append(warns, fmt.Sprintf("%s names model-settings-file %s, whose entries replace these; make sure it sets no num_ctx for these models", path, f))
				}
			}
			continue
		}
		var list []map[string]any
		if err := yaml.Unmarshal(src, &list); err != nil {
			warns = append(warns, fmt.Sprintf("%s does not parse (%v); aider will fail to start", path, err))
			continue
		}
		for _, e := range list {
			name, _ := e["name"].(string)
			for _, c := range changes {
				if name != "" && name == c.Title {
					warns = append(warns, fmt.Sprintf("%s has its own entry for %s, which replaces the fixed one when aider runs there; set num_ctx %d in it or remove it", path, name, c.NewContext))
				}
			}
		}
	}
	return warns
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Asks reports what num_ctx each entry for an Ollama model on t.Host sets,
// and, when in.Overrides holds .aider.conf.yml files, the models they name
// that have no entry; 0 means none, so that aider sizes it to each request.
func (c aiderClient) Asks(in Input, t Target) ([]Ask, error) {
	defaultBase := aiderAPIBase(in)
	a, err := parseAider(in.Path, in.Src, newOllamaHost(t), defaultBase)
	if err != nil {
		return nil, err
	}
	asks := make([]Ask, 0, len(a.entries))
	for _, e := range a.entries {
		n, _ := t.tuned(e.model)
		ctx := e.numCtx
		if a.global > 0 {
			ctx = a.global
		}
		ask := Ask{Client: c.Name(), Path: in.Path, Where: e.where, Title: e.name, Model: e.model, Context: ctx, Tuned: n}
		ask.kept = n > 0 && in.keepContext(ctx, n) != n
		if a.global <= 0 { // aider/extra_params' num_ctx, when set, is what aider sends
			ask.NotNumber = e.notNumber
		}
		asks = append(asks, ask)
	}
	if !newOllamaHost(t).matchesAider(defaultBase) {
		return asks, nil // the models .aider.conf.yml names talk to another server
	}
	for _, name := range aiderConfModels(in) {
		if a.names[name] {
			continue
		}
		model, _ := aiderModel(name)
		n, _ := t.tuned(model)
		asks = append(asks, Ask{Client: c.Name(), Path: in.Path, Where: aiderConfName, Title: name, Model: model, Context: a.global, Tuned: n, kept: n > 0 && in.keepContext(a.global, n) != n})
	}
	return asks, nil
}
