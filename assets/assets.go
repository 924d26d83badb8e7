// Package assets holds ctxfit's embedded files: the tray icons for each
// state, in the format each desktop wants (PNG on Linux and the BSDs, ICO
// on Windows, one-colour template PNG on macOS).
//
// The icons are drawn by a program, not by hand: edit
// internal/iconart and run `go generate ./assets`.
package assets

import (
	"embed"
	"fmt"
)

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

// PNG returns the colour icon of s as a 64×64 PNG, for notifications and
// for Linux tray hosts (StatusNotifierItem), which scale it to the panel.
// An unknown state gets the Unreachable icon.
func PNG(s State) []byte { return file(s, ".png") }

// Sizes are the sizes PNGAt has, each drawn for its size (small ones with
// their pins on whole pixels), not scaled: what panels show (16–32 px) and
// LinuxSize.
func Sizes() []int { return []int{16, 22, 24, 32, 48, LinuxSize} }

// LinuxSize is the size of PNG's icon.
const LinuxSize = 64

// PNGAt returns the colour icon of s drawn at size×size pixels, one of
// Sizes; another size gets the 64 px icon. Linux tray hosts given all of
// them pick the nearest to their panel's size.
func PNGAt(s State, size int) []byte {
	if size == LinuxSize {
		return PNG(s)
	}
	b, err := icons.ReadFile(fmt.Sprintf("icons/%s_%d.png", s, size))
	if err != nil {
		return PNG(s)
	}
	return b
}

// ICO returns the icon of s as a Windows .ico holding 16 to 64 px bitmaps.
func ICO(s State) []byte { return file(s, ".ico") }

// Template returns the icon of s as a 32×32 black-and-transparent PNG, for
// macOS, which tints template icons to match the menu bar and shows this
// one at 16 points: the @2x image of Retina displays.
func Template(s State) []byte { return file(s, "_template.png") }

// Template1x returns the 16×16 template icon of s, for displays at 1×.
func Template1x(s State) []byte { return file(s, "_template@1x.png") }

func file(s State, suffix string) []byte {
	b, err := icons.ReadFile("icons/" + string(s) + suffix)
	if err != nil {
		b, _ = icons.ReadFile("icons/" + string(Unreachable) + suffix)
	}
	return b
}
