package clients

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/ctxfit/ctxfit/clients/edit"
)

// Goose (Block's agent) keeps its settings as top-level keys of config.yaml:
// ~/.config/goose ($XDG_CONFIG_HOME/goose; %APPDATA%\Block\goose\config on
// Windows). GOOSE_PROVIDER: ollama with GOOSE_MODEL selects a model on the
// server OLLAMA_HOST names (default localhost:11434), and
// GOOSE_CONTEXT_LIMIT is the context Goose plans with; in lead/worker mode
// GOOSE_LEAD_PROVIDER (default GOOSE_PROVIDER), GOOSE_LEAD_MODEL and
// GOOSE_LEAD_CONTEXT_LIMIT do the same for the lead model. Its Ollama
// provider posts to v1/chat/completions and puts num_ctx inside "options",
// which that API drops: the server runs the model at its own num_ctx.
//
// ctxfit sets GOOSE_MODEL (and GOOSE_LEAD_MODEL) to the derived model and
// the matching context limit to the tuned value. Environment variables of
// the same names beat the file; ctxfit cannot see the ones a shell sets.

func init() { register(gooseClient{}) }

var _ Client = gooseClient{}

type gooseClient struct{}

func (gooseClient) Name() string { return "Goose" }

// Files returns Goose's config.yaml.
func (gooseClient) Files(env Env) (Files, error) {
	var dir string
	var err error
	if env.GOOS == "windows" {
		if d := env.getenv("APPDATA"); d != "" {
			dir = filepath.Join(d, "Block", "goose", "config")
		} else {
			dir, err = env.joinHome("AppData", "Roaming", "Block", "goose", "config")
		}
	} else if dir, err = env.configDir(); err == nil {
		dir = filepath.Join(dir, "goose")
	}
	if err != nil {
		return Files{}, err
	}
	path := filepath.Join(dir, "config.yaml")
	f := Files{Watch: []string{path}}
	if exists(path) {
		f.Config = path
	}
	return f, nil
}

// gooseEntry is the main or the lead model.
type gooseEntry struct {
	where, modelKey, limitKey string
	model                     string
	limit                     int
	notNumber                 string // what limitKey holds when it is not a number (Ask.NotNumber)
}

// gooseEntries returns the models Goose runs on t.Host.
func gooseEntries(path string, src []byte, host *ollamaHost) (*edit.YAML, []gooseEntry, error) {
	yd, err := edit.ParseYAML(src)
	if err != nil {
		return nil, nil, &ParseError{Path: path, Err: err}
	}
	root := yd.Root()
	if root == nil || (root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null") {
		return yd, nil, nil
	}
	if edit.Mapping(root) == nil {
		return nil, nil, &ParseError{Path: path, Err: errors.New("the top level is not a mapping of settings")}
	}
	k, _ := edit.Get(root, "OLLAMA_HOST")
	if !host.matches("ollama", edit.Text(root, "OLLAMA_HOST"), k != nil) {
		return yd, nil, nil
	}
	provider := edit.Text(root, "GOOSE_PROVIDER")
	var out []gooseEntry
	if strings.EqualFold(provider, "ollama") && edit.Text(root, "GOOSE_MODEL") != "" {
		out = append(out, gooseEntry{where: "GOOSE_MODEL", modelKey: "GOOSE_MODEL", limitKey: "GOOSE_CONTEXT_LIMIT",
			model: edit.Text(root, "GOOSE_MODEL"), limit: edit.Integer(root, "GOOSE_CONTEXT_LIMIT"),
			notNumber: isNot("GOOSE_CONTEXT_LIMIT", edit.NotNumberYAML(root, "GOOSE_CONTEXT_LIMIT"))})
	}
	lead := edit.Text(root, "GOOSE_LEAD_PROVIDER")
	if lead == "" {
		lead = provider
	}
	if strings.EqualFold(lead, "ollama") && edit.Text(root, "GOOSE_LEAD_MODEL") != "" {
		out = append(out, gooseEntry{where: "GOOSE_LEAD_MODEL", modelKey: "GOOSE_LEAD_MODEL", limitKey: "GOOSE_LEAD_CONTEXT_LIMIT",
			model: edit.Text(root, "GOOSE_LEAD_MODEL"), limit: edit.Integer(root, "GOOSE_LEAD_CONTEXT_LIMIT"),
			notNumber: isNot("GOOSE_LEAD_CONTEXT_LIMIT", edit.NotNumberYAML(root, "GOOSE_LEAD_CONTEXT_LIMIT"))})
	}
	return yd, out, nil
}

// Edit selects the derived model and sets the context limit for the main
// and the lead model when they run on t.Host and have a tuned value.
func (c gooseClient) Edit(in Input, t Target) (Result, error) {
	yd, entries, err := gooseEntries(in.Path, in.Src, newOllamaHost(t))
	if err != nil {
		return Result{}, err
	}
	res := Result{Out: in.Src}
	root := yd.Root()
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
		if want == e.model && e.limit == n {
			continue
		}
		for _, key := range []string{e.modelKey, e.limitKey} {
			if err = yd.Settable(root, key); err != nil {
				break
			}
		}
		if err != nil {
			res.Warnings = append(res.Warnings, fmt.Sprintf("%s: left as it is, because %v; set %s: %s and %s: %d by hand", e.where, err, e.modelKey, want, e.limitKey, n))
			continue
		}
		if want != e.model {
			yd.Set(root, nil, want, e.modelKey)
		}
		if e.limit != n {
			yd.Set(root, nil, n, e.limitKey)
		}
		ch := Change{Where: e.where, Model: e.model, OldContext: e.limit, NewContext: n}
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
	res.Warnings = append(res.Warnings, "Goose reads its config when a session starts, and GOOSE_MODEL or GOOSE_CONTEXT_LIMIT set in the environment beat the file: restart running sessions")
	if res.Out, res.spans, err = yd.Finish(); err != nil {
		return Result{}, fmt.Errorf("%s: %w", in.Path, err)
	}
	return res, nil
}

// Asks reports the context limit of the main and the lead model, their
// tuned value and the derived model the fix selects.
func (c gooseClient) Asks(in Input, t Target) ([]Ask, error) {
	_, entries, err := gooseEntries(in.Path, in.Src, newOllamaHost(t))
	if err != nil {
		return nil, err
	}
	var asks []Ask
	for _, e := range entries {
		n, _ := t.tuned(e.model)
		a := Ask{Client: c.Name(), Path: in.Path, Where: e.where, Model: e.model, Context: e.limit, Tuned: n, NotNumber: e.notNumber}
		if n > 0 {
			a.Derived = t.derived(e.model, n)
		}
		asks = append(asks, a)
	}
	return asks, nil
}
