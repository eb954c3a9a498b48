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

// view is an op seen through the layout-only ops in front of it (Reshape
// that only adds or drops unit axes, Transpose, and, where allowed,
// BroadcastInDim): axis[i] is the base axis behind axis i of the op, or -1
// where axis i is a unit or broadcast axis (its data does not vary along i).
type view struct {
	base *simplego.Node
	axis []int
}

// resolve follows n back through layout-only ops. With broadcasts false it
// stops at BroadcastInDim, whose output a plain DotGeneral operand cannot
// ignore.
func resolve(n *simplego.Node, broadcasts bool) view {
	dims := shapeOf(n).Dimensions
	v := view{base: n, axis: make([]int, len(dims))}
	for i, d := range dims {
		v.axis[i] = i
		if d == 1 {
			v.axis[i] = -1
		}
	}
	for {
		m := mirror(v.base)
		if len(m.inputs) == 0 {
			return v
		}
		in := m.inputs[0]
		inDims := shapeOf(in).Dimensions
		var step []int // base axis -> input axis (or -1)
		switch m.opType {
		case backends.OpTypeReshape:
			outNZ, inNZ := nonUnit(m.shape.Dimensions), nonUnit(inDims)
			if len(outNZ) != len(inNZ) {
				return v
			}
			step = make([]int, len(m.shape.Dimensions))
			for i := range step {
				step[i] = -1
			}
			for k := range outNZ {
				if m.shape.Dimensions[outNZ[k]] != inDims[inNZ[k]] {
					return v
				}
				step[outNZ[k]] = inNZ[k]
			}
		case backends.OpTypeTranspose:
			var perm []int
			switch d := m.data.(type) {
			case []int:
				perm = d
			case *transposeParams:
				perm = d.perm
			default:
				return v
			}
			step = slices.Clone(perm)
		case backends.OpTypeBroadcastInDim:
			if !broadcasts {
				return v
			}
			axes, ok := m.data.([]int)
			if !ok {
				return v
			}
			step = make([]int, len(m.shape.Dimensions))
			for i := range step {
				step[i] = -1
			}
			for i, a := range axes {
				if inDims[i] == m.shape.Dimensions[a] {
					step[a] = i
				}
			}
		default:
			return v
		}
		for i, a := range v.axis {
			if a >= 0 {
				v.axis[i] = step[a]
				if v.axis[i] >= 0 && inDims[v.axis[i]] == 1 {
					v.axis[i] = -1
				}
			}
		}
		v.base = in
	}
}

func nonUnit(dims []int) []int {
	var out []int
	for i, d := range dims {
		if d != 1 {
			out = append(out, i)
		}
	}
	return out
}

// operand is one side of a float32 matrix product: base axes by role. Unit
// axes appear in no list: they do not change the memory layout.
type operand struct {
	dims                   []int // base dims
	batch, cross, contract []int
	// layout is how the base is laid out: crossFirst [batch, cross,
	// contract] or contractFirst [batch, contract, cross] in place, or
	// packed (copied to [batch, cross, contract] at run time).
	layout int
}

const (
	crossFirst = iota
	contractFirst
	packed
)

func newOperand(dims, batch, cross, contract []int) operand {
	o := operand{dims: dims, batch: batch, cross: cross, contract: contract, layout: packed}
	seq := nonUnit(dims)
	if slices.Equal(seq, slices.Concat(batch, cross, contract)) {
		o.layout = crossFirst
	} else if slices.Equal(seq, slices.Concat(batch, contract, cross)) {
		o.layout = contractFirst
	}
	return o
}

func sizeOf(dims, axes []int) int {
	n := 1
	for _, a := range axes {
		n *= dims[a]
	}
	return n
}

// dotParams is the data of our DotGeneral nodes: out = [batch, lhs cross,
// rhs cross] (plus unit axes) = sum over contract of lhs * rhs.
type dotParams struct {
	lhs, rhs operand
	threads  int
}

// DotGeneral implements backends.Builder: float32 products run on OpenBLAS
// sgemm, reading operands in place through transposes and reshapes.
func (b *builder) DotGeneral(lhsOp backends.Op, lhsContracting, lhsBatch []int, rhsOp backends.Op, rhsContracting, rhsBatch []int) (backends.Op, error) {
	in, err := b.nodes("DotGeneral", lhsOp, rhsOp)
	if err != nil {
		return nil, err
	}
	ls, rs := shapeOf(in[0]), shapeOf(in[1])
	if b.backend.stock || ls.DType != dtypes.Float32 || rs.DType != dtypes.Float32 || len(lhsBatch) != len(rhsBatch) || len(lhsContracting) != len(rhsContracting) {
		return b.Builder.DotGeneral(lhsOp, lhsContracting, lhsBatch, rhsOp, rhsContracting, rhsBatch)
	}
	norm := func(axes []int, rank int) ([]int, bool) {
		out := make([]int, len(axes))
		for i, a := range axes {
			if a < 0 {
				a += rank
			}
			if a < 0 || a >= rank {
				return nil, false
			}
			out[i] = a
		}
		return out, true
	}
	lc, ok1 := norm(lhsContracting, ls.Rank())
	lb, ok2 := norm(lhsBatch, ls.Rank())
	rc, ok3 := norm(rhsContracting, rs.Rank())
	rb, ok4 := norm(rhsBatch, rs.Rank())
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return b.Builder.DotGeneral(lhsOp, lhsContracting, lhsBatch, rhsOp, rhsContracting, rhsBatch)
	}
	out := shapes.Make(dtypes.Float32)
	for i := range lb {
		if ls.Dimensions[lb[i]] != rs.Dimensions[rb[i]] {
			return nil, fmt.Errorf("accel DotGeneral: batch axes %v of %s and %v of %s differ", lb, ls, rb, rs)
		}
		out.Dimensions = append(out.Dimensions, ls.Dimensions[lb[i]])
	}
	for i := range lc {
		if ls.Dimensions[lc[i]] != rs.Dimensions[rc[i]] {
			return nil, fmt.Errorf("accel DotGeneral: contracting axes %v of %s and %v of %s differ", lc, ls, rc, rs)
		}
	}
	lx, rx := crossAxes(ls.Rank(), lc, lb), crossAxes(rs.Rank(), rc, rb)
	for _, a := range lx {
		out.Dimensions = append(out.Dimensions, ls.Dimensions[a])
	}
	for _, a := range rx {
		out.Dimensions = append(out.Dimensions, rs.Dimensions[a])
	}
	if sizeOf(ls.Dimensions, lb) > 1 && sizeOf(ls.Dimensions, lx)*sizeOf(rs.Dimensions, rx)*sizeOf(ls.Dimensions, lc) < 1<<12 {
		// Many tiny products: a cgo call each costs more than simplego's
		// own loops.
		return b.Builder.DotGeneral(lhsOp, lhsContracting, lhsBatch, rhsOp, rhsContracting, rhsBatch)
	}
	lv, rv := resolve(in[0], false), resolve(in[1], false)
	lop := newOperand(shapeOf(lv.base).Dimensions, mapAxes(lv, lb), mapAxes(lv, lx), mapAxes(lv, lc))
	rop := newOperand(shapeOf(rv.base).Dimensions, mapAxes(rv, rb), mapAxes(rv, rx), mapAxes(rv, rc))
	p := &dotParams{lhs: lop, rhs: rop, threads: b.backend.threads}
	return b.newNode(backends.OpTypeDotGeneral, out, p, lv.base, rv.base), nil
}

// Dot implements backends.Builder through DotGeneral (simplego's own Dot
// would call its own DotGeneral).
func (b *builder) Dot(lhsOp, rhsOp backends.Op) (backends.Op, error) {
	in, err := b.nodes("Dot", lhsOp, rhsOp)
	if err != nil {
		return nil, err
	}
	lr, rr := shapeOf(in[0]).Rank(), shapeOf(in[1]).Rank()
	switch {
	case lr == 1 && rr == 1, lr == 2 && rr == 1, lr == 2 && rr == 2:
		return b.DotGeneral(lhsOp, []int{lr - 1}, nil, rhsOp, []int{0}, nil)
	}
	return b.Builder.Dot(lhsOp, rhsOp)
}

func crossAxes(rank int, contract, batch []int) []int {
	var out []int
	for a := range rank {
		if !slices.Contains(contract, a) && !slices.Contains(batch, a) {
			out = append(out, a)
		}
	}
	return out
}

// mapAxes maps op axes to base axes, dropping unit axes.
func mapAxes(v view, axes []int) []int {
	out := []int{}
	for _, a := range axes {
		if v.axis[a] >= 0 {
			out = append(out, v.axis[a])
		}
	}
	return out
}

// ReduceSum implements backends.Builder. ReduceSum(Mul(a, b)) with
// broadcasting operands is how gomlx differentiates DotGeneral; it would
// materialise a batch x M x K x N tensor, so it runs as one sgemm instead.
func (b *builder) ReduceSum(x backends.Op, axes ...int) (backends.Op, error) {
	if op, ok := b.fusedProduct(x, axes); ok {
		return op, nil
	}
	return b.reduceSum(x, axes)
}

func (b *builder) fusedProduct(x backends.Op, axes []int) (backends.Op, bool) {
	in, err := b.nodes("ReduceSum", x)
	if err != nil {
		return nil, false
	}
	m := mirror(in[0])
	if b.backend.stock || m.opType != backends.OpTypeMul || m.shape.DType != dtypes.Float32 || len(m.inputs) != 2 {
		return nil, false
	}
	rank := m.shape.Rank()
	if shapeOf(m.inputs[0]).Rank() != rank || shapeOf(m.inputs[1]).Rank() != rank {
		return nil, false
	}
	reduced := make([]bool, rank)
	for _, a := range axes {
		if a < 0 {
			a += rank
		}
		if a < 0 || a >= rank {
			return nil, false
		}
		reduced[a] = true
	}
	out, err := shapeinference.ReduceOp(m.shape, axes)
	if err != nil {
		return nil, false
	}
	va, vb := resolve(m.inputs[0], true), resolve(m.inputs[1], true)
	var batch, aCross, bCross, contract, kept []int // Mul axes
	for i := range rank {
		ea, eb := va.axis[i] >= 0, vb.axis[i] >= 0
		switch {
		case ea && eb && reduced[i]:
			contract = append(contract, i)
		case ea && eb:
			batch = append(batch, i)
			kept = append(kept, i)
		case ea && !reduced[i]:
			aCross = append(aCross, i)
			kept = append(kept, i)
		case eb && !reduced[i]:
			bCross = append(bCross, i)
			kept = append(kept, i)
		case !ea && !eb && m.shape.Dimensions[i] == 1:
			// A unit axis on both sides: no data.
		default:
			// Summing or repeating data that one side does not vary
			// along: leave it to the stock ops.
			return nil, false
		}
	}
	if len(contract) == 0 || len(aCross)+len(bCross) == 0 {
		// No product to speak of (e.g. a sum of squares): the stock
		// element-wise ops stream through it faster than per-element GEMMs.
		return nil, false
	}
	first, second := va, vb
	firstCross, secondCross := aCross, bCross
	if !slices.Equal(kept, slices.Concat(batch, aCross, bCross)) {
		if !slices.Equal(kept, slices.Concat(batch, bCross, aCross)) {
			return nil, false
		}
		first, second, firstCross, secondCross = vb, va, bCross, aCross
	}
	lop := newOperand(shapeOf(first.base).Dimensions, mapAxes(first, batch), mapAxes(first, firstCross), mapAxes(first, contract))
	rop := newOperand(shapeOf(second.base).Dimensions, mapAxes(second, batch), mapAxes(second, secondCross), mapAxes(second, contract))
	p := &dotParams{lhs: lop, rhs: rop, threads: b.backend.threads}
	return b.newNode(backends.OpTypeDotGeneral, out, p, first.base, second.base), true
}

// exec runs the product as one sgemm per batch element.
func (p *dotParams) exec(backend *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer) (*simplego.Buffer, error) {
	out := backend.NewBuffer(mirror(node).shape)
	dst, _, err := flatOf(backend, out)
	if err != nil {
		return nil, fmt.Errorf("accel DotGeneral: %w", err)
	}
	c := dst.([]float32)
	l, r := p.lhs, p.rhs
	nb := sizeOf(l.dims, l.batch)
	m, n, k := sizeOf(l.dims, l.cross), sizeOf(r.dims, r.cross), sizeOf(l.dims, l.contract)
	if k == 0 {
		clear(c)
		return out, nil
	}
	a, aTmp, err := operandData(backend, inputs[0], l)
	if err != nil {
		return nil, fmt.Errorf("accel DotGeneral lhs: %w", err)
	}
	bm, bTmp, err := operandData(backend, inputs[1], r)
	if err != nil {
		return nil, fmt.Errorf("accel DotGeneral rhs: %w", err)
	}
	// lhs must appear as [M, K], rhs as [K, N].
	transA, lda := l.layout == contractFirst, k
	if transA {
		lda = m
	}
	transB, ldb := r.layout != contractFirst, n
	if transB {
		ldb = k
	}
	if wideProduct(m, n, k) {
		// OpenBLAS runs a product with few rows (a dense layer's input
		// gradient: batch x in = (batch x out) (out x in)) at half its
		// speed; Cᵀ = op(B)ᵀ op(A)ᵀ has many rows instead, and
		// transposing the small result back costs little.
		tmp := backend.NewBuffer(shapes.Make(dtypes.Float32, m*n))
		tflat, _, err := flatOf(backend, tmp)
		if err != nil {
			return nil, fmt.Errorf("accel DotGeneral: %w", err)
		}
		ct := tflat.([]float32)
		for i := range nb {
			sgemm(p.threads, !transB, !transA, n, m, k, 1, bm[i*k*n:], ldb, a[i*m*k:], lda, 0, ct, m)
			transpose2D(ct, c[i*m*n:(i+1)*m*n], n, m)
		}
		_ = backend.BufferFinalize(tmp)
	} else {
		for i := range nb {
			sgemm(p.threads, transA, transB, m, n, k, 1, a[i*m*k:], lda, bm[i*k*n:], ldb, 0, c[i*m*n:], n)
		}
	}
	for _, t := range []*simplego.Buffer{aTmp, bTmp} {
		if t != nil {
			_ = backend.BufferFinalize(t)
		}
	}
	return out, nil
}

// operandData returns the operand's float32 data in its declared layout,
// packing it into a scratch buffer (returned for release) when needed.
func operandData(backend *simplego.Backend, buf *simplego.Buffer, o operand) ([]float32, *simplego.Buffer, error) {
	flat, _, err := flatOf(backend, buf)
	if err != nil {
		return nil, nil, err
	}
	src := flat.([]float32)
	if o.layout != packed {
		return src, nil, nil
	}
	order := slices.Concat(o.batch, o.cross, o.contract)
	strides := shapes.Make(dtypes.Float32, o.dims...).Strides()
	dims, steps := make([]int, len(order)), make([]int, len(order))
	for i, a := range order {
		dims[i], steps[i] = o.dims[a], strides[a]
	}
	tmp := backend.NewBuffer(shapes.Make(dtypes.Float32, sizeOf(o.dims, order)))
	tflat, _, err := flatOf(backend, tmp)
	if err != nil {
		return nil, nil, err
	}
	t := tflat.([]float32)
	gatherStrided(asWords[uint32](src), asWords[uint32](t), dims, steps, 0)
	return t, tmp, nil
}

// wideProduct reports whether an m x n = (m x k)(k x n) product is better
// computed transposed: few rows, many columns, and enough work that the
// extra transpose of the result is noise.
func wideProduct(m, n, k int) bool {
	return m <= 64 && n >= 16*m && 2*m*n*k >= 1<<26
}

// transpose2D writes the transpose of the rows x cols matrix src into dst
// (cols x rows), in tiles so that both sides stay in cache.
func transpose2D(src, dst []float32, rows, cols int) {
	const tile = 32
	for r0 := 0; r0 < rows; r0 += tile {
		r1 := min(r0+tile, rows)
		for c0 := 0; c0 < cols; c0 += tile {
			c1 := min(c0+tile, cols)
			for r := r0; r < r1; r++ {
				row := src[r*cols : r*cols+c1]
				for c := c0; c < c1; c++ {
					dst[c*rows+r] = row[c]
				}
			}
		}
	}
}
