package ollamatest

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ollama/ollama/api"
	"github.com/ollama/ollama/fs/ggml"
)

// The tiny model's shape: a llama with 4 layers, 256 wide, 8 query heads
// and 4 KV heads (head dim 32), so the KV cache takes 2×4×4×32×2 bytes =
// 2 KiB per token of context in f16.
const (
	TinyLayers        = 4
	TinyEmbedding     = 256
	TinyHeads         = 8
	TinyKVHeads       = 4
	TinyFeedForward   = 1024
	TinyVocab         = 512
	TinyContextLength = 32768 // the trained context /api/show reports
)

// Tensor kinds as GGUF numbers them.
const (
	kindF32 = 0
	kindF16 = 1
)

// WriteTinyModel writes a llama-architecture GGUF of about 9 MB with random
// weights (always the same ones) and a 512-token SentencePiece vocabulary
// to path. Ollama loads it with llama.cpp in a fraction of a second on the
// CPU; what it generates is gibberish.
func WriteTinyModel(path string) error { return WriteTinyModelVariant(path, "") }

// WriteTinyModelVariant is WriteTinyModel with "-" + variant appended to
// general.name when variant is not empty: the same weights in another file,
// which Ollama schedules as another model (it keys its runners by the
// model's file), so that tests can load two models side by side.
func WriteTinyModelVariant(path, variant string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write tiny model: %w", err)
	}
	kv := tinyKV()
	if variant != "" {
		kv["general.name"] = "ctxfit-tiny-" + variant
	}
	if err := ggml.WriteGGUF(f, kv, tinyTensors()); err != nil {
		f.Close()
		return fmt.Errorf("write tiny model %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write tiny model: %w", err)
	}
	return nil
}

func tinyKV() ggml.KV {
	tokens, scores, types := tinyVocabulary()
	return ggml.KV{
		"general.architecture":                   "llama",
		"general.name":                           "ctxfit-tiny",
		"general.file_type":                      uint32(1), // mostly f16
		"llama.context_length":                   uint32(TinyContextLength),
		"llama.embedding_length":                 uint32(TinyEmbedding),
		"llama.block_count":                      uint32(TinyLayers),
		"llama.feed_forward_length":              uint32(TinyFeedForward),
		"llama.attention.head_count":             uint32(TinyHeads),
		"llama.attention.head_count_kv":          uint32(TinyKVHeads),
		"llama.attention.layer_norm_rms_epsilon": float32(1e-5),
		"llama.rope.dimension_count":             uint32(TinyEmbedding / TinyHeads),
		"llama.rope.freq_base":                   float32(10000),
		"llama.vocab_size":                       uint32(TinyVocab),
		"tokenizer.ggml.model":                   "llama",
		"tokenizer.ggml.tokens":                  tokens,
		"tokenizer.ggml.scores":                  scores,
		"tokenizer.ggml.token_type":              types,
		"tokenizer.ggml.unknown_token_id":        uint32(0),
		"tokenizer.ggml.bos_token_id":            uint32(1),
		"tokenizer.ggml.eos_token_id":            uint32(2),
		"tokenizer.ggml.add_bos_token":           true,
		"tokenizer.ggml.add_eos_token":           false,
	}
}

// SentencePiece token types as llama.cpp numbers them.
const (
	tokenNormal  = 1
	tokenUnknown = 2
	tokenControl = 3
	tokenByte    = 6
)

// tinyVocabulary returns a SentencePiece vocabulary of TinyVocab tokens:
// <unk>, <s>, </s>, the 256 byte fallbacks, then single characters and
// pairs, higher scores first so that the tokenizer merges pairs.
func tinyVocabulary() (tokens []string, scores []float32, types []int32) {
	add := func(tok string, typ int32) {
		tokens = append(tokens, tok)
		scores = append(scores, -float32(len(tokens)))
		types = append(types, typ)
	}
	add("<unk>", tokenUnknown)
	add("<s>", tokenControl)
	add("</s>", tokenControl)
	for b := range 256 {
		add(fmt.Sprintf("<0x%02X>", b), tokenByte)
	}
	const letters = "abcdefghijklmnopqrstuvwxyz"
	var pieces []string
	pieces = append(pieces, "▁")
	for _, s := range []string{letters, "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789", ".,!?'-:;()"} {
		for _, r := range s {
			pieces = append(pieces, string(r))
		}
	}
	for _, r := range letters {
		pieces = append(pieces, "▁"+string(r))
	}
	for _, a := range letters {
		for _, b := range letters {
			pieces = append(pieces, string(a)+string(b))
		}
	}
	for _, p := range pieces[:TinyVocab-len(tokens)] {
		add(p, tokenNormal)
	}
	return tokens, scores, types
}

func tinyTensors() []*ggml.Tensor {
	const e, kv, ff = TinyEmbedding, TinyEmbedding / TinyHeads * TinyKVHeads, TinyFeedForward
	ts := []*ggml.Tensor{
		tensor("token_embd.weight", kindF16, e, TinyVocab),
		tensor("output_norm.weight", kindF32, e),
		tensor("output.weight", kindF16, e, TinyVocab),
	}
	for i := range TinyLayers {
		blk := func(name string, kind uint32, shape ...uint64) *ggml.Tensor {
			return tensor(fmt.Sprintf("blk.%d.%s.weight", i, name), kind, shape...)
		}
		ts = append(ts,
			blk("attn_norm", kindF32, e),
			blk("attn_q", kindF16, e, e),
			blk("attn_k", kindF16, e, kv),
			blk("attn_v", kindF16, e, kv),
			blk("attn_output", kindF16, e, e),
			blk("ffn_norm", kindF32, e),
			blk("ffn_gate", kindF16, e, ff),
			blk("ffn_up", kindF16, e, ff),
			blk("ffn_down", kindF16, ff, e),
		)
	}
	return ts
}

// tensor returns a tensor whose data is generated when it is written: ones
// for f32 norm weights, small random values (seeded by the name) for f16.
func tensor(name string, kind uint32, shape ...uint64) *ggml.Tensor {
	n := uint64(1)
	for _, d := range shape {
		n *= d
	}
	return &ggml.Tensor{Name: name, Kind: kind, Shape: shape, WriterTo: randomData{name, kind, n}}
}

type randomData struct {
	name string
	kind uint32
	n    uint64
}

func (r randomData) WriteTo(w io.Writer) (int64, error) {
	h := fnv.New64a()
	io.WriteString(h, r.name)
	rng := rand.New(rand.NewPCG(h.Sum64(), 0x637478666974)) // "ctxfit"
	var buf []byte
	if r.kind == kindF32 {
		buf = make([]byte, 4*r.n)
		for i := range r.n {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(1))
		}
	} else {
		buf = make([]byte, 2*r.n)
		for i := range r.n {
			binary.LittleEndian.PutUint16(buf[2*i:], float16(float32(rng.NormFloat64()*0.02)))
		}
	}
	n, err := w.Write(buf)
	return int64(n), err
}

// float16 converts f to IEEE half precision, truncating the mantissa and
// flushing values below the smallest normal half to zero: plenty for
// random weights.
func float16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23&0xff) - 127 + 15
	switch {
	case exp <= 0:
		return sign
	case exp >= 31:
		return sign | 0x7c00
	}
	return sign | uint16(exp)<<10 | uint16(b&0x7fffff>>13)
}

// CreateTinyModel writes the tiny model (see WriteTinyModel), uploads it as
// a blob and creates model name from it on the server. It returns the
// model's digest as /api/ps and /api/tags report it.
func (s *Server) CreateTinyModel(tb testing.TB, name string) string {
	return s.CreateTinyModelVariant(tb, name, "")
}

// CreateTinyModelVariant is CreateTinyModel from WriteTinyModelVariant's
// file: models of different variants are separate models to the
// scheduler, which keeps them loaded side by side (OLLAMA_MAX_LOADED_MODELS
// permitting).
func (s *Server) CreateTinyModelVariant(tb testing.TB, name, variant string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	digest, err := s.createTinyModel(ctx, tb.TempDir(), name, variant)
	if err != nil {
		tb.Fatal(err)
	}
	return digest
}

func (s *Server) createTinyModel(ctx context.Context, dir, name, variant string) (string, error) {
	path := filepath.Join(dir, "ctxfit-tiny.gguf")
	if err := WriteTinyModelVariant(path, variant); err != nil {
		return "", err
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash tiny model: %w", err)
	}
	blob := "sha256:" + hex.EncodeToString(h.Sum(nil))
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	if err := s.client.CreateBlob(ctx, blob, f); err != nil {
		return "", fmt.Errorf("upload tiny model blob: %w", err)
	}
	stream := false
	req := &api.CreateRequest{Model: name, Files: map[string]string{"ctxfit-tiny.gguf": blob}, Stream: &stream}
	if err := s.client.Create(ctx, req, func(api.ProgressResponse) error { return nil }); err != nil {
		return "", fmt.Errorf("create model %s: %w", name, err)
	}
	list, err := s.client.List(ctx)
	if err != nil {
		return "", fmt.Errorf("list models: %w", err)
	}
	for _, m := range list.Models {
		if m.Name == name || m.Name == name+":latest" {
			return m.Digest, nil
		}
	}
	return "", fmt.Errorf("model %s was created but /api/tags does not list it", name)
}

// Load loads model with num_ctx numCtx as ctxfit's tuner does (a generate
// request without a prompt), and returns its entry in /api/ps.
func (s *Server) Load(tb testing.TB, model string, numCtx int) api.ProcessModelResponse {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req := &api.GenerateRequest{
		Model:     model,
		Options:   map[string]any{"num_ctx": numCtx},
		KeepAlive: &api.Duration{Duration: 10 * time.Minute},
	}
	if err := s.client.Generate(ctx, req, func(api.GenerateResponse) error { return nil }); err != nil {
		tb.Fatalf("load %s at num_ctx %d: %v", model, numCtx, err)
	}
	m, ok := s.Running(tb, model)
	if !ok {
		tb.Fatalf("%s was loaded at num_ctx %d but /api/ps does not list it", model, numCtx)
	}
	return m
}

// Running returns model's entry in /api/ps, if it is loaded.
func (s *Server) Running(tb testing.TB, model string) (api.ProcessModelResponse, bool) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ps, err := s.client.ListRunning(ctx)
	if err != nil {
		tb.Fatalf("/api/ps: %v", err)
	}
	for _, m := range ps.Models {
		if m.Name == model || m.Name == model+":latest" {
			return m, true
		}
	}
	return api.ProcessModelResponse{}, false
}

// UnloadAll unloads every loaded model and waits until /api/ps is empty,
// so that a test starts from a server with nothing loaded.
func (s *Server) UnloadAll(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		ps, err := s.client.ListRunning(ctx)
		if err != nil {
			tb.Fatalf("/api/ps: %v", err)
		}
		if len(ps.Models) == 0 {
			return
		}
		for _, m := range ps.Models {
			req := &api.GenerateRequest{Model: m.Name, KeepAlive: &api.Duration{}}
			if err := s.client.Generate(ctx, req, func(api.GenerateResponse) error { return nil }); err != nil {
				tb.Fatalf("unload %s: %v", m.Name, err)
			}
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("models still loaded after unloading: %v", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
