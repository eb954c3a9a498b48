package ridge

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"sync"
	"unsafe"

	"github.com/voxflow/voxflow/stages/linalg"
)

// Score names how cross-validation ranks alphas for a voxel.
const (
	ScoreMSE = "mse" // lowest mean squared error on held-out rows
	ScoreR   = "r"   // highest Pearson r on held-out rows
)

// Config configures a cross-validated ridge fit.
type Config struct {
	Alphas []float64 // candidate penalties, each > 0
	Folds  int       // contiguous K-fold splits of the rows (sklearn KFold, no shuffle)
	Score  string    // ScoreMSE (default) or ScoreR
	// VoxelBatch bounds the voxels solved at once so memory never scales
	// with voxels x alphas; 0 picks a batch of about 128 MB of work arrays.
	VoxelBatch int
	// Progress, when set, is called after each voxel batch of each phase.
	Progress func(phase string, done, total int)
}

// Model is a ridge fit with one penalty per target (voxel). Weights act on
// standardised features: (x - Mean) / Scale (see linalg.Standardize).
type Model[T linalg.Float] struct {
	P, V      int
	Mean      []T // feature means over the training rows
	Scale     []T // feature standard deviations (1 where a feature is constant)
	Alpha     []float64
	Weights   []T // P x V, row-major
	Intercept []T // V
}

// workBudget is the target size of the per-batch work arrays.
const workBudget = 128 << 20

// batchSize picks how many voxels to solve at once, given the work arrays'
// size per voxel in multiples of p elements of T.
func batchSize[T linalg.Float](cfg Config, p, v, arrays int) int {
	if cfg.VoxelBatch > 0 {
		return min(cfg.VoxelBatch, v)
	}
	var zero T
	b := workBudget / max(arrays*p*int(unsafe.Sizeof(zero)), 1)
	return max(min(b, v), 1)
}

// foldBounds returns the row range of fold f of k over n rows, the layout
// of sklearn's KFold(k, shuffle=False): the first n%k folds get one extra row.
func foldBounds(n, k, f int) (lo, hi int) {
	size, extra := n/k, n%k
	lo = f*size + min(f, extra)
	hi = lo + size
	if f < extra {
		hi++
	}
	return lo, hi
}

// foldBasis is everything about one fold that does not depend on voxels:
// the eigenbasis of the centred training Gram matrix and the held-out rows
// in that basis.
type foldBasis[T linalg.Float] struct {
	lo, hi int
	mu     []T // training-row feature means
	xsumVa []T // held-out feature column sums
	s      []float64
	vt     []T // p x p, row i = eigenvector i
	// r is rdim x p with R^T R = Z^T Z for the centred held-out rows in the
	// eigenbasis, Z = (Xva - mu) V; upper triangular when tri.
	r    []T
	rdim int
	tri  bool
	zbar []T // column means of Z
}

func newFoldBasis[T linalg.Float](xs []T, n, p, lo, hi int) (*foldBasis[T], error) {
	nva, ntr := hi-lo, n-(hi-lo)
	fb := &foldBasis[T]{lo: lo, hi: hi}
	colsum := func(rows []T) []float64 {
		s := make([]float64, p)
		for i := 0; i < len(rows)/p; i++ {
			for j, v := range rows[i*p : (i+1)*p] {
				s[j] += float64(v)
			}
		}
		return s
	}
	all, va := colsum(xs), colsum(xs[lo*p:hi*p])
	fb.mu, fb.xsumVa = make([]T, p), make([]T, p)
	for j := range all {
		fb.mu[j] = T((all[j] - va[j]) / float64(ntr))
		fb.xsumVa[j] = T(va[j])
	}
	// Centred training Gram matrix from the two training row blocks.
	g := make([]T, p*p)
	if lo > 0 {
		linalg.SyrkT(p, lo, 1, xs, p, 0, g, p)
	}
	if hi < n {
		linalg.SyrkT(p, n-hi, 1, xs[hi*p:], p, 1, g, p)
	}
	for i := 0; i < p; i++ {
		for j := 0; j < p; j++ {
			g[i*p+j] -= T(ntr) * fb.mu[i] * fb.mu[j]
		}
	}
	w, err := linalg.SymEig(p, g, p)
	if err != nil {
		return nil, fmt.Errorf("fold rows %d-%d: %w", lo, hi, err)
	}
	fb.vt = g
	fb.s = make([]float64, p)
	for i, e := range w {
		fb.s[i] = math.Max(float64(e), 0) // round-off can leave tiny negatives
	}
	xc := make([]T, nva*p)
	for i := 0; i < nva; i++ {
		for j := 0; j < p; j++ {
			xc[i*p+j] = xs[(lo+i)*p+j] - fb.mu[j]
		}
	}
	z := make([]T, nva*p)
	linalg.Gemm(false, true, nva, p, p, 1, xc, p, fb.vt, p, 0, z, p)
	fb.zbar = make([]T, p)
	zs := colsum(z)
	for j := range zs {
		fb.zbar[j] = T(zs[j] / float64(nva))
	}
	if nva > p {
		// ||Z c||^2 = ||R c||^2 with R triangular halves the per-alpha GEMM.
		fb.r, err = linalg.TriFactor(nva, p, z, p)
		if err != nil {
			return nil, fmt.Errorf("fold rows %d-%d: %w", lo, hi, err)
		}
		fb.rdim, fb.tri = p, true
	} else {
		fb.r, fb.rdim = z, nva
	}
	return fb, nil
}

// CrossValidate scores every alpha for every voxel by K-fold
// cross-validation and returns the chosen alpha per voxel and its CV score
// (mean over folds of the held-out MSE, or of the held-out Pearson r).
//
// xs is n x p (already standardised, see linalg.Standardize); y is n x v with row
// stride ldy. Each fold costs one eigendecomposition of the p x p training
// Gram matrix; every alpha and voxel is then solved with GEMMs in that
// eigenbasis. The held-out error is expanded as
// ||y||^2 - 2 y^T Z D a + ||R D a||^2 (Z held-out rows in the eigenbasis,
// D = diag(1/(s+alpha)), a = V^T X^T y), so no held-out predictions are formed.
func CrossValidate[T linalg.Float](ctx context.Context, xs []T, n, p int, y []T, v, ldy int, cfg Config) (alpha, score []float64, err error) {
	if cfg.Folds < 2 || cfg.Folds > n {
		return nil, nil, fmt.Errorf("folds = %d: want 2 <= folds <= %d (the number of training rows)", cfg.Folds, n)
	}
	if len(cfg.Alphas) == 0 {
		return nil, nil, fmt.Errorf("alphas: want at least one penalty")
	}
	for _, a := range cfg.Alphas {
		if !(a > 0) || math.IsInf(a, 0) {
			return nil, nil, fmt.Errorf("alphas: %g is not a positive finite penalty", a)
		}
	}
	useR := cfg.Score == ScoreR
	if cfg.Score != "" && cfg.Score != ScoreMSE && !useR {
		return nil, nil, fmt.Errorf("score %q: want %q or %q", cfg.Score, ScoreMSE, ScoreR)
	}
	k, na := cfg.Folds, len(cfg.Alphas)
	bases := make([]*foldBasis[T], k)
	for f := range bases {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		lo, hi := foldBounds(n, k, f)
		if bases[f], err = newFoldBasis(xs, n, p, lo, hi); err != nil {
			return nil, nil, err
		}
		if cfg.Progress != nil {
			cfg.Progress("cv decompose", f+1, k)
		}
	}
	alpha, score = make([]float64, v), make([]float64, v)
	vb := batchSize[T](cfg, p, v, k+9)

	// Work arrays, reused across batches.
	m := make([]T, k*p*vb)     // per fold: Xva^T Yva
	xy := make([]T, p*vb)      // X^T Y over all rows
	st := make([]T, p*2*vb)    // [Xtr_c^T Ytr_c | Xva_c^T Yva_c]
	ab := make([]T, p*2*vb)    // V^T st = [A | B]
	q := make([]T, p*vb)       // R (d .* A)
	e := make([]T, 2*p*vb)     // [A.*B | A] (row-major p x 2vb) for the small GEMMs
	dm := make([]T, p*2*na)    // [d_a | d_a .* zbar] per alpha, p x 2na
	sm := make([]T, 2*na*2*vb) // dm^T e
	acc := make([]float64, na*vb)

	for j0 := 0; j0 < v; j0 += vb {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		nb := min(vb, v-j0)
		yb := y[j0:]
		// Per-fold sums of y in float64: they enter differences of large
		// numbers (the expanded squared error).
		ysum := make([]float64, k*nb)
		ysq := make([]float64, k*nb)
		for f, fb := range bases {
			for i := fb.lo; i < fb.hi; i++ {
				row := yb[i*ldy : i*ldy+nb]
				for j, val := range row {
					x := float64(val)
					ysum[f*nb+j] += x
					ysq[f*nb+j] += x * x
				}
			}
			linalg.Gemm(true, false, p, nb, fb.hi-fb.lo, 1, xs[fb.lo*p:], p, yb[fb.lo*ldy:], ldy, 0, m[f*p*nb:], nb)
		}
		ysumAll := make([]float64, nb)
		for f := range bases {
			for j := 0; j < nb; j++ {
				ysumAll[j] += ysum[f*nb+j]
			}
		}
		clear(xy[:p*nb])
		for f := range bases {
			mf := m[f*p*nb : (f+1)*p*nb]
			for i, val := range mf {
				xy[i] += val
			}
		}
		clear(acc[:na*nb])
		for f, fb := range bases {
			nva := fb.hi - fb.lo
			ntr := n - nva
			mf := m[f*p*nb : (f+1)*p*nb]
			ybarTr := make([]T, nb)
			ysVa := make([]T, nb)
			for j := 0; j < nb; j++ {
				ybarTr[j] = T((ysumAll[j] - ysum[f*nb+j]) / float64(ntr))
				ysVa[j] = T(ysum[f*nb+j])
			}
			w := 2 * nb
			parallelFor(p, nb, func(lo, hi int) {
				for i := lo; i < hi; i++ {
					mu, xsv := fb.mu[i], fb.xsumVa[i]
					for j := 0; j < nb; j++ {
						// Centring identities: sum (x-mu)(y-ybar) over a row set.
						st[i*w+j] = xy[i*nb+j] - mf[i*nb+j] - T(ntr)*mu*ybarTr[j]
						st[i*w+nb+j] = mf[i*nb+j] - mu*ysVa[j] - xsv*ybarTr[j] + T(nva)*mu*ybarTr[j]
					}
				}
			})
			linalg.Gemm(false, false, p, w, p, 1, fb.vt, p, st, w, 0, ab, w)
			parallelFor(p, nb, func(lo, hi int) {
				for i := lo; i < hi; i++ {
					for j := 0; j < nb; j++ {
						a, b := ab[i*w+j], ab[i*w+nb+j]
						e[i*w+j] = a * b
						e[i*w+nb+j] = a
					}
				}
			})
			for ai, al := range cfg.Alphas {
				for i := 0; i < p; i++ {
					d := 1 / (fb.s[i] + al)
					dm[i*2*na+ai] = T(d)
					dm[i*2*na+na+ai] = T(d * float64(fb.zbar[i]))
				}
			}
			// Rows 0..na-1: cross terms y^T Z D a; rows na..2na-1, columns
			// nb.. : mean held-out prediction zbar^T D a (for r).
			linalg.Gemm(true, false, 2*na, w, p, 1, dm, 2*na, e, w, 0, sm, w)
			yy := make([]float64, nb)
			ymc := make([]float64, nb) // mean of held-out y - ybarTr
			qq := make([]float64, nb)
			var tmp []T
			if !fb.tri {
				tmp = make([]T, fb.rdim*nb)
			}
			for j := 0; j < nb; j++ {
				yt := float64(ybarTr[j])
				yy[j] = ysq[f*nb+j] - 2*yt*ysum[f*nb+j] + float64(nva)*yt*yt
				ymc[j] = ysum[f*nb+j]/float64(nva) - yt
			}
			for ai := range cfg.Alphas {
				parallelFor(p, nb, func(lo, hi int) {
					for i := lo; i < hi; i++ {
						d := dm[i*2*na+ai]
						src := ab[i*w : i*w+nb]
						dst := q[i*nb : (i+1)*nb]
						for j, a := range src {
							dst[j] = d * a
						}
					}
				})
				if fb.tri {
					linalg.TrmmUpper(p, nb, fb.r, p, q, nb)
				} else {
					// Held-out rows fewer than features: multiply by Z itself.
					linalg.Gemm(false, false, fb.rdim, nb, p, 1, fb.r, p, q, nb, 0, tmp, nb)
					q2 := q[:fb.rdim*nb]
					copy(q2, tmp)
				}
				clear(qq)
				// Column blocks, so goroutines never share an accumulator.
				parallelFor(nb, fb.rdim, func(lo, hi int) {
					acc := qq[lo:hi]
					for i := 0; i < fb.rdim; i++ {
						for j, val := range q[i*nb+lo : i*nb+hi] {
							acc[j] += float64(val) * float64(val)
						}
					}
				})
				row := acc[ai*nb : (ai+1)*nb]
				for j := 0; j < nb; j++ {
					cross := float64(sm[ai*w+j])
					if useR {
						mp := float64(sm[(na+ai)*w+nb+j])
						cov := cross - float64(nva)*ymc[j]*mp
						vp := qq[j] - float64(nva)*mp*mp
						vy := yy[j] - float64(nva)*ymc[j]*ymc[j]
						r := 0.0
						if vp > 0 && vy > 0 {
							r = cov / math.Sqrt(vp*vy)
						}
						row[j] += r / float64(k)
					} else {
						row[j] += (yy[j] - 2*cross + qq[j]) / float64(nva) / float64(k)
					}
				}
			}
		}
		for j := 0; j < nb; j++ {
			best := 0
			for ai := 1; ai < na; ai++ {
				s, b := acc[ai*nb+j], acc[best*nb+j]
				if (useR && s > b) || (!useR && s < b) {
					best = ai
				}
			}
			alpha[j0+j] = cfg.Alphas[best]
			score[j0+j] = acc[best*nb+j]
		}
		if cfg.Progress != nil {
			cfg.Progress("cv solve", j0+nb, v)
		}
	}
	return alpha, score, nil
}

// Refit solves ridge on all n rows of xs (standardised) with one penalty
// per voxel, from one eigendecomposition: W = V diag(1/(s+alpha_j)) V^T
// Xc^T Yc, column by column through a single GEMM per voxel batch. It
// returns P x V weights and V intercepts.
func Refit[T linalg.Float](ctx context.Context, xs []T, n, p int, y []T, v, ldy int, alpha []float64, cfg Config) (weights, intercept []T, err error) {
	if len(alpha) != v {
		return nil, nil, fmt.Errorf("refit: %d alphas for %d voxels", len(alpha), v)
	}
	mu := make([]T, p)
	{
		s := make([]float64, p)
		for i := 0; i < n; i++ {
			for j, val := range xs[i*p : (i+1)*p] {
				s[j] += float64(val)
			}
		}
		for j := range s {
			mu[j] = T(s[j] / float64(n))
		}
	}
	g := make([]T, p*p)
	linalg.SyrkT(p, n, 1, xs, p, 0, g, p)
	for i := 0; i < p; i++ {
		for j := 0; j < p; j++ {
			g[i*p+j] -= T(n) * mu[i] * mu[j]
		}
	}
	sv, err := linalg.SymEig(p, g, p)
	if err != nil {
		return nil, nil, fmt.Errorf("refit: %w", err)
	}
	vt := g
	weights, intercept = make([]T, p*v), make([]T, v)
	vb := batchSize[T](cfg, p, v, 2)
	xy := make([]T, p*vb)
	a := make([]T, p*vb)
	for j0 := 0; j0 < v; j0 += vb {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		nb := min(vb, v-j0)
		ybar := make([]float64, nb)
		for i := 0; i < n; i++ {
			for j, val := range y[i*ldy+j0 : i*ldy+j0+nb] {
				ybar[j] += float64(val)
			}
		}
		for j := range ybar {
			ybar[j] /= float64(n)
		}
		linalg.Gemm(true, false, p, nb, n, 1, xs, p, y[j0:], ldy, 0, xy, nb)
		for i := 0; i < p; i++ {
			for j := 0; j < nb; j++ {
				xy[i*nb+j] -= T(n) * mu[i] * T(ybar[j])
			}
		}
		linalg.Gemm(false, false, p, nb, p, 1, vt, p, xy, nb, 0, a, nb)
		for i := 0; i < p; i++ {
			s := math.Max(float64(sv[i]), 0)
			for j := 0; j < nb; j++ {
				a[i*nb+j] *= T(1 / (s + alpha[j0+j]))
			}
		}
		linalg.Gemm(true, false, p, nb, p, 1, vt, p, a, nb, 0, weights[j0:], v)
		for j := 0; j < nb; j++ {
			b := ybar[j]
			for i := 0; i < p; i++ {
				b -= float64(mu[i]) * float64(weights[i*v+j0+j])
			}
			intercept[j0+j] = T(b)
		}
		if cfg.Progress != nil {
			cfg.Progress("refit", j0+nb, v)
		}
	}
	return weights, intercept, nil
}

// FitCV standardises x (n x p raw features), chooses each voxel's alpha by
// cross-validation and refits on all rows.
func FitCV[T linalg.Float](ctx context.Context, x []T, n, p int, y []T, v, ldy int, cfg Config) (*Model[T], []float64, error) {
	if len(x) < n*p {
		return nil, nil, fmt.Errorf("features: %d values for %d x %d", len(x), n, p)
	}
	if v > 0 && len(y) < (n-1)*ldy+v {
		return nil, nil, fmt.Errorf("targets: %d values for %d x %d (stride %d)", len(y), n, v, ldy)
	}
	xs, mean, scale := linalg.Standardize(x, n, p, nil, nil)
	alpha, score, err := CrossValidate(ctx, xs, n, p, y, v, ldy, cfg)
	if err != nil {
		return nil, nil, err
	}
	w, b, err := Refit(ctx, xs, n, p, y, v, ldy, alpha, cfg)
	if err != nil {
		return nil, nil, err
	}
	return &Model[T]{P: p, V: v, Mean: mean, Scale: scale, Alpha: alpha, Weights: w, Intercept: b}, score, nil
}

// Predict returns the n x V predictions for n rows of raw features x.
func (m *Model[T]) Predict(x []T, n int) []T {
	xs, _, _ := linalg.Standardize(x, n, m.P, m.Mean, m.Scale)
	out := make([]T, n*m.V)
	for i := 0; i < n; i++ {
		copy(out[i*m.V:(i+1)*m.V], m.Intercept)
	}
	linalg.Gemm(false, false, n, m.V, m.P, 1, xs, m.P, m.Weights, m.V, 1, out, m.V)
	return out
}

// parallelFor splits [0, n) into contiguous chunks run on all Ps; the
// element-wise passes between GEMMs would otherwise leave cores idle.
// inner is the work per index, to keep small jobs on one goroutine.
func parallelFor(n, inner int, fn func(lo, hi int)) {
	g := runtime.GOMAXPROCS(0)
	if g < 2 || n*inner < 1<<16 || n < 2 {
		fn(0, n)
		return
	}
	g = min(g, n)
	var wg sync.WaitGroup
	for c := 0; c < g; c++ {
		lo, hi := c*n/g, (c+1)*n/g
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	wg.Wait()
}
