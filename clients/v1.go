package clients

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/tailscale/hujson"

	"github.com/ctxfit/ctxfit/clients/edit"
)

// Clients that reach Ollama through its OpenAI-compatible /v1 API (opencode,
// VS Code Copilot, Codex CLI, Crush, Goose, Continue's CLI) cannot send
// num_ctx: their context key sets only their own prompt budget, while Ollama
// runs the model at its Modelfile's num_ctx, else the server's default. So
// their fix is a pair: the entry selects the derived model (Target.Derive:
// the same weights with the tuned num_ctx baked in, which the Fixer creates
// on the server before writing), and the client's context key says the same
// value, with its output reserve inside it.

// v1Base returns the server address in an OpenAI-compatible base URL or
// endpoint on Ollama ("http://localhost:11434/v1",
// "http://host:11434/v1/chat/completions"), and whether it is one.
func v1Base(u string) (string, bool) {
	u = strings.TrimSpace(u)
	for _, suffix := range []string{"/chat/completions", "/responses", "/completions"} {
		u = strings.TrimSuffix(strings.TrimRight(u, "/"), suffix)
	}
	base, ok := strings.CutSuffix(strings.TrimRight(u, "/"), "/v1")
	return base, ok && base != ""
}

// matchesV1 reports whether u is the /v1 API of the watched server.
func (h *ollamaHost) matchesV1(u string) bool {
	base, ok := v1Base(u)
	return ok && h.matches("ollama", base, true)
}

// outputReserve returns the output limit to write beside a context of n:
// the entry's own when it leaves at least half of n for the prompt, else
// half of n.
func outputReserve(old, n int) int {
	if old > 0 && old <= MaxTokens(n) {
		return old
	}
	return MaxTokens(n)
}

// v1Note is the warning a /v1 client's fix carries when Target cannot name
// a derived model (no Derive): the context key alone does not change what
// Ollama allocates.
func v1Note(client string) string {
	return fmt.Sprintf("%s reaches Ollama through /v1, which cannot send num_ctx: run `ctxfit fix ollama` and select the copy it creates, or the server keeps its own context", client)
}

// jsonSet is one value a /v1 client's fix writes: keys under obj (at path
// in the decoded document), or under the entry's own object when obj is nil.
type jsonSet struct {
	obj   *hujson.Value
	path  []any
	keys  []string
	value any // int or string
}

// v1Entry is one model entry of a /v1 client's JSON config.
type v1Entry struct {
	where   string
	path    []any         // of obj in the decoded document
	obj     *hujson.Value // the entry's object
	title   string
	model   string // the Ollama model it names
	context int    // the client's context key; 0 when unset
	output  int    // its output limit; 0 when unset or none
	// notNumber says what the context key holds when it is not a number
	// (Ask.NotNumber); the fix leaves the entry alone then.
	notNumber string
	// sets returns the values the fix writes for context n, the entry
	// naming model.
	sets func(n int, model string) []jsonSet
}

// editV1JSON is the Edit of a /v1 client whose config is JSON: it fixes the
// entries of jd, adds notes (warnings that hold whatever the fix does), says
// when no derived model will be created, and names each override file that
// is merged over this one, with what it must not set (overrideKeys).
func editV1JSON(name string, in Input, t Target, jd *edit.JSON, entries []v1Entry, notes []string, overrideKeys string) (Result, error) {
	res := Result{Out: in.Src}
	res.Changes, res.Warnings = fixV1JSON(jd, entries, t)
	res.Warnings = append(res.Warnings, notes...)
	if len(res.Changes) == 0 {
		return res, nil
	}
	if t.Derive == nil {
		res.Warnings = append(res.Warnings, v1Note(name))
	}
	for _, p := range sortedKeys(in.Overrides) {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%s is merged over this file in that project; make sure it sets no %s for these models", p, overrideKeys))
	}
	var err error
	if res.Out, res.spans, err = jd.Finish(); err != nil {
		return Result{}, fmt.Errorf("%s: %w", in.Path, err)
	}
	return res, nil
}

// fixV1JSON queues the fix of each entry with a tuned value: the derived
// model and the client's keys. It returns the changes, and warnings for
// entries left alone.
func fixV1JSON(jd *edit.JSON, entries []v1Entry, t Target) ([]Change, []string) {
	var changes []Change
	var warns []string
	for _, e := range entries {
		n, ok := t.tuned(e.model)
		if !ok {
			continue
		}
		if e.notNumber != "" {
			warns = append(warns, notNumberWarning(e.where, e.title, e.model, e.notNumber, n))
			continue
		}
		want := t.derived(e.model, n)
		var todo []jsonSet
		var failed error
		for _, s := range e.sets(n, want) {
			obj, path := s.obj, s.path
			if obj == nil {
				obj, path = e.obj, e.path
			}
			if jsonValueIs(obj, s.keys, s.value) {
				continue
			}
			if err := jd.Settable(obj, s.keys...); err != nil {
				failed = err
				break
			}
			s.obj, s.path = obj, path
			todo = append(todo, s)
		}
		if failed != nil {
			warns = append(warns, fmt.Sprintf("%s %s: left as it is, because %v; set its context to %d and select %s by hand", e.where, label(e.title, e.model, ""), failed, n, want))
			continue
		}
		if len(todo) == 0 {
			continue
		}
		for _, s := range todo {
			if err := jd.Set(s.obj, s.path, s.value, s.keys...); err != nil {
				warns = append(warns, fmt.Sprintf("%s %s: %v", e.where, label(e.title, e.model, ""), err))
			}
		}
		ch := Change{Where: e.where, Title: e.title, Model: e.model, OldContext: e.context, NewContext: n, OldMaxTokens: e.output}
		if e.output > 0 || hasOutput(e.sets(n, want)) {
			ch.NewMaxTokens = outputReserve(e.output, n)
		}
		if want != e.model {
			ch.Derived = want
		}
		changes = append(changes, ch)
	}
	return changes, warns
}

// hasOutput reports whether sets write an output limit (the keys the
// clients use for one).
func hasOutput(sets []jsonSet) bool {
	for _, s := range sets {
		switch s.keys[len(s.keys)-1] {
		case "output", "maxOutputTokens", "default_max_tokens":
			return true
		}
	}
	return false
}

// jsonValueIs reports whether keys under obj hold value already.
func jsonValueIs(obj *hujson.Value, keys []string, value any) bool {
	v := obj
	for _, k := range keys[:len(keys)-1] {
		v = edit.Member(v, k)
	}
	last := keys[len(keys)-1]
	if edit.Member(v, last) == nil {
		return false
	}
	switch want := value.(type) {
	case int:
		return edit.Num(v, last) == want
	case string:
		return edit.Str(v, last) == want
	}
	return false
}

// v1Asks reports what each entry budgets, with the tuned value and the
// derived model its fix selects.
func v1Asks(client, path string, entries []v1Entry, t Target) []Ask {
	asks := make([]Ask, 0, len(entries))
	for _, e := range entries {
		n, _ := t.tuned(e.model)
		a := Ask{Client: client, Path: path, Where: e.where, Title: e.title, Model: e.model, Context: e.context, MaxTokens: e.output, Tuned: n, NotNumber: e.notNumber}
		if n > 0 {
			a.Derived = t.derived(e.model, n)
			if e.output > 0 || hasOutput(e.sets(n, a.Derived)) {
				a.WantMaxTokens = outputReserve(e.output, n)
			}
		}
		asks = append(asks, a)
	}
	return asks
}

// jsonMember is one member of a JSON object.
type jsonMember struct {
	key string
	val *hujson.Value
}

// members returns the members of object v that JSON.parse keeps (the last
// of duplicate keys), in order.
func members(v *hujson.Value) []jsonMember {
	o := edit.Object(v)
	if o == nil {
		return nil
	}
	var out []jsonMember
	for i := range o.Members {
		m := &o.Members[i]
		lit, ok := m.Name.Value.(hujson.Literal)
		if !ok || edit.Member(v, lit.String()) != &m.Value {
			continue
		}
		out = append(out, jsonMember{key: lit.String(), val: &m.Value})
	}
	return out
}

// configDir returns $XDG_CONFIG_HOME when it is an absolute path, else
// ~/.config: where opencode, Crush and Goose keep their files on Linux and
// macOS alike.
func (e Env) configDir() (string, error) {
	if d := e.getenv("XDG_CONFIG_HOME"); d != "" && filepath.IsAbs(d) {
		return d, nil
	}
	return e.joinHome(".config")
}
