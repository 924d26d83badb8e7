// Package assets holds ctxfit's embedded files: the tray icons for each
// state, in the format each desktop wants (PNG on Linux and the BSDs, ICO
// on Windows, one-colour template PNG on macOS).
//
// The icons are drawn by a program, not by hand: edit
// internal/iconart and run `go generate ./assets`.
package assets

import "embed"

//go:generate go run ./internal/genicons -out icons

//go:embed icons
var icons embed.FS

// State names what the tray icon shows.
type State string

// The tray icon's states.
const (
	OK          State = "ok"          // nothing loaded, or every model 100% on the GPU
	Warning     State = "warning"     // a model spilled onto the CPU, or will swap on a CPU-only host
	Unreachable State = "unreachable" // no Ollama answers
)

// States returns every State.
func States() []State { return []State{OK, Warning, Unreachable} }

// PNG returns the colour icon of s as a 64×64 PNG, for Linux tray hosts
// (StatusNotifierItem), which scale it to the panel. An unknown state gets
// the Unreachable icon.
func PNG(s State) []byte { return file(s, ".png") }

// ICO returns the icon of s as a Windows .ico holding 16 to 64 px bitmaps.
func ICO(s State) []byte { return file(s, ".ico") }

// Template returns the icon of s as a 32×32 black-and-transparent PNG, for
// macOS, which tints template icons to match the menu bar.
func Template(s State) []byte { return file(s, "_template.png") }

func file(s State, suffix string) []byte {
	b, err := icons.ReadFile("icons/" + string(s) + suffix)
	if err != nil {
		b, _ = icons.ReadFile("icons/" + string(Unreachable) + suffix)
	}
	return b
}
