package clients

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/ctxfit/ctxfit/clients/edit"
)

// VS Code's Copilot Chat lets users bring their own models in
// chatLanguageModels.json, in Code's User folder: a list of provider groups
// {name, vendor, apiKey?, models: [...]}. A custom OpenAI-compatible group
// (vendor "customendpoint", or "customoai" in older builds) lists models
// {id, name, url, toolCalling, maxInputTokens, maxOutputTokens} (newer
// builds also read contextWindow); the model's url is the /v1 endpoint, and
// its id the model name sent. Copilot budgets prompts with maxInputTokens
// and asks for at most maxOutputTokens; the server runs the model at its
// own num_ctx. The "ollama" vendor group (VS Code's built-in Ollama
// provider) holds no per-model values: it budgets with the model's trained
// context, so only the derived model helps there.
//
// ctxfit sets, in every custom model on the watched server's /v1 API with
// a tuned value, id to the derived model, maxOutputTokens to the model's
// own when it fits in half of the tuned value (else half), maxInputTokens
// to the rest, and contextWindow, where present, to the tuned value.

func init() { register(copilotClient{}) }

var _ Client = copilotClient{}

type copilotClient struct{}

func (copilotClient) Name() string { return "Copilot" }

// Files returns chatLanguageModels.json in Code's User folder:
// $XDG_CONFIG_HOME/Code/User or ~/.config/Code/User on Linux,
// ~/Library/Application Support/Code/User on macOS, %APPDATA%\Code\User on
// Windows.
func (copilotClient) Files(env Env) (Files, error) {
	var dir string
	var err error
	switch env.GOOS {
	case "windows":
		if d := env.getenv("APPDATA"); d != "" {
			dir = filepath.Join(d, "Code", "User")
		} else {
			dir, err = env.joinHome("AppData", "Roaming", "Code", "User")
		}
	case "darwin":
		dir, err = env.joinHome("Library", "Application Support", "Code", "User")
	default:
		if dir, err = env.configDir(); err == nil {
			dir = filepath.Join(dir, "Code", "User")
		}
	}
	if err != nil {
		return Files{}, err
	}
	path := filepath.Join(dir, "chatLanguageModels.json")
	f := Files{Watch: []string{path}}
	if exists(path) {
		f.Config = path
	}
	return f, nil
}

// copilotEntries returns the custom models on t.Host's /v1 API, and the
// names of the groups that use VS Code's built-in Ollama provider.
func copilotEntries(path string, src []byte, host *ollamaHost) (*edit.JSON, []v1Entry, []string, error) {
	jd, err := edit.ParseJSON(src)
	if err != nil {
		return nil, nil, nil, &ParseError{Path: path, Err: edit.Quiet(err)}
	}
	groups := edit.Array(jd.Root())
	if groups == nil {
		return nil, nil, nil, &ParseError{Path: path, Err: errors.New("the top level is not a list of model providers")}
	}
	var out []v1Entry
	var builtin []string
	for i := range groups.Elements {
		g := &groups.Elements[i]
		if strings.EqualFold(edit.Str(g, "vendor"), "ollama") {
			if host.matches("ollama", edit.Str(g, "url"), edit.Member(g, "url") != nil) {
				builtin = append(builtin, edit.Str(g, "name"))
			}
			continue
		}
		models := edit.Array(edit.Member(g, "models"))
		if models == nil {
			continue
		}
		for j := range models.Elements {
			m := &models.Elements[j]
			if edit.Object(m) == nil || !host.matchesV1(edit.Str(m, "url")) {
				continue
			}
			output := edit.Num(m, "maxOutputTokens")
			in := edit.Num(m, "maxInputTokens")
			window := edit.Member(m, "contextWindow") != nil
			ctx := edit.Num(m, "contextWindow")
			notNumber := isNot("contextWindow", edit.NotNumberJSON(m, "contextWindow"))
			if !window {
				ctx = in + output
				notNumber = isNot("maxInputTokens", edit.NotNumberJSON(m, "maxInputTokens"))
			}
			if notNumber != "" {
				ctx = 0 // unknown
			}
			out = append(out, v1Entry{
				where: fmt.Sprintf("[%d].models[%d]", i, j),
				path:  []any{i, "models", j},
				obj:   m, title: edit.Str(m, "name"), model: edit.Str(m, "id"),
				context: ctx, output: output, notNumber: notNumber,
				sets: func(n int, model string) []jsonSet {
					o := outputReserve(output, n)
					s := []jsonSet{
						{keys: []string{"id"}, value: model},
						{keys: []string{"maxInputTokens"}, value: n - o},
						{keys: []string{"maxOutputTokens"}, value: o},
					}
					if window {
						s = append(s, jsonSet{keys: []string{"contextWindow"}, value: n})
					}
					return s
				},
			})
		}
	}
	return jd, out, builtin, nil
}

// builtinNote warns about groups of VS Code's built-in Ollama provider.
func builtinNote(groups []string) []string {
	var warns []string
	for _, g := range groups {
		warns = append(warns, fmt.Sprintf("%q uses VS Code's built-in Ollama provider, which budgets with each model's trained context and has no value ctxfit can set; pick the copy that `ctxfit fix ollama` creates there", g))
	}
	return warns
}

// Edit fixes every custom model on t.Host's /v1 API with a tuned value.
func (c copilotClient) Edit(in Input, t Target) (Result, error) {
	jd, entries, builtin, err := copilotEntries(in.Path, in.Src, newOllamaHost(t))
	if err != nil {
		return Result{}, err
	}
	return editV1JSON(c.Name(), in, t, jd, entries, builtinNote(builtin), "maxInputTokens or maxOutputTokens")
}

// Asks reports each custom model's budget (maxInputTokens +
// maxOutputTokens, or contextWindow), its tuned value and the derived
// model its fix selects.
func (c copilotClient) Asks(in Input, t Target) ([]Ask, error) {
	_, entries, _, err := copilotEntries(in.Path, in.Src, newOllamaHost(t))
	if err != nil {
		return nil, err
	}
	return v1Asks(c.Name(), in.Path, entries, t), nil
}

// redactDiff hides the values of a dry run's diff but the ones ctxfit
// writes: the file may hold API keys of other providers.
func (copilotClient) redactDiff(diff string) string {
	return redactJSONDiff(diff, map[string]bool{"id": true, "maxInputTokens": true, "maxOutputTokens": true, "contextWindow": true})
}

var _ diffRedacter = copilotClient{}
