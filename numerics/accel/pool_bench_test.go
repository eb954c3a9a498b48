package accel

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// poolBenchShapes are the NCHW inputs of alexnet-mini's max pools at batch
// 256 and of AlexNet 224's at batch 32; all pool 3x3 windows at stride 2
// without padding, as torchvision's AlexNet does.
var poolBenchShapes = [][4]int{
	{256, 16, 29, 29}, {256, 48, 14, 14}, {256, 64, 6, 6},
	{32, 64, 55, 55}, {32, 192, 27, 27}, {32, 256, 13, 13},
}

// poolBenchGeometry returns the plane geometry of a 3x3 stride-2 max pool
// of an NCHW input of dims d and the pooled size.
func poolBenchGeometry(b *testing.B, d [4]int) (*planes, int, int) {
	in := shapes.Make(dtypes.Float32, d[:]...)
	oh, ow := (d[2]-3)/2+1, (d[3]-3)/2+1
	out := shapes.Make(dtypes.Float32, d[0], d[1], oh, ow)
	g, ok := newPlanes(in, out, []int{1, 1, 3, 3}, []int{1, 1, 2, 2}, make([][2]int, 4))
	if !ok {
		b.Fatal("no plane geometry")
	}
	return g, in.Size(), out.Size()
}

// BenchmarkMaxPool times the float32 max-pool kernel (ReduceWindow max)
// and its gradient (SelectAndScatterMax) on AlexNet's pool shapes, on
// inputs from a ReLU (a quarter zeros: many tied windows). ns/in-elem is
// per element of the pool's input.
func BenchmarkMaxPool(b *testing.B) {
	threads := runtime.GOMAXPROCS(0)
	for _, d := range poolBenchShapes {
		g, nin, nout := poolBenchGeometry(b, d)
		rng := rand.New(rand.NewPCG(1, 2))
		x, src := make([]float32, nin), make([]float32, nout)
		for i := range x {
			x[i] = max(0, float32(rng.NormFloat64())+0.7)
		}
		for i := range src {
			src[i] = float32(rng.NormFloat64())
		}
		o, dst := make([]float32, nout), make([]float32, nin)
		name := fmt.Sprintf("%dx%dx%dx%d", d[0], d[1], d[2], d[3])
		b.Run("fwd/"+name, func(b *testing.B) {
			for b.Loop() {
				poolPlanes(g, threads, backends.ReduceOpMax, x, o)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(nin), "ns/in-elem")
		})
		b.Run("bwd/"+name, func(b *testing.B) {
			for b.Loop() {
				scatterPlanes(g, threads, true, x, src, dst)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(nin), "ns/in-elem")
		})
	}
}
