package accel

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/core/tensors/images"
)

// parity runs fn on the patched backend and on stock simplego with the same
// random float32 inputs and requires every output to agree within tol
// relative to the output's largest magnitude.
func parity(t *testing.T, name string, fn func(in []*Node) []*Node, tol float64, inShapes ...[]int) {
	t.Helper()
	parityOn(t, newTestBackend(t), name, fn, tol, inShapes...)
}

// parityOn is parity with the patched backend given.
func parityOn(t *testing.T, be backends.Backend, name string, fn func(in []*Node) []*Node, tol float64, inShapes ...[]int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(len(name)), 9))
	data := make([][]float32, len(inShapes))
	for i, dims := range inShapes {
		n := 1
		for _, d := range dims {
			n *= d
		}
		data[i] = randn(rng, n, 1)
	}
	want := runGraph(t, stockBackend(t), name, fn, data, inShapes)
	got := runGraph(t, be, name, fn, data, inShapes)
	for i := range want {
		assertClose(t, fmt.Sprintf("%s output %d", name, i), got[i], want[i], tol)
	}
}

// stockBackend is the reference the parity tests compare with: it keeps
// gomlx's own kernels and differs from stock simplego only by the ops
// simplego lacks (Reverse, Pad, ...).
func stockBackend(t *testing.T) backends.Backend {
	t.Helper()
	stock, err := New(Config{StockKernels: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stock.Finalize)
	return stock
}

// runGraph builds fn on backend, runs it on float32 inputs data of the
// given dims, and returns its float32 outputs.
func runGraph(t *testing.T, backend backends.Backend, name string, fn func(in []*Node) []*Node, data [][]float32, dims [][]int) [][]float32 {
	t.Helper()
	args := make([]any, len(data))
	for i := range data {
		args[i] = tensors.FromFlatDataAndDimensions(data[i], dims[i]...)
	}
	exe, err := NewExecAny(backend, func(ins []*Node) []*Node { return fn(ins) })
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	outs, err := exe.Exec(args...)
	if err != nil {
		t.Fatalf("%s on %s: %v", name, backend.Name(), err)
	}
	res := make([][]float32, len(outs))
	for i, o := range outs {
		res[i] = tensors.MustCopyFlatData[float32](o)
	}
	return res
}

func TestDotGeneralParity(t *testing.T) {
	cases := []struct {
		name           string
		lhs, rhs       []int
		lc, lb, rc, rb []int
	}{
		{"matmul", []int{7, 5}, []int{5, 3}, []int{1}, nil, []int{0}, nil},
		{"lhsT", []int{5, 7}, []int{5, 3}, []int{0}, nil, []int{0}, nil},
		{"rhsT", []int{7, 5}, []int{3, 5}, []int{1}, nil, []int{1}, nil},
		{"batched", []int{2, 7, 5}, []int{2, 5, 3}, []int{2}, []int{0}, []int{1}, []int{0}},
		{"batched-sgemm", []int{3, 20, 16}, []int{3, 16, 24}, []int{2}, []int{0}, []int{1}, []int{0}},
		{"packed", []int{7, 2, 5}, []int{5, 3, 2}, []int{2}, []int{1}, []int{0}, []int{2}},
		{"packed-sgemm", []int{20, 2, 16}, []int{16, 24, 2}, []int{2}, []int{1}, []int{0}, []int{2}},
		{"multi-contract", []int{4, 3, 6}, []int{3, 6, 2}, []int{1, 2}, nil, []int{0, 1}, nil},
		{"unit-axes", []int{1, 7, 1, 5}, []int{5, 1, 3}, []int{3}, nil, []int{0}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			parity(t, c.name, func(in []*Node) []*Node {
				out := DotGeneral(in[0], c.lc, c.lb, in[1], c.rc, c.rb)
				loss := ReduceAllSum(Mul(out, out))
				return append([]*Node{out}, Gradient(loss, in[0], in[1])...)
			}, 1e-5, c.lhs, c.rhs)
		})
	}
	t.Run("through-transpose", func(t *testing.T) {
		parity(t, "through-transpose", func(in []*Node) []*Node {
			return []*Node{MatMul(TransposeAllAxes(in[0], 1, 0), Reshape(in[1], 6, 4))}
		}, 1e-5, []int{6, 5}, []int{2, 3, 4})
	})
}

func TestFusedProductIsOneDot(t *testing.T) {
	backend := newTestBackend(t)
	bld := backend.Builder("fused")
	a, _ := bld.Parameter("a", shapes.Make(dtypes.Float32, 8, 16, 1), nil)
	w, _ := bld.Parameter("w", shapes.Make(dtypes.Float32, 32, 16), nil)
	wt, _ := bld.Transpose(w, 1, 0)     // [16, 32]
	w3, _ := bld.Reshape(wt, 1, 16, 32) // [1, 16, 32]
	prod, err := bld.Mul(a, w3)         // [8, 16, 32]
	if err != nil {
		t.Fatal(err)
	}
	sum, err := bld.ReduceSum(prod, 1) // [8, 32]
	if err != nil {
		t.Fatal(err)
	}
	n := sum.(*simplego.Node)
	if op := mirror(n).opType; op != backends.OpTypeDotGeneral {
		t.Fatalf("ReduceSum(Mul(broadcast a, broadcast w)) built %s, expected one DotGeneral", op)
	}
	if s := shapeOf(n); s.Rank() != 2 || s.Dimensions[0] != 8 || s.Dimensions[1] != 32 {
		t.Fatalf("fused product shape %s, expected [8 32]", s)
	}
}

func TestConvParity(t *testing.T) {
	cases := []struct {
		name     string
		x, k     []int
		channels images.ChannelsAxisConfig
		stride   int
		dil      int
		pad      [][2]int
		im2col   bool // expected to fall back from oneDNN
	}{
		{"nchw-direct", []int{2, 3, 20, 18}, []int{4, 3, 3, 3}, images.ChannelsFirst, 1, 1, [][2]int{{1, 1}, {1, 1}}, false},
		{"nchw-strided", []int{3, 3, 23, 23}, []int{5, 3, 5, 5}, images.ChannelsFirst, 4, 1, [][2]int{{2, 1}, {0, 2}}, false},
		// AlexNet's conv1 geometry, scaled down: 11x11/4, pad 2, and an
		// input whose last rows no window reaches.
		{"alexnet-conv1", []int{3, 3, 46, 45}, []int{8, 3, 11, 11}, images.ChannelsFirst, 4, 1, [][2]int{{2, 2}, {2, 2}}, false},
		{"nhwc", []int{2, 9, 9, 3}, []int{3, 3, 3, 4}, images.ChannelsLast, 2, 1, nil, true},
		{"narrowing", []int{2, 8, 10, 10}, []int{4, 8, 3, 3}, images.ChannelsFirst, 1, 1, [][2]int{{1, 1}, {1, 1}}, false},
		{"dilated", []int{2, 2, 12, 12}, []int{3, 2, 3, 3}, images.ChannelsFirst, 1, 2, [][2]int{{2, 2}, {2, 2}}, false},
	}
	for _, c := range cases {
		for _, chunked := range []bool{false, true} {
			name := c.name
			if chunked {
				name += "/chunked"
			}
			t.Run(name, func(t *testing.T) {
				testConvParity(t, c.name, c.x, c.k, c.channels, c.stride, c.dil, c.pad, c.im2col, chunked)
			})
		}
	}
}

// testConvParity checks one convolution and its gradients against gomlx's
// own kernels; chunked feeds oneDNN one sample per call, so that every
// chunking path (and the summing of kernel-gradient chunks) runs.
func testConvParity(t *testing.T, name string, xd, kd []int, channels images.ChannelsAxisConfig, stride, dil int, pad [][2]int, im2col, chunked bool) {
	be := newTestBackend(t).(*Backend)
	if chunked {
		be.dnnlChunkBytes = 1
	}
	parityOn(t, be, name, func(in []*Node) []*Node {
		conv := Convolve(in[0], in[1]).ChannelsAxis(channels).Strides(stride).Dilations(dil)
		if pad != nil {
			conv = conv.PaddingPerDim(pad)
		} else {
			conv = conv.NoPadding()
		}
		out := conv.Done()
		loss := ReduceAllSum(Mul(out, out))
		return append([]*Node{out}, Gradient(loss, in[0], in[1])...)
	}, 1e-5, xd, kd)
	// The forward and both gradients must each have reached oneDNN (or,
	// for layouts it is not given, im2col).
	paths := be.ConvPaths()
	if im2col {
		if paths["im2col"] != 3 {
			t.Errorf("convolution paths %v, expected 3 on im2col", paths)
		}
	} else if paths["im2col"] != 0 || paths["forward"] != 1 || paths["backward-data"] != 1 || paths["backward-weights"] != 1 {
		t.Errorf("convolution paths %v, expected one of each oneDNN primitive", paths)
	}
}

// TestConvSwappedKernelAxes checks a convolution whose kernel is laid out
// [in, out, kh, kw] without a Reverse in front: oneDNN computes it as
// backward-data of the flipped kernel.
func TestConvSwappedKernelAxes(t *testing.T) {
	be := newTestBackend(t).(*Backend)
	axes := backends.ConvolveAxesConfig{InputBatch: 0, InputChannels: 1, InputSpatial: []int{2, 3},
		KernelInputChannels: 0, KernelOutputChannels: 1, KernelSpatial: []int{2, 3},
		OutputBatch: 0, OutputChannels: 1, OutputSpatial: []int{2, 3}}
	parityOn(t, be, "swapped-kernel", func(in []*Node) []*Node {
		return []*Node{Convolve(in[0], in[1]).AxesConfig(axes).PaddingPerDim([][2]int{{1, 2}, {0, 1}}).Done()}
	}, 1e-5, []int{2, 5, 9, 8}, []int{5, 3, 3, 2})
	if p := be.ConvPaths(); p["backward-data"] != 1 || p["im2col"] != 0 {
		t.Errorf("convolution paths %v, expected oneDNN backward-data", p)
	}
}

func TestPoolParity(t *testing.T) {
	cases := []struct {
		name     string
		x        []int
		channels images.ChannelsAxisConfig
		max      bool
		window   int
		stride   int
		same     bool
	}{
		{"max-nchw", []int{2, 3, 13, 13}, images.ChannelsFirst, true, 3, 2, false},
		{"max-nhwc-same", []int{2, 9, 11, 4}, images.ChannelsLast, true, 3, 2, true},
		{"mean-nchw", []int{2, 3, 12, 12}, images.ChannelsFirst, false, 2, 2, false},
		{"mean-overlap-same", []int{1, 2, 7, 9}, images.ChannelsFirst, false, 3, 1, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			parity(t, c.name, func(in []*Node) []*Node {
				pool := MaxPool(in[0])
				if !c.max {
					pool = MeanPool(in[0])
				}
				pool = pool.ChannelsAxis(c.channels).Window(c.window).Strides(c.stride)
				if c.same {
					pool = pool.PadSame()
				} else {
					pool = pool.NoPadding()
				}
				out := pool.Done()
				loss := ReduceAllSum(Mul(out, out))
				return []*Node{out, Gradient(loss, in[0])[0]}
			}, 1e-5, c.x)
		})
	}
}

// TestDenseGradientMemory checks that a dense layer's gradients run as
// products, without the batch x in x out tensor gomlx's DotGeneral
// gradient spells out (512 MiB here), for gomlx's [in, out] weights and
// for torchvision's [out, in].
func TestDenseGradientMemory(t *testing.T) {
	const n, in, out = 16, 2048, 4096
	for _, torchLayout := range []bool{false, true} {
		backend := newTestBackend(t)
		exe, err := NewExec(backend, func(x, w, v *Node) []*Node {
			var y *Node
			if torchLayout {
				y = DotGeneral(x, []int{1}, nil, w, []int{1}, nil)
			} else {
				y = MatMul(x, w)
			}
			return Gradient(ReduceAllSum(Mul(y, v)), x, w)
		})
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(4, 4))
		wDims := []int{in, out}
		if torchLayout {
			wDims = []int{out, in}
		}
		x := tensors.FromFlatDataAndDimensions(randn(rng, n*in, 1), n, in)
		w := tensors.FromFlatDataAndDimensions(randn(rng, in*out, 0.01), wDims...)
		v := tensors.FromFlatDataAndDimensions(randn(rng, n*out, 1), n, out)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		outs, err := exe.Exec(x, w, v)
		if err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		if got := after.TotalAlloc - before.TotalAlloc; got > 256<<20 {
			t.Fatalf("dense gradient (torch layout %v) allocated %d MiB, expected well under the 512 MiB of an "+
				"unfused batch x in x out product", torchLayout, got>>20)
		}
		gx := tensors.MustCopyFlatData[float32](outs[0])
		// Spot-check one input-gradient entry: d/dx[0,5] = sum_k w[5,k] v[0,k].
		wf, vf := tensors.MustCopyFlatData[float32](w), tensors.MustCopyFlatData[float32](v)
		var want float64
		for k := range out {
			wk := wf[5*out+k]
			if torchLayout {
				wk = wf[k*in+5]
			}
			want += float64(wk) * float64(vf[k])
		}
		if math.Abs(float64(gx[5])-want) > 1e-4*math.Max(1, math.Abs(want)) {
			t.Fatalf("torch layout %v: dx[0,5] = %g, expected %g", torchLayout, gx[5], want)
		}
	}
}

// TestDeterministic requires bit-identical results from repeated runs: the
// kernels split work across goroutines by fixed ranges, never by arrival.
func TestDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 11))
	x, k := randn(rng, 4*16*20*20, 1), randn(rng, 32*16*3*3, 0.1)
	w := randn(rng, 32*9*9*10, 0.1)
	backend := newTestBackend(t)
	exe, err := NewExec(backend, func(x, k, w *Node) []*Node {
		c := Convolve(x, k).ChannelsAxis(images.ChannelsFirst).PaddingPerDim([][2]int{{1, 1}, {1, 1}}).Done()
		p := MaxPool(Max(c, ZerosLike(c))).ChannelsAxis(images.ChannelsFirst).Window(3).Strides(2).NoPadding().Done()
		loss := ReduceAllSum(MatMul(Reshape(p, 4, -1), w))
		return Gradient(loss, x, k, w)
	})
	if err != nil {
		t.Fatal(err)
	}
	run := func() [][]float32 {
		outs, err := exe.Exec(tensors.FromFlatDataAndDimensions(x, 4, 16, 20, 20),
			tensors.FromFlatDataAndDimensions(k, 32, 16, 3, 3), tensors.FromFlatDataAndDimensions(w, 32*9*9, 10))
		if err != nil {
			t.Fatal(err)
		}
		res := make([][]float32, len(outs))
		for i, o := range outs {
			res[i] = tensors.MustCopyFlatData[float32](o)
		}
		return res
	}
	first := run()
	for range 3 {
		again := run()
		for i := range first {
			for j := range first[i] {
				if math.Float32bits(first[i][j]) != math.Float32bits(again[i][j]) {
					t.Fatalf("gradient %d entry %d differs between runs: %g vs %g", i, j, first[i][j], again[i][j])
				}
			}
		}
	}
}
