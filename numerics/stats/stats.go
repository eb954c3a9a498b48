// Package stats holds the statistics voxflow reports: Pearson r per
// column, paired bootstrap over test images, the Wilcoxon signed-rank test
// (descriptive), one-sample t and exact sign-flip tests over subjects, and
// the noise-ceiling check. Each is checked against scipy/numpy in tests.
package stats

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/voxflow/voxflow/numerics/linalg"
)

// PearsonCols returns Pearson's r between column j of a and of b (both
// n x v, row-major) for every j. A column with zero variance in either
// matrix gets r = 0 rather than NaN: a constant prediction explains nothing,
// and NaN cannot travel through the metrics JSON.
func PearsonCols[T linalg.Float](a, b []T, n, v int) []float64 {
	ma, mb := make([]float64, v), make([]float64, v)
	for i := 0; i < n; i++ {
		for j := 0; j < v; j++ {
			ma[j] += float64(a[i*v+j])
			mb[j] += float64(b[i*v+j])
		}
	}
	for j := range ma {
		ma[j] /= float64(n)
		mb[j] /= float64(n)
	}
	sab, saa, sbb := make([]float64, v), make([]float64, v), make([]float64, v)
	for i := 0; i < n; i++ {
		for j := 0; j < v; j++ {
			x, y := float64(a[i*v+j])-ma[j], float64(b[i*v+j])-mb[j]
			sab[j] += x * y
			saa[j] += x * x
			sbb[j] += y * y
		}
	}
	r := make([]float64, v)
	for j := range r {
		if saa[j] > 0 && sbb[j] > 0 {
			r[j] = sab[j] / math.Sqrt(saa[j]*sbb[j])
		}
	}
	return r
}

// Wilcoxon is the two-sided Wilcoxon signed-rank test of the paired
// differences d against zero, by the normal approximation with scipy's
// conventions (scipy.stats.wilcoxon with zero_method="wilcox",
// correction=False, method="approx"): zero differences are dropped, tied
// |d| get average ranks and the variance is corrected for ties. It returns
// the statistic min(R+, R-), the p-value and the number of non-zero
// differences. With no non-zero difference it returns p = 1: there is no
// evidence of a difference (scipy raises instead).
func Wilcoxon(d []float64) (stat, p float64, n int) {
	nz := make([]float64, 0, len(d))
	for _, x := range d {
		if x != 0 && !math.IsNaN(x) {
			nz = append(nz, x)
		}
	}
	n = len(nz)
	if n == 0 {
		return 0, 1, 0
	}
	sort.Slice(nz, func(i, j int) bool { return math.Abs(nz[i]) < math.Abs(nz[j]) })
	var rplus, rminus, tie float64
	for i := 0; i < n; {
		j := i
		for j < n && math.Abs(nz[j]) == math.Abs(nz[i]) {
			j++
		}
		rank := float64(i+j+1) / 2 // average of ranks i+1..j
		for k := i; k < j; k++ {
			if nz[k] > 0 {
				rplus += rank
			} else {
				rminus += rank
			}
		}
		if t := float64(j - i); t > 1 {
			tie += t * (t*t - 1)
		}
		i = j
	}
	stat = math.Min(rplus, rminus)
	N := float64(n)
	mean := N * (N + 1) / 4
	se := math.Sqrt((N*(N+1)*(2*N+1) - tie/2) / 24)
	if se == 0 {
		return stat, 1, n
	}
	z := (stat - mean) / se
	p = math.Erfc(math.Abs(z) / math.Sqrt2) // 2 * normal survival of |z|
	return stat, math.Min(p, 1), n
}

// BootstrapCounts draws b bootstrap resamples of n rows as a b x n matrix
// of multiplicities. Sharing one draw between networks makes their
// bootstrap distributions paired.
func BootstrapCounts(rng *rand.Rand, b, n int) []float64 {
	c := make([]float64, b*n)
	for k := 0; k < b; k++ {
		row := c[k*n : (k+1)*n]
		for range n {
			row[rng.IntN(n)]++
		}
	}
	return c
}

// BootstrapMeanR returns, for each of the b resamples in counts (b x n),
// the mean over voxels of Pearson r between pred and obs (n x v) computed
// on the resampled rows. Every resample's weighted sums come from one GEMM
// per voxel batch, so the cost is that of b weighted passes, not b copies.
func BootstrapMeanR[T linalg.Float](counts []float64, b int, pred, obs []T, n, v int) []float64 {
	out := make([]float64, b)
	if v == 0 || b == 0 {
		return out
	}
	// Centring on the full-sample means keeps the sums of squares well
	// conditioned; r is shift invariant.
	mp, mo := make([]float64, v), make([]float64, v)
	for i := 0; i < n; i++ {
		for j := 0; j < v; j++ {
			mp[j] += float64(pred[i*v+j])
			mo[j] += float64(obs[i*v+j])
		}
	}
	for j := range mp {
		mp[j] /= float64(n)
		mo[j] /= float64(n)
	}
	const vb = 512
	m := make([]float64, n*5*vb)
	s := make([]float64, b*5*vb)
	for j0 := 0; j0 < v; j0 += vb {
		nb := min(vb, v-j0)
		w := 5 * nb
		for i := 0; i < n; i++ {
			row := m[i*w : (i+1)*w]
			for j := 0; j < nb; j++ {
				x := float64(pred[i*v+j0+j]) - mp[j0+j]
				y := float64(obs[i*v+j0+j]) - mo[j0+j]
				row[j], row[nb+j], row[2*nb+j], row[3*nb+j], row[4*nb+j] = x, y, x*x, y*y, x*y
			}
		}
		linalg.Gemm(false, false, b, w, n, 1, counts, n, m, w, 0, s, w)
		for k := 0; k < b; k++ {
			row := s[k*w : (k+1)*w]
			for j := 0; j < nb; j++ {
				sx, sy, sxx, syy, sxy := row[j], row[nb+j], row[2*nb+j], row[3*nb+j], row[4*nb+j]
				N := float64(n)
				cov := sxy - sx*sy/N
				vx, vy := sxx-sx*sx/N, syy-sy*sy/N
				if vx > 0 && vy > 0 {
					out[k] += cov / math.Sqrt(vx*vy)
				}
			}
		}
	}
	for k := range out {
		out[k] /= float64(v)
	}
	return out
}

// Percentile is numpy.percentile's default (linear interpolation between
// order statistics) for q in [0, 100].
func Percentile(x []float64, q float64) float64 {
	if len(x) == 0 {
		return math.NaN()
	}
	s := slices.Clone(x)
	slices.Sort(s)
	pos := q / 100 * float64(len(s)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(s)-1)
	return s[lo] + (pos-float64(lo))*(s[hi]-s[lo])
}

// BootstrapP is the two-sided p-value of a paired bootstrap distribution
// of a difference (each entry one resample's statistic of network a minus
// the same resample's statistic of b): twice the smaller share of
// resamples on either side of zero, each share counted as (k+1)/(B+1) so
// that B resamples never claim p < 2/(B+1). It is the smallest alpha at
// which the percentile (1-alpha) interval excludes zero. NaN for no
// resamples.
func BootstrapP(boot []float64) float64 {
	if len(boot) == 0 {
		return math.NaN()
	}
	le, ge := 0, 0
	for _, d := range boot {
		if d <= 0 {
			le++
		}
		if d >= 0 {
			ge++
		}
	}
	b := float64(len(boot))
	return math.Min(1, 2*float64(min(le, ge)+1)/(b+1))
}

// AboveCeiling counts the voxels whose test r exceeds their noise ceiling
// in r units, sqrt(nc) with nc the ceiling as a fraction of variance,
// beyond r's sampling error over n test images: Fisher's
// atanh(r) - atanh(sqrt(nc)) > 1.96 / sqrt(n - 3), a one-sided 2.5% test
// per voxel that takes the ceiling as known. Voxels with an unknown (NaN)
// or negative ceiling are not counted; a ceiling of 1 is never exceeded.
func AboveCeiling(r []float64, nc []float32, n int) int {
	if n <= 3 {
		return 0
	}
	tol := 1.96 / math.Sqrt(float64(n-3))
	k := 0
	for i, c := range nc {
		f := float64(c)
		if math.IsNaN(f) || f < 0 || f >= 1 || math.IsNaN(r[i]) {
			continue
		}
		if math.Atanh(math.Min(r[i], 1-1e-15))-math.Atanh(math.Sqrt(f)) > tol {
			k++
		}
	}
	return k
}

// TTest1Samp is the two-sided one-sample Student t-test of x against a
// mean of zero (scipy.stats.ttest_1samp): t = mean / (sd / sqrt(n)) with
// the n-1 sample standard deviation, df = n-1. ok is false when the test
// is undefined (fewer than 2 values, or all equal so sd = 0).
func TTest1Samp(x []float64) (t, p float64, df int, ok bool) {
	n := len(x)
	if n < 2 {
		return 0, 0, 0, false
	}
	m := Mean(x)
	ss := 0.0
	for _, v := range x {
		ss += (v - m) * (v - m)
	}
	sd := math.Sqrt(ss / float64(n-1))
	if sd == 0 || math.IsNaN(sd) {
		return 0, 0, n - 1, false
	}
	t = m / (sd / math.Sqrt(float64(n)))
	st := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(n - 1)}
	p = 2 * st.Survival(math.Abs(t))
	return t, math.Min(p, 1), n - 1, true
}

// SignFlipP is the two-sided sign-flip permutation p-value of Mean(x)
// against zero: the share of the 2^n sign assignments whose |mean| is at
// least the observed one (the observed assignment included, so p >= 2^-n;
// with 3 subjects p is never below 0.125). Exact for n <= 20; beyond, 2^20
// random assignments from a fixed seed, counted as (k+1)/(B+1). It assumes
// only that each subject's difference is symmetric about zero under the
// null, which a t-test over a handful of subjects cannot check.
func SignFlipP(x []float64) float64 {
	n := len(x)
	if n == 0 {
		return math.NaN()
	}
	obs := 0.0
	for _, v := range x {
		obs += v
	}
	obs = math.Abs(obs)
	// Sums equal up to round-off count as ties (the observed one included).
	tol := 1e-12 * (1 + obs)
	count := func(signs uint64) bool {
		s := 0.0
		for i, v := range x {
			if signs>>uint(i)&1 == 1 {
				s -= v
			} else {
				s += v
			}
		}
		return math.Abs(s) >= obs-tol
	}
	if n <= 20 {
		k := 0
		for m := uint64(0); m < 1<<uint(n); m++ {
			if count(m) {
				k++
			}
		}
		return float64(k) / float64(uint64(1)<<uint(n))
	}
	const b = 1 << 20
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	k := 0
	for range b {
		// Only the first 64 signs vary beyond n = 64; subject counts
		// never come near.
		if count(rng.Uint64()) {
			k++
		}
	}
	return float64(k+1) / float64(b+1)
}

// Mean is the arithmetic mean of x (0 for none).
func Mean(x []float64) float64 {
	if len(x) == 0 {
		return 0
	}
	s := 0.0
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}

// CI95 is the percentile 95% interval [2.5%, 97.5%] of bootstrap values.
func CI95(boot []float64) []float64 {
	return []float64{Percentile(boot, 2.5), Percentile(boot, 97.5)}
}
