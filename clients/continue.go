package clients

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/ctxfit/ctxfit/clients/edit"

	"github.com/tailscale/hujson"
	"go.yaml.in/yaml/v3"
)

// Continue (the VS Code and JetBrains extension) sends
// options.num_ctx = contextLength and options.num_predict = maxTokens with
// every request to Ollama, so its config decides whether a model spills.
//
// It reads ~/.continue/config.yaml when that exists, else config.json (JSON
// with comments and trailing commas). In config.json an entry of models[] or
// tabAutocompleteModel (an object or an array) has contextLength and
// completionOptions.maxTokens; in config.yaml an entry of models[] has
// defaultCompletionOptions.contextLength and .maxTokens, and recent versions
// honour a model-level contextLength, which then wins.
//
// Continue's CLI (cn, npm @continuedev/cli) reads the same config.yaml (not
// config.json) but talks to Ollama through /v1/chat/completions, which
// cannot carry num_ctx, so it runs at the server's context whatever
// contextLength says. So in config.yaml the fix also makes each entry name
// the derived model (the same weights with the tuned num_ctx baked in,
// created on the server first): the IDE sends num_ctx = contextLength, the
// same value, so the model does not reload, and cn gets the tuned context
// from the model itself. It does so whether or not cn is installed: a
// derived model costs a manifest, the IDE behaves the same with it, cn is
// often run through npx or installed later (and would then run at the
// default context without a word), and undo restores the name.
// requestOptions.extraBodyProperties.options replaces the whole options
// object, num_ctx included, so ctxfit sets num_ctx there too when it exists.

func init() { register(continueClient{}) }

var _ Client = continueClient{}

type continueClient struct{}

// Name returns "Continue".
func (continueClient) Name() string { return "Continue" }

// Files returns config.yaml when it exists, else config.json, in
// $CONTINUE_GLOBAL_DIR or ~/.continue (%USERPROFILE%\.continue on Windows).
func (continueClient) Files(env Env) (Files, error) {
	dir := env.getenv("CONTINUE_GLOBAL_DIR")
	if dir == "" {
		var err error
		if dir, err = env.joinHome(".continue"); err != nil {
			return Files{}, err
		}
	}
	yml, jsn := filepath.Join(dir, "config.yaml"), filepath.Join(dir, "config.json")
	f := Files{Watch: []string{yml, jsn}}
	switch {
	case exists(yml):
		f.Config = yml
	case exists(jsn):
		f.Config = jsn
	}
	if ts := filepath.Join(dir, "config.ts"); exists(ts) {
		f.Overrides = append(f.Overrides, ts)
	}
	if env.WorkDir != "" {
		if rc := filepath.Join(env.WorkDir, ".continuerc.json"); exists(rc) {
			f.Overrides = append(f.Overrides, rc)
		}
	}
	if cn := env.lookPath("cn"); cn != "" {
		f.V1Readers = append(f.V1Readers, cn)
	}
	return f, nil
}

// continueEntry is one model entry of either format, as ctxfit reads it.
type continueEntry struct {
	where     string
	path      []any // in the decoded document
	title     string
	model     string
	context   int  // the contextLength that wins; 0 when unset
	maxTokens int  // 0 when unset
	options   bool // requestOptions.extraBodyProperties.options is set
	numCtx    int  // num_ctx in those options
	// notNumber says what the context key that wins holds when it is not
	// a whole number (Ask.NotNumber); "" otherwise.
	notNumber string
	obj       *hujson.Value
	node      *yaml.Node
}

// asks returns the context the entry sends to Ollama.
func (e continueEntry) asks() int {
	if e.options {
		return e.numCtx
	}
	return e.context
}

// continueEntries returns the entries that talk to Ollama on host.
// The notes name entries that Continue itself cannot read (see yamlEntries).
func continueEntries(path string, src []byte, host *ollamaHost) (*edit.JSON, *edit.YAML, []continueEntry, []string, error) {
	if isYAML(path) {
		d, err := edit.ParseYAML(src)
		if err != nil {
			return nil, nil, nil, nil, &ParseError{Path: path, Err: err}
		}
		entries, notes := yamlEntries(d, host)
		return nil, d, entries, notes, nil
	}
	d, err := edit.ParseJSON(src)
	if err != nil {
		return nil, nil, nil, nil, &ParseError{Path: path, Err: err}
	}
	if edit.Object(d.Root()) == nil {
		return nil, nil, nil, nil, &ParseError{Path: path, Err: fmt.Errorf("the top level is not an object")}
	}
	return d, nil, jsonEntries(d, host), nil, nil
}

func jsonEntries(d *edit.JSON, host *ollamaHost) []continueEntry {
	var out []continueEntry
	one := func(v *hujson.Value, where string, path []any) {
		if edit.Object(v) == nil || !host.matches(edit.Str(v, "provider"), edit.Str(v, "apiBase"), edit.Member(v, "apiBase") != nil) {
			return
		}
		e := continueEntry{
			where: where, path: path, obj: v,
			title:     edit.Str(v, "title"),
			model:     edit.Str(v, "model"),
			context:   edit.Num(v, "contextLength"),
			maxTokens: edit.Num(edit.Member(v, "completionOptions"), "maxTokens"),
		}
		e.notNumber = isNot("contextLength", edit.NotNumberJSON(v, "contextLength"))
		if opts := edit.Member(edit.Member(edit.Member(v, "requestOptions"), "extraBodyProperties"), "options"); edit.Object(opts) != nil {
			e.options, e.numCtx = true, edit.Num(opts, "num_ctx")
			e.notNumber = isNot("requestOptions.extraBodyProperties.options.num_ctx", edit.NotNumberJSON(opts, "num_ctx"))
		}
		out = append(out, e)
	}
	root := d.Root()
	if a := edit.Array(edit.Member(root, "models")); a != nil {
		for i := range a.Elements {
			one(&a.Elements[i], fmt.Sprintf("models[%d]", i), []any{"models", i})
		}
	}
	tab := edit.Member(root, "tabAutocompleteModel")
	if a := edit.Array(tab); a != nil {
		for i := range a.Elements {
			one(&a.Elements[i], fmt.Sprintf("tabAutocompleteModel[%d]", i), []any{"tabAutocompleteModel", i})
		}
	} else {
		one(tab, "tabAutocompleteModel", []any{"tabAutocompleteModel"})
	}
	return out
}

// yamlEntries reads the model entries of config.yaml as Continue's parser
// (the npm package yaml, YAML.parse with its defaults) does: as YAML 1.2,
// where "<<" is an ordinary key, unless the file starts with a %YAML 1.1
// directive, which turns merge keys on. An entry that names its provider
// and model only through a merge key that Continue does not apply is one
// Continue cannot read: it is not listed, and notes say so.
func yamlEntries(d *edit.YAML, host *ollamaHost) (out []continueEntry, notes []string) {
	_, models := edit.Get(edit.Mapping(d.Root()), "models")
	if models == nil || models.Kind != yaml.SequenceNode {
		return nil, nil
	}
	merge := yamlMergeKeys(d.Source())
	for i, m := range models.Content {
		if edit.Mapping(m) == nil {
			continue // a hub block ("uses: ...") or an alias
		}
		where := fmt.Sprintf("models[%d]", i)
		view := m // the entry as Continue reads it
		if k, _ := edit.Get(m, "<<"); k != nil {
			merged := mergedView(m, 0)
			base, _ := edit.Get(merged, "apiBase")
			ours := host.matches(edit.Text(merged, "provider"), edit.Text(merged, "apiBase"), base != nil)
			own, _ := edit.Get(m, "apiBase")
			if !merge && ours && !host.matches(edit.Text(m, "provider"), edit.Text(m, "apiBase"), own != nil) {
				notes = append(notes, fmt.Sprintf("%s %s: takes its provider and model from a YAML merge key (<<: *name), which Continue does not apply (it reads config.yaml as YAML 1.2, where << is an ordinary key), so Continue sees no Ollama model there and ctxfit leaves the entry alone; write its keys out, or start the file with %%YAML 1.1",
					where, label(edit.Text(m, "name"), edit.Text(merged, "model"), "")))
			}
			if merge {
				view = merged
			}
		}
		base, _ := edit.Get(view, "apiBase")
		if !host.matches(edit.Text(view, "provider"), edit.Text(view, "apiBase"), base != nil) {
			continue
		}
		_, dco := edit.Get(view, "defaultCompletionOptions")
		if dco != nil && dco.Kind == yaml.AliasNode {
			dco = dco.Alias
		}
		if merge {
			dco = mergedView(dco, 0)
		}
		e := continueEntry{
			where: where, path: []any{"models", i}, node: m,
			title:     edit.Text(view, "name"),
			model:     edit.Text(view, "model"),
			context:   edit.Integer(dco, "contextLength"),
			maxTokens: edit.Integer(dco, "maxTokens"),
		}
		e.notNumber = isNot("defaultCompletionOptions.contextLength", edit.NotNumberYAML(dco, "contextLength"))
		if k, _ := edit.Get(view, "contextLength"); k != nil {
			e.context = edit.Integer(view, "contextLength")
			e.notNumber = isNot("contextLength", edit.NotNumberYAML(view, "contextLength"))
		}
		_, ro := edit.Get(m, "requestOptions")
		_, eb := edit.Get(ro, "extraBodyProperties")
		if _, opts := edit.Get(eb, "options"); edit.Mapping(opts) != nil {
			e.options, e.numCtx = true, edit.Integer(opts, "num_ctx")
			e.notNumber = isNot("requestOptions.extraBodyProperties.options.num_ctx", edit.NotNumberYAML(opts, "num_ctx"))
		}
		out = append(out, e)
	}
	return out, notes
}

// yamlMergeKeys reports whether Continue's parser applies merge keys (<<)
// in src: only under a %YAML 1.1 directive, before the first document.
func yamlMergeKeys(src []byte) bool {
	for _, line := range strings.Split(string(src), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "%YAML"):
			return strings.TrimSpace(strings.TrimPrefix(line, "%YAML")) == "1.1" || strings.HasPrefix(strings.TrimSpace(strings.TrimPrefix(line, "%YAML")), "1.1 ")
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "%"):
		default:
			return false
		}
	}
	return false
}

// mergedView returns mapping m with its merge keys applied as YAML 1.1
// does: m's own keys win, then the mappings that "<<" names (an alias, or
// a sequence of them, earlier ones winning). It returns m itself when it
// has no merge key, and a new node holding m's nodes otherwise.
func mergedView(m *yaml.Node, depth int) *yaml.Node {
	if m != nil && m.Kind == yaml.AliasNode {
		m = m.Alias
	}
	k, src := edit.Get(m, "<<")
	if k == nil || depth > 10 {
		return m
	}
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: m.Line, Column: m.Column}
	has := map[string]bool{}
	addPairs := func(from *yaml.Node) {
		if from == nil || from.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(from.Content); i += 2 {
			key := from.Content[i]
			if key.Value == "<<" || has[key.Value] {
				continue
			}
			has[key.Value] = true
			out.Content = append(out.Content, key, from.Content[i+1])
		}
	}
	addPairs(m)
	var sources []*yaml.Node
	if src.Kind == yaml.SequenceNode {
		sources = src.Content
	} else {
		sources = []*yaml.Node{src}
	}
	for _, s := range sources {
		addPairs(mergedView(s, depth+1))
	}
	return out
}

func isYAML(path string) bool {
	ext := strings.ToLower(filepath.Ext(path))
	return ext == ".yaml" || ext == ".yml"
}

// continueDefaultMaxTokens is the maxTokens Continue uses when an entry sets
// none (DEFAULT_MAX_TOKENS in core/llm/constants.ts).
const continueDefaultMaxTokens = 4096

// Edit sets contextLength to the tuned value in every entry for an Ollama
// model on t.Host that has a tuned value, and maxTokens as
// continueWantMaxTokens says: lowered to half of it (a quarter when
// Continue's CLI reads config.yaml) where it is larger, kept where smaller.
func (c continueClient) Edit(in Input, t Target) (Result, error) {
	jd, yd, entries, notes, err := continueEntries(in.Path, in.Src, newOllamaHost(t))
	if err != nil {
		return Result{}, err
	}
	res := Result{Out: in.Src, Warnings: notes}
	var titles []string // of the entries ctxfit keeps fixed, changed or not
	for _, e := range entries {
		n, ok := t.tuned(e.model)
		if !ok {
			continue
		}
		titles = append(titles, e.title)
		if e.notNumber != "" {
			res.Warnings = append(res.Warnings, notNumberWarning(e.where, e.title, e.model, e.notNumber, n))
			continue
		}
		model := e.model
		if yd != nil && len(in.V1Readers) > 0 { // Continue's CLI reads only config.yaml and sends no num_ctx
			model = t.derived(e.model, n)
		} else {
			n = in.keepContext(e.asks(), n)
		}
		changed, err := c.editEntry(jd, yd, e, n, continueWantMaxTokens(in, e.maxTokens, n), model)
		if err != nil {
			res.Warnings = append(res.Warnings, fmt.Sprintf("%s %s: left as it is, because %v; set contextLength %d (and maxTokens at most %d) by hand",
				e.where, label(e.title, e.model, ""), err, n, continueMaxTokens(in, n)))
			continue
		}
		if !changed {
			continue
		}
		if e.options && e.numCtx != n {
			res.Warnings = append(res.Warnings, fmt.Sprintf("%s %s: requestOptions.extraBodyProperties.options replaces Continue's options, so ctxfit set num_ctx %d there too",
				e.where, label(e.title, e.model, ""), n))
		}
		newMax := e.maxTokens
		if m := continueWantMaxTokens(in, e.maxTokens, n); m > 0 {
			newMax = m
		}
		ch := Change{Where: e.where, Title: e.title, Model: e.model,
			OldContext: e.context, NewContext: n, OldMaxTokens: e.maxTokens, NewMaxTokens: newMax}
		if model != e.model {
			ch.Derived = model
		}
		res.Changes = append(res.Changes, ch)
	}
	if len(titles) > 0 {
		res.Warnings = append(res.Warnings, continueOverrides(in, titles)...)
	}
	if len(res.Changes) == 0 {
		return res, nil
	}
	if jd != nil {
		res.Out, res.spans, err = jd.Finish()
	} else {
		res.Out, res.spans, err = yd.Finish()
	}
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", in.Path, err)
	}
	return res, nil
}

// editEntry queues the edits of one entry, all or none, and reports whether
// there were any: the context values n, maxTokens unless it is 0 (leave
// the limit as it is) and, when model differs from the entry's, its model
// name.
func (continueClient) editEntry(jd *edit.JSON, yd *edit.YAML, e continueEntry, n, maxTokens int, model string) (bool, error) {
	type keyEdit struct {
		keys  []string
		value int
	}
	var (
		edits    []keyEdit
		current  func(keys ...string) (int, bool)
		settable func(keys ...string) error
		set      func(value any, keys ...string) error
	)
	if jd != nil {
		edits = []keyEdit{{[]string{"contextLength"}, n}}
		if maxTokens > 0 {
			edits = append(edits, keyEdit{[]string{"completionOptions", "maxTokens"}, maxTokens})
		}
		current = func(k ...string) (int, bool) { return edit.NumAt(e.obj, k...) }
		settable = func(k ...string) error { return jd.Settable(e.obj, k...) }
		set = func(v any, k ...string) error { return jd.Set(e.obj, e.path, v, k...) }
	} else {
		edits = []keyEdit{{[]string{"defaultCompletionOptions", "contextLength"}, n}}
		if maxTokens > 0 {
			edits = append(edits, keyEdit{[]string{"defaultCompletionOptions", "maxTokens"}, maxTokens})
		}
		if k, _ := edit.Get(e.node, "contextLength"); k != nil {
			edits = append(edits, keyEdit{[]string{"contextLength"}, n})
		}
		current = func(k ...string) (int, bool) { return edit.IntegerAt(e.node, k...) }
		settable = func(k ...string) error { return yd.Settable(e.node, k...) }
		set = func(v any, k ...string) error { return yd.Set(e.node, e.path, v, k...) }
	}
	if e.options {
		edits = append(edits, keyEdit{[]string{"requestOptions", "extraBodyProperties", "options", "num_ctx"}, n})
	}
	todo := edits[:0]
	for _, ed := range edits {
		if v, ok := current(ed.keys...); ok && v == ed.value {
			continue
		}
		if err := settable(ed.keys...); err != nil {
			return false, err
		}
		todo = append(todo, ed)
	}
	rename := model != e.model
	if rename {
		if err := settable("model"); err != nil {
			return false, err
		}
	}
	for _, ed := range todo {
		if err := set(ed.value, ed.keys...); err != nil {
			return false, err
		}
	}
	if rename {
		if err := set(model, "model"); err != nil {
			return false, err
		}
	}
	return len(todo) > 0 || rename, nil
}

// continueMaxTokens is the largest maxTokens the fix leaves beside a
// context of n: half of it (MaxTokens), or a quarter in config.yaml when
// Continue's CLI reads it too. cn refuses to run ("max_tokens is larger
// than context_length") unless contextLength − maxTokens −
// min(max(maxTokens, 0.2 × (contextLength − maxTokens)), 15000) > 0 (its
// auto-compaction threshold, src/compaction.ts in @continuedev/cli 1.5.47),
// which half fails for every context up to 30000 and a quarter (or any
// smaller value) meets for all.
func continueMaxTokens(in Input, n int) int {
	if len(in.V1Readers) > 0 && isYAML(in.Path) {
		return n / 4
	}
	return MaxTokens(n)
}

// continueWantMaxTokens is the maxTokens the fix writes into an entry that
// has cur (0 when unset) beside a context of n; 0 leaves it as it is.
// WantMaxTokens's rule with continueMaxTokens as the ceiling: a larger
// limit, or an unset one while the default of a program that reads the
// file is larger, becomes the ceiling; a smaller explicit one is kept.
func continueWantMaxTokens(in Input, cur, n int) int {
	return capMaxTokens(cur, continueDefault(in, n), continueMaxTokens(in, n))
}

// continueDefault is the largest maxTokens that the programs reading the
// config use for an entry that sets none beside a context of n: the IDE's
// continueDefaultMaxTokens, and in config.yaml with Continue's CLI on the
// PATH also cn's, ceil(min(0.35 × contextLength, 64000)) (getModelMaxTokens
// in @continuedev/cli 1.5.47).
func continueDefault(in Input, n int) int {
	if len(in.V1Readers) > 0 && isYAML(in.Path) {
		return max(continueDefaultMaxTokens, min((35*n+99)/100, 64000))
	}
	return continueDefaultMaxTokens
}

// continueOverrides warns about the files that can undo the fix: config.ts,
// and a .continuerc.json that sets the values for one of titles.
func continueOverrides(in Input, titles []string) []string {
	paths := make([]string, 0, len(in.Overrides))
	for p := range in.Overrides {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var warns []string
	for _, path := range paths {
		src := in.Overrides[path]
		if filepath.Base(path) == "config.ts" {
			warns = append(warns, fmt.Sprintf("%s can change the models after Continue reads its config; make sure it does not set contextLength", path))
			continue
		}
		d, err := edit.ParseJSON(src)
		if err != nil {
			warns = append(warns, fmt.Sprintf("%s does not parse (%v); Continue may ignore it or fail", path, err))
			continue
		}
		a := edit.Array(edit.Member(d.Root(), "models"))
		if a == nil {
			continue
		}
		for i := range a.Elements {
			v := &a.Elements[i]
			if edit.Member(v, "contextLength") == nil && edit.Member(edit.Member(v, "completionOptions"), "maxTokens") == nil {
				continue
			}
			if title := edit.Str(v, "title"); title != "" && slices.Contains(titles, title) {
				warns = append(warns, fmt.Sprintf("%s sets contextLength or maxTokens for %q, which beats the tuned values in that workspace; remove them there", path, title))
			}
		}
	}
	return warns
}

// Asks reports what each Ollama entry for t.Host sends as num_ctx.
func (c continueClient) Asks(in Input, t Target) ([]Ask, error) {
	_, _, entries, _, err := continueEntries(in.Path, in.Src, newOllamaHost(t))
	if err != nil {
		return nil, err
	}
	asks := make([]Ask, 0, len(entries))
	for _, e := range entries {
		n, _ := t.tuned(e.model)
		a := Ask{Client: c.Name(), Path: in.Path, Where: e.where, Title: e.title,
			Model: e.model, Context: e.asks(), MaxTokens: e.maxTokens, Tuned: n, WantMaxTokens: continueWantMaxTokens(in, e.maxTokens, n), NotNumber: e.notNumber}
		if n > 0 && isYAML(in.Path) && len(in.V1Readers) > 0 {
			a.Derived = t.derived(e.model, n)
		} else {
			a.kept = n > 0 && in.keepContext(a.Context, n) != n
			a.WantMaxTokens = continueWantMaxTokens(in, e.maxTokens, in.keepContext(a.Context, n))
		}
		asks = append(asks, a)
	}
	return asks, nil
}
