// Command genicons draws ctxfit's tray icons into assets/icons: a PNG per
// state for Linux, an .ico per state for Windows, and a template PNG per
// state for macOS. Run it with `go generate ./assets`; with -preview DIR it
// also writes each state at the sizes tray hosts show, for looking at.
package main

import (
	"flag"
	"log"
	"os"
	"path/filepath"

	"github.com/ctxfit/ctxfit/assets/internal/iconart"
)

func main() {
	out := flag.String("out", "icons", "`directory` for the icons")
	preview := flag.String("preview", "", "also write the icon sheet (every size, light and dark panels) into this `directory`")
	flag.Parse()
	files, err := iconart.Files()
	if err != nil {
		log.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(*out, name), data, 0o644); err != nil {
			log.Fatal(err)
		}
	}
	if *preview != "" {
		if err := writePreview(*preview); err != nil {
			log.Fatal(err)
		}
	}
}

// writePreview writes the icon sheet (iconart.Sheet) as sheet.png.
func writePreview(dir string) error {
	sheet, err := iconart.Sheet(4)
	if err != nil {
		return err
	}
	b, err := iconart.EncodePNG(sheet)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "sheet.png"), b, 0o644)
}
