package accel

import (
	"fmt"
	"math"
	"sync"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/shapeinference"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// planes is the geometry of a windowed op whose window spans at most two
// axes: the other ("free") axes enumerate independent 2-D planes, each
// pooled with its own strides, so any axes layout runs without copies.
type planes struct {
	inOff, outOff  []int // start of every plane in the operand and window grid
	ih, iw, oh, ow int
	isy, isx       int // operand strides of the two window axes
	osy, osx       int // window-grid strides of the two window axes
	wh, ww         int
	sy, sx         int
	py, px         int // low padding
}

// newPlanes returns the plane geometry, or false when the window spans
// more than two axes.
func newPlanes(in, out shapes.Shape, window, strides []int, paddings [][2]int) (*planes, bool) {
	rank := in.Rank()
	var spatial, free []int
	for i := range rank {
		if window[i] == 1 && strides[i] == 1 && paddings[i] == [2]int{} {
			free = append(free, i)
		} else {
			spatial = append(spatial, i)
		}
	}
	if len(spatial) > 2 {
		return nil, false
	}
	is, os := in.Strides(), out.Strides()
	p := &planes{ih: 1, iw: 1, oh: 1, ow: 1, wh: 1, ww: 1, sy: 1, sx: 1}
	set := func(a int, ih, oh, isy, osy, wh, sy, py *int) {
		*ih, *oh, *isy, *osy = in.Dimensions[a], out.Dimensions[a], is[a], os[a]
		*wh, *sy, *py = window[a], strides[a], paddings[a][0]
	}
	switch len(spatial) {
	case 2:
		set(spatial[0], &p.ih, &p.oh, &p.isy, &p.osy, &p.wh, &p.sy, &p.py)
		set(spatial[1], &p.iw, &p.ow, &p.isx, &p.osx, &p.ww, &p.sx, &p.px)
	case 1:
		set(spatial[0], &p.iw, &p.ow, &p.isx, &p.osx, &p.ww, &p.sx, &p.px)
	}
	p.inOff, p.outOff = []int{0}, []int{0}
	for _, a := range free {
		var ni, no []int
		for j := range in.Dimensions[a] {
			for k := range p.inOff {
				ni = append(ni, p.inOff[k]+j*is[a])
				no = append(no, p.outOff[k]+j*os[a])
			}
		}
		p.inOff, p.outOff = ni, no
	}
	return p, true
}

// each runs fn over all planes on up to threads goroutines.
func (p *planes) each(threads int, fn func(inOff, outOff int)) {
	n := len(p.inOff)
	parts := min(threads, n)
	if parts <= 1 || n*p.oh*p.ow*p.wh*p.ww < 1<<14 {
		for i := range n {
			fn(p.inOff[i], p.outOff[i])
		}
		return
	}
	var wg sync.WaitGroup
	for t := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := n * t / parts; i < n*(t+1)/parts; i++ {
				fn(p.inOff[i], p.outOff[i])
			}
		}()
	}
	wg.Wait()
}

// windowRange returns the window taps [lo, hi) that fall inside [0, n) for
// output position o.
func windowRange(o, stride, pad, window, n int) (start, lo, hi int) {
	start = o*stride - pad
	lo, hi = max(0, -start), min(window, n-start)
	return start, lo, max(lo, hi)
}

// reduceWindowParams is the data of our float32 ReduceWindow nodes.
type reduceWindowParams struct {
	op      backends.ReduceOpType
	geo     *planes
	threads int
}

// ReduceWindow implements backends.Builder: float32 max/min/sum pooling
// over at most two axes without dilations runs on a plane kernel; the rest
// goes to simplego.
func (b *builder) ReduceWindow(x backends.Op, op backends.ReduceOpType, window, strides, baseDilations, windowDilations []int, paddings [][2]int) (backends.Op, error) {
	stock := func() (backends.Op, error) {
		return b.Builder.ReduceWindow(x, op, window, strides, baseDilations, windowDilations, paddings)
	}
	in, err := b.nodes("ReduceWindow", x)
	if err != nil {
		return nil, err
	}
	xs := shapeOf(in[0])
	if b.backend.stock || xs.DType != dtypes.Float32 || len(window) != xs.Rank() || !unit(baseDilations) || !unit(windowDilations) ||
		(op != backends.ReduceOpMax && op != backends.ReduceOpMin && op != backends.ReduceOpSum) {
		return stock()
	}
	if len(strides) == 0 {
		strides = window
	}
	pads := make([][2]int, xs.Rank())
	copy(pads, paddings)
	out, err := shapeinference.ReduceWindowOp(xs, window, strides, nil, nil, pads)
	if err != nil {
		return nil, fmt.Errorf("accel ReduceWindow of %s: %w", xs, err)
	}
	geo, ok := newPlanes(xs, out, window, strides, pads)
	if !ok {
		return stock()
	}
	p := &reduceWindowParams{op: op, geo: geo, threads: b.backend.threads}
	return b.newNode(backends.OpTypeReduceWindow, out, p, in[0]), nil
}

func unit(s []int) bool {
	for _, v := range s {
		if v != 1 {
			return false
		}
	}
	return true
}

func (p *reduceWindowParams) exec(backend *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer) (*simplego.Buffer, error) {
	xf, _, err := flatOf(backend, inputs[0])
	if err != nil {
		return nil, fmt.Errorf("accel ReduceWindow: %w", err)
	}
	out := backend.NewBuffer(mirror(node).shape)
	of, _, err := flatOf(backend, out)
	if err != nil {
		return nil, fmt.Errorf("accel ReduceWindow: %w", err)
	}
	x, o, g := xf.([]float32), of.([]float32), p.geo
	init := float32(0)
	switch p.op {
	case backends.ReduceOpMax:
		init = float32(math.Inf(-1))
	case backends.ReduceOpMin:
		init = float32(math.Inf(1))
	}
	isMax, isSum := p.op == backends.ReduceOpMax, p.op == backends.ReduceOpSum
	g.each(p.threads, func(inOff, outOff int) {
		for oy := range g.oh {
			y0, ylo, yhi := windowRange(oy, g.sy, g.py, g.wh, g.ih)
			for ox := range g.ow {
				x0, xlo, xhi := windowRange(ox, g.sx, g.px, g.ww, g.iw)
				acc := init
				// Separate loops per reduction keep the branch out of
				// the inner loop.
				for ky := ylo; ky < yhi; ky++ {
					row := x[inOff+(y0+ky)*g.isy:]
					switch {
					case isMax:
						for kx := xlo; kx < xhi; kx++ {
							acc = max(acc, row[(x0+kx)*g.isx])
						}
					case isSum:
						for kx := xlo; kx < xhi; kx++ {
							acc += row[(x0+kx)*g.isx]
						}
					default:
						for kx := xlo; kx < xhi; kx++ {
							acc = min(acc, row[(x0+kx)*g.isx])
						}
					}
				}
				o[outOff+oy*g.osy+ox*g.osx] = acc
			}
		}
	})
	return out, nil
}

// scatterPlanes is the plane kernel of SelectAndScatterMax/Min: dst gets
// each source value at its window's first extreme element.
func scatterPlanes(g *planes, threads int, isMax bool, x, src, dst []float32) {
	clear(dst)
	g.each(threads, func(inOff, outOff int) {
		for oy := range g.oh {
			y0, ylo, yhi := windowRange(oy, g.sy, g.py, g.wh, g.ih)
			for ox := range g.ow {
				x0, xlo, xhi := windowRange(ox, g.sx, g.px, g.ww, g.iw)
				best, at := float32(0), -1
				for ky := ylo; ky < yhi; ky++ {
					base := inOff + (y0+ky)*g.isy
					for kx := xlo; kx < xhi; kx++ {
						i := base + (x0+kx)*g.isx
						v := x[i]
						if at < 0 || (isMax && v > best) || (!isMax && v < best) {
							best, at = v, i
						}
					}
				}
				if at >= 0 {
					dst[at] += src[outOff+oy*g.osy+ox*g.osx]
				}
			}
		}
	})
}
