package accel

/*
#pragma GCC optimize ("O3")

// sum adds n contiguous floats with eight partial sums, so that the loop
// vectorises without -ffast-math.
static float sum(const float *x, long n) {
	float s[8] = {0};
	long i = 0;
	for (; i + 8 <= n; i += 8)
		for (int k = 0; k < 8; k++) s[k] += x[i + k];
	float t = 0;
	for (; i < n; i++) t += x[i];
	return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])) + t;
}

// reduce_sum adds the contiguous array x of dims d into o, summing the
// axes with red set; os are o's strides (unused on reduced axes, and 1 on
// a kept innermost axis).
static void reduce_sum(int rank, const long *d, const long *os, const int *red, const float *x, float *o) {
	if (rank == 1) {
		if (red[0]) {
			o[0] += sum(x, d[0]);
		} else {
			for (long i = 0; i < d[0]; i++) o[i] += x[i];
		}
		return;
	}
	long inner = 1;
	for (int i = 1; i < rank; i++) inner *= d[i];
	for (long i = 0; i < d[0]; i++)
		reduce_sum(rank - 1, d + 1, os + 1, red + 1, x + i * inner, red[0] ? o : o + i * os[0]);
}
*/
import "C"

import (
	"fmt"
	"slices"
	"unsafe"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/shapeinference"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
)

// reduceSumParams is the data of our float32 ReduceSum nodes: the
// operand's dims with adjacent axes of the same kind merged, which of them
// are summed, and the output's strides on the kept ones.
type reduceSumParams struct {
	dims, outStrides []C.long
	reduced          []C.int
	threads          int
}

// reduceSum builds a float32 ReduceSum on a vectorised kernel (simplego's
// walks the operand with a per-element index iterator); the bias gradients
// of every layer are such sums.
func (b *builder) reduceSum(x backends.Op, axes []int) (backends.Op, error) {
	in, err := b.nodes("ReduceSum", x)
	if err != nil {
		return nil, err
	}
	xs := shapeOf(in[0])
	if b.backend.stock || xs.DType != dtypes.Float32 || xs.Size() == 0 {
		return b.Builder.ReduceSum(x, axes...)
	}
	// As simplego: no axes means all axes.
	norm := make([]int, 0, xs.Rank())
	for _, a := range axes {
		if a < 0 {
			a += xs.Rank()
		}
		norm = append(norm, a)
	}
	if len(axes) == 0 {
		for a := range xs.Rank() {
			norm = append(norm, a)
		}
	}
	out, err := shapeinference.ReduceOp(xs, norm)
	if err != nil {
		return nil, fmt.Errorf("accel ReduceSum of %s over %v: %w", xs, axes, err)
	}
	red := make([]bool, xs.Rank())
	for _, a := range norm {
		red[a] = true
	}
	p := &reduceSumParams{threads: b.backend.threads}
	// Output strides of the kept axes, innermost first.
	stride := 1
	strides := make([]int, xs.Rank())
	for i := xs.Rank() - 1; i >= 0; i-- {
		if !red[i] {
			strides[i] = stride
			stride *= xs.Dimensions[i]
		}
	}
	for i, d := range xs.Dimensions {
		if d == 1 {
			continue
		}
		if k := len(p.dims) - 1; k >= 0 && (p.reduced[k] != 0) == red[i] {
			p.dims[k] *= C.long(d)
			p.outStrides[k] = C.long(strides[i])
			continue
		}
		p.dims = append(p.dims, C.long(d))
		p.outStrides = append(p.outStrides, C.long(strides[i]))
		r := C.int(0)
		if red[i] {
			r = 1
		}
		p.reduced = append(p.reduced, r)
	}
	if len(p.dims) == 0 {
		p.dims, p.outStrides, p.reduced = []C.long{1}, []C.long{1}, []C.int{0}
	}
	return b.newNode(backends.OpTypeReduceSum, out, p, in[0]), nil
}

func (p *reduceSumParams) execOwned(backend *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, _ []bool) (*simplego.Buffer, error) {
	x, err := f32(backend, inputs[0])
	if err != nil {
		return nil, fmt.Errorf("accel ReduceSum: %w", err)
	}
	out := backend.NewBuffer(mirror(node).shape)
	o, err := f32(backend, out)
	if err != nil {
		return nil, fmt.Errorf("accel ReduceSum: %w", err)
	}
	clear(o)
	threads := p.threads
	if len(x) < minParallel {
		threads = 1
	}
	d0 := int(p.dims[0])
	inner := len(x) / d0
	run := func(lo, hi int, o []float32) {
		if lo == hi {
			return
		}
		dims := slices.Clone(p.dims)
		dims[0] = C.long(hi - lo)
		off := 0
		if p.reduced[0] == 0 {
			off = lo * int(p.outStrides[0])
		}
		C.reduce_sum(C.int(len(dims)), &dims[0], &p.outStrides[0], &p.reduced[0],
			(*C.float)(unsafe.Pointer(&x[lo*inner])), (*C.float)(unsafe.Pointer(&o[off])))
	}
	if p.reduced[0] == 0 {
		// Parts write disjoint outputs.
		splitRange(threads, d0, func(lo, hi int) { run(lo, hi, o) })
		return out, nil
	}
	// Parts sum into their own partial outputs, added in part order.
	parts := min(threads, d0)
	partial := make([][]float32, parts)
	partial[0] = o
	for i := 1; i < parts; i++ {
		partial[i] = make([]float32, len(o))
	}
	splitRange(parts, parts, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			run(d0*i/parts, d0*(i+1)/parts, partial[i])
		}
	})
	for _, q := range partial[1:] {
		for i, v := range q {
			o[i] += v
		}
	}
	return out, nil
}
