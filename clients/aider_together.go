package clients

import (
	"path/filepath"

	"go.yaml.in/yaml/v3"
)

var _ Together = aiderClient{}

// Uses reports the models the .aider.conf.yml files among in.Overrides name
// (model, weak-model, editor-model: aider's main, weak and editor models,
// which it uses in one session), each with the num_ctx its settings entry
// sets. When several files set a key, the last in path order wins.
func (c aiderClient) Uses(in Input, t Target) ([]Use, error) {
	host := newOllamaHost(t)
	defaultBase := aiderAPIBase(in)
	a, err := parseAider(in.Path, in.Src, host, defaultBase)
	if err != nil {
		return nil, err
	}
	if !host.matchesAider(defaultBase) {
		return nil, nil // the models .aider.conf.yml names talk to another server
	}
	roles := map[string]string{}
	for _, path := range sortedKeys(in.Overrides) {
		if filepath.Base(path) != aiderConfName {
			continue
		}
		var conf map[string]any
		if yaml.Unmarshal(in.Overrides[path], &conf) != nil {
			continue
		}
		for _, k := range []string{"model", "weak-model", "editor-model"} {
			if name, _ := conf[k].(string); name != "" {
				roles[k] = name
			}
		}
	}
	var uses []Use
	for _, k := range []string{"model", "weak-model", "editor-model"} {
		model, ok := aiderModel(roles[k])
		if !ok {
			continue
		}
		ctx := a.global
		for _, e := range a.entries {
			if e.name == roles[k] && ctx == 0 {
				ctx = e.numCtx
			}
		}
		role := map[string]string{"model": "main", "weak-model": "weak", "editor-model": "editor"}[k]
		uses = append(uses, Use{Role: role, Model: model, Context: ctx})
	}
	return uses, nil
}
