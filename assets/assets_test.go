package assets_test

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"testing"

	"github.com/ctxfit/ctxfit/assets"
	"github.com/ctxfit/ctxfit/assets/internal/iconart"
)

// TestCommittedIconsAreGenerated checks that the embedded files are what
// the generator draws today, so that nobody edits one without the other.
func TestCommittedIconsAreGenerated(t *testing.T) {
	want, err := iconart.Files()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range assets.States() {
		files := map[string][]byte{
			string(s) + ".png":             assets.PNG(s),
			string(s) + ".ico":             assets.ICO(s),
			string(s) + "_template.png":    assets.Template(s),
			string(s) + "_template@1x.png": assets.Template1x(s),
		}
		for _, size := range assets.Sizes() {
			if size != assets.LinuxSize {
				files[fmt.Sprintf("%s_%d.png", s, size)] = assets.PNGAt(s, size)
			}
		}
		for name, got := range files {
			if !bytes.Equal(got, want[name]) {
				t.Errorf("icons/%s differs from what internal/iconart draws; run go generate ./assets", name)
			}
		}
		for _, size := range assets.Sizes() {
			decodePNG(t, assets.PNGAt(s, size), size)
		}
	}
	if n := 3 * (4 + len(assets.Sizes()) - 1); len(want) != n {
		t.Errorf("iconart draws %d files, assets embeds %d", len(want), n)
	}
}

func TestIconsDecode(t *testing.T) {
	seen := map[string]assets.State{}
	for _, s := range assets.States() {
		t.Run(string(s), func(t *testing.T) {
			img := decodePNG(t, assets.PNG(s), iconart.LinuxSize)
			key := string(img.(*image.NRGBA).Pix)
			if o, dup := seen[key]; dup {
				t.Errorf("%s looks the same as %s", s, o)
			}
			seen[key] = s
			if _, _, _, a := img.At(0, 0).RGBA(); a != 0 {
				t.Errorf("corner is not transparent")
			}
			if _, _, _, a := img.At(iconart.LinuxSize/2, iconart.LinuxSize/3).RGBA(); a != 0xffff {
				t.Errorf("body is not opaque")
			}

			tmpl := decodePNG(t, assets.Template(s), iconart.TemplateSize)
			for y := range iconart.TemplateSize {
				for x := range iconart.TemplateSize {
					r, g, b, _ := tmpl.At(x, y).RGBA()
					if r|g|b != 0 {
						t.Fatalf("template pixel (%d,%d) is not black: macOS would tint it wrongly", x, y)
					}
				}
			}

			imgs, err := iconart.DecodeICO(assets.ICO(s))
			if err != nil {
				t.Fatal(err)
			}
			if len(imgs) != len(iconart.ICOSizes) {
				t.Fatalf("the .ico holds %d images, want %d", len(imgs), len(iconart.ICOSizes))
			}
			for i, img := range imgs {
				want, err := iconart.Render(string(s), iconart.ICOSizes[i], false)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(img.Pix, want.Pix) {
					t.Errorf("the %d px bitmap in the .ico is not the drawn icon", iconart.ICOSizes[i])
				}
			}
		})
	}
}

func TestUnknownStateFallsBack(t *testing.T) {
	if !bytes.Equal(assets.PNG("bogus"), assets.PNG(assets.Unreachable)) {
		t.Error("an unknown state should show the unreachable icon")
	}
}

func decodePNG(t *testing.T, data []byte, size int) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != size || b.Dy() != size {
		t.Fatalf("PNG is %v, want %d×%d", b, size, size)
	}
	return img
}
