package iconart

import (
	"bytes"
	"image"
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
