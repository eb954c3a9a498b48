package accel

import (
	"fmt"
	"slices"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/shapeinference"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// transposeParams is the data of our Transpose nodes.
type transposeParams struct {
	perm    []int
	threads int
}

// Transpose implements backends.Builder. gomlx's DotGeneral gradient ends
// with a Transpose back to the operand's axes order even where that order
// is unchanged, and simplego copies such a transpose element by element
// through an index iterator (for AlexNet's 4096x9216 weight gradient that
// was a quarter of the training step). A permutation that keeps the order
// of the non-unit axes is a Reshape, which simplego runs in place when the
// input's buffer is free; real permutations run on a strided gather.
func (b *builder) Transpose(x backends.Op, perm ...int) (backends.Op, error) {
	in, err := b.nodes("Transpose", x)
	if err != nil {
		return nil, err
	}
	xs := shapeOf(in[0])
	if b.backend.stock {
		return b.Builder.Transpose(x, perm...)
	}
	out, err := shapeinference.TransposeOp(xs, perm)
	if err != nil {
		return nil, fmt.Errorf("accel Transpose of %s by %v: %w", xs, perm, err)
	}
	var order []int
	for _, a := range perm {
		if xs.Dimensions[a] != 1 {
			order = append(order, a)
		}
	}
	if slices.IsSorted(order) {
		return b.Builder.Reshape(x, out.Dimensions...)
	}
	if xs.DType.Size() == 0 || xs.DType.Size() > 8 {
		return b.Builder.Transpose(x, perm...)
	}
	p := &transposeParams{perm: slices.Clone(perm), threads: b.backend.threads}
	return b.newNode(backends.OpTypeTranspose, out, p, in[0]), nil
}

func (p *transposeParams) execOwned(backend *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, _ []bool) (*simplego.Buffer, error) {
	src, xs, err := flatOf(backend, inputs[0])
	if err != nil {
		return nil, fmt.Errorf("accel Transpose: %w", err)
	}
	outShape := mirror(node).shape
	out := backend.NewBuffer(outShape)
	dst, _, err := flatOf(backend, out)
	if err != nil {
		return nil, fmt.Errorf("accel Transpose: %w", err)
	}
	if outShape.Size() == 0 {
		return out, nil
	}
	dims, steps := transposeSteps(xs, p.perm)
	threads := p.threads
	if outShape.Size() < minParallel {
		threads = 1
	}
	inner := outShape.Size() / dims[0]
	err = byWordSize(xs.DType.Size(), src, dst, func(s, d any) {
		splitRange(threads, dims[0], func(lo, hi int) {
			part := slices.Clone(dims)
			part[0] = hi - lo
			switch s := s.(type) {
			case []uint8:
				gatherStrided(s, d.([]uint8)[lo*inner:hi*inner], part, steps, lo*steps[0])
			case []uint16:
				gatherStrided(s, d.([]uint16)[lo*inner:hi*inner], part, steps, lo*steps[0])
			case []uint32:
				gatherStrided(s, d.([]uint32)[lo*inner:hi*inner], part, steps, lo*steps[0])
			case []uint64:
				gatherStrided(s, d.([]uint64)[lo*inner:hi*inner], part, steps, lo*steps[0])
			}
		})
	})
	if err != nil {
		return nil, fmt.Errorf("accel Transpose of %s: %w", xs, err)
	}
	return out, nil
}

// transposeSteps returns the output dims of transposing xs by perm and
// the source stride of each output axis, with unit axes dropped (a rank-0
// result becomes one axis of size 1).
func transposeSteps(xs shapes.Shape, perm []int) (dims, steps []int) {
	strides := xs.Strides()
	for _, a := range perm {
		if xs.Dimensions[a] == 1 {
			continue
		}
		dims = append(dims, xs.Dimensions[a])
		steps = append(steps, strides[a])
	}
	if len(dims) == 0 {
		return []int{1}, []int{0}
	}
	return dims, steps
}
