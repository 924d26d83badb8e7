package iconart

import (
	"image"
	"image/color"
)

// Backgrounds are the panel colours the sheet shows the icons on: a light
// panel (GNOME, Windows' light taskbar, macOS light menu bar) and a dark
// one (KDE Breeze Dark, XFCE's default, Windows 11).
var Backgrounds = []color.NRGBA{{0xf0, 0xf0, 0xf0, 0xff}, {0x20, 0x22, 0x26, 0xff}}

// SheetSizes are the sizes the sheet shows in colour: what tray hosts draw
// (16 px at 100% on Windows, 22 and 24 px on Linux panels, 32 px at 200%)
// and the 64 px image of notifications. Templates are shown at
// TemplateSizes.
var SheetSizes = []int{16, 22, 24, 32, LinuxSize}

// Sheet draws every state at every size on each of Backgrounds, each
// pixel magnified zoom times so that it can be judged by eye: for each
// background a panel, with a row per state in colour and then a row per
// state as a macOS template (16 px and its @2x, 32 px; white on the dark
// panel, as macOS tints it).
func Sheet(zoom int) (*image.NRGBA, error) {
	const pad = 8
	panelW := pad
	for _, s := range SheetSizes {
		panelW += s*zoom + pad
	}
	rowH := LinuxSize*zoom + pad
	h := pad + 2*len(Names)*rowH
	sheet := image.NewNRGBA(image.Rect(0, 0, panelW*len(Backgrounds), h))
	for i, bg := range Backgrounds {
		x0 := i * panelW
		for y := range h {
			for x := range panelW {
				sheet.SetNRGBA(x0+x, y, bg)
			}
		}
		y := pad
		for _, tmpl := range []bool{false, true} {
			sizes := SheetSizes
			if tmpl {
				sizes = TemplateSizes
			}
			for _, name := range Names {
				x := x0 + pad
				for _, s := range sizes {
					img, err := Render(name, s, tmpl)
					if err != nil {
						return nil, err
					}
					if tmpl && i > 0 {
						tint(img) // macOS draws templates white in a dark menu bar
					}
					blit(sheet, img, x, y, zoom)
					x += s*zoom + pad
				}
				y += rowH
			}
		}
	}
	return sheet, nil
}

// tint makes a black template white, keeping its alpha.
func tint(img *image.NRGBA) {
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2] = 0xff, 0xff, 0xff
	}
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
