// Package ollama holds ctxfit's helpers for talking to an Ollama server:
// a size-capped API client, the CPU/GPU classification `ollama ps` prints,
// model-name keys, this machine's GPU and RAM, and derived models that carry
// a tuned num_ctx. It is the bottom of ctxfit's data flow:
// ollama → watch → (tune, state) → clients, tray, log.
package ollama
