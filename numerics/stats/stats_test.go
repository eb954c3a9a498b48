package stats

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/voxflow/voxflow/numerics/npy"
)

// TestStatsMatchScipy checks Wilcoxon (with ties and zeros) against
// scipy.stats.wilcoxon and PearsonCols against numpy.corrcoef.
func TestStatsMatchScipy(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 2))
	dir := t.TempDir()
	var ds [][]float64
	for c, n := range []int{30, 200, 1000} {
		d := make([]float64, n)
		for i := range d {
			d[i] = rng.NormFloat64() + 0.1*float64(c)
			if c == 1 {
				// Rounded values give ties and exact zeros.
				d[i] = math.Round(d[i] * 4)
			}
		}
		ds = append(ds, d)
		if err := npy.WriteFile(filepath.Join(dir, fmt.Sprintf("d%d.npy", c)), []int{n}, d); err != nil {
			t.Fatal(err)
		}
	}
	n, v := 50, 7
	a, b := make([]float64, n*v), make([]float64, n*v)
	for i := range a {
		a[i] = rng.NormFloat64()
		b[i] = 0.5*a[i] + rng.NormFloat64() + 100
	}
	for name, x := range map[string][]float64{"a": a, "b": b} {
		if err := npy.WriteFile(filepath.Join(dir, name+".npy"), []int{n, v}, x); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("/usr/bin/python3", "testdata/scipy_stats.py", dir).CombinedOutput(); err != nil {
		t.Fatalf("scipy reference: %v\n%s", err, out)
	}
	ref, err := npy.ReadFile[float64](filepath.Join(dir, "wilcoxon.npy"))
	if err != nil {
		t.Fatal(err)
	}
	for c, d := range ds {
		stat, p, _ := Wilcoxon(d)
		if ws, wp := ref.Data[2*c], ref.Data[2*c+1]; math.Abs(stat-ws) > 1e-9*ws || math.Abs(p-wp) > 1e-9*math.Max(wp, 1e-300) {
			t.Errorf("case %d: Wilcoxon = (%g, %g), scipy (%g, %g)", c, stat, p, ws, wp)
		}
	}
	rref, err := npy.ReadFile[float64](filepath.Join(dir, "r.npy"))
	if err != nil {
		t.Fatal(err)
	}
	assertRelClose(t, "pearson r", PearsonCols(a, b, n, v), rref.Data, 1e-12)
}

func TestWilcoxonAllZero(t *testing.T) {
	if _, p, n := Wilcoxon([]float64{0, 0, 0}); p != 1 || n != 0 {
		t.Fatalf("all-zero differences: p = %g, n = %d; want 1, 0", p, n)
	}
}

// TestBootstrapMeanR checks the GEMM-based resampled r against resampling
// the rows explicitly.
func TestBootstrapMeanR(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	n, v, b := 40, 600, 6 // v > the internal voxel batch
	pred, obs := make([]float32, n*v), make([]float32, n*v)
	for i := range pred {
		obs[i] = float32(rng.NormFloat64())
		pred[i] = obs[i]*0.3 + float32(rng.NormFloat64())
	}
	counts := BootstrapCounts(rand.New(rand.NewPCG(1, 1)), b, n)
	got := BootstrapMeanR(counts, b, pred, obs, n, v)
	for k := 0; k < b; k++ {
		var rows []int
		for i := 0; i < n; i++ {
			for range int(counts[k*n+i]) {
				rows = append(rows, i)
			}
		}
		if len(rows) != n {
			t.Fatalf("resample %d has %d rows, want %d", k, len(rows), n)
		}
		p2, o2 := make([]float32, n*v), make([]float32, n*v)
		for r, i := range rows {
			copy(p2[r*v:(r+1)*v], pred[i*v:(i+1)*v])
			copy(o2[r*v:(r+1)*v], obs[i*v:(i+1)*v])
		}
		want := 0.0
		for _, r := range PearsonCols(p2, o2, n, v) {
			want += r / float64(v)
		}
		if math.Abs(got[k]-want) > 1e-9 {
			t.Errorf("resample %d: mean r %.12f, explicit %.12f", k, got[k], want)
		}
	}
	if q := Percentile([]float64{3, 1, 2, 4}, 25); q != 1.75 {
		t.Errorf("Percentile 25 of 1..4 = %g, numpy says 1.75", q)
	}
}

func assertRelClose(t *testing.T, name string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", name, len(got), len(want))
	}
	scale := 0.0
	for _, w := range want {
		scale = math.Max(scale, math.Abs(w))
	}
	for i := range want {
		if d := math.Abs(got[i] - want[i]); d > tol*scale {
			t.Fatalf("%s[%d] = %.12g, reference %.12g (rel diff %.2g)", name, i, got[i], want[i], d/scale)
		}
	}
}
