package ridge

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/voxflow/voxflow/numerics/linalg"
)

// benchCase is one job size of BenchmarkFitCV.
type benchCase struct {
	name           string
	n, p, v, nt, k int
}

// benchCases are the sizes BenchmarkFitCV times. By default they are small
// so that `go test -bench` stays quick: a tall case (p < n, primal form)
// and a wide one (p > n, dual form) at a fifth of the rows.
// VOXFLOW_BENCH_FULL=1 runs the sizes: n=9000 training images,
// v=20000 voxels, 1000 test images, 5 folds, 15 alphas, with p=1000 and
// with p=9216 (AlexNet's features.12 / avgpool). VOXFLOW_BENCH_V
// overrides v.
func benchCases() []benchCase {
	cases := []benchCase{{"tall-p200", 1800, 200, 4000, 200, 5}, {"wide-p1843", 1800, 1843, 4000, 200, 5}}
	if os.Getenv("VOXFLOW_BENCH_FULL") == "1" {
		cases = []benchCase{{"tall-p1000", 9000, 1000, 20000, 1000, 5}, {"wide-p9216", 9000, 9216, 20000, 1000, 5}}
	}
	if s := os.Getenv("VOXFLOW_BENCH_V"); s != "" {
		v, err := strconv.Atoi(s)
		if err == nil && v > 0 {
			for i := range cases {
				cases[i].v = v
			}
		}
	}
	return cases
}

// BenchmarkFitCV times the whole ridge job (per-fold standardisation,
// 5-fold CV over 15 alphas with per-voxel choice, refit, prediction of the
// test rows) in float32, each fit in a child process of its own so that
// its peak RSS (getrusage ru_maxrss) is the job's and nothing else's. It
// reports wall time, peak RSS, the algorithm's GFLOP count, the achieved
// rate, and a same-run sgemm rate through linalg as the machine's ceiling
// (floor-s = GFLOP / sgemm rate; the ratio s/fit / floor-s is the figure
// to watch).
func BenchmarkFitCV(b *testing.B) {
	for _, c := range benchCases() {
		b.Run(c.name, func(b *testing.B) {
			var wall, ceiling, rss float64
			for b.Loop() {
				var err error
				if wall, ceiling, rss, err = runBenchChild(c); err != nil {
					b.Fatal(err)
				}
			}
			flops := Flops(c.n, c.p, c.v, c.nt, c.k, 15)
			b.ReportMetric(wall, "s/fit")
			b.ReportMetric(flops/1e9, "GFLOP")
			b.ReportMetric(flops/wall/1e9, "GFLOP/s")
			b.ReportMetric(ceiling, "sgemm-GFLOP/s")
			b.ReportMetric(flops/ceiling/1e9, "floor-s")
			b.ReportMetric(wall/(flops/ceiling/1e9), "x-floor")
			b.ReportMetric(rss/(1<<20), "peakRSS-MB")
		})
	}
}

// benchChildEnv carries a benchCase to the child process.
const benchChildEnv = "VOXFLOW_RIDGE_BENCH_CHILD"

// runBenchChild runs one fit of c in a child test process and returns its
// wall time (the fit only), the sgemm rate the child measured just before
// the fit (GFLOP/s; on a shared machine a rate measured minutes apart
// from the fit says little), and its peak RSS in bytes.
func runBenchChild(c benchCase) (wall, sgemm, rss float64, err error) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestBenchChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d,%d,%d,%d,%d", benchChildEnv, c.n, c.p, c.v, c.nt, c.k))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return 0, 0, 0, fmt.Errorf("bench child %s: %v\n%s", c.name, err, out.String())
	}
	_, err = fmt.Sscanf(benchLine(out.String()), "bench-wall-s=%g sgemm-GFLOP/s=%g", &wall, &sgemm)
	if err != nil || wall == 0 {
		return 0, 0, 0, fmt.Errorf("bench child %s printed no figures: %v\n%s", c.name, err, out.String())
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return wall, sgemm, -1, nil
	}
	return wall, sgemm, float64(ru.Maxrss) * 1024, nil // Linux reports kilobytes
}

// benchLine returns the child's line of figures.
func benchLine(out string) string {
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "bench-wall-s=") {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// TestBenchChild is BenchmarkFitCV's child process; it does nothing in a
// plain test run.
func TestBenchChild(t *testing.T) {
	spec := os.Getenv(benchChildEnv)
	if spec == "" {
		t.Skip("only run by BenchmarkFitCV")
	}
	var c benchCase
	if _, err := fmt.Sscanf(spec, "%d,%d,%d,%d,%d", &c.n, &c.p, &c.v, &c.nt, &c.k); err != nil {
		t.Fatalf("%s=%q: %v", benchChildEnv, spec, err)
	}
	x, y, xt := benchData(c.n, c.p, c.v, c.nt)
	rate := sgemmRate()
	t0 := time.Now()
	if _, err := FitCV(context.Background(), x, c.n, c.p, y, c.v, c.v, xt, c.nt, Config{Alphas: logspace(-1, 6, 15), Folds: c.k}); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("bench-wall-s=%.3f sgemm-GFLOP/s=%.2f\n", time.Since(t0).Seconds(), rate)
}

// benchData draws float32 features with a decaying spectrum (32 shared
// latent factors plus independent noise, like a network layer's correlated
// units) and targets from a planted low-rank linear model plus noise,
// without ever forming a p x v weight matrix.
func benchData(n, p, v, nt int) (x, y, xt []float32) {
	rng := rand.New(rand.NewPCG(1, 1))
	const latent, rank = 32, 20
	rows := n + nt
	z := randn(rng, rows*latent, 1)
	mix := randn(rng, latent*p, 1)
	x = randn(rng, rows*p, 0.3)
	linalg.Gemm(false, false, rows, p, latent, 1, z, latent, mix, p, 1, x, p)
	a := randn(rng, p*rank, 1/float32(p))
	xa := make([]float32, n*rank)
	linalg.Gemm(false, false, n, rank, p, 1, x, p, a, rank, 0, xa, rank)
	bm := randn(rng, rank*v, 1)
	y = randn(rng, n*v, 1)
	linalg.Gemm(false, false, n, v, rank, 1, xa, rank, bm, v, 1, y, v)
	return x[:n*p], y, x[n*p:]
}

func randn(rng *rand.Rand, n int, scale float32) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(rng.NormFloat64()) * scale
	}
	return out
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
