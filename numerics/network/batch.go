package network

import (
	"math/rand/v2"

	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// DropoutMasks draws the two classifier dropout masks for a batch of n:
// classifier.0 acts on the pooled features ([n, Channels[4]*PoolSize^2]),
// classifier.3 on the first hidden layer ([n, Hidden[0]]). Values are 0 or
// 1/(1-p), as torch's inverted dropout; p = 0 gives all-ones masks.
func DropoutMasks(rng *rand.Rand, cfg Config, n int, p float64) []*tensors.Tensor {
	out := make([]*tensors.Tensor, 2)
	for k, h := range [2]int{cfg.Channels[4] * cfg.PoolSize * cfg.PoolSize, cfg.Hidden[0]} {
		m := make([]float32, n*h)
		keep := float32(1 / (1 - p))
		for i := range m {
			if p == 0 || rng.Float64() >= p {
				m[i] = keep
			}
		}
		out[k] = tensors.FromFlatDataAndDimensions(m, n, h)
	}
	return out
}

// GatherImages copies images idx (each 3 x s x s) of a flat uint8 array
// into a new [len(idx),3,s,s] tensor.
func GatherImages(all []uint8, s int, idx []int) *tensors.Tensor {
	sz := 3 * s * s
	out := make([]uint8, len(idx)*sz)
	for i, j := range idx {
		copy(out[i*sz:(i+1)*sz], all[j*sz:(j+1)*sz])
	}
	return tensors.FromFlatDataAndDimensions(out, len(idx), 3, s, s)
}

// GatherRows copies rows idx (each d wide) of a flat float32 matrix into a
// new [len(idx), d] tensor.
func GatherRows(all []float32, d int, idx []int) *tensors.Tensor {
	out := make([]float32, len(idx)*d)
	for i, j := range idx {
		copy(out[i*d:(i+1)*d], all[j*d:(j+1)*d])
	}
	return tensors.FromFlatDataAndDimensions(out, len(idx), d)
}

// ResizeImages rescales n uint8 images 3 x from x from to 3 x to x to with
// bilinear interpolation (half-pixel centres, as torch's
// interpolate(align_corners=False)); from == to returns src unchanged.
func ResizeImages(src []uint8, n, from, to int) []uint8 {
	if from == to {
		return src
	}
	dst := make([]uint8, n*3*to*to)
	scale := float64(from) / float64(to)
	type tap struct {
		i0, i1 int
		w1     float64
	}
	taps := make([]tap, to)
	for o := range taps {
		x := (float64(o)+0.5)*scale - 0.5
		if x < 0 {
			x = 0
		}
		i0 := int(x)
		i1 := min(i0+1, from-1)
		taps[o] = tap{i0, i1, x - float64(i0)}
	}
	for c := 0; c < n*3; c++ {
		s := src[c*from*from : (c+1)*from*from]
		d := dst[c*to*to : (c+1)*to*to]
		for y, ty := range taps {
			for x, tx := range taps {
				v00 := float64(s[ty.i0*from+tx.i0])
				v01 := float64(s[ty.i0*from+tx.i1])
				v10 := float64(s[ty.i1*from+tx.i0])
				v11 := float64(s[ty.i1*from+tx.i1])
				v := (v00*(1-tx.w1)+v01*tx.w1)*(1-ty.w1) + (v10*(1-tx.w1)+v11*tx.w1)*ty.w1
				d[y*to+x] = uint8(min(255, v+0.5))
			}
		}
	}
	return dst
}

// Subset returns the tensors of w whose names appear in specs.
func Subset(w Weights, specs []ParamSpec) Weights {
	out := Weights{}
	for _, p := range specs {
		if t, ok := w[p.Name]; ok {
			out[p.Name] = t
		}
	}
	return out
}
