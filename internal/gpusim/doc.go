// Package gpusim simulates an Ollama server running on a GPU, so that
// ctxfit's tests and `ctxfit demo` can exercise the tuner and the watcher on
// machines with neither Ollama nor a GPU.
//
// A Server answers the parts of Ollama's HTTP API that ctxfit uses
// (/api/version, /api/tags, /api/show, /api/generate, /api/chat, /api/ps,
// /api/create),
// with the same JSON, status codes and error texts as Ollama v0.17.4, over a
// deterministic memory model of one GPU. Fault injection (SetFault) makes it
// misbehave in the ways a real server or a wrong address can.
//
// # Memory model
//
// A GPU has a budget of bytes Ollama may use (GPU.VRAM). Discrete presets are
// their nominal size less DiscreteReserve (driver, CUDA context, Ollama's
// minimum); unified presets (Apple Silicon) use Metal's recommended working
// set, 2/3 of RAM (3/4 from 36 GiB; see UnifiedBudget), or iogpu.wired_limit_mb
// when set (GPU.WithWiredLimit; Server.SetWiredLimit plays the sysctl and an
// Ollama restart, and serves them at unified.SimulatedPath for `ctxfit demo`).
// A GPU with VRAM 0 is a CPU-only host.
//
// A model loaded with context n and p parallel slots needs, all in bytes:
//
//	tokens  = roundUp(n × p, 256)                      the KV cache is padded to 256 cells
//	kvLayer = ceil(2 × kvHeads × headDim × bpe × tokens) per layer, K and V
//	          headDim = KeyLength if set, else EmbeddingLength / HeadCount; bpe = KVBytesPerElement
//	batch   = min(512, n)
//	graph   = alignUp(4 × batch × (4 × EmbeddingLength + 2 × HeadCount × tokens), 64 MiB)
//	size    = Layers × (LayerBytes + kvLayer) + OutputBytes + graph
//
// The compute graph holds the batch's activations and its two f32 attention
// score matrices; its 64 MiB alignment and the KV padding make size a step
// function of n, so a tuner that extrapolates a straight line from two loads
// overshoots by up to a step unless it verifies with a load.
//
// Placement follows Ollama's scheduler: with free bytes f (the budget less
// what other loaded models hold), a model that fits whole is 100% GPU
// (size_vram == size). Otherwise whole layers are offloaded: the GPU holds the
// graph and the largest k ≤ Layers with graph + k × (LayerBytes + kvLayer) ≤ f;
// the output weights stay on the CPU; size_vram is that sum, or 0 when not one
// layer fits. On a CPU-only host size_vram is always 0.
//
// A load that does not fit whole beside the models already loaded evicts them
// one at a time, shortest keep_alive first (Ollama's ByDurationAndName), until
// it fits or the GPU is empty; only then does it offload layers. A load that
// finds Config.MaxLoaded models loaded (OLLAMA_MAX_LOADED_MODELS, default 3)
// evicts one first. So two models that do not fit together evict each other
// at every switch, as on a real server; Evictions counts them. On hosts other than Apple Silicon a load whose
// CPU part exceeds the free system memory (GPU.RAM less what other models hold
// there) fails with Ollama's "model requires more system memory" error.
//
// The context of a load is the request's options.num_ctx, else the model's
// Modelfile num_ctx, else the server default (Config.DefaultContext, else by
// total VRAM as Ollama ≥ 0.15.5: < 23 GiB 4096, < 47 GiB 32768, else 262144);
// at least 4 and at most the trained context. A request with a different
// num_ctx reloads the model (counted by Loads); the same one only refreshes
// its keep_alive.
//
// # Speed model
//
// Generating one token reads every weight once: per token,
// LayerBytes on the GPU / GPU.Bandwidth + weights on the CPU / GPU.CPUBandwidth
// + 2 ms. Prompt tokens are processed in batches, 32 times faster per token.
// A load takes weights / 3 GB/s + 0.5 s. Durations are reported in the
// responses' metrics, never slept (Config.LoadDelay adds a real delay to
// loads for demos).
package gpusim
