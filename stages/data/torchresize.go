package data

import (
	"fmt"
	"image"
	"math"
)

// Resize modes (param `resize`).
const (
	// ResizeSquash scales the whole image to size x size, changing the
	// aspect ratio of non-square images (NSD's stimuli are square).
	ResizeSquash = "squash"
	// ResizeShorterSide is torchvision's evaluation transform: scale the
	// shorter side to resize_to (Resize(256)), keeping the aspect ratio,
	// then crop size x size from the centre (CenterCrop(224)).
	ResizeShorterSide = "shorter-side"
)

// CropCenter is the only crop (param `crop`): torchvision's CenterCrop.
const CropCenter = "center"

// Resizer turns a decoded image into the network's size x size input.
type Resizer struct {
	Size   int    // output side
	Method string // ResampleArea | ResampleBilinear
	Mode   string // ResizeSquash (""), ResizeShorterSide
	// To is the shorter side's length before the crop; 0 means
	// Size*256/224 rounded, torchvision's ratio (256 for 224).
	To int
}

// resizeTo is the shorter side's length before the centre crop.
func (r Resizer) resizeTo() int {
	if r.To > 0 {
		return r.To
	}
	return int(math.Round(float64(r.Size) * 256 / 224))
}

// Check validates the settings, naming the params.
func (r Resizer) Check() error {
	switch r.Mode {
	case "", ResizeSquash:
	case ResizeShorterSide:
		if r.resizeTo() < r.Size {
			return fmt.Errorf("param resize_to: %d is smaller than image_size %d; the centre crop needs resize_to >= image_size", r.resizeTo(), r.Size)
		}
	default:
		return fmt.Errorf("param resize: unknown mode %q, expected %q or %q", r.Mode, ResizeSquash, ResizeShorterSide)
	}
	return nil
}

// CHW resizes img and writes it channel-first into dst (len 3*Size*Size).
func (r Resizer) CHW(img image.Image, dst []uint8) {
	if r.Mode != ResizeShorterSide {
		resizeCHW(img, r.Size, r.Method, dst)
		return
	}
	src := toRGB(img)
	w, h := shorterSide(src.W, src.H, r.resizeTo())
	scaled := pilResize(src, w, h, r.Method)
	top, left := centreCrop(h, r.Size), centreCrop(w, r.Size)
	plane := r.Size * r.Size
	for y := range r.Size {
		for x := range r.Size {
			p := scaled.Pix[((top+y)*scaled.W+left+x)*3:]
			i := y*r.Size + x
			dst[i], dst[plane+i], dst[2*plane+i] = p[0], p[1], p[2]
		}
	}
}

// shorterSide is torchvision's output size for Resize(n) with an int n:
// the shorter side becomes n, the longer int(n * long / short).
func shorterSide(w, h, n int) (int, int) {
	if w <= h {
		return n, int(float64(n) * float64(h) / float64(w))
	}
	return int(float64(n) * float64(w) / float64(h)), n
}

// centreCrop is CenterCrop's offset: int(round((in - out) / 2)) with
// Python's round, which rounds halves to even.
func centreCrop(in, out int) int {
	return int(math.RoundToEven(float64(in-out) / 2))
}

// pilPrecision is Pillow's fixed-point precision for 8-bit resampling
// (PRECISION_BITS = 32 - 8 - 2).
const pilPrecision = 22

// pilResize resamples like Pillow's Image.resize (which torchvision's
// Resize calls on PIL images): a separable convolution whose filter
// support widens with the scale when shrinking (antialiasing), fixed-point
// coefficients, horizontal pass first into an 8-bit image, then vertical.
// ResampleBilinear is PIL's BILINEAR (triangle); ResampleArea is PIL's
// BOX.
func pilResize(src rgbImage, w, h int, method string) rgbImage {
	filter, support := pilTriangle, 1.0
	if method == ResampleArea {
		filter, support = pilBox, 0.5
	}
	cur := src
	if w != cur.W {
		bounds, kk := pilCoeffs(cur.W, w, filter, support)
		out := rgbImage{W: w, H: cur.H, Pix: make([]uint8, w*cur.H*3)}
		for y := range cur.H {
			row := cur.Pix[y*cur.W*3:]
			for x := range w {
				lo, k := bounds[x], kk[x]
				var acc [3]int64
				for i := range acc {
					acc[i] = 1 << (pilPrecision - 1)
				}
				for j, c := range k {
					p := row[(lo+j)*3:]
					acc[0] += int64(p[0]) * int64(c)
					acc[1] += int64(p[1]) * int64(c)
					acc[2] += int64(p[2]) * int64(c)
				}
				o := (y*w + x) * 3
				out.Pix[o], out.Pix[o+1], out.Pix[o+2] = pilClip(acc[0]), pilClip(acc[1]), pilClip(acc[2])
			}
		}
		cur = out
	}
	if h != cur.H {
		bounds, kk := pilCoeffs(cur.H, h, filter, support)
		out := rgbImage{W: cur.W, H: h, Pix: make([]uint8, cur.W*h*3)}
		for y := range h {
			lo, k := bounds[y], kk[y]
			for x := range cur.W {
				var acc [3]int64
				for i := range acc {
					acc[i] = 1 << (pilPrecision - 1)
				}
				for j, c := range k {
					p := cur.Pix[((lo+j)*cur.W+x)*3:]
					acc[0] += int64(p[0]) * int64(c)
					acc[1] += int64(p[1]) * int64(c)
					acc[2] += int64(p[2]) * int64(c)
				}
				o := (y*cur.W + x) * 3
				out.Pix[o], out.Pix[o+1], out.Pix[o+2] = pilClip(acc[0]), pilClip(acc[1]), pilClip(acc[2])
			}
		}
		cur = out
	}
	return cur
}

func pilTriangle(x float64) float64 {
	if x < 0 {
		x = -x
	}
	if x < 1 {
		return 1 - x
	}
	return 0
}

func pilBox(x float64) float64 {
	if x > -0.5 && x <= 0.5 {
		return 1
	}
	return 0
}

// pilCoeffs computes, for each output index, the first source index and
// the fixed-point weights of the source pixels it reads, as Pillow's
// precompute_coeffs and normalize_coeffs_8bpc do.
func pilCoeffs(in, out int, filter func(float64) float64, support float64) ([]int, [][]int32) {
	scale := float64(in) / float64(out)
	filterscale := max(scale, 1)
	support *= filterscale
	ss := 1 / filterscale
	bounds := make([]int, out)
	kk := make([][]int32, out)
	for o := range out {
		center := (float64(o) + 0.5) * scale
		// C's (int) truncates toward zero, as Go's conversion does.
		lo := int(center - support + 0.5)
		lo = max(lo, 0)
		hi := int(center + support + 0.5)
		hi = min(hi, in)
		n := hi - lo
		ws := make([]float64, n)
		sum := 0.0
		for j := range n {
			w := filter((float64(j+lo) - center + 0.5) * ss)
			ws[j] = w
			sum += w
		}
		k := make([]int32, n)
		for j, w := range ws {
			if sum != 0 {
				w /= sum
			}
			if w < 0 {
				k[j] = int32(-0.5 + w*(1<<pilPrecision))
			} else {
				k[j] = int32(0.5 + w*(1<<pilPrecision))
			}
		}
		bounds[o], kk[o] = lo, k
	}
	return bounds, kk
}

// pilClip shifts a fixed-point sum back to 8 bits, saturating.
func pilClip(v int64) uint8 {
	v >>= pilPrecision
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}
