package iconart

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
)

// EncodeICO writes images (square, at most 256 px) as one Windows .ico file
// of 32-bit BGRA bitmaps with their AND masks, the form every Windows
// version loads.
func EncodeICO(images []*image.NRGBA) ([]byte, error) {
	const dirEntry = 16
	var head, body bytes.Buffer
	le := binary.LittleEndian
	binary.Write(&head, le, [3]uint16{0, 1, uint16(len(images))}) // reserved, type icon, count
	offset := 6 + dirEntry*len(images)
	for _, img := range images {
		w, h := img.Bounds().Dx(), img.Bounds().Dy()
		if w != h || w < 1 || w > 256 {
			return nil, fmt.Errorf("iconart: an icon must be square and at most 256 px, not %d×%d", w, h)
		}
		dib := encodeDIB(img)
		side := uint8(w) // 256 is written as 0
		binary.Write(&head, le, struct {
			W, H, Colors, Reserved uint8
			Planes, BitCount       uint16
			Size, Offset           uint32
		}{side, side, 0, 0, 1, 32, uint32(len(dib)), uint32(offset)})
		body.Write(dib)
		offset += len(dib)
	}
	return append(head.Bytes(), body.Bytes()...), nil
}

// encodeDIB writes img as an icon bitmap: a BITMAPINFOHEADER whose height
// counts the colour rows and the mask rows, the BGRA rows bottom-up, then
// the 1-bit AND mask (set where the icon is fully transparent), rows padded
// to 32 bits.
func encodeDIB(img *image.NRGBA) []byte {
	w, h := img.Bounds().Dx(), img.Bounds().Dy()
	maskStride := (w + 31) / 32 * 4
	var b bytes.Buffer
	le := binary.LittleEndian
	binary.Write(&b, le, struct {
		Size                  uint32
		Width, Height         int32
		Planes, BitCount      uint16
		Compression, SizeImg  uint32
		XPels, YPels          int32
		ClrUsed, ClrImportant uint32
	}{40, int32(w), int32(2 * h), 1, 32, 0, uint32(w*h*4 + maskStride*h), 0, 0, 0, 0})
	for y := h - 1; y >= 0; y-- {
		for x := range w {
			c := img.NRGBAAt(x, y)
			b.Write([]byte{c.B, c.G, c.R, c.A})
		}
	}
	for y := h - 1; y >= 0; y-- {
		row := make([]byte, maskStride)
		for x := range w {
			if img.NRGBAAt(x, y).A == 0 {
				row[x/8] |= 0x80 >> (x % 8)
			}
		}
		b.Write(row)
	}
	return b.Bytes()
}

// DecodeICO reads a file written by EncodeICO back into its images, so
// that tests can check what Windows will load.
func DecodeICO(data []byte) ([]*image.NRGBA, error) {
	le := binary.LittleEndian
	if len(data) < 6 || le.Uint16(data[0:]) != 0 || le.Uint16(data[2:]) != 1 {
		return nil, fmt.Errorf("iconart: not an .ico file")
	}
	n := int(le.Uint16(data[4:]))
	if len(data) < 6+16*n {
		return nil, fmt.Errorf("iconart: .ico directory truncated")
	}
	var out []*image.NRGBA
	for i := range n {
		e := data[6+16*i:]
		side := int(e[0])
		if side == 0 {
			side = 256
		}
		size, off := int(le.Uint32(e[8:])), int(le.Uint32(e[12:]))
		if off < 0 || size < 40 || off+size > len(data) {
			return nil, fmt.Errorf("iconart: .ico entry %d out of bounds", i)
		}
		dib := data[off : off+size]
		w, h2, bits := int(int32(le.Uint32(dib[4:]))), int(int32(le.Uint32(dib[8:]))), le.Uint16(dib[14:])
		if w != side || h2 != 2*side || bits != 32 || le.Uint32(dib[0:]) != 40 {
			return nil, fmt.Errorf("iconart: .ico entry %d: want a %d px 32-bit bitmap, have %d×%d/2 at %d bits", i, side, w, h2, bits)
		}
		maskStride := (w + 31) / 32 * 4
		if len(dib) != 40+w*w*4+maskStride*w {
			return nil, fmt.Errorf("iconart: .ico entry %d: %d bytes, want %d", i, len(dib), 40+w*w*4+maskStride*w)
		}
		img := image.NewNRGBA(image.Rect(0, 0, w, w))
		px := dib[40:]
		for y := range w {
			row := px[(w-1-y)*w*4:]
			for x := range w {
				p := row[x*4:]
				copy(img.Pix[img.PixOffset(x, y):], []byte{p[2], p[1], p[0], p[3]})
			}
		}
		out = append(out, img)
	}
	return out, nil
}
