package accel

import (
	"fmt"
	"math"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// TestElementwiseExecutorsChained fails when gomlx stops providing the
// stock executors the element-wise overrides fall back to.
func TestElementwiseExecutorsChained(t *testing.T) {
	for _, op := range elementwiseOps {
		if stockExecutors[op] == nil {
			t.Errorf("stock simplego executor for %s missing (gomlx %s internals changed)", op, GomlxVersion)
		}
	}
}

func TestBinaryParity(t *testing.T) {
	ops := map[string]func(x, y *Node) *Node{"add": Add, "sub": Sub, "mul": Mul, "div": Div, "max": Max, "min": Min}
	cases := []struct {
		name string
		x, y []int
	}{
		{"same", []int{3, 5, 7}, []int{3, 5, 7}},
		{"bias-nchw", []int{4, 6, 9, 11}, []int{1, 6, 1, 1}},
		{"bias-rows", []int{8, 13}, []int{1, 13}},
		{"column", []int{8, 13}, []int{8, 1}},
		{"scalar-rhs", []int{5, 40, 41}, nil},
		{"scalar-lhs", nil, []int{5, 40, 41}},
		{"both-broadcast", []int{1, 6, 1, 9}, []int{4, 1, 7, 1}},
		{"large", []int{32, 16, 29, 29}, []int{1, 16, 1, 1}},
		{"scalars", nil, nil},
	}
	for opName, fn := range ops {
		for _, c := range cases {
			name := fmt.Sprintf("%s-%s", opName, c.name)
			t.Run(name, func(t *testing.T) {
				parity(t, name, func(in []*Node) []*Node {
					out := fn(in[0], in[1])
					// Reusing an input's buffer is only possible when
					// it is dead; also check the live-input path.
					return []*Node{out, fn(Neg(in[0]), in[1])}
				}, 0, c.x, c.y)
			})
		}
	}
}

// TestMaxMinSpecialValues checks NaN and signed-zero handling against Go's
// built-in max and min, which simplego uses.
func TestMaxMinSpecialValues(t *testing.T) {
	nan := float32(math.NaN())
	negZero := float32(math.Copysign(0, -1))
	xs := []float32{nan, 1, nan, 0, negZero, 0, negZero, 2, -3}
	ys := []float32{1, nan, nan, negZero, 0, 0, negZero, 2, 5}
	backend := newTestBackend(t)
	exe, err := NewExec(backend, func(x, y *Node) (*Node, *Node) { return Max(x, y), Min(x, y) })
	if err != nil {
		t.Fatal(err)
	}
	outs, err := exe.Exec(xs, ys)
	if err != nil {
		t.Fatal(err)
	}
	gotMax, gotMin := tensors.MustCopyFlatData[float32](outs[0]), tensors.MustCopyFlatData[float32](outs[1])
	for i := range xs {
		wantMax, wantMin := max(xs[i], ys[i]), min(xs[i], ys[i])
		if math.Float32bits(gotMax[i]) != math.Float32bits(wantMax) && !(isNaN(gotMax[i]) && isNaN(wantMax)) {
			t.Errorf("max(%v, %v) = %v, expected %v", xs[i], ys[i], gotMax[i], wantMax)
		}
		if math.Float32bits(gotMin[i]) != math.Float32bits(wantMin) && !(isNaN(gotMin[i]) && isNaN(wantMin)) {
			t.Errorf("min(%v, %v) = %v, expected %v", xs[i], ys[i], gotMin[i], wantMin)
		}
	}
}

// TestMaxMinScalarSpecialValues is TestMaxMinSpecialValues against a
// scalar on either side (ReLU's form), including the signed zeros on
// which the scalar kernels must defer to the general ones.
func TestMaxMinScalarSpecialValues(t *testing.T) {
	nan := float32(math.NaN())
	negZero := float32(math.Copysign(0, -1))
	xs := []float32{nan, 1, 0, negZero, -2, 2, float32(math.Inf(1)), float32(math.Inf(-1))}
	backend := newTestBackend(t)
	for _, c := range []float32{0, negZero, 1, -1, nan} {
		exe, err := NewExec(backend, func(x *Node) []*Node {
			s := Scalar(x.Graph(), dtypes.Float32, c)
			return []*Node{Max(x, s), Max(s, x), Min(x, s), Min(s, x)}
		})
		if err != nil {
			t.Fatal(err)
		}
		outs, err := exe.Exec(xs)
		if err != nil {
			t.Fatal(err)
		}
		for k, o := range outs {
			got := tensors.MustCopyFlatData[float32](o)
			for i, x := range xs {
				want := [4]float32{max(x, c), max(c, x), min(x, c), min(c, x)}[k]
				if math.Float32bits(got[i]) != math.Float32bits(want) && !(isNaN(got[i]) && isNaN(want)) {
					t.Errorf("output %d for x=%v, c=%v: got %v, expected %v", k, x, c, got[i], want)
				}
			}
		}
	}
}

func isNaN(f float32) bool { return f != f }

// TestReluGradientFused checks that gomlx's gradient of Max(x, 0) is built
// as one fused node (if gomlx changes how it differentiates Max this fails
// rather than silently running five passes again), that it matches the
// stock ops on data, and its values at x == 0 and NaN.
func TestReluGradientFused(t *testing.T) {
	backend := newTestBackend(t)
	bld := backend.Builder("relu")
	x, _ := bld.Parameter("x", shapes.Make(dtypes.Float32, 4, 5), nil)
	v, _ := bld.Parameter("v", shapes.Make(dtypes.Float32, 4, 5), nil)
	zero, _ := bld.Constant([]float32{0})
	one, _ := bld.Constant([]float32{1})
	// The exact op sequence of graph.NonNegativeIndicator(Sub(x, 0)).
	d, _ := bld.Sub(x, zero)
	s, _ := bld.Sign(d)
	a, _ := bld.Add(s, one)
	ind, _ := bld.Sign(a)
	g, err := bld.Mul(v, ind)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := mirror(g.(*simplego.Node)).data.(*nonNegMulParams); !ok {
		t.Fatalf("Mul(v, NonNegativeIndicator(x - 0)) was not fused")
	}

	// Through the graph API, as Gradient builds it.
	parity(t, "relu-grad", func(in []*Node) []*Node {
		y := Max(in[0], ScalarZero(in[0].Graph(), dtypes.Float32))
		loss := ReduceAllSum(Mul(y, in[1]))
		return append([]*Node{y}, Gradient(loss, in[0])...)
	}, 0, []int{32, 16, 29, 29}, []int{32, 16, 29, 29})

	// Ties and NaN through Gradient: the fused node reads the ReLU's
	// output, so the gradient is 0 at x == 0 (either sign), as in PyTorch,
	// and passes at NaN.
	nan := float32(math.NaN())
	xs := []float32{-1, 0, 2, nan, float32(math.Copysign(0, -1)), float32(math.Inf(-1))}
	exe, err := NewExec(backend, func(x *Node) *Node {
		return Gradient(ReduceAllSum(Max(x, ScalarZero(x.Graph(), dtypes.Float32))), x)[0]
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exe.Exec(xs)
	if err != nil {
		t.Fatal(err)
	}
	got := tensors.MustCopyFlatData[float32](out[0])
	want := []float32{0, 0, 1, 1, 0, 0}
	for i := range want {
		if got[i] != want[i] && !(isNaN(got[i]) && isNaN(want[i])) {
			t.Errorf("d relu/dx at %v = %v, expected %v", xs[i], got[i], want[i])
		}
	}
	// Without a Max to read from, gomlx's indicator (1 at x == 0 and at
	// NaN) is kept bit for bit, special values in v included.
	vs := []float32{2, -3, nan, 1, float32(math.Inf(1)), float32(math.Inf(1))}
	sameOnBoth(t, "relu-grad-special", func(in []*Node) []*Node {
		return []*Node{Mul(in[1], NonNegativeIndicator(in[0]))}
	}, [][]float32{xs, vs}, []int{len(xs)}, []int{len(vs)})
}

func TestReduceSumParity(t *testing.T) {
	cases := []struct {
		name string
		dims []int
		axes []int
	}{
		{"bias-nchw", []int{32, 16, 29, 29}, []int{0, 2, 3}},
		{"bias-rows", []int{32, 1000}, []int{0}},
		{"rows", []int{32, 1000}, []int{1}},
		{"all", []int{7, 9, 11}, nil},
		{"middle", []int{5, 6, 7}, []int{1}},
		{"outer-inner", []int{64, 3, 40}, []int{0, 2}},
		{"unit-axes", []int{1, 8, 1, 9}, []int{1, 2}},
		{"negative-axis", []int{6, 7}, []int{-1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			parity(t, c.name, func(in []*Node) []*Node {
				if c.axes == nil {
					return []*Node{ReduceAllSum(in[0])}
				}
				return []*Node{ReduceSum(in[0], c.axes...)}
			}, 1e-5, c.dims)
		})
	}
}

func TestTransposeParity(t *testing.T) {
	cases := []struct {
		name string
		dims []int
		perm []int
	}{
		{"2d", []int{37, 53}, []int{1, 0}},
		{"identity", []int{4, 5, 6}, []int{0, 1, 2}},
		{"unit-moves", []int{4, 1, 6}, []int{1, 0, 2}},
		{"nchw-nhwc", []int{3, 8, 9, 10}, []int{0, 2, 3, 1}},
		{"large", []int{64, 48, 40}, []int{2, 0, 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			parity(t, c.name, func(in []*Node) []*Node {
				return []*Node{TransposeAllAxes(in[0], c.perm...), TransposeAllAxes(Neg(in[0]), c.perm...)}
			}, 0, c.dims)
		})
	}
	// Other dtypes take the same word-size kernel.
	backend := newTestBackend(t)
	exe, err := NewExec(backend, func(x *Node) *Node { return TransposeAllAxes(x, 1, 0) })
	if err != nil {
		t.Fatal(err)
	}
	out, err := exe.Exec([][]int64{{1, 2, 3}, {4, 5, 6}})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(out[0].Value()); got != "[[1 4] [2 5] [3 6]]" {
		t.Fatalf("int64 transpose = %s", got)
	}
}

// TestIdentityTransposeIsReshape checks that the order-keeping transpose
// gomlx's DotGeneral gradient ends with costs no copy.
func TestIdentityTransposeIsReshape(t *testing.T) {
	backend := newTestBackend(t)
	bld := backend.Builder("transpose")
	x, _ := bld.Parameter("x", shapes.Make(dtypes.Float32, 4, 1, 6), nil)
	y, err := bld.Transpose(x, 1, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	if op := mirror(y.(*simplego.Node)).opType; op != backends.OpTypeReshape {
		t.Fatalf("order-keeping Transpose built %s, expected Reshape", op)
	}
}

func TestWidenUint8(t *testing.T) {
	backend := newTestBackend(t)
	x := make([]uint8, 3*70000) // above the split threshold
	for i := range x {
		x[i] = uint8(i * 7)
	}
	exe, err := NewExec(backend, func(x *Node) *Node { return ConvertDType(x, dtypes.Float32) })
	if err != nil {
		t.Fatal(err)
	}
	out, err := exe.Exec(tensors.FromFlatDataAndDimensions(x, 3, 70000))
	if err != nil {
		t.Fatal(err)
	}
	got := tensors.MustCopyFlatData[float32](out[0])
	for i, v := range x {
		if got[i] != float32(v) {
			t.Fatalf("entry %d: %v, expected %v", i, got[i], v)
		}
	}
}

// TestBinarySpecialValuesMatchStock runs every element-wise kernel on NaN,
// infinities and signed zeros, plain, broadcast and against scalars, and
// requires simplego's results bit for bit.
func TestBinarySpecialValuesMatchStock(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	negZero := float32(math.Copysign(0, -1))
	vals := []float32{nan, inf, -inf, 0, negZero, 1, -1, 2.5}
	n := len(vals)
	// x[i, j] = vals[i], y[i, j] = vals[j]: every pair once.
	x, y := make([]float32, n*n), make([]float32, n*n)
	for i := range n {
		for j := range n {
			x[i*n+j], y[i*n+j] = vals[i], vals[j]
		}
	}
	ops := []func(a, b *Node) *Node{Add, Sub, Mul, Div, Max, Min}
	sameOnBoth(t, "special", func(in []*Node) []*Node {
		var out []*Node
		col := Slice(in[0], AxisRange(), AxisRange(0, 1)) // [n, 1], vals down the column
		for _, op := range ops {
			out = append(out, op(in[0], in[1]), op(in[1], col), op(col, in[1]))
			for _, c := range vals {
				s := Scalar(in[0].Graph(), dtypes.Float32, c)
				out = append(out, op(in[0], s), op(s, in[0]))
			}
		}
		return out
	}, [][]float32{x, y}, []int{n, n}, []int{n, n})
}
