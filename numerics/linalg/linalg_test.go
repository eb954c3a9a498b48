package linalg

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func randMat(rng *rand.Rand, n int) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	return x
}

// naiveMul is the textbook triple loop over row-major op(A) and op(B).
func naiveMul(transA, transB bool, m, n, k int, a []float64, lda int, b []float64, ldb int) []float64 {
	at := func(i, l int) float64 {
		if transA {
			return a[l*lda+i]
		}
		return a[i*lda+l]
	}
	bt := func(l, j int) float64 {
		if transB {
			return b[j*ldb+l]
		}
		return b[l*ldb+j]
	}
	c := make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for l := 0; l < k; l++ {
				s += at(i, l) * bt(l, j)
			}
			c[i*n+j] = s
		}
	}
	return c
}

func maxAbsDiff[T Float](a []T, b []float64) float64 {
	var d float64
	for i := range b {
		d = math.Max(d, math.Abs(float64(a[i])-b[i]))
	}
	return d
}

func TestGemmMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	m, n, k := 7, 5, 9
	for _, tc := range []struct{ ta, tb bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
		// Leading dimensions wider than the matrices exercise strided views.
		lda, ldb := k+2, n+3
		if tc.ta {
			lda = m + 2
		}
		if tc.tb {
			ldb = k + 3
		}
		a := randMat(rng, 20*lda)
		b := randMat(rng, 20*ldb)
		want := naiveMul(tc.ta, tc.tb, m, n, k, a, lda, b, ldb)
		c := make([]float64, m*n)
		Gemm(tc.ta, tc.tb, m, n, k, 1, a, lda, b, ldb, 0, c, n)
		if d := maxAbsDiff(c, want); d > 1e-12 {
			t.Errorf("float64 trans=%v,%v: max |diff| %g", tc.ta, tc.tb, d)
		}
		a32, b32 := to32(a), to32(b)
		c32 := make([]float32, m*n)
		for i := range c32 {
			c32[i] = 1
		}
		Gemm(tc.ta, tc.tb, m, n, k, 2, a32, lda, b32, ldb, 0.5, c32, n)
		for i := range want {
			want[i] = 2*want[i] + 0.5
		}
		if d := maxAbsDiff(c32, want); d > 1e-4 {
			t.Errorf("float32 trans=%v,%v: max |diff| %g", tc.ta, tc.tb, d)
		}
	}
}

func to32(x []float64) []float32 {
	y := make([]float32, len(x))
	for i, v := range x {
		y[i] = float32(v)
	}
	return y
}

func TestGemmPanicsOnShortSlice(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Gemm accepted a 3-element A for a 2x2 product")
		}
	}()
	Gemm(false, false, 2, 2, 2, 1, make([]float64, 3), 2, make([]float64, 4), 2, 0, make([]float64, 4), 2)
}

func TestSyrkT(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	k, n := 11, 6
	a := randMat(rng, k*n)
	want := naiveMul(true, false, n, n, k, a, n, a, n)
	c := make([]float64, n*n)
	SyrkT(n, k, 1, a, n, 0, c, n)
	if d := maxAbsDiff(c, want); d > 1e-12 {
		t.Fatalf("max |diff| %g", d)
	}
}

func TestSymEigReconstructs(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	n := 9
	x := randMat(rng, 20*n)
	g := naiveMul(true, false, n, n, 20, x, n, x, n)
	for _, run := range []func() ([]float64, []float64){
		func() ([]float64, []float64) {
			a := append([]float64(nil), g...)
			w, err := SymEig(n, a, n)
			if err != nil {
				t.Fatal(err)
			}
			return w, a
		},
		func() ([]float64, []float64) {
			a := to32(g)
			w, err := SymEig(n, a, n)
			if err != nil {
				t.Fatal(err)
			}
			return to64(w), to64(a)
		},
	} {
		w, vt := run()
		for i := 1; i < n; i++ {
			if w[i] < w[i-1] {
				t.Fatalf("eigenvalues not ascending: %v", w)
			}
		}
		// Reconstruct V diag(w) V^T from the rows of vt.
		rec := make([]float64, n*n)
		for i := 0; i < n; i++ {
			for j := 0; j < n; j++ {
				for l := 0; l < n; l++ {
					rec[i*n+j] += vt[l*n+i] * w[l] * vt[l*n+j]
				}
			}
		}
		if d := maxAbsDiff(rec, g); d > 1e-3 {
			t.Fatalf("V diag(w) V^T differs from A by %g", d)
		}
	}
}

func to64(x []float32) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v)
	}
	return y
}

func TestTriFactorAndTrmm(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	m, n := 13, 5
	a := randMat(rng, m*n)
	g := naiveMul(true, false, n, n, m, a, n, a, n)
	r, err := TriFactor(m, n, append([]float64(nil), a...), n)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		for j := 0; j < i; j++ {
			if r[i*n+j] != 0 {
				t.Fatalf("R[%d,%d] = %g below the diagonal", i, j, r[i*n+j])
			}
		}
	}
	if d := maxAbsDiff(naiveMul(true, false, n, n, n, r, n, r, n), g); d > 1e-10 {
		t.Fatalf("R^T R differs from A^T A by %g", d)
	}
	b := randMat(rng, n*3)
	want := naiveMul(false, false, n, 3, n, r, n, b, 3)
	TrmmUpper(n, 3, r, n, b, 3)
	if d := maxAbsDiff(b, want); d > 1e-12 {
		t.Fatalf("TrmmUpper differs by %g", d)
	}
}

// TestSymEigFloat32Wide decomposes a float32 matrix wider than 2,896, where
// ?syevd's float workspace query rounds lwork below the minimum (the
// "?syevd info=-8" of issue 14 at p = 3,136): it must now succeed.
func TestSymEigFloat32Wide(t *testing.T) {
	const n = 3136
	lw, _, ok := syevdWork(n)
	if !ok || int(float32(lw)) >= lw {
		t.Fatalf("lwork %d: want a size float32 cannot hold exactly (the case under test)", lw)
	}
	// A diagonal-plus-rank-one matrix has known eigenvalues: the diagonal
	// d_i = i+1 shifted by the rank-one part only along its direction.
	a := make([]float32, n*n)
	for i := 0; i < n; i++ {
		a[i*n+i] = float32(i + 1)
	}
	w, err := SymEig(n, a, n)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range w {
		if math.Abs(float64(e)-float64(i+1)) > 1e-2 {
			t.Fatalf("eigenvalue %d = %g, want %d", i, e, i+1)
		}
	}
}

func TestSymEigRejectsNonFinite(t *testing.T) {
	a := []float64{1, 0, 0, math.NaN()}
	_, err := SymEig(2, a, 2)
	if err == nil || !strings.Contains(err.Error(), "finite") || strings.Contains(err.Error(), "info=") {
		t.Fatalf("err = %v, want a message about non-finite values and no LAPACK code", err)
	}
}

func TestSyevdWorkOverflow(t *testing.T) {
	if _, _, ok := syevdWork(32766); !ok {
		t.Error("n = 32766 fits 32-bit LAPACK workspaces")
	}
	if _, _, ok := syevdWork(32767); ok {
		t.Error("n = 32767 needs an lwork above 2^31-1")
	}
}

func TestMallocRoundTrip(t *testing.T) {
	s, free, err := Malloc[float64](1000)
	if err != nil {
		t.Fatal(err)
	}
	defer free()
	for i := range s {
		s[i] = float64(i)
	}
	if len(s) != 1000 || s[999] != 999 {
		t.Fatalf("len %d, last %g", len(s), s[len(s)-1])
	}
}

func TestSyrkNUpperAccumulates(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	n, k := 6, 11
	a := randMat(rng, n*k)
	want := naiveMul(false, true, n, n, k, a, k, a, k)
	c := make([]float64, n*n)
	// Two column blocks of A, accumulated, then mirrored.
	SyrkNUpper(n, 4, 1, a, k, 0, c, n)
	SyrkNUpper(n, k-4, 1, a[4:], k, 1, c, n)
	Symmetrize(n, c, n)
	if d := maxAbsDiff(c, want); d > 1e-12 {
		t.Fatalf("max |diff| %g", d)
	}
}
