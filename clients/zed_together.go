package clients

import "strings"

var _ Together = zedClient{}

// Uses reports the Ollama models Zed's agent settings select, by role: the
// agent's model ("agent": default_model, with the favorites and profiles as
// alternatives), the inline assistant's ("inline"), and those that write
// commit messages ("commit"), thread summaries ("summary") and subagents'
// work ("subagent"). Each asks for its available_models entry's max_tokens,
// or context_window when set.
func (c zedClient) Uses(in Input, t Target) ([]Use, error) {
	z, err := parseZed(in.Path, in.Src, newOllamaHost(t))
	if err != nil || z.ollama == nil {
		return nil, err
	}
	roles := map[string]string{
		"default_model": "agent", "favorite_models": "agent", "profiles": "agent",
		"inline_assistant_model": "inline", "inline_alternatives": "inline",
		"commit_message_model": "commit", "thread_summary_model": "summary", "subagent_model": "subagent",
	}
	var uses []Use
	for _, p := range z.picked {
		_, rest, _ := strings.Cut(p.where, ".") // "agent.inline_assistant_model" → "inline_assistant_model"
		key, _, _ := strings.Cut(rest, "[")
		key, _, _ = strings.Cut(key, ".")
		role := roles[key]
		if role == "" {
			continue
		}
		ctx := z.window
		for _, e := range z.entries {
			if ctx == 0 && sameModelName(e.name, p.model) {
				ctx = e.maxTokens
			}
		}
		uses = append(uses, Use{Role: role, Model: p.model, Context: ctx})
	}
	return uses, nil
}
