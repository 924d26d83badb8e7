// Command genicons draws ctxfit's tray icons into assets/icons: a PNG per
// state for Linux, an .ico per state for Windows, and a template PNG per
// state for macOS. Run it with `go generate ./assets`; with -preview DIR it
// also writes each state at the sizes tray hosts show, for looking at.
package main

import (
	"flag"
	"fmt"
	"image"
	"log"
	"os"
	"path/filepath"

	"github.com/ctxfit/ctxfit/assets/internal/iconart"
)

func main() {
	out := flag.String("out", "icons", "`directory` for the icons")
	preview := flag.String("preview", "", "also write previews at 16–64 px into this `directory`")
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

// writePreview writes one sheet per background: every state at 16, 22, 24,
// 32 and 64 px, in colour and as a template, each magnified 4× so that the
// pixels can be judged.
func writePreview(dir string) error {
	sizes := []int{16, 22, 24, 32, 64}
	for _, bg := range []struct {
		name string
		c    [3]uint8
	}{{"light", [3]uint8{0xf0, 0xf0, 0xf0}}, {"dark", [3]uint8{0x20, 0x22, 0x26}}} {
		const zoom, pad = 4, 8
		w := pad
		for _, s := range sizes {
			w += s*zoom + pad
		}
		h := pad + 2*len(iconart.Names)*(64*zoom+pad)
		sheet := image.NewNRGBA(image.Rect(0, 0, w, h))
		for i := 0; i < len(sheet.Pix); i += 4 {
			sheet.Pix[i], sheet.Pix[i+1], sheet.Pix[i+2], sheet.Pix[i+3] = bg.c[0], bg.c[1], bg.c[2], 0xff
		}
		y := pad
		for _, tmpl := range []bool{false, true} {
			for _, name := range iconart.Names {
				x := pad
				for _, s := range sizes {
					img, err := iconart.Render(name, s, tmpl)
					if err != nil {
						return err
					}
					blit(sheet, img, x, y, zoom)
					x += s*zoom + pad
				}
				y += 64*zoom + pad
			}
		}
		b, err := iconart.EncodePNG(sheet)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("preview-%s.png", bg.name)), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// blit draws img magnified zoom times at (x0, y0), blending over sheet.
func blit(sheet, img *image.NRGBA, x0, y0, zoom int) {
	b := img.Bounds()
	for y := range b.Dy() * zoom {
		for x := range b.Dx() * zoom {
			c := img.NRGBAAt(x/zoom, y/zoom)
			o := sheet.PixOffset(x0+x, y0+y)
			a := uint32(c.A)
			for k, v := range []uint8{c.R, c.G, c.B} {
				sheet.Pix[o+k] = uint8((uint32(v)*a + uint32(sheet.Pix[o+k])*(255-a)) / 255)
			}
		}
	}
}
