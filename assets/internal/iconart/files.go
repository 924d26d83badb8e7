package iconart

import (
	"bytes"
	"image"
	"image/png"
)

// Sizes of the committed icons. Linux tray hosts scale the one pixmap they
// get to 22–32 px; Windows picks from the .ico by DPI (16 px at 100%, 20,
// 24 and 32 px at 125–200%); macOS shows a 16 pt template, 32 px on Retina.
const (
	LinuxSize    = 64
	TemplateSize = 32
)

// ICOSizes are the bitmaps in each .ico.
var ICOSizes = []int{16, 20, 24, 32, 48, 64}

// Files returns the icon files package assets embeds, by name:
// NAME.png, NAME.ico and NAME_template.png for each of Names.
func Files() (map[string][]byte, error) {
	files := map[string][]byte{}
	for _, name := range Names {
		img, err := Render(name, LinuxSize, false)
		if err != nil {
			return nil, err
		}
		if files[name+".png"], err = EncodePNG(img); err != nil {
			return nil, err
		}
		tmpl, err := Render(name, TemplateSize, true)
		if err != nil {
			return nil, err
		}
		if files[name+"_template.png"], err = EncodePNG(tmpl); err != nil {
			return nil, err
		}
		var set []*image.NRGBA
		for _, s := range ICOSizes {
			img, err := Render(name, s, false)
			if err != nil {
				return nil, err
			}
			set = append(set, img)
		}
		if files[name+".ico"], err = EncodeICO(set); err != nil {
			return nil, err
		}
	}
	return files, nil
}

// EncodePNG encodes img at the best compression; the output depends only
// on img, so regenerated files compare equal.
func EncodePNG(img image.Image) ([]byte, error) {
	var b bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&b, img); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
