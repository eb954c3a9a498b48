package accel

import (
	"fmt"

	"github.com/gomlx/gomlx/backends/simplego"
)

// scatterParams is the data of a SelectAndScatterMax/Min node.
type scatterParams struct {
	max             bool
	window, strides []int
	paddings        [][2]int
	// geo is set for float32 windows over at most two axes, which take
	// the plane kernel.
	geo     *planes
	threads int
}

func execSelectAndScatter(backend *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, _ []bool) (*simplego.Buffer, error) {
	p := mirror(node).data.(*scatterParams)
	x, xs, err := flatOf(backend, inputs[0])
	if err != nil {
		return nil, fmt.Errorf("accel SelectAndScatter: %w", err)
	}
	src, ss, err := flatOf(backend, inputs[1])
	if err != nil {
		return nil, fmt.Errorf("accel SelectAndScatter: %w", err)
	}
	out := backend.NewBuffer(xs)
	dst, _, err := flatOf(backend, out)
	if err != nil {
		return nil, fmt.Errorf("accel SelectAndScatter: %w", err)
	}
	if p.geo != nil {
		scatterPlanes(p.geo, p.threads, p.max, x.([]float32), src.([]float32), dst.([]float32))
		return out, nil
	}
	switch x := x.(type) {
	case []float32:
		selectAndScatter(x, src.([]float32), dst.([]float32), xs.Dimensions, ss.Dimensions, p)
	case []float64:
		selectAndScatter(x, src.([]float64), dst.([]float64), xs.Dimensions, ss.Dimensions, p)
	default:
		return nil, fmt.Errorf("accel SelectAndScatter: dtype %s not supported, expected float32 or float64", xs.DType)
	}
	return out, nil
}

// selectAndScatter adds each source value to the position of the first
// maximum (or minimum) of its window in x, as XLA's SelectAndScatter with a
// >= (<=) select does. Window positions in the padding are never selected.
func selectAndScatter[T float32 | float64](x, src, dst []T, xdims, sdims []int, p *scatterParams) {
	for i := range dst {
		dst[i] = 0
	}
	rank := len(xdims)
	xstrides := make([]int, rank)
	acc := 1
	for i := rank - 1; i >= 0; i-- {
		xstrides[i] = acc
		acc *= xdims[i]
	}
	sidx := make([]int, rank)
	widx := make([]int, rank)
	for s := range src {
		// Decode the source (window) index.
		rem := s
		for i := rank - 1; i >= 0; i-- {
			sidx[i] = rem % sdims[i]
			rem /= sdims[i]
		}
		best, bestAt := T(0), -1
		for i := range widx {
			widx[i] = 0
		}
		for {
			off, inside := 0, true
			for i := range rank {
				pos := sidx[i]*p.strides[i] - p.paddings[i][0] + widx[i]
				if pos < 0 || pos >= xdims[i] {
					inside = false
					break
				}
				off += pos * xstrides[i]
			}
			if inside {
				v := x[off]
				if bestAt < 0 || (p.max && v > best) || (!p.max && v < best) {
					best, bestAt = v, off
				}
			}
			// Next window position.
			i := rank - 1
			for ; i >= 0; i-- {
				widx[i]++
				if widx[i] < p.window[i] {
					break
				}
				widx[i] = 0
			}
			if i < 0 {
				break
			}
		}
		if bestAt >= 0 {
			dst[bestAt] += src[s]
		}
	}
}
