// Package state keeps what ctxfit remembers between runs: the user's
// settings, what it learned about each Ollama server, and the tuned context
// of each model, in one JSON file updated under a lock.
package state
