package ridge

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"sync"
	"unsafe"

	"github.com/voxflow/voxflow/numerics/linalg"
)

// Score names how cross-validation ranks alphas for a voxel.
const (
	ScoreR   = "r"   // highest mean held-out Pearson r (the default)
	ScoreMSE = "mse" // lowest mean held-out squared error
)

// Config configures a cross-validated ridge fit.
type Config struct {
	Alphas []float64 // candidate penalties, each > 0
	Folds  int       // contiguous K-fold splits of the rows (sklearn KFold, no shuffle)
	// Score is ScoreR (also when "") or ScoreMSE. Encoding-model papers
	// pick each voxel's penalty by held-out correlation, the quantity
	// they report; MSE also rewards getting a voxel's mean and scale right.
	Score string
	// VoxelBatch bounds the voxels solved at once so memory never scales
	// with voxels x alphas; 0 picks a batch of about 128 MB of work arrays.
	VoxelBatch int
	// KeepWeights makes Refit return the P x V weights (Model.Weights);
	// without it only predictions of the given test rows are formed.
	KeepWeights bool
	// Progress, when set, is called after each voxel batch of each phase.
	Progress func(phase string, done, total int)
}

// useR validates the score name.
func (c Config) useR() (bool, error) {
	switch c.Score {
	case "", ScoreR:
		return true, nil
	case ScoreMSE:
		return false, nil
	}
	return false, fmt.Errorf("score %q: want %q or %q", c.Score, ScoreR, ScoreMSE)
}

// Model is a ridge fit with one penalty per target (voxel). Weights act on
// standardised features: (x - Mean) / Scale, with the statistics of all
// training rows.
type Model[T linalg.Float] struct {
	P, V      int
	Mean      []T // feature means over the training rows
	Scale     []T // feature standard deviations (1 where a feature is constant)
	Alpha     []float64
	CVScore   []float64 // the chosen alpha's mean CV score, when cross-validated
	Weights   []T       // P x V, row-major; only with Config.KeepWeights
	Intercept []T       // V: the training mean of each voxel
	Pred      []T       // nte x V predictions of the test rows given to Refit
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

// trainRows returns the rows outside [lo, hi) of n.
func trainRows(n, lo, hi int) rowSet {
	var rs rowSet
	if lo > 0 {
		rs = append(rs, span{0, lo})
	}
	if hi < n {
		rs = append(rs, span{hi, n})
	}
	return rs
}

// gains returns g_i = sqrt(s_i)/(s_i+alpha), the ridge filter on U^T y.
func gains(s []float64, alpha float64, dst []float64) {
	for i, e := range s {
		dst[i] = math.Sqrt(e) / (e + alpha)
	}
}

// foldWork is one fold's basis in the solver's precision.
type foldWork[T linalg.Float] struct {
	lo, hi, ntr, nva, r int
	s                   []float64
	ut                  []T // r x ntr
	u1                  []float64
	z                   []T // nva x r: held-out rows in the basis
	zsum                []float64
	// rm is rdim x r with rm^T rm = z^T z: upper-triangular R (rdim = r)
	// when tri, else z itself (rdim = nva).
	rm   []T
	rdim int
	tri  bool
}

func newFoldWork[T linalg.Float](ctx context.Context, x []T, n, p, lo, hi int) (*foldWork[T], error) {
	b, err := newBasis(ctx, x, p, trainRows(n, lo, hi), true)
	if err != nil {
		return nil, fmt.Errorf("fold rows %d-%d: %w", lo, hi, err)
	}
	z64, err := b.project(ctx, x, rowSet{{lo, hi}})
	if err != nil {
		return nil, err
	}
	fw := &foldWork[T]{lo: lo, hi: hi, ntr: n - (hi - lo), nva: hi - lo, r: len(b.s), s: b.s}
	r := fw.r
	fw.u1 = b.utRowSums()
	fw.zsum = make([]float64, r)
	for i := 0; i < fw.nva; i++ {
		for j, val := range z64[i*r : (i+1)*r] {
			fw.zsum[j] += val
		}
	}
	fw.ut, fw.z = convert[T](b.ut), convert[T](z64)
	if fw.nva > r {
		// ||Z c||^2 = ||R c||^2 with R triangular halves the per-alpha
		// product. TriFactor overwrites its input, which may be fw.z.
		rr, err := linalg.TriFactor(fw.nva, r, append([]float64(nil), z64...), r)
		if err != nil {
			return nil, fmt.Errorf("fold rows %d-%d: %w", lo, hi, err)
		}
		fw.rm, fw.rdim, fw.tri = convert[T](rr), r, true
	} else {
		fw.rm, fw.rdim = fw.z, fw.nva
	}
	// The float64 basis (b, z64: no longer used, so no longer live) is
	// garbage now: collect it before the voxel passes allocate, so that
	// the heap's peak stays near the live data (Go otherwise lets the heap
	// grow to twice the live size before collecting).
	runtime.GC()
	return fw, nil
}

// CrossValidate scores every alpha for every voxel by K-fold
// cross-validation and returns the chosen alpha per voxel and its CV score
// (mean over folds of the held-out Pearson r, or of the held-out MSE).
//
// x is n x p raw features: each fold standardises with the mean and
// standard deviation of its own training rows, so a held-out fold never
// informs the scaling it is scored under. y is n x v with row stride ldy.
// Each fold costs one float64 decomposition (see basis); every alpha and
// voxel is then solved with GEMMs in T. The held-out error is expanded as
// ||y||^2 - 2 y^T Z G a + ||R G a||^2 (Z the held-out rows in the basis,
// G = diag(sqrt(s)/(s+alpha)), a = U^T y), so no held-out predictions are
// formed.
func CrossValidate[T linalg.Float](ctx context.Context, x []T, n, p int, y []T, v, ldy int, cfg Config) (alpha, score []float64, err error) {
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
	useR, err := cfg.useR()
	if err != nil {
		return nil, nil, err
	}
	k, na := cfg.Folds, len(cfg.Alphas)
	acc := make([]float64, na*v)
	for f := 0; f < k; f++ {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		lo, hi := foldBounds(n, k, f)
		fw, err := newFoldWork(ctx, x, n, p, lo, hi)
		if err != nil {
			return nil, nil, err
		}
		if cfg.Progress != nil {
			cfg.Progress(fmt.Sprintf("cv fold %d/%d decompose", f+1, k), f+1, k)
		}
		if err := fw.score(ctx, y, v, ldy, cfg, useR, acc, fmt.Sprintf("cv fold %d/%d solve", f+1, k)); err != nil {
			return nil, nil, err
		}
	}
	alpha, score = make([]float64, v), make([]float64, v)
	for j := 0; j < v; j++ {
		best := 0
		for ai := 1; ai < na; ai++ {
			s, b := acc[ai*v+j], acc[best*v+j]
			if (useR && s > b) || (!useR && s < b) {
				best = ai
			}
		}
		alpha[j] = cfg.Alphas[best]
		score[j] = acc[best*v+j] / float64(k)
	}
	return alpha, score, nil
}

// score adds this fold's held-out score of every alpha and voxel to acc
// (na x v), reporting progress under phase.
func (fw *foldWork[T]) score(ctx context.Context, y []T, v, ldy int, cfg Config, useR bool, acc []float64, phase string) error {
	na, r, nva, ntr, lo, hi := len(cfg.Alphas), fw.r, fw.nva, fw.ntr, fw.lo, fw.hi
	n := ntr + nva
	vb := batchSize[T](cfg, max(r, nva, 1), v, 7)
	a := make([]T, r*vb)
	bm := make([]T, r*vb)
	q := make([]T, max(r, nva)*vb)
	e := make([]T, 2*r*vb) // [a.*b | a], r x 2nb
	dm := make([]T, r*2*na)
	sm := make([]T, 2*na*2*vb)
	var tmp []T
	if !fw.tri {
		tmp = make([]T, fw.rdim*vb)
	}
	g := make([]float64, r)
	for ai, al := range cfg.Alphas {
		gains(fw.s, al, g)
		for i := 0; i < r; i++ {
			dm[i*2*na+ai] = T(g[i])
			dm[i*2*na+na+ai] = T(g[i] * fw.zsum[i] / float64(nva))
		}
	}
	for j0 := 0; j0 < v; j0 += vb {
		if err := ctx.Err(); err != nil {
			return err
		}
		nb := min(vb, v-j0)
		yb := y[j0:]
		// Sums of y in float64: they enter differences of large numbers.
		ybar := make([]float64, nb)
		for _, s := range trainRows(n, lo, hi) {
			for i := s.lo; i < s.hi; i++ {
				for j, val := range yb[i*ldy : i*ldy+nb] {
					ybar[j] += float64(val)
				}
			}
		}
		ysum, ysq := make([]float64, nb), make([]float64, nb)
		for i := lo; i < hi; i++ {
			for j, val := range yb[i*ldy : i*ldy+nb] {
				x := float64(val)
				ysum[j] += x
				ysq[j] += x * x
			}
		}
		for j := range ybar {
			ybar[j] /= float64(ntr)
		}
		// a = U^T (y_tr - ybar): the training rows are [0,lo) and [hi,n),
		// the columns [0,lo) and [lo,ntr) of U^T.
		beta := T(0)
		if lo > 0 {
			linalg.Gemm(false, false, r, nb, lo, 1, fw.ut, ntr, yb, ldy, 0, a, nb)
			beta = 1
		}
		if hi < n {
			linalg.Gemm(false, false, r, nb, n-hi, 1, fw.ut[lo:], ntr, yb[hi*ldy:], ldy, beta, a, nb)
		}
		// b = Z^T (y_va - ybar).
		linalg.Gemm(true, false, r, nb, nva, 1, fw.z, r, yb[lo*ldy:], ldy, 0, bm, nb)
		w := 2 * nb
		parallelFor(r, nb, func(i0, i1 int) {
			for i := i0; i < i1; i++ {
				u1, zs := fw.u1[i], fw.zsum[i]
				for j := 0; j < nb; j++ {
					av := a[i*nb+j] - T(u1*ybar[j])
					bv := bm[i*nb+j] - T(zs*ybar[j])
					a[i*nb+j] = av
					e[i*w+j] = av * bv
					e[i*w+nb+j] = av
				}
			}
		})
		// Rows 0..na-1: cross terms y^T Z G a; rows na..2na-1, columns
		// nb.. : mean held-out prediction zbar^T G a (for r).
		linalg.Gemm(true, false, 2*na, w, r, 1, dm, 2*na, e, w, 0, sm, w)
		yy := make([]float64, nb)
		ymc := make([]float64, nb) // mean of held-out y - ybar
		for j := 0; j < nb; j++ {
			yt := ybar[j]
			yy[j] = ysq[j] - 2*yt*ysum[j] + float64(nva)*yt*yt
			ymc[j] = ysum[j]/float64(nva) - yt
		}
		qq := make([]float64, nb)
		for ai := range cfg.Alphas {
			parallelFor(r, nb, func(i0, i1 int) {
				for i := i0; i < i1; i++ {
					d := dm[i*2*na+ai] // T(gain i of alpha ai)
					dst := q[i*nb : (i+1)*nb]
					for j, av := range a[i*nb : (i+1)*nb] {
						dst[j] = d * av
					}
				}
			})
			if fw.tri {
				linalg.TrmmUpper(r, nb, fw.rm, r, q, nb)
			} else {
				// Held-out rows no more than components: multiply by Z itself.
				linalg.Gemm(false, false, fw.rdim, nb, r, 1, fw.rm, r, q, nb, 0, tmp, nb)
				copy(q[:fw.rdim*nb], tmp[:fw.rdim*nb])
			}
			clear(qq)
			// Column blocks, so goroutines never share an accumulator.
			parallelFor(nb, fw.rdim, func(c0, c1 int) {
				sq := qq[c0:c1]
				for i := 0; i < fw.rdim; i++ {
					for j, val := range q[i*nb+c0 : i*nb+c1] {
						sq[j] += float64(val) * float64(val)
					}
				}
			})
			row := acc[ai*v+j0 : ai*v+j0+nb]
			for j := 0; j < nb; j++ {
				cross := float64(sm[ai*w+j])
				if useR {
					mp := float64(sm[(na+ai)*w+nb+j])
					cov := cross - float64(nva)*ymc[j]*mp
					vp := qq[j] - float64(nva)*mp*mp
					vy := yy[j] - float64(nva)*ymc[j]*ymc[j]
					rv := 0.0
					if vp > 0 && vy > 0 {
						rv = cov / math.Sqrt(vp*vy)
					}
					row[j] += rv
				} else {
					row[j] += (yy[j] - 2*cross + qq[j]) / float64(nva)
				}
			}
		}
		if cfg.Progress != nil {
			cfg.Progress(phase, j0+nb, v)
		}
	}
	return nil
}

// Refit solves ridge on all n rows of x (raw features, standardised here
// with the statistics of all n rows) with one penalty per voxel, from one
// float64 decomposition, and predicts the nte rows of xte (nte may be 0).
// Weights are formed only with cfg.KeepWeights.
func Refit[T linalg.Float](ctx context.Context, x []T, n, p int, y []T, v, ldy int, alpha []float64, xte []T, nte int, cfg Config) (*Model[T], error) {
	if len(alpha) != v {
		return nil, fmt.Errorf("refit: %d alphas for %d voxels", len(alpha), v)
	}
	if len(xte) < nte*p {
		return nil, fmt.Errorf("refit: %d test feature values for %d x %d", len(xte), nte, p)
	}
	b, err := newBasis(ctx, x, p, rowSet{{0, n}}, true)
	if err != nil {
		return nil, fmt.Errorf("refit: %w", err)
	}
	r := len(b.s)
	m := &Model[T]{P: p, V: v, Mean: convert[T](b.mu), Scale: convert[T](b.sd), Alpha: alpha,
		Intercept: make([]T, v), Pred: make([]T, nte*v)}
	var zte, vmat []T
	if nte > 0 {
		z, err := b.project(ctx, xte, rowSet{{0, nte}})
		if err != nil {
			return nil, fmt.Errorf("refit: %w", err)
		}
		zte = convert[T](z)
	}
	if cfg.KeepWeights {
		v64, err := b.v(ctx)
		if err != nil {
			return nil, fmt.Errorf("refit: %w", err)
		}
		vmat = convert[T](v64)
		m.Weights = make([]T, p*v)
	}
	u1 := b.utRowSums()
	ut, s := convert[T](b.ut), b.s
	runtime.GC() // the float64 basis is garbage from here on (see newFoldWork)
	vb := batchSize[T](cfg, r, v, 2)
	a := make([]T, r*vb)
	gcache := map[float64][]float64{}
	gcol := make([][]float64, vb)
	for j0 := 0; j0 < v; j0 += vb {
		if err := ctx.Err(); err != nil {
			return nil, err
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
			m.Intercept[j0+j] = T(ybar[j])
		}
		linalg.Gemm(false, false, r, nb, n, 1, ut, n, y[j0:], ldy, 0, a, nb)
		// Scale column j by voxel j's filter.
		for j := 0; j < nb; j++ {
			al := alpha[j0+j]
			if gcache[al] == nil {
				if len(gcache) >= 64 {
					// Alphas from the CV grid repeat; arbitrary ones
					// must not grow the cache to voxels x components.
					clear(gcache)
				}
				gcache[al] = make([]float64, r)
				gains(s, al, gcache[al])
			}
			gcol[j] = gcache[al]
		}
		parallelFor(r, nb, func(i0, i1 int) {
			for i := i0; i < i1; i++ {
				for j := 0; j < nb; j++ {
					a[i*nb+j] = T(gcol[j][i] * (float64(a[i*nb+j]) - u1[i]*ybar[j]))
				}
			}
		})
		if nte > 0 {
			linalg.Gemm(false, false, nte, nb, r, 1, zte, r, a, nb, 0, m.Pred[j0:], v)
			for i := 0; i < nte; i++ {
				row := m.Pred[i*v+j0 : i*v+j0+nb]
				for j := range row {
					row[j] += T(ybar[j])
				}
			}
		}
		if cfg.KeepWeights {
			linalg.Gemm(false, false, p, nb, r, 1, vmat, r, a, nb, 0, m.Weights[j0:], v)
		}
		if cfg.Progress != nil {
			cfg.Progress("refit", j0+nb, v)
		}
	}
	return m, nil
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

// FitCV chooses each voxel's alpha by cross-validation on the n x p raw
// features x (standardised per fold), refits on all rows and predicts the
// nte test rows of xte.
func FitCV[T linalg.Float](ctx context.Context, x []T, n, p int, y []T, v, ldy int, xte []T, nte int, cfg Config) (*Model[T], error) {
	if len(x) < n*p {
		return nil, fmt.Errorf("features: %d values for %d x %d", len(x), n, p)
	}
	if v > 0 && len(y) < (n-1)*ldy+v {
		return nil, fmt.Errorf("targets: %d values for %d x %d (stride %d)", len(y), n, v, ldy)
	}
	if err := checkFinite("features", x[:n*p], p); err != nil {
		return nil, err
	}
	if err := checkFinite("test features", xte[:nte*p], p); err != nil {
		return nil, err
	}
	for i := 0; i < n; i++ {
		if err := checkFinite("responses", y[i*ldy:i*ldy+v], v); err != nil {
			return nil, fmt.Errorf("row %d: %w", i, err)
		}
	}
	alpha, score, err := CrossValidate(ctx, x, n, p, y, v, ldy, cfg)
	if err != nil {
		return nil, err
	}
	m, err := Refit(ctx, x, n, p, y, v, ldy, alpha, xte, nte, cfg)
	if err != nil {
		return nil, err
	}
	m.CVScore = score
	return m, nil
}

// checkFinite reports the first NaN or Inf of a row-major matrix with
// cols columns, by row and column: one would otherwise surface as a
// failed decomposition far from its cause.
func checkFinite[T linalg.Float](what string, x []T, cols int) error {
	for i, v := range x {
		if f := float64(v); math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("%s: row %d, column %d is %v; want finite values", what, i/cols, i%cols, f)
		}
	}
	return nil
}

// Predict returns the n x V predictions for n rows of raw features x. It
// needs the weights (Config.KeepWeights).
func (m *Model[T]) Predict(x []T, n int) []T {
	if m.Weights == nil {
		panic("ridge: Predict on a model fitted without KeepWeights")
	}
	xs, _, _ := linalg.Standardize(x, n, m.P, m.Mean, m.Scale)
	out := make([]T, n*m.V)
	for i := 0; i < n; i++ {
		copy(out[i*m.V:(i+1)*m.V], m.Intercept)
	}
	linalg.Gemm(false, false, n, m.V, m.P, 1, xs, m.P, m.Weights, m.V, 1, out, m.V)
	return out
}
