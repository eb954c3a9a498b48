package data

import (
	"math"
	"math/rand/v2"
)

// canvas is an RGB float image in [0,1], channel-first, drawn in
// normalised coordinates (0..1 across, y down) so a scene renders the same
// at any resolution.
type canvas struct {
	S   int
	Pix []float32 // 3 x S x S
}

func newCanvas(size int) *canvas { return &canvas{S: size, Pix: make([]float32, 3*size*size)} }

type rgb [3]float32

// sdf is a signed distance in normalised units: negative inside.
type sdf func(x, y float64) float64

// paint blends col where the shape's signed distance is negative, with a
// one-pixel soft edge, inside the bounding box [x0,x1] x [y0,y1].
func (c *canvas) paint(d sdf, col rgb, x0, y0, x1, y1 float64) {
	s := float64(c.S)
	px0, px1 := max(0, int(x0*s)-1), min(c.S-1, int(x1*s)+1)
	py0, py1 := max(0, int(y0*s)-1), min(c.S-1, int(y1*s)+1)
	plane := c.S * c.S
	for py := py0; py <= py1; py++ {
		y := (float64(py) + 0.5) / s
		for px := px0; px <= px1; px++ {
			x := (float64(px) + 0.5) / s
			a := float32(min(1, max(0, 0.5-d(x, y)*s)))
			if a == 0 {
				continue
			}
			i := py*c.S + px
			for ch := range 3 {
				p := &c.Pix[ch*plane+i]
				*p += a * (col[ch] - *p)
			}
		}
	}
}

// gradient fills the canvas with a vertical blend from top to bottom.
func (c *canvas) gradient(top, bottom rgb) {
	plane := c.S * c.S
	for py := range c.S {
		t := (float32(py) + 0.5) / float32(c.S)
		for ch := range 3 {
			v := top[ch] + t*(bottom[ch]-top[ch])
			row := c.Pix[ch*plane+py*c.S : ch*plane+(py+1)*c.S]
			for i := range row {
				row[i] = v
			}
		}
	}
}

// grating blends an oriented sinusoid (a Gabor patch) of the given
// orientation (radians) and frequency (cycles per image width).
func (c *canvas) grating(cx, cy, radius, theta, freq float64, contrast float32) {
	s := float64(c.S)
	co, si := math.Cos(theta), math.Sin(theta)
	plane := c.S * c.S
	px0, px1 := max(0, int((cx-2*radius)*s)), min(c.S-1, int((cx+2*radius)*s))
	py0, py1 := max(0, int((cy-2*radius)*s)), min(c.S-1, int((cy+2*radius)*s))
	for py := py0; py <= py1; py++ {
		y := (float64(py)+0.5)/s - cy
		for px := px0; px <= px1; px++ {
			x := (float64(px)+0.5)/s - cx
			env := math.Exp(-(x*x + y*y) / (2 * radius * radius / 4))
			v := float32(env*math.Cos(2*math.Pi*freq*(x*co+y*si))) * contrast
			i := py*c.S + px
			for ch := range 3 {
				c.Pix[ch*plane+i] += v * 0.5
			}
		}
	}
}

// toCHW8 quantises the canvas into dst (3 x S x S).
func (c *canvas) toCHW8(dst []uint8) {
	for i, v := range c.Pix {
		dst[i] = clamp8(v * 255)
	}
}

// Signed distance primitives.

func circle(cx, cy, r float64) sdf {
	return func(x, y float64) float64 { return math.Hypot(x-cx, y-cy) - r }
}

// ellipse is an approximate distance (exact on the axes), good enough for
// a one-pixel soft edge.
func ellipse(cx, cy, rx, ry float64) sdf {
	return func(x, y float64) float64 {
		dx, dy := (x-cx)/rx, (y-cy)/ry
		return (math.Hypot(dx, dy) - 1) * min(rx, ry)
	}
}

func box(cx, cy, hw, hh, rot float64) sdf {
	co, si := math.Cos(rot), math.Sin(rot)
	return func(x, y float64) float64 {
		dx, dy := x-cx, y-cy
		u, v := math.Abs(dx*co+dy*si)-hw, math.Abs(-dx*si+dy*co)-hh
		out := math.Hypot(max(u, 0), max(v, 0))
		return out + min(max(u, v), 0)
	}
}

// capsule is a thick line segment.
func capsule(x0, y0, x1, y1, r float64) sdf {
	return func(x, y float64) float64 {
		px, py := x-x0, y-y0
		bx, by := x1-x0, y1-y0
		h := min(1, max(0, (px*bx+py*by)/(bx*bx+by*by+1e-12)))
		return math.Hypot(px-h*bx, py-h*by) - r
	}
}

// polygon is a regular n-gon of circumradius r; star makes every other
// vertex sit at inner*r.
func polygon(cx, cy, r float64, n int, rot float64, inner float64) sdf {
	k := n
	if inner > 0 {
		k = 2 * n
	}
	xs, ys := make([]float64, k), make([]float64, k)
	for i := range k {
		rr := r
		if inner > 0 && i%2 == 1 {
			rr = r * inner
		}
		a := rot + 2*math.Pi*float64(i)/float64(k)
		xs[i], ys[i] = cx+rr*math.Cos(a), cy+rr*math.Sin(a)
	}
	return func(x, y float64) float64 {
		// Exact polygon SDF (Inigo Quilez's formulation).
		d := (x-xs[0])*(x-xs[0]) + (y-ys[0])*(y-ys[0])
		sign := 1.0
		j := k - 1
		for i := range k {
			ex, ey := xs[j]-xs[i], ys[j]-ys[i]
			wx, wy := x-xs[i], y-ys[i]
			h := min(1, max(0, (wx*ex+wy*ey)/(ex*ex+ey*ey)))
			bx, by := wx-ex*h, wy-ey*h
			d = min(d, bx*bx+by*by)
			c1, c2, c3 := y >= ys[i], y < ys[j], ex*wy > ey*wx
			if (c1 && c2 && c3) || (!c1 && !c2 && !c3) {
				sign = -sign
			}
			j = i
		}
		return sign * math.Sqrt(d)
	}
}

func union(a, b sdf) sdf     { return func(x, y float64) float64 { return min(a(x, y), b(x, y)) } }
func subtract(a, b sdf) sdf  { return func(x, y float64) float64 { return max(a(x, y), -b(x, y)) } }
func intersect(a, b sdf) sdf { return func(x, y float64) float64 { return max(a(x, y), b(x, y)) } }
func ring(cx, cy, r, w float64) sdf {
	return func(x, y float64) float64 { return math.Abs(math.Hypot(x-cx, y-cy)-r) - w }
}

func randColor(r *rand.Rand, lo, hi float32) rgb {
	return rgb{lo + (hi-lo)*r.Float32(), lo + (hi-lo)*r.Float32(), lo + (hi-lo)*r.Float32()}
}

// hueColor maps a hue in [0,1) to a saturated colour.
func hueColor(h float64, v float32) rgb {
	h = math.Mod(h, 1) * 6
	x := float32(1 - math.Abs(math.Mod(h, 2)-1))
	var c rgb
	switch int(h) {
	case 0:
		c = rgb{1, x, 0}
	case 1:
		c = rgb{x, 1, 0}
	case 2:
		c = rgb{0, 1, x}
	case 3:
		c = rgb{0, x, 1}
	case 4:
		c = rgb{x, 0, 1}
	default:
		c = rgb{1, 0, x}
	}
	return rgb{c[0] * v, c[1] * v, c[2] * v}
}

// Scene categories of the synthetic NSD images. Each floc family of ROIs
// prefers the category of the same name.
const (
	CatFaces = iota
	CatBodies
	CatPlaces
	CatWords
	CatObjects
	numCats
)

// SceneCategories names the synthetic scene categories, indexed by the
// values in truth/<split>_category.npy.
func SceneCategories() []string { return []string{"faces", "bodies", "places", "words", "objects"} }

// scene is the hidden content of one synthetic NSD image.
type scene struct {
	Cat      int
	Attr     float64 // category-specific fine attribute in [0,1]
	Evidence float64 // how strongly the category is shown (size x contrast)
	CX, CY   float64 // object centre
	Scale    float64
	seed     uint64
}

// drawScene renders s onto c. The attribute changes a fine feature within
// the category (face: eye spacing and mouth curve; body: arm angle; place:
// horizon height; words: number of text lines; objects: hue and corner
// count), which a network pretrained on other categories does not separate
// but which the higher ROIs' voxels are tuned to.
func drawScene(c *canvas, s scene) {
	r := rand.New(rand.NewPCG(s.seed, 0xd5a7))
	top, bottom := randColor(r, 0.2, 0.8), randColor(r, 0.2, 0.8)
	c.gradient(top, bottom)
	cx, cy, k, a := s.CX, s.CY, s.Scale, s.Attr
	switch s.Cat {
	case CatFaces:
		skin := rgb{0.85 - 0.3*r.Float32(), 0.65 - 0.25*r.Float32(), 0.5 - 0.2*r.Float32()}
		hair := randColor(r, 0.05, 0.35)
		c.paint(ellipse(cx, cy-0.04*k, 0.19*k, 0.2*k), hair, cx-0.2*k, cy-0.25*k, cx+0.2*k, cy+0.17*k)
		c.paint(ellipse(cx, cy, 0.16*k, 0.21*k), skin, cx-0.17*k, cy-0.22*k, cx+0.17*k, cy+0.22*k)
		d := (0.035 + 0.075*a) * k
		eye := rgb{0.05, 0.05, 0.1}
		for _, sx := range []float64{-1, 1} {
			ex := cx + sx*d
			c.paint(ellipse(ex, cy-0.05*k, 0.03*k, 0.02*k), rgb{0.95, 0.95, 0.95}, ex-0.04*k, cy-0.08*k, ex+0.04*k, cy-0.02*k)
			c.paint(circle(ex, cy-0.05*k, 0.013*k), eye, ex-0.02*k, cy-0.07*k, ex+0.02*k, cy-0.03*k)
		}
		c.paint(capsule(cx, cy-0.02*k, cx, cy+0.04*k, 0.008*k), rgb{skin[0] * 0.7, skin[1] * 0.7, skin[2] * 0.7}, cx-0.02*k, cy-0.03*k, cx+0.02*k, cy+0.05*k)
		curve := (a - 0.5) * 0.08 * k
		mouth := rgb{0.55, 0.1, 0.1}
		my := cy + 0.1*k
		c.paint(union(capsule(cx-0.07*k, my-curve, cx, my+curve, 0.01*k), capsule(cx, my+curve, cx+0.07*k, my-curve, 0.01*k)), mouth, cx-0.09*k, my-0.06*k, cx+0.09*k, my+0.06*k)
	case CatBodies:
		cloth := randColor(r, 0.1, 0.9)
		skin := rgb{0.8, 0.6, 0.45}
		w := 0.022 * k
		c.paint(circle(cx, cy-0.24*k, 0.06*k), skin, cx-0.07*k, cy-0.31*k, cx+0.07*k, cy-0.17*k)
		c.paint(capsule(cx, cy-0.14*k, cx, cy+0.08*k, 0.05*k), cloth, cx-0.06*k, cy-0.2*k, cx+0.06*k, cy+0.14*k)
		phi := -0.9 + 1.8*a // arm angle from horizontal: down .. up
		for _, sx := range []float64{-1, 1} {
			ex, ey := cx+sx*0.2*k*math.Cos(phi), cy-0.12*k-0.2*k*math.Sin(phi)
			c.paint(capsule(cx, cy-0.12*k, ex, ey, w), skin, min(cx, ex)-w, min(cy-0.12*k, ey)-w, max(cx, ex)+w, max(cy-0.12*k, ey)+w)
			lx := cx + sx*0.08*k
			c.paint(capsule(cx, cy+0.08*k, lx, cy+0.32*k, w*1.2), rgb{cloth[2], cloth[0], cloth[1]}, min(cx, lx)-2*w, cy+0.06*k, max(cx, lx)+2*w, cy+0.34*k)
		}
	case CatPlaces:
		h := 0.3 + 0.35*a
		sky := rgb{0.45 + 0.2*r.Float32(), 0.6 + 0.2*r.Float32(), 0.9}
		ground := rgb{0.25 + 0.2*r.Float32(), 0.45 + 0.2*r.Float32(), 0.2}
		c.gradient(sky, sky)
		c.paint(box(0.5, (h+1)/2, 0.6, (1-h)/2, 0), ground, 0, h, 1, 1)
		// A road converging to a vanishing point on the horizon.
		vx := 0.3 + 0.4*r.Float64()
		road := rgb{0.35, 0.35, 0.38}
		c.paint(intersect(union(capsule(vx, h, 0.15, 1.1, 0.02), capsule(vx, h, 0.85, 1.1, 0.02)), box(0.5, (h+1)/2, 0.6, (1-h)/2, 0)), road, 0, h, 1, 1)
		wall := randColor(r, 0.4, 0.9)
		hw, hh := 0.13*k, 0.1*k
		hx, hy := cx, h-hh+0.02
		c.paint(box(hx, hy, hw, hh, 0), wall, hx-hw, hy-hh, hx+hw, hy+hh)
		c.paint(polygon(hx, hy-hh-0.06*k, 0.17*k, 3, -math.Pi/2, 0), rgb{0.55, 0.15, 0.1}, hx-0.18*k, hy-hh-0.15*k, hx+0.18*k, hy-hh+0.03*k)
		c.paint(box(hx, hy+hh*0.5, 0.025*k, hh*0.5, 0), rgb{0.3, 0.2, 0.1}, hx-0.03*k, hy, hx+0.03*k, hy+hh)
	case CatWords:
		page := rgb{0.92, 0.92, 0.88}
		pw, ph := 0.3*k, 0.22*k
		c.paint(box(cx, cy, pw, ph, 0), page, cx-pw, cy-ph, cx+pw, cy+ph)
		lines := 1 + int(math.Round(3*a))
		ink := rgb{0.05, 0.05, 0.05}
		lh := 2 * ph / float64(lines+1)
		lw := 0.045 * k
		for l := range lines {
			y := cy - ph + lh*float64(l+1)
			for x := cx - pw + lw; x < cx+pw-lw; x += lw * 1.3 {
				// A letter: a vertical stroke plus one random extra stroke.
				st := 0.004 * k
				c.paint(capsule(x, y-0.03*k, x, y+0.03*k, st), ink, x-0.01*k, y-0.04*k, x+0.01*k, y+0.04*k)
				switch r.IntN(3) {
				case 0:
					c.paint(capsule(x, y-0.03*k, x+lw*0.7, y-0.03*k, st), ink, x-0.01*k, y-0.04*k, x+lw, y-0.02*k)
				case 1:
					c.paint(capsule(x, y, x+lw*0.7, y+0.03*k, st), ink, x-0.01*k, y-0.01*k, x+lw, y+0.04*k)
				default:
					c.paint(capsule(x+lw*0.7, y-0.03*k, x+lw*0.7, y+0.03*k, st), ink, x, y-0.04*k, x+lw, y+0.04*k)
				}
			}
		}
	case CatObjects:
		col := hueColor(a, 0.9)
		n := 3 + r.IntN(4)
		rr := 0.17 * k
		c.paint(polygon(cx, cy, rr, n, r.Float64()*math.Pi, 0), col, cx-rr, cy-rr, cx+rr, cy+rr)
		c.paint(circle(cx+0.3*rr, cy-0.3*rr, 0.25*rr), rgb{1, 1, 1}, cx-rr, cy-rr, cx+rr, cy+rr)
	}
}

// drawTextures adds the scene's oriented textures: Gabor patches at
// positions and orientations drawn from the scene seed.
func drawTextures(c *canvas, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 0x7e47))
	for range 2 {
		x, y := 0.1+0.8*r.Float64(), 0.1+0.8*r.Float64()
		c.grating(x, y, 0.1+0.06*r.Float64(), r.Float64()*math.Pi, 10+10*r.Float64(), 0.5+0.5*r.Float32())
	}
}

// newScene draws image i's hidden content from the seed.
func newScene(seed int64, i int) scene {
	r := rand.New(rand.NewPCG(uint64(seed), uint64(i)+1<<32))
	s := scene{seed: r.Uint64()}
	s.Cat = r.IntN(numCats)
	s.Attr = r.Float64()
	s.Scale = 0.8 + 0.5*r.Float64()
	s.CX, s.CY = 0.3+0.4*r.Float64(), 0.35+0.3*r.Float64()
	s.Evidence = s.Scale / 1.05
	if s.Cat == CatPlaces {
		s.Evidence = 1
	}
	return s
}

// renderScene draws the full image (scene + textures) at size.
func renderScene(s scene, size int) *canvas {
	c := newCanvas(size)
	drawScene(c, s)
	drawTextures(c, s.seed)
	return c
}
