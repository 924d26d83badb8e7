// Package watch turns an Ollama server's /api/ps into model states and
// events: loads, unloads, spills onto the CPU, context changes, reload
// thrash and swap risk. It reports only what the server shows.
package watch
