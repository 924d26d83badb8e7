package ollama

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/ollama/ollama/api"
	modelname "github.com/ollama/ollama/types/model"
)

// Clients that send no num_ctx (Dify, Open WebUI, anything on Ollama's
// OpenAI-compatible /v1 endpoints) get the model's own Modelfile value, else
// the server's default. For them the fix lives in Ollama: a derived model
// whose parameters set num_ctx to the tuned value. It shares every layer with
// its base, so it costs a manifest and a small params blob, not disk space.

// ContextLabel returns how a context length appears in a derived model's
// name: "24k" for 24576 and other multiples of 1024, else the number
// ("24000").
func ContextLabel(context int) string {
	if context > 0 && context%1024 == 0 {
		return strconv.Itoa(context/1024) + "k"
	}
	return strconv.Itoa(context)
}

// derivedSuffix matches the "-ctx24k" that DerivedName appends to a tag, so
// that deriving from a derived model replaces it instead of stacking.
var derivedSuffix = regexp.MustCompile(`(^|-)ctx[0-9]+k?$`)

// DerivedName returns the name of the copy of model that runs with num_ctx
// context: the model's tag with "-ctx24k" appended
// ("llama3.1:8b-instruct-fp16" → "llama3.1:8b-instruct-fp16-ctx24k"), or
// "ctx24k" as the tag when model has none or "latest" ("llama3.1" →
// "llama3.1:ctx24k"). A registry host and namespace stay as written.
func DerivedName(model string, context int) (string, error) {
	name := strings.TrimSpace(model)
	if name == "" {
		return "", errors.New("no model name given")
	}
	if context <= 0 {
		return "", fmt.Errorf("context %d for %s is not a positive number of tokens", context, name)
	}
	if strings.Contains(name, "@") {
		return "", fmt.Errorf("%s names a model by digest; give its name and tag instead", name)
	}
	slash := strings.LastIndex(name, "/")
	repo, tag := name, ""
	if i := strings.LastIndex(name, ":"); i > slash {
		repo, tag = name[:i], name[i+1:]
	}
	tag = derivedSuffix.ReplaceAllString(tag, "")
	label := "ctx" + ContextLabel(context)
	if tag == "" || strings.EqualFold(tag, "latest") {
		tag = label
	} else {
		tag += "-" + label
	}
	derived := repo + ":" + tag
	if !modelname.ParseName(derived).IsValid() {
		return "", fmt.Errorf("%s is not a valid Ollama model name (a tag holds at most 80 letters, digits, '.', '-' and '_'); create the model by hand with a shorter name", derived)
	}
	return derived, nil
}

// DerivedBase returns the model that a DerivedName was made from
// ("llama3.1:8b-instruct-fp16-ctx24k" → "llama3.1:8b-instruct-fp16",
// "llama3.1:ctx24k" → "llama3.1"), and false for a name without the
// "-ctxN" suffix. Clients that select a derived model look up the base's
// tuned value through it.
func DerivedBase(name string) (string, bool) {
	name = strings.TrimSpace(name)
	slash := strings.LastIndex(name, "/")
	i := strings.LastIndex(name, ":")
	if i <= slash {
		return "", false
	}
	repo, tag := name[:i], name[i+1:]
	if !derivedSuffix.MatchString(tag) {
		return "", false
	}
	if tag = derivedSuffix.ReplaceAllString(tag, ""); tag == "" {
		return repo, true
	}
	return repo + ":" + tag, true
}

// DeriveModel makes sure the Ollama server behind client has a copy of model
// whose Modelfile sets num_ctx to context, and returns its name (see
// DerivedName). It creates the copy with POST /api/create {from, parameters}
// (Ollama 0.5.5 or newer), keeping the base's other parameters, and leaves
// an existing copy alone when it already has that num_ctx and is newer than
// its base (a re-pulled base gets a fresh copy). Either way it checks that
// /api/show reports num_ctx in the copy's parameters before returning.
func DeriveModel(ctx context.Context, client *api.Client, model string, context int) (name string, err error) {
	name, err = DerivedName(model, context)
	if err != nil {
		return "", err
	}
	base, err := client.Show(ctx, &api.ShowRequest{Model: model})
	if err != nil {
		if isNotFound(err) {
			return "", fmt.Errorf("the server has no model %s; pull it first (ollama pull %s): %w", model, model, err)
		}
		return "", fmt.Errorf("look up %s: %w", model, err)
	}
	if SameModel(name, model) {
		// model is already the copy for this context, named so by hand or
		// by an earlier ctxfit.
		if n, ok := ParamNumCtx(base.Parameters); ok && n == context {
			return name, nil
		}
	} else if have, err := client.Show(ctx, &api.ShowRequest{Model: name}); err == nil {
		if upToDate(base, have, model, context) {
			return name, nil
		}
	} else if !isNotFound(err) {
		return "", fmt.Errorf("look up %s: %w", name, err)
	}

	req := &api.CreateRequest{Model: name, From: model, Parameters: map[string]any{"num_ctx": context}}
	if err := client.Create(ctx, req, func(api.ProgressResponse) error { return nil }); err != nil {
		var se api.StatusError
		if errors.As(err, &se) && se.StatusCode == http.StatusBadRequest {
			return "", fmt.Errorf("create %s from %s: %w (ctxfit needs Ollama 0.5.5 or newer for this; `ollama -v` shows the version)", name, model, err)
		}
		return "", fmt.Errorf("create %s from %s: %w", name, model, err)
	}

	made, err := client.Show(ctx, &api.ShowRequest{Model: name})
	if err != nil {
		return "", fmt.Errorf("check %s after creating it: %w", name, err)
	}
	if n, ok := ParamNumCtx(made.Parameters); !ok || n != context {
		return "", fmt.Errorf("Ollama created %s, but /api/show does not report num_ctx %d in its parameters (%q); create it by hand with a Modelfile holding FROM %s and PARAMETER num_ctx %d",
			name, context, made.Parameters, model, context)
	}
	return name, nil
}

// upToDate reports whether have, a copy of model, sets num_ctx to context
// and was made from base as the server holds it now.
func upToDate(base, have *api.ShowResponse, model string, context int) bool {
	n, ok := ParamNumCtx(have.Parameters)
	parent := have.Details.ParentModel
	return ok && n == context &&
		(parent == "" || SameModel(parent, model)) &&
		!base.ModifiedAt.After(have.ModifiedAt)
}

// isNotFound reports whether err is Ollama's answer for a missing model.
func isNotFound(err error) bool {
	var se api.StatusError
	return errors.As(err, &se) && se.StatusCode == http.StatusNotFound
}

// ParamNumCtx returns num_ctx from the parameters text of /api/show
// ("num_ctx                        24576", one parameter a line), and
// whether it is there.
func ParamNumCtx(params string) (int, bool) {
	for _, line := range strings.Split(params, "\n") {
		f := strings.Fields(line)
		if len(f) != 2 || f[0] != "num_ctx" {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil || v < 0 || v > 1<<40 || v != float64(int(v)) {
			return 0, false
		}
		return int(v), true
	}
	return 0, false
}

// DerivedFrom reports whether name is a copy of model that DerivedName
// made, for any context: the same repository, and model's tag with a
// "-ctxN" suffix (or "ctxN" alone for a model without a tag or "latest").
func DerivedFrom(name, model string) bool {
	split := func(s string) (repo, tag string) {
		s = strings.TrimSpace(s)
		slash := strings.LastIndex(s, "/")
		if i := strings.LastIndex(s, ":"); i > slash {
			return strings.ToLower(s[:i]), s[i+1:]
		}
		return strings.ToLower(s), ""
	}
	repoN, tagN := split(name)
	repoM, tagM := split(model)
	if repoN != repoM || !derivedSuffix.MatchString(tagN) {
		return false
	}
	base := derivedSuffix.ReplaceAllString(tagN, "")
	if strings.EqualFold(tagM, "latest") {
		tagM = ""
	}
	return strings.EqualFold(base, derivedSuffix.ReplaceAllString(tagM, ""))
}
