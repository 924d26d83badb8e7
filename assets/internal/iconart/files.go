package iconart

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
)

// Sizes of the committed icons. Linux tray hosts pick from the pixmaps
// they get the one nearest their panel's size (22–32 px) and scale it;
// Windows picks from the .ico by DPI (16 px at 100%, 20, 24 and 32 px at
// 125–200%); macOS shows a 16 pt template, 32 px on Retina.
const (
	LinuxSize    = 64
	TemplateSize = 32
)

// PNGSizes are the sizes drawn as PNG besides LinuxSize: NAME_16.png and
// so on, each drawn for its size (hinted), not scaled.
var PNGSizes = []int{16, 22, 24, 32, 48}

// TemplateSizes are the macOS template sizes: 16 px, and 32 px for Retina
// (@2x), which is the one the menu bar gets.
var TemplateSizes = []int{16, TemplateSize}

// ICOSizes are the bitmaps in each .ico.
var ICOSizes = []int{16, 20, 24, 32, 48, 64}

// Files returns the icon files package assets embeds, by name:
// NAME.png (LinuxSize), NAME_SIZE.png for each of PNGSizes, NAME.ico,
// NAME_template.png (32 px) and NAME_template@1x.png (16 px) for each of
// Names.
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
		for _, size := range PNGSizes {
			img, err := Render(name, size, false)
			if err != nil {
				return nil, err
			}
			if files[fmt.Sprintf("%s_%d.png", name, size)], err = EncodePNG(img); err != nil {
				return nil, err
			}
		}
		for _, size := range TemplateSizes {
			tmpl, err := Render(name, size, true)
			if err != nil {
				return nil, err
			}
			file := name + "_template.png"
			if size != TemplateSize {
				file = name + "_template@1x.png"
			}
			if files[file], err = EncodePNG(tmpl); err != nil {
				return nil, err
			}
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
