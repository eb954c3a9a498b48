package accel

/*
#include <math.h>

// gomlx's pure-Go element-wise ops walk broadcasts with a per-element
// iterator and run on one thread; these loops vectorise and are split
// across goroutines by the caller. Every one performs the same single
// float32 operation per element as simplego, so results are bit-identical.
//
// The output is often one of the inputs (a buffer at its last use), never
// a partial overlap. GCC would guard each vectorised loop with an overlap
// test that exact aliasing fails, running it scalar; IVDEP tells it that
// element i is only read before element i is written.
#pragma GCC optimize ("O3")
#define IVDEP _Pragma("GCC ivdep")

enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_MAX, OP_MIN };

// gomax and gomin are Go's built-in max and min on float32: NaN wins, and
// +0 is larger than -0.
static inline float gomax(float x, float y) {
	if (x != x) return x;
	if (y != y) return y;
	if (x == y) return signbit(x) ? y : x;
	return x > y ? x : y;
}
static inline float gomin(float x, float y) {
	if (x != x) return x;
	if (y != y) return y;
	if (x == y) return signbit(x) ? x : y;
	return x < y ? x : y;
}

// One row of n outputs; sa and sb are the operands' element strides, 0
// where the operand is broadcast along the row.
#define ROW(NAME, EXPR) \
static void NAME(float *o, const float *a, long sa, const float *b, long sb, long n) { \
	if (sa == 1 && sb == 1) { \
		IVDEP for (long i = 0; i < n; i++) { float x = a[i], y = b[i]; o[i] = EXPR; } \
	} else if (sa == 1 && sb == 0) { \
		float y = b[0]; \
		IVDEP for (long i = 0; i < n; i++) { float x = a[i]; o[i] = EXPR; } \
	} else if (sa == 0 && sb == 1) { \
		float x = a[0]; \
		IVDEP for (long i = 0; i < n; i++) { float y = b[i]; o[i] = EXPR; } \
	} else { \
		for (long i = 0; i < n; i++) { float x = a[i * sa], y = b[i * sb]; o[i] = EXPR; } \
	} \
}
ROW(row_add, x + y)
ROW(row_sub, x - y)
ROW(row_mul, x * y)
ROW(row_div, x / y)
ROW(row_max, gomax(x, y))
ROW(row_min, gomin(x, y))

// Against a scalar that is not the zero Go's max (min) ranks below the
// other zero, Go's max and min reduce to one compare and a NaN test, half
// the work of gomax and gomin; ReLU is such a max.
static void row_max_scalar(float *o, const float *a, float c, long n) {
	IVDEP for (long i = 0; i < n; i++) { float x = a[i]; o[i] = (x > c || x != x) ? x : c; }
}
static void row_min_scalar(float *o, const float *a, float c, long n) {
	IVDEP for (long i = 0; i < n; i++) { float x = a[i]; o[i] = (x < c || x != x) ? x : c; }
}

static void row(int op, float *o, const float *a, long sa, const float *b, long sb, long n) {
	if ((op == OP_MAX || op == OP_MIN) && ((sa == 0 && sb == 1) || (sa == 1 && sb == 0))) {
		// max and min are commutative: put the scalar on the right.
		const float *v = sb == 0 ? a : b;
		float c = sb == 0 ? b[0] : a[0];
		if (op == OP_MAX && !(c == 0 && signbit(c))) {
			row_max_scalar(o, v, c, n);
			return;
		}
		if (op == OP_MIN && !(c == 0 && !signbit(c))) {
			row_min_scalar(o, v, c, n);
			return;
		}
	}
	switch (op) {
	case OP_ADD: row_add(o, a, sa, b, sb, n); break;
	case OP_SUB: row_sub(o, a, sa, b, sb, n); break;
	case OP_MUL: row_mul(o, a, sa, b, sb, n); break;
	case OP_DIV: row_div(o, a, sa, b, sb, n); break;
	case OP_MAX: row_max(o, a, sa, b, sb, n); break;
	case OP_MIN: row_min(o, a, sa, b, sb, n); break;
	}
}

// binary computes the row-major output of dims d (rank >= 1) from operands
// read through strides as and bs (0 on broadcast axes).
static void binary(int op, int rank, const long *d, const long *as, const long *bs,
                   const float *a, const float *b, float *o) {
	if (rank == 1) {
		row(op, o, a, as[0], b, bs[0], d[0]);
		return;
	}
	long inner = 1;
	for (int i = 1; i < rank; i++) inner *= d[i];
	for (long i = 0; i < d[0]; i++)
		binary(op, rank - 1, d + 1, as + 1, bs + 1, a + i * as[0], b + i * bs[0], o + i * inner);
}

// nonneg_mul is v * NonNegativeIndicator(x - c), the ReLU gradient gomlx
// writes as Mul(v, Sign(Add(Sign(Sub(x, c)), 1))). simplego's Sign maps
// NaN (like zero) to 0, so the indicator is 0 where x - c is negative and
// 1 everywhere else, NaN included.
static void nonneg_mul(float *o, const float *v, const float *x, float c, long n) {
	IVDEP for (long i = 0; i < n; i++) {
		float d = x[i] - c;
		// As a converted compare rather than a select, which GCC
		// would compile to a branch around the multiply.
		o[i] = v[i] * (float)!(d < 0);
	}
}

// pos_mul is the ReLU gradient read from the ReLU's output y = max(x, c):
// v where y > c (x > c) or y is NaN (x is), else 0. It differs from
// nonneg_mul only at x == c, where, like PyTorch, it gives 0.
static void pos_mul(float *o, const float *v, const float *y, float c, long n) {
	IVDEP for (long i = 0; i < n; i++) {
		// !(y <= c) is y > c or NaN, in one compare that vectorises
		// (a || would branch).
		o[i] = v[i] * (float)!(y[i] <= c);
	}
}

// u8_to_f32 widens bytes to floats (every uint8 is exact in float32).
static void u8_to_f32(float *o, const unsigned char *x, long n) {
	for (long i = 0; i < n; i++) o[i] = (float)x[i];
}
*/
import "C"

import (
	"fmt"
	"unsafe"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/shapeinference"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// elementwiseOps are the op types whose nodes may run one of this
// package's ownedKernel kernels (element-wise float32 ops here, ReduceSum
// in reduce.go, Transpose in transpose.go); they are chained with
// chainOwned, so that an input at its last use can hold the output.
var elementwiseOps = []backends.OpType{
	backends.OpTypeAdd, backends.OpTypeSub, backends.OpTypeMul, backends.OpTypeDiv,
	backends.OpTypeMax, backends.OpTypeMin, backends.OpTypeReduceSum, backends.OpTypeTranspose,
	backends.OpTypeConvertDType,
}

// ownedKernel is a kernel that may reuse inputs the executor owns: it sets
// inputs[i] to nil for one it took over, as simplego's executors do.
type ownedKernel interface {
	execOwned(backend *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, error)
}

// chainOwned is chain for ownedKernel params.
func chainOwned(op backends.OpType) executor {
	stock := stockExecutors[op]
	return func(backend *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, error) {
		if k, ok := mirror(node).data.(ownedKernel); ok {
			return k.execOwned(backend, node, inputs, owned)
		}
		if stock == nil {
			return nil, fmt.Errorf("accel: no simplego executor for %s (gomlx internals changed?)", op)
		}
		return stock(backend, node, inputs, owned)
	}
}

// binaryParams is the data of our float32 element-wise binary nodes: the
// output's dims with runs of axes that both operands step through alike
// merged, and each operand's element strides on them (0 where broadcast).
type binaryParams struct {
	op      C.int
	dims    []C.long
	as, bs  []C.long
	threads int
}

var binaryOpCodes = map[backends.OpType]C.int{
	backends.OpTypeAdd: C.OP_ADD, backends.OpTypeSub: C.OP_SUB, backends.OpTypeMul: C.OP_MUL,
	backends.OpTypeDiv: C.OP_DIV, backends.OpTypeMax: C.OP_MAX, backends.OpTypeMin: C.OP_MIN,
}

// Add implements backends.Builder (float32 on a vectorised, threaded kernel).
func (b *builder) Add(x, y backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeAdd, x, y, b.Builder.Add)
}

// Sub implements backends.Builder (float32 on a vectorised, threaded kernel).
func (b *builder) Sub(x, y backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeSub, x, y, b.Builder.Sub)
}

// Mul implements backends.Builder (float32 on a vectorised, threaded
// kernel; gomlx's ReLU gradient fused into one pass).
func (b *builder) Mul(x, y backends.Op) (backends.Op, error) {
	if op, ok := b.nonNegMul(x, y); ok {
		return op, nil
	}
	return b.binary(backends.OpTypeMul, x, y, b.Builder.Mul)
}

// Div implements backends.Builder (float32 on a vectorised, threaded kernel).
func (b *builder) Div(x, y backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeDiv, x, y, b.Builder.Div)
}

// Max implements backends.Builder (float32 on a vectorised, threaded kernel).
func (b *builder) Max(x, y backends.Op) (backends.Op, error) {
	out, err := b.binary(backends.OpTypeMax, x, y, b.Builder.Max)
	if err != nil {
		return nil, err
	}
	if n, ok := out.(*simplego.Node); ok && shapeOf(n).DType == dtypes.Float32 {
		if in, err := b.nodes("Max", x, y); err == nil && shapeOf(in[1]).Size() == 1 && shapeOf(in[0]).Equal(shapeOf(n)) {
			if b.maxOf == nil {
				b.maxOf = map[*simplego.Node][]*simplego.Node{}
			}
			b.maxOf[in[0]] = append(b.maxOf[in[0]], n)
		}
	}
	return out, nil
}

// Min implements backends.Builder (float32 on a vectorised, threaded kernel).
func (b *builder) Min(x, y backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeMin, x, y, b.Builder.Min)
}

func (b *builder) binary(op backends.OpType, x, y backends.Op, stock func(x, y backends.Op) (backends.Op, error)) (backends.Op, error) {
	in, err := b.nodes(op.String(), x, y)
	if err != nil {
		return nil, err
	}
	xs, ys := shapeOf(in[0]), shapeOf(in[1])
	if b.backend.stock || xs.DType != dtypes.Float32 || ys.DType != dtypes.Float32 {
		return stock(x, y)
	}
	out, err := shapeinference.BinaryOp(op, xs, ys)
	if err != nil {
		return nil, err
	}
	if out.Size() == 0 {
		return stock(x, y)
	}
	dims, strides := mergeAxes(out.Dimensions, broadcastStrides(xs, out), broadcastStrides(ys, out))
	p := &binaryParams{op: binaryOpCodes[op], dims: toC(dims), as: toC(strides[0]), bs: toC(strides[1]), threads: b.backend.threads}
	return b.newNode(op, out, p, in[0], in[1]), nil
}

// broadcastStrides returns s's element strides along the axes of out: 0
// on axes s broadcasts (and everywhere for a single element).
func broadcastStrides(s, out shapes.Shape) []int {
	st := make([]int, out.Rank())
	if s.Size() == 1 {
		return st
	}
	own := s.Strides()
	for i := range st {
		if s.Dimensions[i] == out.Dimensions[i] {
			st[i] = own[i]
		}
	}
	return st
}

// mergeAxes drops unit axes and merges each axis into the one before it
// where every operand steps through both as through one longer axis, so
// that the kernels' rows are as long as possible. A scalar output becomes
// one axis of size 1.
func mergeAxes(dims []int, strides ...[]int) ([]int, [][]int) {
	var md []int
	ms := make([][]int, len(strides))
	for i, d := range dims {
		if d == 1 {
			continue
		}
		if k := len(md) - 1; k >= 0 {
			merge := true
			for _, s := range strides {
				if s[k] != s[i]*d {
					merge = false
				}
			}
			if merge {
				// The merged axis steps like its inner part.
				md[k] *= d
				for j, s := range strides {
					ms[j][k] = s[i]
				}
				continue
			}
		}
		md = append(md, d)
		for j, s := range strides {
			ms[j] = append(ms[j], s[i])
		}
	}
	if len(md) == 0 {
		md = []int{1}
		for j := range ms {
			ms[j] = []int{0}
		}
	}
	return md, ms
}

// toC converts ints to the C longs the kernels take.
func toC(v []int) []C.long {
	out := make([]C.long, len(v))
	for i, x := range v {
		out[i] = C.long(x)
	}
	return out
}

// outputBuffer returns an owned input of the output's shape and dtype to
// write the output over (marking it taken), or a new buffer.
func outputBuffer(backend *simplego.Backend, shape shapes.Shape, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, error) {
	for i, in := range inputs {
		if !owned[i] || in == nil {
			continue
		}
		s, err := backend.BufferShape(in)
		if err != nil {
			return nil, err
		}
		if s.Equal(shape) {
			inputs[i] = nil
			return in, nil
		}
	}
	return backend.NewBuffer(shape), nil
}

func f32(backend *simplego.Backend, buf *simplego.Buffer) ([]float32, error) {
	flat, err := backend.BufferData(buf)
	if err != nil {
		return nil, err
	}
	f, ok := flat.([]float32)
	if !ok {
		return nil, fmt.Errorf("buffer holds %T, expected []float32", flat)
	}
	return f, nil
}

func (p *binaryParams) execOwned(backend *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, error) {
	a, err := f32(backend, inputs[0])
	if err != nil {
		return nil, fmt.Errorf("accel %s: %w", mirror(node).opType, err)
	}
	bv, err := f32(backend, inputs[1])
	if err != nil {
		return nil, fmt.Errorf("accel %s: %w", mirror(node).opType, err)
	}
	out, err := outputBuffer(backend, mirror(node).shape, inputs, owned)
	if err != nil {
		return nil, fmt.Errorf("accel %s: %w", mirror(node).opType, err)
	}
	o, err := f32(backend, out)
	if err != nil {
		return nil, fmt.Errorf("accel %s: %w", mirror(node).opType, err)
	}
	n := len(o)
	threads := p.threads
	if n < minParallel {
		threads = 1
	}
	d0 := int(p.dims[0])
	inner := n / d0
	splitRange(threads, d0, func(lo, hi int) {
		dims := append([]C.long{C.long(hi - lo)}, p.dims[1:]...)
		C.binary(p.op, C.int(len(dims)), &dims[0], &p.as[0], &p.bs[0],
			(*C.float)(unsafe.Pointer(&a[lo*int(p.as[0])])), (*C.float)(unsafe.Pointer(&bv[lo*int(p.bs[0])])),
			(*C.float)(unsafe.Pointer(&o[lo*inner])))
	})
	return out, nil
}

// nonNegMulParams is the data of a fused ReLU-gradient node: inputs v, x
// and the scalar c of v * NonNegativeIndicator(x - c).
type nonNegMulParams struct {
	threads int
	// fromOutput: the second input is y = Max(x, c), not x.
	fromOutput bool
}

// nonNegMul recognises gomlx's gradient of Max(x, c) with respect to x,
// Mul(v, Sign(Add(Sign(Sub(x, c)), 1))) (graph.NonNegativeIndicator), five
// passes over the activations, and builds it as one fused node. The
// intermediate nodes stay in the graph but, unused, never execute.
func (b *builder) nonNegMul(vOp, indOp backends.Op) (backends.Op, bool) {
	in, err := b.nodes("Mul", vOp, indOp)
	if err != nil || b.backend.stock {
		return nil, false
	}
	v, ind := in[0], in[1]
	shape := shapeOf(v)
	if shape.DType != dtypes.Float32 || !shapeOf(ind).Equal(shape) {
		return nil, false
	}
	outer := mirror(ind)
	if outer.opType != backends.OpTypeSign {
		return nil, false
	}
	add := mirror(outer.inputs[0])
	if add.opType != backends.OpTypeAdd || len(add.inputs) != 2 || !add.shape.Equal(shape) {
		return nil, false
	}
	sign, one := add.inputs[0], add.inputs[1]
	if !b.isScalarConst(one, 1) {
		return nil, false
	}
	inner := mirror(sign)
	if inner.opType != backends.OpTypeSign {
		return nil, false
	}
	sub := mirror(inner.inputs[0])
	if sub.opType != backends.OpTypeSub || len(sub.inputs) != 2 || !sub.shape.Equal(shape) {
		return nil, false
	}
	x, c := sub.inputs[0], sub.inputs[1]
	if !shapeOf(x).Equal(shape) || shapeOf(c).Size() != 1 || shapeOf(c).DType != dtypes.Float32 {
		return nil, false
	}
	p := &nonNegMulParams{threads: b.backend.threads}
	for _, m := range b.maxOf[x] {
		if mirror(m).inputs[1] == c {
			// Reading ReLU's output rather than its input lets the input
			// die at the ReLU, which then runs in place: training holds one
			// activation per layer instead of two, as PyTorch does.
			p.fromOutput = true
			return b.newNode(backends.OpTypeMul, shape.Clone(), p, v, m, c), true
		}
	}
	return b.newNode(backends.OpTypeMul, shape.Clone(), p, v, x, c), true
}

// isScalarConst reports whether n is a single-element float32 constant of
// value v.
func (b *builder) isScalarConst(n *simplego.Node, v float32) bool {
	m := mirror(n)
	if m.opType != backends.OpTypeConstant || m.shape.Size() != 1 || m.shape.DType != dtypes.Float32 {
		return false
	}
	buf, ok := m.data.(*simplego.Buffer)
	if !ok {
		return false
	}
	f, err := f32(b.backend.Backend, buf)
	return err == nil && len(f) == 1 && f[0] == v
}

func (p *nonNegMulParams) execOwned(backend *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, error) {
	var vals [3][]float32
	for i := range vals {
		var err error
		if vals[i], err = f32(backend, inputs[i]); err != nil {
			return nil, fmt.Errorf("accel ReLU gradient: %w", err)
		}
	}
	out, err := outputBuffer(backend, mirror(node).shape, inputs[:2], owned[:2])
	if err != nil {
		return nil, fmt.Errorf("accel ReLU gradient: %w", err)
	}
	o, err := f32(backend, out)
	if err != nil {
		return nil, fmt.Errorf("accel ReLU gradient: %w", err)
	}
	v, x, c := vals[0], vals[1], vals[2][0]
	threads := p.threads
	if len(o) < minParallel {
		threads = 1
	}
	splitRange(threads, len(o), func(lo, hi int) {
		if lo == hi {
			return
		}
		if p.fromOutput {
			C.pos_mul((*C.float)(unsafe.Pointer(&o[lo])), (*C.float)(unsafe.Pointer(&v[lo])),
				(*C.float)(unsafe.Pointer(&x[lo])), C.float(c), C.long(hi-lo))
			return
		}
		C.nonneg_mul((*C.float)(unsafe.Pointer(&o[lo])), (*C.float)(unsafe.Pointer(&v[lo])),
			(*C.float)(unsafe.Pointer(&x[lo])), C.float(c), C.long(hi-lo))
	})
	return out, nil
}

// widenParams is the data of our uint8 -> float32 ConvertDType nodes.
type widenParams struct{ threads int }

// ConvertDType implements backends.Builder: uint8 images to float32 (the
// first op of every network step) run on a vectorised, threaded loop.
func (b *builder) ConvertDType(x backends.Op, dtype dtypes.DType) (backends.Op, error) {
	in, err := b.nodes("ConvertDType", x)
	if err != nil {
		return nil, err
	}
	xs := shapeOf(in[0])
	if b.backend.stock || xs.DType != dtypes.Uint8 || dtype != dtypes.Float32 || xs.Size() == 0 {
		return b.Builder.ConvertDType(x, dtype)
	}
	out := xs.Clone()
	out.DType = dtype
	return b.newNode(backends.OpTypeConvertDType, out, &widenParams{threads: b.backend.threads}, in[0]), nil
}

func (p *widenParams) execOwned(backend *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, _ []bool) (*simplego.Buffer, error) {
	flat, err := backend.BufferData(inputs[0])
	if err != nil {
		return nil, fmt.Errorf("accel ConvertDType: %w", err)
	}
	x, ok := flat.([]uint8)
	if !ok {
		return nil, fmt.Errorf("accel ConvertDType: buffer holds %T, expected []uint8", flat)
	}
	out := backend.NewBuffer(mirror(node).shape)
	o, err := f32(backend, out)
	if err != nil {
		return nil, fmt.Errorf("accel ConvertDType: %w", err)
	}
	threads := p.threads
	if len(o) < minParallel {
		threads = 1
	}
	splitRange(threads, len(o), func(lo, hi int) {
		if lo < hi {
			C.u8_to_f32((*C.float)(unsafe.Pointer(&o[lo])), (*C.uchar)(unsafe.Pointer(&x[lo])), C.long(hi-lo))
		}
	})
	return out, nil
}
