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

// TestPairedStatsMatchReference checks the paired bootstrap of a mean-r
// difference (CI95 and BootstrapP over one shared resample matrix) against
// numpy expanding every resample row by row, and the tests over subjects
// (TTest1Samp, SignFlipP) against scipy.stats.ttest_1samp and brute-force
// sign flips.
func TestPairedStatsMatchReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 5))
	dir := t.TempDir()
	n, v, b := 30, 12, 400
	obs, pa, pb := make([]float64, n*v), make([]float64, n*v), make([]float64, n*v)
	for i := range obs {
		obs[i] = rng.NormFloat64()
		// a predicts a little better than b: p lands between the floor
		// and 1, where an off-by-one in the counting would show.
		pa[i] = 0.45*obs[i] + rng.NormFloat64()
		pb[i] = 0.35*obs[i] + rng.NormFloat64()
	}
	counts := BootstrapCounts(rand.New(rand.NewPCG(3, 9)), b, n)
	for name, x := range map[string][]float64{"obs": obs, "pa": pa, "pb": pb} {
		if err := npy.WriteFile(filepath.Join(dir, name+".npy"), []int{n, v}, x); err != nil {
			t.Fatal(err)
		}
	}
	if err := npy.WriteFile(filepath.Join(dir, "counts.npy"), []int{b, n}, counts); err != nil {
		t.Fatal(err)
	}
	groups := [][]float64{
		{0.012, 0.020},
		{0.01, -0.004, 0.03},
		{0.021, 0.013, 0.008, 0.030, -0.002},
		{0.05, 0.04, 0.061, 0.02, 0.033, 0.047, 0.052, 0.018},
	}
	for i, x := range groups {
		if err := npy.WriteFile(filepath.Join(dir, fmt.Sprintf("x%d.npy", i)), []int{len(x)}, x); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("/usr/bin/python3", "testdata/paired_stats.py", dir).CombinedOutput(); err != nil {
		t.Fatalf("numpy/scipy reference: %v\n%s", err, out)
	}

	ba := BootstrapMeanR(counts, b, pa, obs, n, v)
	bb := BootstrapMeanR(counts, b, pb, obs, n, v)
	d := make([]float64, b)
	for k := range d {
		d[k] = ba[k] - bb[k]
	}
	ref, err := npy.ReadFile[float64](filepath.Join(dir, "boot.npy"))
	if err != nil {
		t.Fatal(err)
	}
	ci, p := CI95(d), BootstrapP(d)
	if math.Abs(ci[0]-ref.Data[0]) > 1e-10 || math.Abs(ci[1]-ref.Data[1]) > 1e-10 || p != ref.Data[2] {
		t.Errorf("paired bootstrap: CI [%.12f, %.12f] p %g; numpy [%.12f, %.12f] p %g", ci[0], ci[1], p, ref.Data[0], ref.Data[1], ref.Data[2])
	}
	t.Logf("paired bootstrap: mean-r difference CI [%.4f, %.4f], p %.4g", ci[0], ci[1], p)
	if p <= 2.0/float64(b+1) || p >= 1 {
		t.Errorf("paired bootstrap p = %g: the case should land between the floor and 1", p)
	}

	gref, err := npy.ReadFile[float64](filepath.Join(dir, "group.npy"))
	if err != nil {
		t.Fatal(err)
	}
	for i, x := range groups {
		tt, pt, df, ok := TTest1Samp(x)
		wt, wp, wf := gref.Data[3*i], gref.Data[3*i+1], gref.Data[3*i+2]
		if !ok || df != len(x)-1 || math.Abs(tt-wt) > 1e-9*math.Abs(wt) || math.Abs(pt-wp) > 1e-9*wp {
			t.Errorf("subjects %v: t-test (%g, %g, df %d, %v), scipy (%g, %g)", x, tt, pt, df, ok, wt, wp)
		}
		if sf := SignFlipP(x); math.Abs(sf-wf) > 1e-15 {
			t.Errorf("subjects %v: sign-flip p %g, brute force %g", x, sf, wf)
		}
	}
	if _, _, _, ok := TTest1Samp([]float64{0.01, 0.01}); ok {
		t.Error("t-test of equal differences: want undefined (sd = 0)")
	}
}

// TestBootstrapPSmall checks BootstrapP on hand-counted cases.
func TestBootstrapPSmall(t *testing.T) {
	for _, tc := range []struct {
		boot []float64
		want float64
	}{
		// 9 resamples, 1 at or below zero: 2 * (1+1) / 10.
		{[]float64{-0.1, 0.2, 0.3, 0.1, 0.2, 0.4, 0.3, 0.5, 0.2}, 0.4},
		// All above zero: the floor 2 / (B+1).
		{[]float64{0.1, 0.2, 0.3}, 0.5},
		// Balanced: capped at 1.
		{[]float64{-1, 1, -1, 1}, 1},
		// A zero counts on both sides: min(1, 2) + 1 = 2, 2 * 2 / 4.
		{[]float64{0, 0.1, 0.2}, 1},
	} {
		if got := BootstrapP(tc.boot); math.Abs(got-tc.want) > 1e-15 {
			t.Errorf("BootstrapP(%v) = %g, want %g", tc.boot, got, tc.want)
		}
	}
}

// TestAboveCeiling checks the per-voxel flag on hand-computed cases with
// n = 103 test images, so the Fisher-z tolerance is 1.96 / 10.
func TestAboveCeiling(t *testing.T) {
	nan := float32(math.NaN())
	r := []float64{
		0.9,  // atanh .9 - atanh sqrt .5 = 1.472 - 0.881 = 0.591 > 0.196: above
		0.75, // 0.973 - 0.881 = 0.092: within sampling error
		0.3,  // ceiling 0: atanh .3 = 0.310 > 0.196: above
		0.15, // ceiling 0: 0.151, within sampling error
		0.99, // ceiling unknown: not counted
		0.99, // ceiling 1: never exceeded
		0.5,  // ceiling 0.04 (r 0.2): 0.549 - 0.203 = 0.347: above
	}
	nc := []float32{0.5, 0.5, 0, 0, nan, 1, 0.04}
	if got := AboveCeiling(r, nc, 103); got != 3 {
		t.Errorf("AboveCeiling = %d, want 3", got)
	}
	// Fewer test images widen the tolerance: with n = 13 it is
	// 1.96/sqrt(10) = 0.62, above every margin here (the largest is 0.591).
	if got := AboveCeiling(r, nc, 13); got != 0 {
		t.Errorf("AboveCeiling with 13 images = %d, want 0", got)
	}
}
