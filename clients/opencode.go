package clients

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/ctxfit/ctxfit/clients/edit"
)

// opencode (npm opencode-ai) keeps its settings in opencode.json or
// opencode.jsonc (JSON with comments) under ~/.config/opencode, or in the
// file $OPENCODE_CONFIG names; a project's opencode.json is merged over it.
// A local Ollama is a provider.<id> with options.baseURL ending in /v1 (npm
// @ai-sdk/openai-compatible), and each model it runs needs an entry
// provider.<id>.models.<name> with limit.context and limit.output; the
// entry's id, when set, is the model name sent to the server, else its key.
// opencode calls /v1/chat/completions with max_tokens = limit.output and no
// context field: the server runs the model at its own num_ctx.
//
// ctxfit sets each entry's id to the derived model (same weights, the tuned
// num_ctx), limit.context to the tuned value and limit.output to the
// entry's own when it fits in half, else to half. The key, which the
// top-level "model": "<provider>/<key>" selects, stays.

func init() { register(opencodeClient{}) }

var _ Client = opencodeClient{}

type opencodeClient struct{}

func (opencodeClient) Name() string { return "opencode" }

// Files returns $OPENCODE_CONFIG, else opencode.jsonc or opencode.json in
// $XDG_CONFIG_HOME/opencode or ~/.config/opencode (opencode uses that folder
// on macOS and Windows too). A project's opencode.json(c) is an override.
func (opencodeClient) Files(env Env) (Files, error) {
	var f Files
	if p := env.getenv("OPENCODE_CONFIG"); p != "" {
		f.Watch = []string{p}
		if exists(p) {
			f.Config = p
		}
	} else {
		dir, err := env.configDir()
		if err != nil {
			return Files{}, err
		}
		jsonc, jsn := filepath.Join(dir, "opencode", "opencode.jsonc"), filepath.Join(dir, "opencode", "opencode.json")
		f.Watch = []string{jsonc, jsn}
		switch {
		case exists(jsonc):
			f.Config = jsonc
		case exists(jsn):
			f.Config = jsn
		}
	}
	if env.WorkDir != "" {
		for _, name := range []string{"opencode.json", "opencode.jsonc"} {
			if p := filepath.Join(env.WorkDir, name); exists(p) && p != f.Config {
				f.Overrides = append(f.Overrides, p)
			}
		}
	}
	return f, nil
}

// opencodeEntries returns the model entries of the providers on t.Host's
// /v1 API.
func opencodeEntries(path string, src []byte, host *ollamaHost) (*edit.JSON, []v1Entry, error) {
	jd, err := edit.ParseJSON(src)
	if err != nil {
		return nil, nil, &ParseError{Path: path, Err: edit.Quiet(err)}
	}
	if edit.Object(jd.Root()) == nil {
		return nil, nil, &ParseError{Path: path, Err: errors.New("the top level is not an object")}
	}
	var out []v1Entry
	for _, p := range members(edit.Member(jd.Root(), "provider")) {
		if !host.matchesV1(edit.Str(edit.Member(p.val, "options"), "baseURL")) {
			continue
		}
		for _, m := range members(edit.Member(p.val, "models")) {
			if edit.Object(m.val) == nil {
				continue
			}
			model := edit.Str(m.val, "id")
			if model == "" {
				model = m.key
			}
			ctx, _ := edit.NumAt(m.val, "limit", "context")
			output, _ := edit.NumAt(m.val, "limit", "output")
			out = append(out, v1Entry{
				where: fmt.Sprintf("provider.%s.models.%s", p.key, m.key),
				path:  []any{"provider", p.key, "models", m.key},
				obj:   m.val, title: edit.Str(m.val, "name"), model: model,
				context: ctx, output: output,
				notNumber: isNot("limit.context", edit.NotNumberJSON(m.val, "limit", "context")),
				sets: func(n int, model string) []jsonSet {
					return []jsonSet{
						{keys: []string{"id"}, value: model},
						{keys: []string{"limit", "context"}, value: n},
						{keys: []string{"limit", "output"}, value: outputReserve(output, n)},
					}
				},
			})
		}
	}
	return jd, out, nil
}

// Edit selects the derived model in every entry on t.Host's /v1 API whose
// model has a tuned value, and sets its limits to that value.
func (c opencodeClient) Edit(in Input, t Target) (Result, error) {
	jd, entries, err := opencodeEntries(in.Path, in.Src, newOllamaHost(t))
	if err != nil {
		return Result{}, err
	}
	return editV1JSON(c.Name(), in, t, jd, entries, nil, "limit or id")
}

// Asks reports each entry's limits, its tuned value and the derived model
// its fix selects.
func (c opencodeClient) Asks(in Input, t Target) ([]Ask, error) {
	_, entries, err := opencodeEntries(in.Path, in.Src, newOllamaHost(t))
	if err != nil {
		return nil, err
	}
	return v1Asks(c.Name(), in.Path, entries, t), nil
}

// redactDiff hides every value of a dry run's diff but the ones ctxfit
// writes: provider options can hold API keys.
func (opencodeClient) redactDiff(diff string) string {
	return redactJSONDiff(diff, map[string]bool{"id": true, "context": true, "output": true})
}

var _ diffRedacter = opencodeClient{}
