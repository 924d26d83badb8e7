package ollamatest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ollama/ollama/api"
)

func TestTailBuffer(t *testing.T) {
	b := newTailBuffer(16)
	b.Write([]byte("one\ntwo\n")) // 19 bytes in all: "one" is cut off
	b.Write([]byte("three\nfour\n"))
	if got, want := b.Tail(2, nil), "three\nfour"; got != want {
		t.Errorf("Tail(2) = %q, want %q", got, want)
	}
	if got := b.String(); len(got) > 16 {
		t.Errorf("buffer kept %d bytes, max 16", len(got))
	}
	if got, want := b.Tail(10, nil), "two\nthree\nfour"; got != want {
		t.Errorf("Tail(10) = %q, want %q", got, want)
	}
	skipT := func(line []byte) bool { return bytes.HasPrefix(line, []byte("t")) }
	if got, want := b.Tail(10, skipT), "four"; got != want {
		t.Errorf("Tail(10) without lines starting with t = %q, want %q", got, want)
	}
}

// TestServer is the harness end to end: a real server starts, the tiny
// model is created and loads at two context lengths, and generates.
func TestServer(t *testing.T) {
	s := Start(t)
	const name = "ctxfit-tiny"
	digest := s.CreateTinyModel(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	show, err := s.Client().Show(ctx, &api.ShowRequest{Model: name})
	if err != nil {
		t.Fatalf("/api/show: %v", err)
	}
	if got := show.ModelInfo["llama.context_length"]; got != float64(TinyContextLength) {
		t.Errorf("/api/show llama.context_length = %v, want %d", got, TinyContextLength)
	}

	var prev api.ProcessModelResponse
	for _, numCtx := range []int{2048, 8192} {
		m := s.Load(t, name, numCtx)
		t.Logf("num_ctx %d: /api/ps size %d, size_vram %d, context_length %d", numCtx, m.Size, m.SizeVRAM, m.ContextLength)
		if m.ContextLength != numCtx {
			t.Errorf("loaded at num_ctx %d: /api/ps context_length = %d", numCtx, m.ContextLength)
		}
		if m.Digest != digest {
			t.Errorf("/api/ps digest %q, /api/tags said %q", m.Digest, digest)
		}
		if m.Size <= prev.Size {
			t.Errorf("size at num_ctx %d is %d, not more than %d at %d", numCtx, m.Size, prev.Size, prev.ContextLength)
		}
		prev = m
	}

	var final api.GenerateResponse
	stream := false
	req := &api.GenerateRequest{
		Model:   name,
		Prompt:  "Hello, tiny model.",
		Stream:  &stream,
		Options: map[string]any{"num_ctx": 8192, "num_predict": 8, "seed": 1},
	}
	if err := s.Client().Generate(ctx, req, func(r api.GenerateResponse) error { final = r; return nil }); err != nil {
		t.Fatalf("generate: %v", err)
	}
	if !final.Done || final.EvalCount == 0 || final.EvalCount > 8 {
		t.Errorf("generate: done %v, eval_count %d; want done with 1 to 8 tokens", final.Done, final.EvalCount)
	}

	s.UnloadAll(t)
	if _, ok := s.Running(t, name); ok {
		t.Error("model still listed in /api/ps after UnloadAll")
	}
}

func TestFind(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "my-ollama")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	cached := filepath.Join(cache, "ctxfit", "ollama-"+Version, "bin", "ollama")
	if runtime.GOOS == "windows" {
		cached += ".exe"
	}
	tests := []struct {
		name    string
		env     map[string]string
		cached  bool
		want    string
		wantErr bool
	}{
		{"env wins", map[string]string{BinEnv: exe}, true, exe, false},
		{"env names a missing file", map[string]string{BinEnv: filepath.Join(dir, "nope")}, true, "", true},
		{"cached build", nil, true, cached, false},
		{"nothing", nil, false, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(BinEnv, "")
			t.Setenv("XDG_CACHE_HOME", cache)
			t.Setenv("PATH", t.TempDir())
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			os.RemoveAll(filepath.Join(cache, "ctxfit"))
			if tt.cached {
				os.MkdirAll(filepath.Dir(cached), 0o755)
				os.WriteFile(cached, nil, 0o755)
			}
			got, err := Find()
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("Find() = %q, %v; want %q, error %v", got, err, tt.want, tt.wantErr)
			}
			if tt.name == "nothing" && !errors.Is(err, ErrNotFound) {
				t.Errorf("Find() error %v, want ErrNotFound", err)
			}
		})
	}
}

// recorder is a testing.TB that records Skip and Fatal instead of ending
// the test.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()                      {}
func (r *recorder) Skip(args ...any)             { r.skipped = fmt.Sprint(args...) }
func (r *recorder) Fatalf(f string, args ...any) { r.failed = fmt.Sprintf(f, args...) }

func TestRequireWithoutBinary(t *testing.T) {
	t.Setenv(BinEnv, "")
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("PATH", t.TempDir())
	for _, require := range []string{"", "1"} {
		t.Setenv(RequireEnv, require)
		r := &recorder{TB: t}
		Require(r)
		msg := r.skipped
		if require == "1" {
			msg = r.failed
			if r.skipped != "" {
				t.Errorf("%s=1: skipped: %s", RequireEnv, r.skipped)
			}
		} else if r.failed != "" {
			t.Errorf("failed without %s: %s", RequireEnv, r.failed)
		}
		if !strings.Contains(msg, "scripts/ollama-for-tests") {
			t.Errorf("%s=%q: message %q does not say how to get Ollama", RequireEnv, require, msg)
		}
	}
}

// BenchmarkStart measures how long a new server takes to answer.
func BenchmarkStart(b *testing.B) {
	bin := Require(b)
	for b.Loop() {
		s, err := StartServer(context.Background(), bin, b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
}

// BenchmarkCreateTinyModel measures writing, uploading and creating the
// tiny model.
func BenchmarkCreateTinyModel(b *testing.B) {
	s := Start(b)
	for i := 0; b.Loop(); i++ {
		s.CreateTinyModel(b, fmt.Sprintf("tiny-%d", i))
	}
}

// BenchmarkLoad measures a cold load of the tiny model at three context
// lengths (the model is unloaded, untimed, before each).
func BenchmarkLoad(b *testing.B) {
	s := Start(b)
	s.CreateTinyModel(b, "ctxfit-tiny")
	for _, numCtx := range []int{2048, 8192, 32768} {
		b.Run(fmt.Sprintf("num_ctx=%d", numCtx), func(b *testing.B) {
			var size int64
			for b.Loop() {
				b.StopTimer()
				s.UnloadAll(b)
				b.StartTimer()
				size = s.Load(b, "ctxfit-tiny", numCtx).Size
			}
			b.ReportMetric(float64(size)/1e6, "MB")
		})
	}
}
