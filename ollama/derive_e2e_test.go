package ollama_test

import (
	"context"
	"testing"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/ctxfit/ctxfit/internal/ollamatest"
	"github.com/ctxfit/ctxfit/ollama"
)

// TestDeriveModelAgainstOllama creates the derived model on a real Ollama
// server: /api/show must list num_ctx in its parameters, a second call must
// leave it alone, and a load that sends no num_ctx (as Dify, Open WebUI and
// the /v1 endpoints do) must run at the copy's context.
func TestDeriveModelAgainstOllama(t *testing.T) {
	srv := ollamatest.Start(t)
	const base = "ctxfit-tiny"
	srv.CreateTinyModel(t, base)
	client := ollama.NewClient(srv.URL())

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	name, err := ollama.DeriveModel(ctx, client, base, 3072)
	if err != nil {
		t.Fatal(err)
	}
	if name != "ctxfit-tiny:ctx3k" {
		t.Errorf("name = %q, want ctxfit-tiny:ctx3k", name)
	}
	show, err := client.Show(ctx, &api.ShowRequest{Model: name})
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := ollama.ParamNumCtx(show.Parameters); !ok || n != 3072 {
		t.Errorf("/api/show parameters of %s = %q; want num_ctx 3072", name, show.Parameters)
	}
	if !ollama.SameModel(show.Details.ParentModel, base) {
		t.Errorf("parent model of %s = %q, want %s", name, show.Details.ParentModel, base)
	}

	again, err := ollama.DeriveModel(ctx, client, base, 3072)
	if err != nil || again != name {
		t.Fatalf("second DeriveModel = %q, %v; want %q", again, err, name)
	}
	show2, err := client.Show(ctx, &api.ShowRequest{Model: name})
	if err != nil {
		t.Fatal(err)
	}
	if !show2.ModifiedAt.Equal(show.ModifiedAt) {
		t.Errorf("the second call rewrote %s (modified %v, then %v)", name, show.ModifiedAt, show2.ModifiedAt)
	}

	req := &api.GenerateRequest{Model: name}
	if err := client.Generate(ctx, req, func(api.GenerateResponse) error { return nil }); err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	ps, err := client.ListRunning(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got *api.ProcessModelResponse
	for i := range ps.Models {
		if ollama.SameModel(ps.Models[i].Name, name) {
			got = &ps.Models[i]
		}
	}
	if got == nil || got.ContextLength != 3072 {
		t.Errorf("/api/ps after loading %s without num_ctx: %+v; want context_length 3072", name, ps.Models)
	}
}
