package accel

import (
	"fmt"
	"slices"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/shapeinference"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// patchBytes bounds the im2col scratch matrix of one GEMM: large enough for
// GEMMs that run near peak, small enough to stay out of the way of memory.
const patchBytes = 32 << 20

// convParams is the data of our 2-D float32 ConvGeneral nodes, computed as
// out[o, (b, y, x)] = K[o, (c, ky, kx)] . P[(c, ky, kx), (b, y, x)] with P
// built by im2col straight from the input's layout.
type convParams struct {
	nb, nc, no             int // batch, input channels, output channels
	ih, iw, kh, kw, oh, ow int
	in                     [4]int // element strides of input batch, channel, y, x
	kern                   [4]int // element strides of kernel out-channel, in-channel, ky, kx
	out                    [4]int // element strides of output batch, channel, y, x
	stride, kdil, idil     [2]int
	pad                    [2]int // low padding per spatial axis
	threads                int
}

// ConvGeneral implements backends.Builder: 2-D float32 convolutions without
// grouping (AlexNet's, and the convolutions gomlx builds for their
// gradients) run as im2col + OpenBLAS sgemm; others go to simplego with
// the nil strides and dilations that gomlx's gradients pass filled in.
func (b *builder) ConvGeneral(input, kernel backends.Op, axes backends.ConvolveAxesConfig, strides []int, paddings [][2]int,
	inputDilations, kernelDilations []int, channelGroupCount, batchGroupCount int) (backends.Op, error) {
	n := len(axes.InputSpatial)
	strides = ones(strides, n)
	inputDilations = ones(inputDilations, n)
	kernelDilations = ones(kernelDilations, n)
	if paddings == nil {
		paddings = make([][2]int, n)
	}
	channelGroupCount, batchGroupCount = max(channelGroupCount, 1), max(batchGroupCount, 1)
	in, err := b.nodes("ConvGeneral", input, kernel)
	if err != nil {
		return nil, err
	}
	xs, ks := shapeOf(in[0]), shapeOf(in[1])
	if b.backend.stock || n != 2 || channelGroupCount != 1 || batchGroupCount != 1 || xs.DType != dtypes.Float32 || ks.DType != dtypes.Float32 {
		return b.Builder.ConvGeneral(input, kernel, axes, strides, paddings, inputDilations, kernelDilations, channelGroupCount, batchGroupCount)
	}
	out, err := shapeinference.ConvGeneralOp(xs, ks, axes, strides, paddings, inputDilations, kernelDilations, 1, 1)
	if err != nil {
		return nil, fmt.Errorf("accel ConvGeneral(input %s, kernel %s): %w", xs, ks, err)
	}
	if !b.backend.im2col {
		if d, kernelNode := dnnlFor(axes, xs, ks, out, strides, paddings, inputDilations, kernelDilations, in[1], b.backend); d != nil {
			b.backend.convPaths[d.kind].Add(1)
			return b.newNode(backends.OpTypeConvGeneral, out, d, in[0], kernelNode), nil
		}
	}
	for i := range 2 {
		if paddings[i][0] < 0 || paddings[i][1] < 0 {
			return b.Builder.ConvGeneral(input, kernel, axes, strides, paddings, inputDilations, kernelDilations, 1, 1)
		}
	}
	xst, kst, ost := xs.Strides(), ks.Strides(), out.Strides()
	p := &convParams{
		nb: xs.Dimensions[axes.InputBatch], nc: xs.Dimensions[axes.InputChannels], no: ks.Dimensions[axes.KernelOutputChannels],
		ih: xs.Dimensions[axes.InputSpatial[0]], iw: xs.Dimensions[axes.InputSpatial[1]],
		kh: ks.Dimensions[axes.KernelSpatial[0]], kw: ks.Dimensions[axes.KernelSpatial[1]],
		oh: out.Dimensions[axes.OutputSpatial[0]], ow: out.Dimensions[axes.OutputSpatial[1]],
		in:      [4]int{xst[axes.InputBatch], xst[axes.InputChannels], xst[axes.InputSpatial[0]], xst[axes.InputSpatial[1]]},
		kern:    [4]int{kst[axes.KernelOutputChannels], kst[axes.KernelInputChannels], kst[axes.KernelSpatial[0]], kst[axes.KernelSpatial[1]]},
		out:     [4]int{ost[axes.OutputBatch], ost[axes.OutputChannels], ost[axes.OutputSpatial[0]], ost[axes.OutputSpatial[1]]},
		stride:  [2]int{strides[0], strides[1]},
		kdil:    [2]int{kernelDilations[0], kernelDilations[1]},
		idil:    [2]int{inputDilations[0], inputDilations[1]},
		pad:     [2]int{paddings[0][0], paddings[1][0]},
		threads: b.backend.threads,
	}
	b.backend.convPaths[convIm2col].Add(1)
	return b.newNode(backends.OpTypeConvGeneral, out, p, in[0], in[1]), nil
}

// dnnlFor maps a 2-D float32 ConvGeneral onto one of oneDNN's convolution
// primitives, or returns nil when it is none of the three forms below. It
// also returns the node to use as the kernel input (the operand of a
// spatial Reverse that backward-data can read unreversed).
//
// gomlx builds a convolution's gradients as convolutions (graph/
// ops_convolve.go, convVJPWrtX and convVJPWrtKernel), which is how they
// reach this builder:
//   - forward: NCHW input, OIHW kernel, NCHW output, no input dilation;
//   - input gradient: NCHW output gradient, the kernel Reverse'd spatially
//     with its channel axes swapped, the forward stride as input dilation:
//     oneDNN's backward-data of the forward convolution;
//   - kernel gradient: the input with batch and channel axes swapped, the
//     output gradient as kernel, the forward stride as kernel dilation and
//     an OIHW output: oneDNN's backward-weights.
//
// The first two are identities for any convolution of that layout, not only
// for gradients; the third only matches gomlx's gradient layout.
func dnnlFor(axes backends.ConvolveAxesConfig, xs, ks, out shapes.Shape, strides []int, paddings [][2]int,
	idil, kdil []int, kernelNode *simplego.Node, backend *Backend) (*dnnlConv, *simplego.Node) {
	nchw := func(batch, channels int, spatial []int) bool {
		return batch == 0 && channels == 1 && slices.Equal(spatial, []int{2, 3})
	}
	dense := func(v []int) bool { return v[0] == 1 && v[1] == 1 }
	xd, kd, od := xs.Dimensions, ks.Dimensions, out.Dimensions
	keff := func(k, dil int) int { return (k-1)*dil + 1 }
	d := &dnnlConv{threads: backend.threads, serial: &backend.convMu, chunkBytes: backend.dnnlChunkBytes}
	switch {
	case nchw(axes.InputBatch, axes.InputChannels, axes.InputSpatial) && nchw(axes.OutputBatch, axes.OutputChannels, axes.OutputSpatial) &&
		nchw(axes.KernelOutputChannels, axes.KernelInputChannels, axes.KernelSpatial) && dense(idil):
		d.kind = convForward
		d.n, d.c, d.h, d.w = xd[0], xd[1], xd[2], xd[3]
		d.o, d.kh, d.kw, d.oh, d.ow = kd[0], kd[2], kd[3], od[2], od[3]
		for i := range 2 {
			d.stride[i], d.dilate[i] = strides[i], kdil[i]-1
			d.pl[i], d.pr[i] = paddings[i][0], paddings[i][1]
		}
	case nchw(axes.InputBatch, axes.InputChannels, axes.InputSpatial) && nchw(axes.OutputBatch, axes.OutputChannels, axes.OutputSpatial) &&
		nchw(axes.KernelInputChannels, axes.KernelOutputChannels, axes.KernelSpatial) && dense(strides):
		d.kind = convBackData
		d.n, d.o, d.oh, d.ow = xd[0], xd[1], xd[2], xd[3]
		d.c, d.h, d.w = od[1], od[2], od[3]
		d.kh, d.kw = kd[2], kd[3]
		for i := range 2 {
			d.stride[i], d.dilate[i] = idil[i], kdil[i]-1
			e := keff(kd[2+i], kdil[i])
			d.pl[i], d.pr[i] = e-1-paddings[i][0], e-1-paddings[i][1]
		}
		d.flip = true
		if m := mirror(kernelNode); m.opType == backends.OpTypeReverse && len(m.inputs) == 1 {
			if r, ok := m.data.(*reverseParams); ok && slices.Equal(r.axes, []bool{false, false, true, true}) {
				kernelNode, d.flip = m.inputs[0], false
			}
		}
	case axes.InputBatch == 1 && axes.InputChannels == 0 && slices.Equal(axes.InputSpatial, []int{2, 3}) &&
		axes.OutputBatch == 1 && axes.OutputChannels == 0 && slices.Equal(axes.OutputSpatial, []int{2, 3}) &&
		nchw(axes.KernelInputChannels, axes.KernelOutputChannels, axes.KernelSpatial) && dense(idil):
		d.kind = convBackWeights
		d.n, d.c, d.h, d.w = xd[0], xd[1], xd[2], xd[3]
		d.o, d.oh, d.ow = kd[1], kd[2], kd[3]
		d.kh, d.kw = od[2], od[3]
		for i, o := range []int{d.oh, d.ow} {
			// The forward's right padding is implied by its output size
			// (gomlx pads the gradient's end only to shape its output).
			d.stride[i], d.dilate[i] = kdil[i], strides[i]-1
			d.pl[i] = paddings[i][0]
			d.pr[i] = (o-1)*kdil[i] + keff(od[2+i], strides[i]) - xd[2+i] - d.pl[i]
		}
	default:
		return nil, nil
	}
	if d.n == 0 || d.c == 0 || d.o == 0 {
		return nil, nil
	}
	for i, o := range []int{d.oh, d.ow} {
		// A negative right padding only drops input rows no window
		// reaches; the smallest non-negative one with the same output
		// size computes the same (oneDNN wants padding >= 0).
		in := []int{d.h, d.w}[i]
		e := keff([]int{d.kh, d.kw}[i], d.dilate[i]+1)
		d.pr[i] = max(0, d.pr[i])
		if d.pl[i] < 0 || (in+d.pl[i]+d.pr[i]-e)/d.stride[i]+1 != o {
			return nil, nil
		}
	}
	d, err := newDNNLConv(d)
	if err != nil {
		return nil, nil
	}
	return d, kernelNode
}

func (p *convParams) exec(backend *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer) (*simplego.Buffer, error) {
	xf, _, err := flatOf(backend, inputs[0])
	if err != nil {
		return nil, fmt.Errorf("accel ConvGeneral input: %w", err)
	}
	kf, _, err := flatOf(backend, inputs[1])
	if err != nil {
		return nil, fmt.Errorf("accel ConvGeneral kernel: %w", err)
	}
	out := backend.NewBuffer(mirror(node).shape)
	of, _, err := flatOf(backend, out)
	if err != nil {
		return nil, fmt.Errorf("accel ConvGeneral output: %w", err)
	}
	x, k, o := xf.([]float32), kf.([]float32), of.([]float32)
	s := p.oh * p.ow
	rows := p.nc * p.kh * p.kw
	if len(o) == 0 {
		return out, nil
	}
	if rows == 0 || len(x) == 0 {
		clear(o)
		return out, nil
	}
	var scratch []*simplego.Buffer
	defer func() {
		for _, t := range scratch {
			_ = backend.BufferFinalize(t)
		}
	}()
	alloc := func(n int) ([]float32, error) {
		t := backend.NewBuffer(shapes.Make(dtypes.Float32, n))
		scratch = append(scratch, t)
		f, _, err := flatOf(backend, t)
		if err != nil {
			return nil, err
		}
		return f.([]float32), nil
	}

	// Narrowing stride-1 convolutions (gomlx's input-gradient convolution
	// of a widening layer) make a better GEMM as col2im; input-dilated
	// ones also skip the zeros.
	if p.stride == [2]int{1, 1} && (p.idil != [2]int{1, 1} || (p.no < p.nc && p.no <= 128)) {
		return out, p.execCol2im(x, k, o, alloc)
	}

	// Kernel as a row-major [no, nc*kh*kw] matrix, in place when it is one.
	km := k
	if p.kern != [4]int{rows, p.kh * p.kw, p.kw, 1} {
		if km, err = alloc(p.no * rows); err != nil {
			return nil, err
		}
		gatherStrided(asWords[uint32](k), asWords[uint32](km), []int{p.no, p.nc, p.kh, p.kw}, p.kern[:], 0)
	}

	// Samples per GEMM: one when the output is [batch, channel, y, x] and
	// a sample gives a wide enough GEMM (sgemm then writes the output in
	// place); otherwise enough to make the GEMM wide, through a scratch
	// output that is scattered afterwards.
	direct := p.out == [4]int{p.no * s, s, p.ow, 1} && s >= 128
	bChunk := 1
	if !direct {
		bChunk = min(p.nb, max(1, (512+s-1)/s))
		for bChunk > 1 && bChunk*s*p.kh*p.kw*4 > patchBytes {
			bChunk /= 2
		}
	}
	cols := bChunk * s
	// Input channels per GEMM: as many as fit the patch budget; the
	// partial products accumulate in the output (beta = 1).
	cChunk := max(1, min(p.nc, patchBytes/(4*p.kh*p.kw*cols)))
	patch, err := alloc(cChunk * p.kh * p.kw * cols)
	if err != nil {
		return nil, err
	}
	var tmp []float32
	if !direct {
		if tmp, err = alloc(p.no * cols); err != nil {
			return nil, err
		}
	}
	// The patch matrix is written along its longer contiguous run: output
	// x positions (im2col) or kernel x taps (im2colT, gomlx's
	// kernel-gradient convolutions, whose "kernel" is the output gradient).
	transposed := p.kw > p.ow
	args := &im2colArgs{
		sb: p.in[0], sc: p.in[1], sy: p.in[2], sx: p.in[3],
		ih: p.ih, iw: p.iw, kh: p.kh, kw: p.kw, oh: p.oh, ow: p.ow,
		sty: p.stride[0], stx: p.stride[1], pady: p.pad[0], padx: p.pad[1],
		kdy: p.kdil[0], kdx: p.kdil[1], idy: p.idil[0], idx: p.idil[1],
	}
	for b0 := 0; b0 < p.nb; b0 += bChunk {
		nb := min(bChunk, p.nb-b0)
		args.in, args.nb = x[b0*p.in[0]:], nb
		dst := tmp
		if direct {
			dst = o[b0*p.no*s:]
		}
		for c0 := 0; c0 < p.nc; c0 += cChunk {
			c1 := min(c0+cChunk, p.nc)
			kk := (c1 - c0) * p.kh * p.kw
			beta := float32(1)
			if c0 == 0 {
				beta = 0
			}
			if transposed {
				im2colT(args, patch, kk, c0, c1, p.threads)
				sgemm(p.threads, false, true, p.no, nb*s, kk, 1, km[c0*p.kh*p.kw:], rows, patch, kk, beta, dst, nb*s)
			} else {
				im2col(args, patch, nb*s, c0, c1, p.threads)
				sgemm(p.threads, false, false, p.no, nb*s, kk, 1, km[c0*p.kh*p.kw:], rows, patch, nb*s, beta, dst, nb*s)
			}
		}
		if !direct {
			// tmp is [no, nb, oh, ow].
			for c := range p.no {
				for bi := range nb {
					src := tmp[(c*nb+bi)*s:]
					base := (b0+bi)*p.out[0] + c*p.out[1]
					for y := range p.oh {
						row := o[base+y*p.out[2]:]
						for xi := range p.ow {
							row[xi*p.out[3]] = src[y*p.ow+xi]
						}
					}
				}
			}
		}
	}
	return out, nil
}

// execCol2im computes the convolution as G = K^T . In per batch chunk, a
// [(co, ky, kx), (b, iy, ix)] matrix of contributions that col2im then adds
// into the output positions they feed.
func (p *convParams) execCol2im(x, k, o []float32, alloc func(int) ([]float32, error)) error {
	ks := p.kh * p.kw
	m := p.no * ks
	kt, err := alloc(m * p.nc)
	if err != nil {
		return err
	}
	gatherStrided(asWords[uint32](k), asWords[uint32](kt), []int{p.no, p.kh, p.kw, p.nc},
		[]int{p.kern[0], p.kern[2], p.kern[3], p.kern[1]}, 0)
	s := p.ih * p.iw
	bChunk := min(p.nb, max(1, (512+s-1)/s))
	for bChunk > 1 && m*bChunk*s*4 > patchBytes {
		bChunk /= 2
	}
	inPlace := bChunk == 1 && p.in[1] == s && p.in[2] == p.iw && p.in[3] == 1
	g, err := alloc(m * bChunk * s)
	if err != nil {
		return err
	}
	var packed []float32
	if !inPlace {
		if packed, err = alloc(p.nc * bChunk * s); err != nil {
			return err
		}
	}
	args := &col2imArgs{no: p.no, ob: p.out[0], oc: p.out[1], oy: p.out[2], ox: p.out[3],
		oh: p.oh, ow: p.ow, kh: p.kh, kw: p.kw, ih: p.ih, iw: p.iw,
		pady: p.pad[0], padx: p.pad[1], kdy: p.kdil[0], kdx: p.kdil[1], idy: p.idil[0], idx: p.idil[1]}
	for b0 := 0; b0 < p.nb; b0 += bChunk {
		nb := min(bChunk, p.nb-b0)
		n := nb * s
		in := x[b0*p.in[0]:]
		if !inPlace {
			gatherStrided(asWords[uint32](in), asWords[uint32](packed[:p.nc*n]), []int{p.nc, nb, p.ih, p.iw},
				[]int{p.in[1], p.in[0], p.in[2], p.in[3]}, 0)
			in = packed
		}
		sgemm(p.threads, false, false, m, n, p.nc, 1, kt, p.nc, in, n, 0, g, n)
		args.out, args.nb = o[b0*p.out[0]:], nb
		col2im(args, g, n, p.threads)
	}
	return nil
}
