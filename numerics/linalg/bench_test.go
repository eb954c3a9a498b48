package linalg

import (
	"fmt"
	"testing"
)

// BenchmarkGemm reports the machine's GEMM rate, the ceiling every ridge
// figure is compared with.
func BenchmarkGemm(b *testing.B) {
	for _, n := range []int{512, 2048} {
		b.Run(fmt.Sprintf("float32/%d", n), func(b *testing.B) { benchGemm[float32](b, n) })
		b.Run(fmt.Sprintf("float64/%d", n), func(b *testing.B) { benchGemm[float64](b, n) })
	}
}

func benchGemm[T Float](b *testing.B, n int) {
	a := make([]T, n*n)
	for i := range a {
		a[i] = T(i%7) - 3
	}
	c := make([]T, n*n)
	b.ResetTimer()
	for b.Loop() {
		Gemm(false, false, n, n, n, 1, a, n, a, n, 0, c, n)
	}
	b.ReportMetric(2*float64(n)*float64(n)*float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// BenchmarkTrmmVsGemm compares the triangular product ridge uses per alpha
// with a dense GEMM of the same shape (p=1000, 4096 voxels).
func BenchmarkTrmmVsGemm(b *testing.B) {
	const p, v = 1000, 4096
	r := make([]float32, p*p)
	for i := 0; i < p; i++ {
		for j := i; j < p; j++ {
			r[i*p+j] = float32((i+j)%5) - 2
		}
	}
	x := make([]float32, p*v)
	y := make([]float32, p*v)
	b.Run("trmm", func(b *testing.B) {
		for b.Loop() {
			TrmmUpper(p, v, r, p, x, v)
		}
		b.ReportMetric(float64(p)*p*v*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
	b.Run("gemm", func(b *testing.B) {
		for b.Loop() {
			Gemm(false, false, p, v, p, 1, r, p, x, v, 0, y, v)
		}
		b.ReportMetric(2*float64(p)*p*v*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
}
