package clients

import (
	"slices"

	"github.com/ctxfit/ctxfit/ollama"
)

// Models that run together. Continue keeps a chat model and an autocomplete
// model (often an embeddings model too) loaded at once; aider a main, a weak
// and an editor model; Zed's agent and inline assistant may differ. Ollama
// keeps them all loaded only while they fit on the GPU together, so the
// context to write for one of them depends on the others: a value tuned for
// the model alone fills the GPU, and every switch to the other model then
// unloads it.

// Use is one model a client's config uses, in one role.
type Use struct {
	// Role is what the client uses the model for: Continue's "chat" (chat,
	// edit and apply use the selected chat model), "autocomplete", "embed";
	// aider's "main", "weak", "editor". Models in one role are
	// alternatives the user picks from; models in different roles run at
	// the same time.
	Role  string `json:"role"`
	Model string `json:"model"`
	// Context is the num_ctx the entry asks for; 0 when unset (the
	// client's default).
	Context int `json:"context"`
}

// Together is implemented by clients whose config names several models that
// the client uses at the same time. It is optional: a client without it is
// taken to use its models one at a time.
type Together interface {
	// Uses returns the models the config in in uses on t.Host, by role,
	// in the order of the file: the first model of a role is the one the
	// client uses by default.
	Uses(in Input, t Target) ([]Use, error)
}

// SetFor returns the models that run beside model according to uses: model
// itself first, then the first model of every role that model does not
// serve. nil when model is not among uses.
func SetFor(uses []Use, model string) []Use {
	var mine []string
	for _, u := range uses {
		if ollama.SameModel(u.Model, model) && !slices.Contains(mine, u.Role) {
			mine = append(mine, u.Role)
		}
	}
	if len(mine) == 0 {
		return nil
	}
	set := []Use{{Role: mine[0], Model: model}}
	for _, u := range uses {
		if ollama.SameModel(u.Model, model) && set[0].Context == 0 {
			set[0].Context = u.Context
		}
	}
	seen := slices.Clone(mine)
	for _, u := range uses {
		if slices.Contains(seen, u.Role) {
			continue
		}
		seen = append(seen, u.Role)
		if !slices.ContainsFunc(set, func(o Use) bool { return ollama.SameModel(o.Model, u.Model) }) {
			set = append(set, u)
		}
	}
	return set
}

// ForSet returns the tuned contexts for the models of a set that run
// together (SetFor), whether they come from a tune of that set (joint),
// and warnings for the user. Target.ForSet has this type.
type ForSet func(set []Use) (tuned func(model string) (int, bool), joint bool, warnings []string)

// together is what forClient learnt about a config's models.
type together struct {
	sets  map[string][]Use // by ollama.ModelKey; only sets of two or more
	joint map[string]bool  // the model's value comes from a joint tune
}

// beside returns the other models of model's set when its value comes from
// a joint tune, else nil.
func (g *together) beside(model string) []string {
	k := ollama.ModelKey(model)
	if g == nil || !g.joint[k] {
		return nil
	}
	var out []string
	for _, u := range g.sets[k][1:] {
		out = append(out, u.Model)
	}
	return out
}

// forClient returns t as it applies to c's config in: when c reports
// models used together and t.ForSet is set, Tuned gives each model the
// value for its set. The warnings say what a set lacks.
func (t Target) forClient(c Client, in Input) (Target, *together, []string) {
	tc, ok := c.(Together)
	if !ok || t.ForSet == nil {
		return t, nil, nil
	}
	uses, err := tc.Uses(in, t)
	if err != nil {
		return t, nil, nil // Edit and Asks report the parse error
	}
	g := &together{sets: map[string][]Use{}, joint: map[string]bool{}}
	tuned := map[string]func(string) (int, bool){}
	var warns []string
	for _, u := range uses {
		k := ollama.ModelKey(u.Model)
		if _, done := g.sets[k]; done || k == "" {
			continue
		}
		set := SetFor(uses, u.Model)
		if len(set) < 2 {
			continue
		}
		g.sets[k] = set
		f, joint, ws := t.ForSet(set)
		tuned[k], g.joint[k] = f, joint && f != nil
		for _, w := range ws {
			w = c.Name() + ": " + w
			if !slices.Contains(warns, w) {
				warns = append(warns, w)
			}
		}
	}
	alone := t.Tuned
	t.Tuned = func(model string) (int, bool) {
		if f := tuned[ollama.ModelKey(model)]; f != nil {
			return f(model)
		}
		if alone == nil {
			return 0, false
		}
		return alone(model)
	}
	return t, g, warns
}
