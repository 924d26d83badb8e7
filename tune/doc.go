// Package tune finds the largest context at which a model stays 100% on the
// GPU, with as few real loads as it can, and measures time to first token
// and tokens per second at a context (Bench).
package tune
