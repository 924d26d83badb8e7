package iconart

import (
	"bytes"
	"flag"
	"image"
	"os"
	"testing"
)

func TestRenderRejectsBadInput(t *testing.T) {
	for _, tt := range []struct {
		name string
		size int
	}{{"nope", 32}, {"ok", 4}, {"ok", 1024}} {
		if _, err := Render(tt.name, tt.size, false); err == nil {
			t.Errorf("Render(%q, %d) succeeded", tt.name, tt.size)
		}
	}
}

func TestICORoundTrip(t *testing.T) {
	var set []*image.NRGBA
	for _, s := range []int{16, 31, 256} { // 31: mask rows need padding; 256 is written as 0
		img, err := Render("warning", s, false)
		if err != nil {
			t.Fatal(err)
		}
		set = append(set, img)
	}
	data, err := EncodeICO(set)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeICO(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != len(set) {
		t.Fatalf("decoded %d images, want %d", len(back), len(set))
	}
	for i := range set {
		if !bytes.Equal(back[i].Pix, set[i].Pix) {
			t.Errorf("image %d changed in the round trip", i)
		}
	}
	if _, err := EncodeICO([]*image.NRGBA{image.NewNRGBA(image.Rect(0, 0, 10, 12))}); err == nil {
		t.Error("EncodeICO accepted a non-square image")
	}
	for _, bad := range [][]byte{nil, []byte("GIF89a"), data[:20]} {
		if _, err := DecodeICO(bad); err == nil {
			t.Errorf("DecodeICO(%q…) succeeded", bad[:min(len(bad), 6)])
		}
	}
}

var update = flag.Bool("update", false, "rewrite testdata/sheet.png")

// TestSheet renders every icon at every size on a light and a dark panel
// into testdata/sheet.png, which is checked in to be looked at (the icons
// must read at 16 px, and the normal state must stand out on a dark
// panel), and fails when the drawing changes without the sheet.
func TestSheet(t *testing.T) {
	sheet, err := Sheet(4)
	if err != nil {
		t.Fatal(err)
	}
	got, err := EncodePNG(sheet)
	if err != nil {
		t.Fatal(err)
	}
	const golden = "testdata/sheet.png"
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test ./assets/internal/iconart -update writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is not what the icons look like now: run go test ./assets/internal/iconart -update and look at it", golden)
	}
}

// TestOutlineOnDarkPanels checks the point of the outline: around the
// normal icon at 22 px, on the dark panel, some pixel is much lighter than
// the panel; and the pins at 16 px are apart (a transparent pixel between
// two pins on each side).
func TestOutlineOnDarkPanels(t *testing.T) {
	img, err := Render("ok", 22, false)
	if err != nil {
		t.Fatal(err)
	}
	var light int
	for _, c := range []int{0, 1, 2, 3, 18, 19, 20, 21} {
		for r := range 22 {
			p := img.NRGBAAt(c, r)
			if p.A > 128 && p.R > 180 && p.G > 180 && p.B > 180 {
				light++
			}
		}
	}
	if light < 4 {
		t.Errorf("%d light outline pixels at the sides of the 22 px icon, want some", light)
	}
	img, err = Render("ok", 16, false)
	if err != nil {
		t.Fatal(err)
	}
	// The top row of pins: from the left pin to the right one the alpha
	// must drop to nearly nothing and come back.
	row := 1
	var seen []bool
	for x := range 16 {
		seen = append(seen, img.NRGBAAt(x, row).A > 200)
	}
	gaps := 0
	for x := 1; x < 16; x++ {
		if seen[x-1] && !seen[x] {
			gaps++
		}
	}
	if gaps < 2 {
		t.Errorf("the 16 px icon's top pins run together (row %d opaque: %v)", row, seen)
	}
}
