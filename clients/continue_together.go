package clients

import (
	"slices"
	"strings"

	"github.com/ctxfit/ctxfit/clients/edit"

	"go.yaml.in/yaml/v3"
)

var _ Together = continueClient{}

// Uses reports Continue's models by role. config.json: every models[] entry
// is a chat model (the user picks one), tabAutocompleteModel the
// autocomplete model, embeddingsProvider the embeddings model. config.yaml:
// each model's roles (chat, edit, apply and summarize by default, all of
// them served by the selected chat model; autocomplete; embed; rerank).
// An embeddings request sends no num_ctx, so the embed model's context is
// 0: the model's own.
func (c continueClient) Uses(in Input, t Target) ([]Use, error) {
	host := newOllamaHost(t)
	_, _, entries, _, err := continueEntries(in.Path, in.Src, host)
	if err != nil {
		return nil, err
	}
	var uses []Use
	for _, e := range entries {
		ctx := e.asks()
		if e.node == nil {
			role := "chat"
			if strings.HasPrefix(e.where, "tabAutocompleteModel") {
				role = "autocomplete"
			}
			uses = append(uses, Use{Role: role, Model: e.model, Context: ctx})
			continue
		}
		for _, r := range continueRoles(e.node) {
			if r == "embed" {
				ctx = 0
			}
			uses = append(uses, Use{Role: r, Model: e.model, Context: ctx})
		}
	}
	if !isYAML(in.Path) {
		d, err := edit.ParseJSON(in.Src)
		if err == nil {
			if v := edit.Member(d.Root(), "embeddingsProvider"); edit.Object(v) != nil &&
				host.matches(edit.Str(v, "provider"), edit.Str(v, "apiBase"), edit.Member(v, "apiBase") != nil) && edit.Str(v, "model") != "" {
				uses = append(uses, Use{Role: "embed", Model: edit.Str(v, "model")})
			}
		}
	}
	return uses, nil
}

// continueRoles returns the roles of a config.yaml model as Uses names
// them, each once: chat for chat, edit, apply and summarize.
func continueRoles(m *yaml.Node) []string {
	_, seq := edit.Get(m, "roles")
	var names []string
	if seq != nil && seq.Kind == yaml.SequenceNode {
		for _, r := range seq.Content {
			names = append(names, strings.TrimSpace(r.Value))
		}
	} else {
		names = []string{"chat"} // Continue's default: chat, edit, apply, summarize
	}
	var out []string
	for _, n := range names {
		switch n {
		case "edit", "apply", "summarize":
			n = "chat"
		case "":
			continue
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}
