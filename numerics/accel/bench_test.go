package accel

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"syscall"
	"testing"
	"time"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/core/tensors/images"
)

// cpuTime is the CPU time this process has used (all threads). On a
// shared machine FLOPs per CPU-second compare kernels fairly where wall
// time measures the neighbours.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// sgemmRate measures raw OpenBLAS sgemm GFLOP/s (wall and per CPU-second)
// on n x n matrices, the yardstick the layer benchmarks report against.
func sgemmRate(threads, n int, d time.Duration) (wall, cpu float64) {
	rng := rand.New(rand.NewPCG(1, 1))
	a, b, c := randn(rng, n*n, 1), randn(rng, n*n, 1), make([]float32, n*n)
	sgemm(threads, false, false, n, n, n, 1, a, n, b, n, 0, c, n) // warm-up
	start, cpu0, reps := time.Now(), cpuTime(), 0
	for time.Since(start) < d {
		sgemm(threads, false, false, n, n, n, 1, a, n, b, n, 0, c, n)
		reps++
	}
	flops := 2 * float64(n*n*n) * float64(reps) / 1e9
	return flops / time.Since(start).Seconds(), flops / (cpuTime() - cpu0).Seconds()
}

func BenchmarkSgemm(b *testing.B) {
	const n = 2048
	rng := rand.New(rand.NewPCG(1, 1))
	x, y, z := randn(rng, n*n, 1), randn(rng, n*n, 1), make([]float32, n*n)
	threads := newTestBackendB(b).(*Backend).threads
	b.ResetTimer()
	cpu0 := cpuTime()
	for b.Loop() {
		sgemm(threads, false, false, n, n, n, 1, x, n, y, n, 0, z, n)
	}
	flops := 2 * float64(n*n*n) * float64(b.N) / 1e9
	b.ReportMetric(flops/b.Elapsed().Seconds(), "GFLOP/s")
	b.ReportMetric(flops/(cpuTime()-cpu0).Seconds(), "GFLOP/cpu-s")
}

func newTestBackendB(b *testing.B) interface{ Finalize() } {
	be, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(be.Finalize)
	return be
}

// benchLayer times exe on args and reports GFLOP/s and the ratio to raw
// sgemm measured in the same run.
func benchLayer(b *testing.B, flops float64, exe *Exec, args ...any) {
	if _, err := exe.Exec(args...); err != nil { // compile + warm-up
		b.Fatal(err)
	}
	ref, refCPU := sgemmRate(runtime.GOMAXPROCS(0), 1024, 300*time.Millisecond)
	b.ResetTimer()
	cpu0 := cpuTime()
	for b.Loop() {
		outs, err := exe.Exec(args...)
		if err != nil {
			b.Fatal(err)
		}
		for _, o := range outs {
			o.FinalizeAll()
		}
	}
	total := flops * float64(b.N) / 1e9
	rate, rateCPU := total/b.Elapsed().Seconds(), total/(cpuTime()-cpu0).Seconds()
	b.ReportMetric(rate, "GFLOP/s")
	b.ReportMetric(rate/ref, "x-sgemm")
	b.ReportMetric(rateCPU, "GFLOP/cpu-s")
	b.ReportMetric(rateCPU/refCPU, "x-sgemm-cpu")
}

// conv2 of AlexNet at 224x224 and batch 32: 64 -> 192 channels, 5x5,
// pad 2, 27x27.
const (
	cvB, cvC, cvO, cvH, cvK = 32, 64, 192, 27, 5
	cvFlops                 = 2.0 * cvB * cvO * cvH * cvH * cvC * cvK * cvK
)

func convArgs() []any {
	rng := rand.New(rand.NewPCG(5, 5))
	return []any{
		tensors.FromFlatDataAndDimensions(randn(rng, cvB*cvC*cvH*cvH, 1), cvB, cvC, cvH, cvH),
		tensors.FromFlatDataAndDimensions(randn(rng, cvO*cvC*cvK*cvK, 0.05), cvO, cvC, cvK, cvK),
		tensors.FromFlatDataAndDimensions(randn(rng, cvB*cvO*cvH*cvH, 1), cvB, cvO, cvH, cvH),
	}
}

func conv2(x, k *Node) *Node {
	return Convolve(x, k).ChannelsAxis(images.ChannelsFirst).PaddingPerDim([][2]int{{2, 2}, {2, 2}}).Done()
}

// convPaths runs bench once per convolution kernel: oneDNN (the default)
// and im2col + OpenBLAS sgemm.
func convPaths(b *testing.B, bench func(b *testing.B, backend *Backend)) {
	for _, path := range []string{"onednn", "im2col"} {
		b.Run(path, func(b *testing.B) {
			backend, err := New(Config{Im2colConv: path == "im2col"})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(backend.Finalize)
			bench(b, backend.(*Backend))
		})
	}
}

// BenchmarkConvForward times AlexNet's conv2 forward; x-sgemm is its
// FLOP rate over raw sgemm's in the same run.
func BenchmarkConvForward(b *testing.B) {
	convPaths(b, func(b *testing.B, backend *Backend) {
		exe := MustNewExec(backend, func(x, k, v *Node) *Node { return conv2(x, k) })
		benchLayer(b, cvFlops, exe, convArgs()...)
	})
}

// BenchmarkConvBackward times both gradient convolutions (input and
// kernel), 2x the forward FLOPs.
func BenchmarkConvBackward(b *testing.B) {
	convPaths(b, func(b *testing.B, backend *Backend) {
		exe := MustNewExec(backend, func(x, k, v *Node) []*Node {
			return Gradient(ReduceAllSum(Mul(conv2(x, k), v)), x, k)
		})
		benchLayer(b, 2*cvFlops, exe, convArgs()...)
	})
}

// fc6 of AlexNet: 9216 -> 4096, at batch 32 (a memory-bound product: the
// 151 MB weight matrix is read for 32 rows) and 256.
const fcIn, fcOut = 9216, 4096

func fcArgs(batch int) []any {
	rng := rand.New(rand.NewPCG(6, 6))
	return []any{
		tensors.FromFlatDataAndDimensions(randn(rng, batch*fcIn, 1), batch, fcIn),
		tensors.FromFlatDataAndDimensions(randn(rng, fcIn*fcOut, 0.01), fcIn, fcOut),
		tensors.FromFlatDataAndDimensions(randn(rng, batch*fcOut, 1), batch, fcOut),
	}
}

// fcBatches runs bench at batch 32 and 256.
func fcBatches(b *testing.B, bench func(b *testing.B, batch int)) {
	for _, batch := range []int{32, 256} {
		b.Run(fmt.Sprintf("batch%d", batch), func(b *testing.B) { bench(b, batch) })
	}
}

func BenchmarkDenseForward(b *testing.B) {
	fcBatches(b, func(b *testing.B, batch int) {
		backend := newTestBackendB(b)
		exe := MustNewExec(backend.(*Backend), func(x, w, v *Node) *Node { return MatMul(x, w) })
		benchLayer(b, 2.0*float64(batch)*fcIn*fcOut, exe, fcArgs(batch)...)
	})
}

// BenchmarkDenseBackward times the input and weight gradients of a dense
// layer, which gomlx expresses as ReduceSum(Mul(...)) and this package
// fuses back into sgemm.
func BenchmarkDenseBackward(b *testing.B) {
	fcBatches(b, func(b *testing.B, batch int) {
		backend := newTestBackendB(b)
		exe := MustNewExec(backend.(*Backend), func(x, w, v *Node) []*Node {
			return Gradient(ReduceAllSum(Mul(MatMul(x, w), v)), x, w)
		})
		benchLayer(b, 4.0*float64(batch)*fcIn*fcOut, exe, fcArgs(batch)...)
	})
}

// alexnet-mini's conv1 at batch 256: 3 -> 16 channels, 11x11/2, pad 2,
// 64x64 -> 29x29; few input channels make it the hardest for oneDNN.
func BenchmarkMiniConv1(b *testing.B) {
	const n, c, o, h, k, oh = 256, 3, 16, 64, 11, 29
	// Fresh tensors per backend: a tensor stays bound to the first one.
	args := func() []any {
		rng := rand.New(rand.NewPCG(7, 7))
		return []any{
			tensors.FromFlatDataAndDimensions(randn(rng, n*c*h*h, 1), n, c, h, h),
			tensors.FromFlatDataAndDimensions(randn(rng, o*c*k*k, 0.05), o, c, k, k),
			tensors.FromFlatDataAndDimensions(randn(rng, n*o*oh*oh, 1), n, o, oh, oh),
		}
	}
	conv := func(x, w *Node) *Node {
		return Convolve(x, w).ChannelsAxis(images.ChannelsFirst).Strides(2).PaddingPerDim([][2]int{{2, 2}, {2, 2}}).Done()
	}
	flops := 2.0 * n * o * oh * oh * c * k * k
	b.Run("forward", func(b *testing.B) {
		convPaths(b, func(b *testing.B, backend *Backend) {
			benchLayer(b, flops, MustNewExec(backend, func(x, w, v *Node) *Node { return conv(x, w) }), args()...)
		})
	})
	b.Run("kernel-grad", func(b *testing.B) {
		convPaths(b, func(b *testing.B, backend *Backend) {
			benchLayer(b, flops, MustNewExec(backend, func(x, w, v *Node) *Node {
				return Gradient(ReduceAllSum(Mul(conv(x, w), v)), w)[0]
			}), args()...)
		})
	})
}
