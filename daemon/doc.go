// Package daemon is ctxfit's engine: it watches an Ollama server's /api/ps,
// turns snapshots into model states and events, tunes context lengths, and
// keeps ctxfit's persistent state (tuned values and settings). It holds no UI
// code; the tray, the log and the client fixers consume what it produces.
package daemon
