package accel

import (
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/backends"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/core/tensors/images"
)

func newTestBackend(t *testing.T) backends.Backend {
	t.Helper()
	b, err := New(Config{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(b.Finalize)
	return b
}

// TestConvPoolDenseGradients checks an AlexNet-shaped block (strided padded
// conv, ReLU, 3x3/2 max-pool, 2x2 mean-pool, slice, dense, softmax
// cross-entropy) and its gradients against PyTorch.
func TestConvPoolDenseGradients(t *testing.T) {
	const (
		n, c, h, o, kk, classes = 2, 3, 15, 4, 3, 5
	)
	rng := rand.New(rand.NewPCG(1, 2))
	x := randn(rng, n*c*h*h, 1)
	k := randn(rng, o*c*kk*kk, 0.3)
	// conv stride 2 pad 1: 15 -> 8; maxpool 3/2: 8 -> 3; slice [1:3] -> 2... flatten o*2*3
	const feat = o * 2 * 3
	w := randn(rng, feat*classes, 0.3)
	bias := randn(rng, classes, 0.1)
	onehot := make([]float32, n*classes)
	onehot[0*classes+1], onehot[1*classes+3] = 1, 1

	backend := newTestBackend(t)
	exe, err := NewExec(backend, func(x, k, w, b, y *Node) []*Node {
		conv := Convolve(x, k).ChannelsAxis(images.ChannelsFirst).Strides(2).PaddingPerDim([][2]int{{1, 1}, {1, 1}}).Done()
		act := Max(conv, ZerosLike(conv))
		pool := MaxPool(act).ChannelsAxis(images.ChannelsFirst).Window(3).Strides(2).NoPadding().Done()
		sl := Slice(pool, AxisRange(), AxisRange(), AxisRange(1, 3), AxisRange())
		flat := Reshape(sl, n, feat)
		logits := Add(MatMul(flat, w), InsertAxes(b, 0))
		loss := Neg(ReduceAllSum(Mul(y, LogSoftmax(logits, -1))))
		grads := Gradient(loss, x, k, w, b)
		return append([]*Node{loss}, grads...)
	})
	if err != nil {
		t.Fatal(err)
	}
	outs, err := exe.Exec(
		tensors.FromFlatDataAndDimensions(x, n, c, h, h),
		tensors.FromFlatDataAndDimensions(k, o, c, kk, kk),
		tensors.FromFlatDataAndDimensions(w, feat, classes),
		tensors.FromFlatDataAndDimensions(bias, classes),
		tensors.FromFlatDataAndDimensions(onehot, n, classes))
	if err != nil {
		t.Fatalf("exec: %v", err)
	}
	ref := runTorch(t, `
x, k, w, b, y = ld("x", 2, 3, 15, 15), ld("k", 4, 3, 3, 3), ld("w", 24, 5), ld("b", 5), ld("y", 2, 5)
p = F.max_pool2d(F.relu(F.conv2d(x, k, stride=2, padding=1)), 3, 2)
logits = p[:, :, 1:3, :].reshape(2, 24) @ w + b
loss = -(y * F.log_softmax(logits, -1)).sum()
loss.backward()
sv("loss", loss); sv("gx", x.grad); sv("gk", k.grad); sv("gw", w.grad); sv("gb", b.grad)
`, map[string][]float32{"x": x, "k": k, "w": w, "b": bias, "y": onehot}, "loss", "gx", "gk", "gw", "gb")
	for i, name := range []string{"loss", "gx", "gk", "gw", "gb"} {
		assertClose(t, name, tensors.MustCopyFlatData[float32](outs[i]), ref[name], 1e-5)
	}
}

// TestMeanPoolAndPadGradients covers MeanPool's gradient (Pad with interior
// padding and ReduceWindow sum) and strided slices.
func TestMeanPoolAndPadGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	x := randn(rng, 2*3*8*8, 1)
	r := randn(rng, 2*3*2*2, 1)
	backend := newTestBackend(t)
	exe, err := NewExec(backend, func(x, r *Node) []*Node {
		p := MeanPool(x).ChannelsAxis(images.ChannelsFirst).Window(2).Strides(2).NoPadding().Done() // 8 -> 4
		s := Slice(p, AxisRange(), AxisRange(), AxisRange(0, 4).Stride(2), AxisRange(1, 4).Stride(2))
		loss := ReduceAllSum(Mul(s, r))
		return []*Node{loss, Gradient(loss, x)[0]}
	})
	if err != nil {
		t.Fatal(err)
	}
	outs, err := exe.Exec(tensors.FromFlatDataAndDimensions(x, 2, 3, 8, 8), tensors.FromFlatDataAndDimensions(r, 2, 3, 2, 2))
	if err != nil {
		t.Fatalf("exec: %v", err)
	}
	ref := runTorch(t, `
x, r = ld("x", 2, 3, 8, 8), ld("r", 2, 3, 2, 2)
loss = (F.avg_pool2d(x, 2, 2)[:, :, 0:4:2, 1:4:2] * r).sum()
loss.backward()
sv("loss", loss); sv("gx", x.grad)
`, map[string][]float32{"x": x, "r": r}, "loss", "gx")
	assertClose(t, "loss", tensors.MustCopyFlatData[float32](outs[0]), ref["loss"], 1e-5)
	assertClose(t, "gx", tensors.MustCopyFlatData[float32](outs[1]), ref["gx"], 1e-5)
}
