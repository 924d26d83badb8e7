// Package iconart draws ctxfit's tray icons: a chip (the GPU) in the
// colour of the state, with a glyph that tells the states apart without
// colour too (macOS draws template icons in one colour). Shapes are signed
// distance functions, so every size is drawn, not scaled, and anti-aliased.
package iconart

import (
	"fmt"
	"image"
	"image/color"
	"math"
)

// Names are the icon states, as package assets names them.
var Names = []string{"ok", "warning", "unreachable"}

// palette is the colours of one state.
type palette struct {
	body, edge, glyph color.NRGBA
}

var palettes = map[string]palette{
	"ok":          {body: rgb(0x2d, 0xa4, 0x4e), edge: rgb(0x1a, 0x6b, 0x31), glyph: rgb(0xff, 0xff, 0xff)},
	"warning":     {body: rgb(0xf5, 0xa6, 0x23), edge: rgb(0xa8, 0x66, 0x00), glyph: rgb(0x2b, 0x1d, 0x00)},
	"unreachable": {body: rgb(0x8a, 0x8f, 0x98), edge: rgb(0x55, 0x5a, 0x63), glyph: rgb(0xff, 0xff, 0xff)},
}

func rgb(r, g, b uint8) color.NRGBA { return color.NRGBA{r, g, b, 0xff} }

// Render draws the icon of state name at size×size pixels. A template icon
// (macOS) is black on transparent with the glyph cut out; otherwise the
// icon is in colour, with a dark edge that holds it on light panels and a
// light outline around that which holds it on dark ones.
func Render(name string, size int, template bool) (*image.NRGBA, error) {
	pal, ok := palettes[name]
	if !ok {
		return nil, fmt.Errorf("iconart: no icon named %q", name)
	}
	if size < 8 || size > 512 {
		return nil, fmt.Errorf("iconart: size %d out of range 8–512", size)
	}
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	px := 1 / float64(size) // one pixel in unit coordinates
	g := geometryFor(size)
	glyph := glyphs[name]
	outline := rgba{1, 1, 1, 1}.scale(0.85)
	for y := range size {
		for x := range size {
			// Sample at the pixel centre, in a unit square.
			p := vec{(float64(x) + 0.5) * px, (float64(y) + 0.5) * px}
			var c rgba
			body, pins := g.chip(p)
			chip := math.Min(body, pins)
			gl := glyph(p)
			if template {
				black := rgba{0, 0, 0, 1}
				c = c.over(black.scale(cover(chip, px)))
				c = c.scale(1 - cover(gl, px)) // the glyph is a hole
			} else {
				// The outline rings the body only: around the pins it
				// would fill the gaps between them at small sizes.
				edgeWidth := max(0.045, 1.1*px)
				c = c.over(outline.scale(cover(body-g.outline, px)))
				pin := pal.edge
				if g.pinHalfW*float64(size) < 1.5 {
					pin = pal.body // too thin for an edge: the brighter colour reads on dark panels
				}
				c = c.over(of(pin).scale(cover(pins, px)))
				c = c.over(of(pal.edge).scale(cover(body, px)))
				c = c.over(of(pal.body).scale(cover(body+edgeWidth, px)))
				c = c.over(of(pal.glyph).scale(cover(gl, px)))
			}
			img.SetNRGBA(x, y, c.nrgba())
		}
	}
	return img, nil
}

// geometry is the chip's shape at one pixel size, in a unit square: a
// rounded body with pins on each side. Small sizes get fewer, wider pins
// whose edges fall on pixel boundaries, so that they stay apart at 16 px
// instead of blurring into a grey band.
type geometry struct {
	bodyHalf   float64 // half the body's side
	bodyRadius float64
	pinHalfW   float64 // half a pin's width
	pinReach   float64 // from the centre to a pin's tip
	pins       []float64
	outline    float64 // the light outline's width around the chip
}

func geometryFor(size int) geometry {
	px := 1 / float64(size)
	snap := func(v float64) float64 { return math.Round(v*float64(size)) * px }
	g := geometry{
		bodyHalf:   0.31,
		bodyRadius: 0.09,
		pinHalfW:   0.042,
		pinReach:   0.45,
		pins:       []float64{-0.17, 0, 0.17},
		outline:    max(0.03, px),
	}
	if size >= 48 {
		return g
	}
	// Hinted: the body's edges, the pins' edges and tips on whole pixels,
	// one pixel between the pins at least.
	g.bodyHalf = snap(0.31)
	g.pinReach = min(snap(0.45), 0.5-g.outline)
	g.pinHalfW = max(snap(0.042*2), px) / 2
	if size < 28 {
		// Two pins a side: three at 16 px leave no gap between them.
		g.pinHalfW = px
		off := snap(0.15)
		g.pins = []float64{-off, off}
		if size%2 == 1 {
			g.pins = []float64{-off + px/2, off + px/2}
		}
	} else {
		off := snap(0.17)
		g.pins = []float64{-off, 0, off}
		if size%2 == 1 || int(math.Round(g.pinHalfW*2*float64(size)))%2 == 1 {
			// An odd pin width centred on a pixel centre.
			for i := range g.pins {
				g.pins[i] += px / 2
			}
		}
	}
	g.bodyRadius = max(0.09, 1.5*px)
	return g
}

// chip returns the signed distances from p to the chip's body and to its
// pins (negative inside).
func (g geometry) chip(p vec) (body, pins float64) {
	c := vec{0.5, 0.5}
	q := p.sub(c)
	body = roundedBox(q, vec{g.bodyHalf, g.bodyHalf}, g.bodyRadius)
	d := math.Inf(1)
	for _, o := range g.pins {
		half := (g.pinReach - g.bodyHalf + 0.02) / 2
		mid := g.bodyHalf - 0.02 + half
		for _, pin := range []struct{ at, size vec }{
			{vec{o, -mid}, vec{g.pinHalfW, half}},
			{vec{o, mid}, vec{g.pinHalfW, half}},
			{vec{-mid, o}, vec{half, g.pinHalfW}},
			{vec{mid, o}, vec{half, g.pinHalfW}},
		} {
			d = math.Min(d, roundedBox(q.sub(pin.at), pin.size, g.pinHalfW*0.3))
		}
	}
	return body, d
}

// glyphs are the marks drawn on the body; each returns a signed distance.
var glyphs = map[string]func(vec) float64{
	// A check mark: fits.
	"ok": func(p vec) float64 {
		const w = 0.055
		a, b, c := vec{0.35, 0.505}, vec{0.455, 0.61}, vec{0.665, 0.385}
		return math.Min(capsule(p, a, b, w), capsule(p, b, c, w))
	},
	// An exclamation mark: spilled.
	"warning": func(p vec) float64 {
		const w = 0.055
		bar := capsule(p, vec{0.5, 0.35}, vec{0.5, 0.53}, w)
		dot := p.sub(vec{0.5, 0.645}).len() - w*1.1
		return math.Min(bar, dot)
	},
	// A cross: no answer.
	"unreachable": func(p vec) float64 {
		const w = 0.05
		return math.Min(
			capsule(p, vec{0.39, 0.39}, vec{0.61, 0.61}, w),
			capsule(p, vec{0.61, 0.39}, vec{0.39, 0.61}, w))
	},
}

// cover turns a signed distance into pixel coverage: 1 inside, 0 outside,
// a linear ramp one pixel wide across the edge.
func cover(d, px float64) float64 {
	return math.Max(0, math.Min(1, 0.5-d/px))
}

type vec struct{ x, y float64 }

func (a vec) sub(b vec) vec       { return vec{a.x - b.x, a.y - b.y} }
func (a vec) dot(b vec) float64   { return a.x*b.x + a.y*b.y }
func (a vec) len() float64        { return math.Hypot(a.x, a.y) }
func (a vec) scale(k float64) vec { return vec{a.x * k, a.y * k} }

// roundedBox is the distance from q to a box centred at the origin with
// half-sides b and corner radius r.
func roundedBox(q, b vec, r float64) float64 {
	dx := math.Abs(q.x) - b.x + r
	dy := math.Abs(q.y) - b.y + r
	outside := vec{math.Max(dx, 0), math.Max(dy, 0)}.len()
	inside := math.Min(math.Max(dx, dy), 0)
	return outside + inside - r
}

// capsule is the distance from p to the segment ab thickened by w on each
// side.
func capsule(p, a, b vec, w float64) float64 {
	pa, ba := p.sub(a), b.sub(a)
	h := math.Max(0, math.Min(1, pa.dot(ba)/ba.dot(ba)))
	return pa.sub(ba.scale(h)).len() - w
}

// rgba is a premultiplied colour with components in [0, 1].
type rgba struct{ r, g, b, a float64 }

func of(c color.NRGBA) rgba {
	a := float64(c.A) / 255
	return rgba{float64(c.R) / 255 * a, float64(c.G) / 255 * a, float64(c.B) / 255 * a, a}
}

func (c rgba) scale(k float64) rgba { return rgba{c.r * k, c.g * k, c.b * k, c.a * k} }

// over composites s over c.
func (c rgba) over(s rgba) rgba {
	k := 1 - s.a
	return rgba{s.r + c.r*k, s.g + c.g*k, s.b + c.b*k, s.a + c.a*k}
}

func (c rgba) nrgba() color.NRGBA {
	if c.a <= 0 {
		return color.NRGBA{}
	}
	u := func(v float64) uint8 { return uint8(math.Round(math.Max(0, math.Min(1, v)) * 255)) }
	return color.NRGBA{u(c.r / c.a), u(c.g / c.a), u(c.b / c.a), u(c.a)}
}
