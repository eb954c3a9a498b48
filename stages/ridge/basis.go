package ridge

import (
	"context"
	"fmt"
	"math"

	"github.com/voxflow/voxflow/numerics/linalg"
)

// span is a half-open range of rows.
type span struct{ lo, hi int }

// rowSet is an ordered union of row ranges: a fold's training rows are
// the rows before and after its held-out block.
type rowSet []span

func (rs rowSet) count() int {
	c := 0
	for _, s := range rs {
		c += s.hi - s.lo
	}
	return c
}

// colStats returns the mean and population standard deviation (scale 1
// for a constant column, as in linalg.Standardize and sklearn's
// StandardScaler) of every column of x over rows, in float64. With scale
// false every scale is 1: the columns are only centred.
func colStats[T linalg.Float](x []T, p int, rows rowSet, scale bool) (mu, sd []float64) {
	n := float64(rows.count())
	mu, sd = make([]float64, p), make([]float64, p)
	for _, s := range rows {
		for i := s.lo; i < s.hi; i++ {
			for j, v := range x[i*p : (i+1)*p] {
				mu[j] += float64(v)
			}
		}
	}
	for j := range mu {
		mu[j] /= n
	}
	for _, s := range rows {
		for i := s.lo; i < s.hi; i++ {
			for j, v := range x[i*p : (i+1)*p] {
				d := float64(v) - mu[j]
				sd[j] += d * d
			}
		}
	}
	for j := range sd {
		v := math.Sqrt(sd[j] / n)
		if !scale || v < 10*math.SmallestNonzeroFloat32 || v <= 1e-12*math.Abs(mu[j]) {
			v = 1
		}
		sd[j] = v
	}
	return mu, sd
}

// stdBlock writes the standardised columns [c0, c1) of the listed rows of
// x, (x - mu) / sd in float64, into dst (rows x (c1-c0), row-major).
func stdBlock[T linalg.Float](x []T, p int, rows rowSet, c0, c1 int, mu, sd []float64, dst []float64) {
	w := c1 - c0
	k := 0
	for _, s := range rows {
		for i := s.lo; i < s.hi; i++ {
			src := x[i*p+c0 : i*p+c1]
			out := dst[k*w : (k+1)*w]
			for j, v := range src {
				out[j] = (float64(v) - mu[c0+j]) / sd[c0+j]
			}
			k++
		}
	}
}

// colBlock is the width of the column blocks in which the dual form
// standardises features: 256 columns of 10,000 rows are 20 MB of float64.
const colBlock = 256

// rowBlock is the height of the row blocks in which the primal form
// standardises features.
const rowBlock = 1024

// basis is the thin SVD of a block of standardised training rows,
// Xs = U diag(sqrt(s)) V^T, computed in float64 whatever the solver's
// precision. Every ridge solution on these rows is
// w = V diag(sqrt(s)/(s+alpha)) U^T y, whose prediction on any row x is
// z diag(sqrt(s)/(s+alpha)) U^T y with z = xs V. Forming U^T y and the
// projections z never divides by a small singular value, so a float32
// solver built on a float64 basis loses no more than float32's own
// precision: the normal equations' V^T X^T y would amplify float32
// rounding by the condition number of X, and a float32 decomposition of
// X^T X by the condition number of X^T X (the square of X's): what made
// the old float32 solver drift by up to 0.07 in test r at small alphas.
//
// When p <= rows it decomposes the p x p Gram matrix Xs^T Xs (primal
// form); otherwise the rows x rows kernel Xs Xs^T (dual form), so the
// cost is O(min(n, p)^2 max(n, p)) and any layer width works.
type basis[T linalg.Float] struct {
	x      []T // the raw features the basis was built from
	p      int
	train  rowSet
	mu, sd []float64
	s      []float64 // r eigenvalues of Xs^T Xs kept (ascending)
	ut     []float64 // r x ntr: row i is U's column i (training rows in train order)
	vt     []float64 // r x p, primal form only: row i is V's column i
	dual   bool
}

// keepFrom returns the index of the first eigenvalue (of ascending w) above
// round-off level, dim * 1e-15 of the largest: components whose singular
// value is zero in exact arithmetic (centring alone removes one) contribute
// nothing to any ridge fit, and dividing by their noise would.
func keepFrom(w []float64, dim int) int {
	top := 0.0
	for _, e := range w {
		top = math.Max(top, e)
	}
	tol := top * float64(dim) * 1e-15
	k := 0
	for k < len(w) && !(w[k] > tol) {
		k++
	}
	return k
}

// newBasis decomposes the standardised train rows of x (n x p). scale
// false only centres (as PCA does).
func newBasis[T linalg.Float](ctx context.Context, x []T, p int, train rowSet, scale bool) (*basis[T], error) {
	ntr := train.count()
	mu, sd := colStats(x, p, train, scale)
	b := &basis[T]{x: x, p: p, train: train, mu: mu, sd: sd, dual: p > ntr}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !b.dual {
		g, freeG, err := linalg.Malloc[float64](p * p)
		if err != nil {
			return nil, fmt.Errorf("Gram matrix of %d features: %w", p, err)
		}
		defer freeG()
		// Row blocks of the standardised rows, accumulated in float64.
		blk := make([]float64, rowBlock*p)
		b.rowBlocks(x, train, blk, func(k, m int) {
			beta := 1.0
			if k == 0 {
				beta = 0
			}
			linalg.SyrkT(p, m, 1, blk, p, beta, g, p)
		})
		w, err := linalg.SymEig(p, g, p)
		if err != nil {
			return nil, fmt.Errorf("%d x %d Gram matrix of the standardised features: %w", p, p, err)
		}
		k := keepFrom(w, max(ntr, p))
		r := p - k
		if r == 0 {
			return nil, errConstant(ntr, p)
		}
		b.s = append([]float64(nil), w[k:]...)
		b.vt = append([]float64(nil), g[k*p:]...)
		// U^T = diag(1/sqrt(s)) V^T Xs^T, by row blocks of Xs.
		b.ut = make([]float64, r*ntr)
		b.rowBlocks(x, train, blk, func(k, m int) {
			linalg.Gemm(false, true, r, m, p, 1, b.vt, p, blk, p, 0, b.ut[k:], ntr)
		})
		for i := 0; i < r; i++ {
			inv := 1 / math.Sqrt(b.s[i])
			row := b.ut[i*ntr : (i+1)*ntr]
			for j := range row {
				row[j] *= inv
			}
		}
		return b, nil
	}
	kern, err := b.kernel(ctx, x, train, true)
	if err != nil {
		return nil, err
	}
	w, err := linalg.SymEig(ntr, kern, ntr)
	if err != nil {
		return nil, fmt.Errorf("%d x %d kernel matrix of the standardised features (dual form, %d features > %d rows): %w", ntr, ntr, p, ntr, err)
	}
	k := keepFrom(w, max(ntr, p))
	if k == ntr {
		return nil, errConstant(ntr, p)
	}
	b.s = append([]float64(nil), w[k:]...)
	b.ut = kern[k*ntr:] // no copy: the kernel's storage holds U^T now
	return b, nil
}

func errConstant(n, p int) error {
	return fmt.Errorf("all %d features are constant over the %d training rows: there is nothing to fit (are the features all zero?)", p, n)
}

// rowBlocks writes the listed rows of xo, standardised over all p
// columns, into blk (rowBlock x p) a block of at most rowBlock rows at a
// time, and calls fn with each block's position k within rows and its
// height m.
func (b *basis[T]) rowBlocks(xo []T, rows rowSet, blk []float64, fn func(k, m int)) {
	k := 0
	for _, s := range rows {
		for i0 := s.lo; i0 < s.hi; i0 += rowBlock {
			i1 := min(i0+rowBlock, s.hi)
			stdBlock(xo, b.p, rowSet{{i0, i1}}, 0, b.p, b.mu, b.sd, blk)
			fn(k, i1-i0)
			k += i1 - i0
		}
	}
}

// kernel returns Xo_s Xs^T (len(other) x ntr) for the standardised rows
// other of xo against the basis's training rows, by column blocks so that
// no full float64 copy of the features is ever held. same says that xo
// and other are the training rows themselves (the kernel is symmetric).
func (b *basis[T]) kernel(ctx context.Context, xo []T, other rowSet, same bool) ([]float64, error) {
	ntr, no := b.train.count(), other.count()
	out := make([]float64, no*ntr)
	bt := make([]float64, ntr*colBlock)
	var bo []float64
	if !same {
		bo = make([]float64, no*colBlock)
	}
	for c0 := 0; c0 < b.p; c0 += colBlock {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		c1 := min(c0+colBlock, b.p)
		w := c1 - c0
		stdBlock(b.x, b.p, b.train, c0, c1, b.mu, b.sd, bt)
		beta := 1.0
		if c0 == 0 {
			beta = 0
		}
		if same {
			linalg.SyrkNUpper(ntr, w, 1, bt, w, beta, out, ntr)
			continue
		}
		stdBlock(xo, b.p, other, c0, c1, b.mu, b.sd, bo)
		linalg.Gemm(false, true, no, ntr, w, 1, bo, w, bt, w, beta, out, ntr)
	}
	if same {
		linalg.Symmetrize(ntr, out, ntr)
	}
	return out, nil
}

// project returns Z = Xo_s V (len(other) x r) in float64: the listed rows
// of xo (p columns), standardised with the training statistics, in the
// basis's coordinates.
func (b *basis[T]) project(ctx context.Context, xo []T, other rowSet) ([]float64, error) {
	r, no := len(b.s), other.count()
	z := make([]float64, no*r)
	if !b.dual {
		blk := make([]float64, rowBlock*b.p)
		b.rowBlocks(xo, other, blk, func(k, m int) {
			linalg.Gemm(false, true, m, r, b.p, 1, blk, b.p, b.vt, b.p, 0, z[k*r:], r)
		})
		return z, nil
	}
	// Z = Xo_s Xs^T U diag(1/sqrt(s)).
	ko, err := b.kernel(ctx, xo, other, false)
	if err != nil {
		return nil, err
	}
	ntr := b.train.count()
	linalg.Gemm(false, true, no, r, ntr, 1, ko, ntr, b.ut, ntr, 0, z, r)
	b.unscale(z, no)
	return z, nil
}

// utRowSums returns U^T 1: the sum over training rows of each left
// singular vector (what centring y subtracts from U^T y).
func (b *basis[T]) utRowSums() []float64 {
	ntr := b.train.count()
	sums := make([]float64, len(b.s))
	for i := range sums {
		for _, u := range b.ut[i*ntr : (i+1)*ntr] {
			sums[i] += u
		}
	}
	return sums
}

// unscale divides column i of an m x r matrix by sqrt(s_i).
func (b *basis[T]) unscale(z []float64, m int) {
	r := len(b.s)
	inv := make([]float64, r)
	for i, s := range b.s {
		inv[i] = 1 / math.Sqrt(s)
	}
	for i := 0; i < m; i++ {
		row := z[i*r : (i+1)*r]
		for j := range row {
			row[j] *= inv[j]
		}
	}
}

// v returns V (p x r) in float64: the right singular vectors, for weights.
func (b *basis[T]) v(ctx context.Context) ([]float64, error) {
	r, p := len(b.s), b.p
	out := make([]float64, p*r)
	if !b.dual {
		for i := 0; i < r; i++ {
			for j := 0; j < p; j++ {
				out[j*r+i] = b.vt[i*p+j]
			}
		}
		return out, nil
	}
	// V = Xs^T U diag(1/sqrt(s)), by column blocks of Xs.
	ntr := b.train.count()
	bt := make([]float64, ntr*colBlock)
	for c0 := 0; c0 < p; c0 += colBlock {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		c1 := min(c0+colBlock, p)
		stdBlock(b.x, p, b.train, c0, c1, b.mu, b.sd, bt)
		linalg.Gemm(true, true, c1-c0, r, ntr, 1, bt, c1-c0, b.ut, ntr, 0, out[c0*r:], r)
	}
	b.unscale(out, p)
	return out, nil
}

// convert returns float64 values as []T: x itself when T is float64 (the
// callers hand over x), else a converted copy.
func convert[T linalg.Float](x []float64) []T {
	if same, ok := any(x).([]T); ok {
		return same
	}
	out := make([]T, len(x))
	for i, v := range x {
		out[i] = T(v)
	}
	return out
}
