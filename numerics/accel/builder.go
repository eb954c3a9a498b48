package accel

import (
	"fmt"
	"slices"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// builder wraps simplego's Builder: every op it does not override is built
// by simplego itself; the overrides create simplego nodes whose data is one
// of this package's param types, which the patched executor table runs.
type builder struct {
	backends.Builder
	sg      *simplego.Builder
	backend *Backend
	// maxOf records the float32 Max(x, c) nodes against a scalar c by
	// their input x, so that their gradient can read the output instead
	// (see nonNegMul).
	maxOf map[*simplego.Node][]*simplego.Node
}

// nodes converts ops to simplego nodes of this builder.
func (b *builder) nodes(opName string, ops ...backends.Op) ([]*simplego.Node, error) {
	out := make([]*simplego.Node, len(ops))
	for i, op := range ops {
		n, ok := op.(*simplego.Node)
		if !ok || n == nil {
			return nil, fmt.Errorf("accel %s: input #%d is %T, expected an op of this backend", opName, i, op)
		}
		if mirror(n).builder != b.sg {
			return nil, fmt.Errorf("accel %s: input #%d was built by another builder", opName, i)
		}
		out[i] = n
	}
	return out, nil
}

// newNode adds a node whose executor reads data.
func (b *builder) newNode(op backends.OpType, shape shapes.Shape, data any, inputs ...*simplego.Node) *simplego.Node {
	n := sgNewNode(b.sg, op, shape, inputs...)
	mirror(n).data = data
	return n
}

func shapeOf(n *simplego.Node) shapes.Shape { return mirror(n).shape }

// Reverse implements backends.Builder (the pure-Go backend lacks it; the
// convolution gradient needs it to flip kernels).
func (b *builder) Reverse(x backends.Op, axes ...int) (backends.Op, error) {
	in, err := b.nodes("Reverse", x)
	if err != nil {
		return nil, err
	}
	shape := shapeOf(in[0])
	p := &reverseParams{axes: make([]bool, shape.Rank())}
	for _, a := range axes {
		if a < 0 {
			a += shape.Rank()
		}
		if a < 0 || a >= shape.Rank() {
			return nil, fmt.Errorf("accel Reverse: axis %d out of range for shape %s", a, shape)
		}
		p.axes[a] = true
	}
	return b.newNode(backends.OpTypeReverse, shape.Clone(), p, in[0]), nil
}

// Pad implements backends.Builder (the pure-Go backend lacks it; gradients
// of Slice and of mean/sum pooling need it). Negative Start/End crop.
func (b *builder) Pad(x, fill backends.Op, axesConfig ...backends.PadAxis) (backends.Op, error) {
	in, err := b.nodes("Pad", x, fill)
	if err != nil {
		return nil, err
	}
	shape, fillShape := shapeOf(in[0]), shapeOf(in[1])
	if fillShape.Rank() != 0 || fillShape.DType != shape.DType {
		return nil, fmt.Errorf("accel Pad: fill value has shape %s, expected a scalar %s", fillShape, shape.DType)
	}
	if len(axesConfig) > shape.Rank() {
		return nil, fmt.Errorf("accel Pad: %d axis configs for rank-%d operand %s", len(axesConfig), shape.Rank(), shape)
	}
	p := &padParams{axes: make([]backends.PadAxis, shape.Rank())}
	copy(p.axes, axesConfig)
	out := shape.Clone()
	for i, c := range p.axes {
		if c.Interior < 0 {
			return nil, fmt.Errorf("accel Pad: axis %d has negative interior padding %d", i, c.Interior)
		}
		d := shape.Dimensions[i]
		if d > 0 {
			d += (d - 1) * c.Interior
		}
		d += c.Start + c.End
		if d < 0 {
			return nil, fmt.Errorf("accel Pad: axis %d of %s padded by %+v has negative size %d", i, shape, c, d)
		}
		out.Dimensions[i] = d
	}
	return b.newNode(backends.OpTypePad, out, p, in[0], in[1]), nil
}

// SelectAndScatterMax implements backends.Builder: the gradient of max
// pooling.
func (b *builder) SelectAndScatterMax(operand, source backends.Op, windowDimensions, windowStrides []int, paddings [][2]int) (backends.Op, error) {
	return b.selectAndScatter(backends.OpTypeSelectAndScatterMax, operand, source, windowDimensions, windowStrides, paddings)
}

// SelectAndScatterMin implements backends.Builder: the gradient of min
// pooling.
func (b *builder) SelectAndScatterMin(operand, source backends.Op, windowDimensions, windowStrides []int, paddings [][2]int) (backends.Op, error) {
	return b.selectAndScatter(backends.OpTypeSelectAndScatterMin, operand, source, windowDimensions, windowStrides, paddings)
}

func (b *builder) selectAndScatter(op backends.OpType, operand, source backends.Op, window, strides []int, paddings [][2]int) (backends.Op, error) {
	in, err := b.nodes(op.String(), operand, source)
	if err != nil {
		return nil, err
	}
	xs, ss := shapeOf(in[0]), shapeOf(in[1])
	rank := xs.Rank()
	if xs.DType != ss.DType {
		return nil, fmt.Errorf("accel %s: operand is %s but source is %s, expected one dtype", op, xs, ss)
	}
	if len(window) != rank || (len(strides) != 0 && len(strides) != rank) || (len(paddings) != 0 && len(paddings) != rank) {
		return nil, fmt.Errorf("accel %s: window %v, strides %v, paddings %v do not match operand rank %d", op, window, strides, paddings, rank)
	}
	p := &scatterParams{max: op == backends.OpTypeSelectAndScatterMax, window: slices.Clone(window),
		strides: slices.Clone(strides), paddings: make([][2]int, rank)}
	if len(p.strides) == 0 {
		p.strides = slices.Clone(window)
	}
	copy(p.paddings, paddings)
	p.threads = b.backend.threads
	for i := range rank {
		want := (xs.Dimensions[i]+p.paddings[i][0]+p.paddings[i][1]-window[i])/p.strides[i] + 1
		if ss.Dimensions[i] != want {
			return nil, fmt.Errorf("accel %s: source %s axis %d has %d windows, expected %d for operand %s",
				op, ss, i, ss.Dimensions[i], want, xs)
		}
	}
	if xs.DType == dtypes.Float32 && !b.backend.stock {
		p.geo, _ = newPlanes(xs, ss, p.window, p.strides, p.paddings)
	}
	return b.newNode(op, xs.Clone(), p, in[0], in[1]), nil
}

// ones returns s with zero entries set to 1, or n ones when s is empty.
func ones(s []int, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = 1
		if i < len(s) && s[i] > 0 {
			out[i] = s[i]
		}
	}
	return out
}
