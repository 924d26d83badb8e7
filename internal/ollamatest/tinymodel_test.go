package ollamatest

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/ollama/ollama/fs/ggml"
)

// TestWriteTinyModel checks the file without a server: it decodes as the
// llama model the harness promises, with the vocabulary llama.cpp needs.
func TestWriteTinyModel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tiny.gguf")
	if err := WriteTinyModel(path); err != nil {
		t.Fatal(err)
	}
	m := decodeModel(t, path)
	kv := m.KV()
	if got := kv.Architecture(); got != "llama" {
		t.Errorf("architecture %q, want llama", got)
	}
	if got := kv.ContextLength(); got != TinyContextLength {
		t.Errorf("context length %d, want %d", got, TinyContextLength)
	}
	if got := kv.BlockCount(); got != TinyLayers {
		t.Errorf("block count %d, want %d", got, TinyLayers)
	}
	if got := kv.HeadCountKVMax(); got != TinyKVHeads {
		t.Errorf("KV heads %d, want %d", got, TinyKVHeads)
	}
	tokens := kv.Strings("tokenizer.ggml.tokens")
	if len(tokens) != TinyVocab || len(kv.Floats("tokenizer.ggml.scores")) != TinyVocab || len(kv.Ints("tokenizer.ggml.token_type")) != TinyVocab {
		t.Errorf("vocabulary arrays of %d tokens, want %d each", len(tokens), TinyVocab)
	}
	seen := map[string]bool{}
	for _, tok := range tokens {
		if seen[tok] {
			t.Errorf("token %q twice", tok)
		}
		seen[tok] = true
	}
	if !seen["<0x0A>"] || !seen["▁"] {
		t.Error("vocabulary lacks the newline byte token or the SentencePiece space")
	}
	if got, want := len(m.Tensors().Items()), 3+9*TinyLayers; got != want {
		t.Errorf("%d tensors, want %d", got, want)
	}
	fi, _ := os.Stat(path)
	if fi.Size() < 5<<20 || fi.Size() > 20<<20 {
		t.Errorf("file is %d bytes, want a few MB", fi.Size())
	}
}

func TestFloat16(t *testing.T) {
	tests := []struct {
		in   float32
		want uint16
	}{
		{0, 0},
		{1, 0x3c00},
		{-2, 0xc000},
		{0.5, 0x3800},
		{65504, 0x7bff},
		{1e6, 0x7c00},
		{1e-8, 0}, // below the smallest normal: flushed
		{float32(math.Copysign(0, -1)), 0x8000},
	}
	for _, tt := range tests {
		if got := float16(tt.in); got != tt.want {
			t.Errorf("float16(%g) = %#04x, want %#04x", tt.in, got, tt.want)
		}
	}
}

// TestWriteTinyModelVariant: a variant is another file with the same
// tensors, so that Ollama schedules it as another model.
func TestWriteTinyModelVariant(t *testing.T) {
	dir := t.TempDir()
	read := func(name, variant string) []byte {
		p := filepath.Join(dir, name)
		if err := WriteTinyModelVariant(p, variant); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	plain, again, chat := read("a.gguf", ""), read("b.gguf", ""), read("c.gguf", "chat")
	if !bytes.Equal(plain, again) {
		t.Error("the tiny model is not the same file twice")
	}
	if bytes.Equal(plain, chat) || !bytes.Contains(chat, []byte("ctxfit-tiny-chat")) {
		t.Error("the variant is not another file naming itself")
	}
	if d := len(chat) - len(plain); d < 0 || d > 64 {
		t.Errorf("the variant differs in size by %d bytes: more than its name", d)
	}
}

// TestWriteModelShape checks a model of another shape: its layer count,
// attention shape and trained context, f32 weights throughout, and the
// size they imply.
func TestWriteModelShape(t *testing.T) {
	sh := Shape{Name: "shape-test", Layers: 3, Embedding: 128, Heads: 4, KVHeads: 2, FeedForward: 256, ContextLength: 4096, F32: true}
	path := filepath.Join(t.TempDir(), "m.gguf")
	if err := WriteModel(path, sh); err != nil {
		t.Fatal(err)
	}
	m := decodeModel(t, path)
	kv := m.KV()
	if kv.BlockCount() != 3 || kv.ContextLength() != 4096 || kv.HeadCountKVMax() != 2 || kv.EmbeddingLength() != 128 {
		t.Errorf("decoded %d blocks, context %d, %d KV heads, embedding %d; want 3, 4096, 2, 128",
			kv.BlockCount(), kv.ContextLength(), kv.HeadCountKVMax(), kv.EmbeddingLength())
	}
	var params uint64
	for _, tn := range m.Tensors().Items() {
		if tn.Kind != kindF32 {
			t.Errorf("tensor %s has kind %d, want f32", tn.Name, tn.Kind)
		}
		params += tn.Elements()
	}
	// Per layer: q and output 128², k and v 128×64, gate/up/down 128×256,
	// two norms; plus embeddings and output 128×512 and the output norm.
	want := uint64(3*(2*128*128+2*128*64+3*128*256+2*128) + 2*128*512 + 128)
	if params != want {
		t.Errorf("%d parameters, want %d", params, want)
	}
	if got, want := sh.KVBytesPerToken(), 2*3*2*32*2; got != want {
		t.Errorf("KVBytesPerToken = %d, want %d", got, want)
	}
}

// decodeModel decodes the GGUF file at path as Ollama does.
func decodeModel(t *testing.T, path string) *ggml.GGML {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := ggml.Decode(f, -1)
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	return m
}
