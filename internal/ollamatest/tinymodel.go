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
	"strings"
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

// Shape is the shape of a generated llama model. Its vocabulary is always
// TinyVocab tokens.
type Shape struct {
	Name          string // general.name, also the GGUF's file name
	Layers        int
	Embedding     int
	Heads         int
	KVHeads       int
	FeedForward   int
	ContextLength int  // the trained context /api/show reports
	F32           bool // every weight in f32 rather than f16: twice the bytes
}

// TinyShape is the tiny model: about 9 MB, loads in a fraction of a
// second on the CPU.
var TinyShape = Shape{
	Name: "ctxfit-tiny", Layers: TinyLayers, Embedding: TinyEmbedding, Heads: TinyHeads,
	KVHeads: TinyKVHeads, FeedForward: TinyFeedForward, ContextLength: TinyContextLength,
}

// GPUShape is the model for the software GPU (see StartGPU): 32 layers of
// f32 weights (77 MB) whose KV cache takes 2×32×4×32×2 bytes = 16 KiB per
// token and whose llama.cpp compute graph about as much again (8 heads'
// f32 scores of a 512-token batch), so that with OLLAMA_GPU_OVERHEAD
// reserving most of lavapipe's 2 GiB the boundary between 100% GPU and a
// split falls at a context of a few thousand tokens, where a load takes a
// few seconds, and every layer weighs the same small share. Its trained
// context stays below the one whose graph alone would exceed the GPU,
// where the new engine takes minutes to load (it tries every layer count).
var GPUShape = Shape{
	Name: "ctxfit-gpu", Layers: 32, Embedding: 256, Heads: 8, KVHeads: 4,
	FeedForward: 512, ContextLength: 24576, F32: true,
}

// KVBytesPerToken returns the f16 KV cache's bytes per token of context.
func (sh Shape) KVBytesPerToken() int {
	return 2 * sh.Layers * sh.KVHeads * (sh.Embedding / sh.Heads) * 2
}

// kind returns the GGUF kind of the shape's matrices.
func (sh Shape) kind() uint32 {
	if sh.F32 {
		return kindF32
	}
	return kindF16
}

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
func WriteTinyModelVariant(path, variant string) error { return WriteModel(path, tinyVariant(variant)) }

// tinyVariant returns TinyShape named for variant.
func tinyVariant(variant string) Shape {
	sh := TinyShape
	if variant != "" {
		sh.Name += "-" + variant
	}
	return sh
}

// WriteModel writes a llama-architecture GGUF of the given shape with
// random weights (always the same ones for one shape) and a 512-token
// SentencePiece vocabulary to path.
func WriteModel(path string, sh Shape) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write model: %w", err)
	}
	if err := ggml.WriteGGUF(f, sh.kv(), sh.tensors()); err != nil {
		f.Close()
		return fmt.Errorf("write model %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write model: %w", err)
	}
	return nil
}

func (sh Shape) kv() ggml.KV {
	tokens, scores, types := tinyVocabulary()
	return ggml.KV{
		"general.architecture":                   "llama",
		"general.name":                           sh.Name,
		"general.file_type":                      sh.kind(), // all f32 (0) or mostly f16 (1)
		"llama.context_length":                   uint32(sh.ContextLength),
		"llama.embedding_length":                 uint32(sh.Embedding),
		"llama.block_count":                      uint32(sh.Layers),
		"llama.feed_forward_length":              uint32(sh.FeedForward),
		"llama.attention.head_count":             uint32(sh.Heads),
		"llama.attention.head_count_kv":          uint32(sh.KVHeads),
		"llama.attention.layer_norm_rms_epsilon": float32(1e-5),
		"llama.rope.dimension_count":             uint32(sh.Embedding / sh.Heads),
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

// Tensors returns the tensors of the model, as /api/show lists them.
func (sh Shape) Tensors() []api.Tensor {
	var out []api.Tensor
	for _, t := range sh.tensors() {
		out = append(out, api.Tensor{Name: t.Name, Type: t.Type(), Shape: t.Shape})
	}
	return out
}

func (sh Shape) tensors() []*ggml.Tensor {
	e, kv, ff := uint64(sh.Embedding), uint64(sh.Embedding/sh.Heads*sh.KVHeads), uint64(sh.FeedForward)
	w := sh.kind()
	ts := []*ggml.Tensor{
		tensor("token_embd.weight", w, e, TinyVocab),
		tensor("output_norm.weight", kindF32, e),
		tensor("output.weight", w, e, TinyVocab),
	}
	for i := range sh.Layers {
		blk := func(name string, kind uint32, shape ...uint64) *ggml.Tensor {
			return tensor(fmt.Sprintf("blk.%d.%s.weight", i, name), kind, shape...)
		}
		ts = append(ts,
			blk("attn_norm", kindF32, e),
			blk("attn_q", w, e, e),
			blk("attn_k", w, e, kv),
			blk("attn_v", w, e, kv),
			blk("attn_output", w, e, e),
			blk("ffn_norm", kindF32, e),
			blk("ffn_gate", w, e, ff),
			blk("ffn_up", w, e, ff),
			blk("ffn_down", w, ff, e),
		)
	}
	return ts
}

// tensor returns a tensor whose data is generated when it is written: ones
// for norm weights, small random values (seeded by the name) for the rest.
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
	norm := strings.HasSuffix(r.name, "_norm.weight")
	var buf []byte
	if r.kind == kindF32 {
		buf = make([]byte, 4*r.n)
		for i := range r.n {
			v := float32(1)
			if !norm {
				v = float32(rng.NormFloat64() * 0.02)
			}
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
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
	return s.CreateModel(tb, name, tinyVariant(variant))
}

// CreateModel writes a model of the given shape (see WriteModel), uploads
// it as a blob and creates model name from it on the server. It returns
// the model's digest as /api/ps and /api/tags report it.
func (s *Server) CreateModel(tb testing.TB, name string, sh Shape) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	digest, err := s.createModel(ctx, tb.TempDir(), name, sh)
	if err != nil {
		tb.Fatal(err)
	}
	return digest
}

func (s *Server) createModel(ctx context.Context, dir, name string, sh Shape) (string, error) {
	file := sh.Name + ".gguf"
	path := filepath.Join(dir, file)
	if err := WriteModel(path, sh); err != nil {
		return "", err
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash model: %w", err)
	}
	blob := "sha256:" + hex.EncodeToString(h.Sum(nil))
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	if err := s.client.CreateBlob(ctx, blob, f); err != nil {
		return "", fmt.Errorf("upload model blob: %w", err)
	}
	stream := false
	req := &api.CreateRequest{Model: name, Files: map[string]string{file: blob}, Stream: &stream}
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
