package ridge

import (
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/voxflow/voxflow/stages/linalg"
)

// BenchmarkFitCV times the whole ridge job (standardise, 5-fold CV over 15
// alphas with per-voxel choice, refit, predict the test rows). The default
// size is small so `go test -bench` stays quick; VOXFLOW_BENCH_FULL=1 runs
// the size (n=9000, p=1000, v=20000), VOXFLOW_BENCH_V overrides v.
// It reports wall time, peak RSS, the algorithm's GFLOP count, the achieved
// rate, and a same-run sgemm rate through linalg as the machine's ceiling.
func BenchmarkFitCV(b *testing.B) {
	n, p, v, nt, k := 1800, 200, 4000, 200, 5
	if os.Getenv("VOXFLOW_BENCH_FULL") == "1" {
		n, p, v, nt = 9000, 1000, 20000, 1000
	}
	if s := os.Getenv("VOXFLOW_BENCH_V"); s != "" {
		v, _ = strconv.Atoi(s)
	}
	alphas := logspace(-1, 6, 15)
	x, y, xt := benchData(n, p, v, nt)
	ceiling := sgemmRate()
	b.ResetTimer()
	var wall time.Duration
	for b.Loop() {
		t0 := time.Now()
		m, _, err := FitCV(context.Background(), x, n, p, y, v, v, Config{Alphas: alphas, Folds: k})
		if err != nil {
			b.Fatal(err)
		}
		_ = m.Predict(xt, nt)
		wall = time.Since(t0)
	}
	flops := Flops(n, p, v, nt, k, len(alphas))
	b.ReportMetric(wall.Seconds(), "s/fit")
	b.ReportMetric(flops/1e9, "GFLOP")
	b.ReportMetric(flops/wall.Seconds()/1e9, "GFLOP/s")
	b.ReportMetric(ceiling, "sgemm-GFLOP/s")
	b.ReportMetric(flops/ceiling/1e9, "floor-s")
	b.ReportMetric(float64(peakRSS())/(1<<20), "peakRSS-MB")
}

// benchData draws float32 features and targets from a planted linear model.
func benchData(n, p, v, nt int) (x, y, xt []float32) {
	rng := rand.New(rand.NewPCG(1, 1))
	x = make([]float32, (n+nt)*p)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	w := make([]float32, p*v)
	for i := range w {
		w[i] = float32(rng.NormFloat64()) * 0.05
	}
	y = make([]float32, n*v)
	for i := range y {
		y[i] = float32(rng.NormFloat64())
	}
	linalg.Gemm(false, false, n, v, p, 1, x, p, w, v, 1, y, v)
	return x[:n*p], y, x[n*p:]
}

// sgemmRate measures float32 GEMM GFLOP/s on 2048 x 2048 matrices.
func sgemmRate() float64 {
	const s = 2048
	a := make([]float32, s*s)
	for i := range a {
		a[i] = float32(i%13) - 6
	}
	c := make([]float32, s*s)
	linalg.Gemm(false, false, s, s, s, 1, a, s, a, s, 0, c, s)
	t0 := time.Now()
	const reps = 5
	for range reps {
		linalg.Gemm(false, false, s, s, s, 1, a, s, a, s, 0, c, s)
	}
	return reps * 2 * s * s * s / time.Since(t0).Seconds() / 1e9
}

// peakRSS returns the process's peak resident set (VmHWM) in bytes.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return -1
}
