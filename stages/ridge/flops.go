package ridge

// Flops counts the floating-point operations of FitCV (with nt test rows
// predicted) for n training rows, p features, v voxels, k folds and na
// alphas: the numerator of the GEMM-bound floor (Flops / machine GEMM
// rate). The O(min(n,p)^3) eigendecompositions are counted at LAPACK's
// nominal ~9m^3. The decompositions and projections run in float64 (at
// about half the float32 rate), the per-voxel products in the solver's
// dtype; all are counted alike.
func Flops(n, p, v, nt, k, na int) float64 {
	N, P, V, NT, K, A := float64(n), float64(p), float64(v), float64(nt), float64(k), float64(na)
	nva := N / K
	ntr := N - nva
	cv := K * (decompFlops(ntr, P, nva) + V*voxelFlops(ntr, P, nva, A))
	r := min(N, P)
	refit := decompFlops(N, P, NT) + V*(2*N*r+2*NT*r)
	return cv + refit
}

// decompFlops is one basis over m rows (primal or dual form) and the
// projection of o other rows onto it.
func decompFlops(m, p, o float64) float64 {
	r := min(m, p)
	if p <= m {
		f := m*p*p + 9*p*p*p + 2*r*p*m + 2*o*p*r
		if o > r {
			f += 2 * o * r * r // QR of the held-out projections
		}
		return f
	}
	return m*m*p + 9*m*m*m + 2*o*m*p + 2*o*m*r
}

// voxelFlops is one fold's work per voxel: U^T y, Z^T y, the small cross
// and mean GEMMs, and per alpha the product with R (triangular, half a
// GEMM) or with Z itself.
func voxelFlops(ntr, p, nva, na float64) float64 {
	r := min(ntr, p)
	f := 2*ntr*r + 2*nva*r + 8*na*r
	if nva > r {
		return f + na*r*r
	}
	return f + na*2*nva*r
}
