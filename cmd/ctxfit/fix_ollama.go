package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/ctxfit/ctxfit/internal/ollamahost"
	"github.com/ctxfit/ctxfit/ollama"
	"github.com/ctxfit/ctxfit/state"
)

// deriveTimeout bounds the creation of one derived model. Ollama reads the
// base's GGUF header and writes a manifest: seconds, even for large models.
const deriveTimeout = 5 * time.Minute

// runFixOllama is `ctxfit fix ollama [MODEL...] [--context N] [--host URL]
// [--dry-run]`: for clients that send no num_ctx (Dify, Open WebUI, the
// OpenAI-compatible /v1 endpoints) it creates a copy of each model whose
// Modelfile sets num_ctx to the tuned value, and says how to use it. With no
// MODEL it does so for every model tuned on the server.
func runFixOllama(ctx context.Context, e *env, args []string) error {
	fs := e.flags("fix ollama")
	host := fs.String("host", "", "Ollama server `URL` (default $OLLAMA_HOST, else "+ollamahost.Default+")")
	numCtx := fs.Int("context", 0, "the context `N` to set (default: the tuned value for each model on this server)")
	dryRun := fs.Bool("dry-run", false, "say what would be created, and create nothing")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: ctxfit fix ollama [MODEL...] [--context N] [--host URL] [--dry-run]\n\n"+
			"Creates MODEL-ctxNk on the Ollama server: MODEL with num_ctx N in its Modelfile, so that\n"+
			"clients that send no num_ctx (Dify, Open WebUI, OpenAI-compatible /v1 clients) run it at\n"+
			"the context that stays on the GPU. N is the value `ctxfit tune MODEL` found, unless\n"+
			"--context gives one. With no MODEL, every model tuned on this server gets its copy.")
		fs.PrintDefaults()
	}
	models, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if *numCtx < 0 {
		fmt.Fprintf(e.stderr, "ctxfit fix ollama: --context %d is not a number of tokens; give one such as --context 8192\n", *numCtx)
		return exitError(2)
	}
	if *numCtx > 0 && len(models) == 0 {
		fmt.Fprintln(e.stderr, "ctxfit fix ollama: --context needs a MODEL to apply to")
		return exitError(2)
	}

	u := e.host(*host)
	hostKey := ollamahost.Key(u)
	client := e.client(u)
	_, data, err := e.state()
	if err != nil {
		return err
	}

	lctx, cancel := context.WithTimeout(ctx, ollama.RequestTimeout)
	list, err := client.List(lctx)
	cancel()
	if err != nil {
		fmt.Fprintln(e.stderr, "ctxfit fix ollama: "+unreachable(u, err))
		return exitError(1)
	}
	if len(models) == 0 {
		models = tunedModels(data, hostKey)
		if len(models) == 0 {
			fmt.Fprintf(e.stderr, "ctxfit fix ollama: no model is tuned on %s yet; run `ctxfit tune MODEL` first, or give MODEL and --context N\n", u)
			return exitError(1)
		}
	}

	failed := false
	for i, model := range models {
		if i > 0 {
			fmt.Fprintln(e.stdout)
		}
		p := derivePlan{host: u, model: model, context: *numCtx, local: e.local}
		if p.context == 0 {
			t, ok := data.TunedFor(hostKey, model, digestOf(list, model))
			if !ok {
				fmt.Fprintf(e.stderr, "ctxfit fix ollama: %s has no tuned context on %s; run `ctxfit tune %s` first, or give --context N\n", model, u, model)
				failed = true
				continue
			}
			p.context, p.tuned = t.Context, &t
			if d := digestOf(list, model); d != "" && t.Digest != "" && d != t.Digest {
				p.stale = true
			}
		}
		if err := p.run(ctx, client, e.stdout, *dryRun); err != nil {
			fmt.Fprintf(e.stderr, "ctxfit fix ollama: %v\n", err)
			failed = true
		}
	}
	if failed {
		return exitError(1)
	}
	return nil
}

// parseOneArg parses args like parseInterspersed and requires exactly one
// argument besides the flags, showing the usage otherwise.
func parseOneArg(fs *flag.FlagSet, args []string) ([]string, error) {
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return nil, err
	}
	if len(pos) != 1 {
		fs.Usage()
		return nil, errUsage
	}
	return pos, nil
}

// parseInterspersed parses flags that may come before, between or after the
// positional arguments (`fix ollama MODEL --context 8192`), and returns the
// positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parse(fs, args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// derivePlan is one derived model to make.
type derivePlan struct {
	host    *url.URL
	model   string
	context int
	tuned   *state.Tuned // where context came from; nil when --context gave it
	stale   bool         // the model was pulled again after the tune
	local   func(time.Time) time.Time
}

func (p derivePlan) run(ctx context.Context, client *api.Client, w io.Writer, dryRun bool) error {
	name, err := ollama.DerivedName(p.model, p.context)
	if err != nil {
		return err
	}
	source := fmt.Sprintf("--context %d", p.context)
	if p.tuned != nil {
		source = fmt.Sprintf("the context that stays 100%% on the GPU, tuned %s", p.local(p.tuned.MeasuredAt).Format(time.DateOnly))
	}
	if dryRun {
		fmt.Fprintf(w, "Would create %s on %s: %s with num_ctx %d (%s).\n", name, p.host, p.model, p.context, source)
		return nil
	}
	before := modifiedAt(ctx, client, name)

	dctx, cancel := context.WithTimeout(ctx, deriveTimeout)
	defer cancel()
	name, err = ollama.DeriveModel(dctx, client, p.model, p.context)
	if err != nil {
		if errors.Is(dctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("Ollama at %s took more than %s to create %s: %w", p.host, deriveTimeout, name, err)
		}
		return err
	}
	verb := "Created"
	if b := before; !b.IsZero() && b.Equal(modifiedAt(ctx, client, name)) {
		verb = "Already there:"
	}
	fmt.Fprintf(w, "%s %s on %s: %s with num_ctx %d (%s).\n", verb, name, p.host, p.model, p.context, source)
	if p.stale {
		fmt.Fprintf(w, "%s was pulled again after the tune; run `ctxfit tune %s` to check the value still fits.\n", p.model, p.model)
	}
	writeDerivedUsage(w, p.host, name, p.context)
	return nil
}

// writeDerivedUsage tells the user where the derived model helps and how to
// pick it.
func writeDerivedUsage(w io.Writer, host *url.URL, name string, numCtx int) {
	base := strings.TrimSuffix(host.String(), "/")
	env := ""
	if !ollamahost.Same(host, ollamahost.Parse("")) {
		env = "OLLAMA_HOST=" + base + " "
	}
	fmt.Fprintf(w, `It shares the original's weights, so it takes no extra disk space. Select it where a client sends no num_ctx:
  Open WebUI   pick %[1]s, and leave Context Length (num_ctx) at Default
  Dify         add %[1]s to the Ollama model provider; in the app's model settings
               leave "Size of context window" unchecked, so that the model's own %[2]d applies
  /v1 clients  OpenAI-compatible clients cannot send num_ctx: use base URL %[3]s/v1 and model %[1]s
Clients that send num_ctx themselves (Continue, Zed, aider, Cline) override it; `+"`ctxfit fix all`"+` fixes their configs.
Remove it with: %[4]sollama rm %[1]s
`, name, numCtx, base, env)
}

// modifiedAt returns when model was last created or pulled on the server,
// or the zero time when the server does not have it.
func modifiedAt(ctx context.Context, client *api.Client, model string) time.Time {
	ctx, cancel := context.WithTimeout(ctx, ollama.RequestTimeout)
	defer cancel()
	show, err := client.Show(ctx, &api.ShowRequest{Model: model})
	if err != nil {
		return time.Time{}
	}
	return show.ModifiedAt
}

// tunedModels returns the models tuned on host, one name each, in the
// store's order.
func tunedModels(d *state.Data, host string) []string {
	var out []string
	for _, t := range d.Tuned {
		if t.Host != host {
			continue
		}
		seen := false
		for _, m := range out {
			seen = seen || ollama.SameModel(m, t.Model)
		}
		if !seen {
			out = append(out, t.Model)
		}
	}
	return out
}

// digestOf returns model's digest in /api/tags, or "".
func digestOf(list *api.ListResponse, model string) string {
	for _, m := range list.Models {
		if ollama.SameModel(m.Name, model) {
			return m.Digest
		}
	}
	return ""
}

// unreachable says why the server did not answer, and what to do.
func unreachable(u *url.URL, err error) string {
	var se api.StatusError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("Ollama at %s did not answer in time; is the server overloaded, or is this the right address?", u)
	case errors.As(err, &se):
		return fmt.Sprintf("Ollama at %s answered HTTP %d to /api/tags (%s); check --host or OLLAMA_HOST", u, se.StatusCode, strings.TrimSpace(se.ErrorMessage+" "+se.Status))
	}
	return fmt.Sprintf("cannot reach Ollama at %s: %v. Start it with `ollama serve`, or point ctxfit at it with --host or OLLAMA_HOST", u, err)
}
