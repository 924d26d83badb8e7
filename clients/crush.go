package clients

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/tailscale/hujson"

	"github.com/ctxfit/ctxfit/clients/edit"
)

// Crush (Charm's coding agent) reads crush.json: ~/.config/crush/crush.json
// ($XDG_CONFIG_HOME/crush, %LOCALAPPDATA%\crush on Windows), with a
// project's .crush.json or crush.json merged over it. A local Ollama is a
// providers.<id> {type: "openai" or "openai-compat", base_url ending in
// /v1, models: [{id, name, context_window, default_max_tokens}]}, and
// models.large / models.small {model, provider} select the models it runs.
// Crush calls /v1/chat/completions with max_tokens = default_max_tokens and
// no context field.
//
// ctxfit sets each model's id to the derived model (and the selections in
// models.large / models.small that named it), context_window to the tuned
// value and default_max_tokens to the model's own when it fits in half,
// else half.

func init() { register(crushClient{}) }

var _ Client = crushClient{}

type crushClient struct{}

func (crushClient) Name() string { return "Crush" }

// Files returns the user's crush.json; a project's .crush.json or
// crush.json is an override.
func (crushClient) Files(env Env) (Files, error) {
	var dir string
	var err error
	if env.GOOS == "windows" {
		if d := env.getenv("LOCALAPPDATA"); d != "" {
			dir = d
		} else {
			dir, err = env.joinHome("AppData", "Local")
		}
	} else {
		dir, err = env.configDir()
	}
	if err != nil {
		return Files{}, err
	}
	path := filepath.Join(dir, "crush", "crush.json")
	f := Files{Watch: []string{path}}
	if exists(path) {
		f.Config = path
	}
	if env.WorkDir != "" {
		for _, name := range []string{".crush.json", "crush.json"} {
			if p := filepath.Join(env.WorkDir, name); exists(p) && p != path {
				f.Overrides = append(f.Overrides, p)
			}
		}
	}
	return f, nil
}

// crushEntries returns the models of the providers on t.Host's /v1 API.
func crushEntries(path string, src []byte, host *ollamaHost) (*edit.JSON, []v1Entry, error) {
	jd, err := edit.ParseJSON(src)
	if err != nil {
		return nil, nil, &ParseError{Path: path, Err: edit.Quiet(err)}
	}
	root := jd.Root()
	if edit.Object(root) == nil {
		return nil, nil, &ParseError{Path: path, Err: errors.New("the top level is not an object")}
	}
	type pick struct {
		obj  *hujson.Value
		path []any
	}
	picks := map[[2]string][]pick{} // by provider and model
	for _, m := range members(edit.Member(root, "models")) {
		key := [2]string{edit.Str(m.val, "provider"), edit.Str(m.val, "model")}
		picks[key] = append(picks[key], pick{m.val, []any{"models", m.key}})
	}
	var out []v1Entry
	for _, p := range members(edit.Member(root, "providers")) {
		if !host.matchesV1(edit.Str(p.val, "base_url")) {
			continue
		}
		models := edit.Array(edit.Member(p.val, "models"))
		if models == nil {
			continue
		}
		for j := range models.Elements {
			m := &models.Elements[j]
			if edit.Object(m) == nil {
				continue
			}
			id := edit.Str(m, "id")
			output := edit.Num(m, "default_max_tokens")
			selected := picks[[2]string{p.key, id}]
			out = append(out, v1Entry{
				where: fmt.Sprintf("providers.%s.models[%d]", p.key, j),
				path:  []any{"providers", p.key, "models", j},
				obj:   m, title: edit.Str(m, "name"), model: id,
				context: edit.Num(m, "context_window"), output: output,
				notNumber: isNot("context_window", edit.NotNumberJSON(m, "context_window")),
				sets: func(n int, model string) []jsonSet {
					s := []jsonSet{
						{keys: []string{"id"}, value: model},
						{keys: []string{"context_window"}, value: n},
						{keys: []string{"default_max_tokens"}, value: outputReserve(output, n)},
					}
					for _, sel := range selected {
						s = append(s, jsonSet{obj: sel.obj, path: sel.path, keys: []string{"model"}, value: model})
					}
					return s
				},
			})
		}
	}
	return jd, out, nil
}

// Edit fixes every model on t.Host's /v1 API with a tuned value.
func (c crushClient) Edit(in Input, t Target) (Result, error) {
	jd, entries, err := crushEntries(in.Path, in.Src, newOllamaHost(t))
	if err != nil {
		return Result{}, err
	}
	return editV1JSON(c.Name(), in, t, jd, entries, nil, "context_window")
}

// Asks reports each model's context_window, its tuned value and the
// derived model its fix selects.
func (c crushClient) Asks(in Input, t Target) ([]Ask, error) {
	_, entries, err := crushEntries(in.Path, in.Src, newOllamaHost(t))
	if err != nil {
		return nil, err
	}
	return v1Asks(c.Name(), in.Path, entries, t), nil
}

// redactDiff hides every value of a dry run's diff but the ones ctxfit
// writes: providers carry API keys.
func (crushClient) redactDiff(diff string) string {
	return redactJSONDiff(diff, map[string]bool{"id": true, "model": true, "context_window": true, "default_max_tokens": true})
}

var _ diffRedacter = crushClient{}
