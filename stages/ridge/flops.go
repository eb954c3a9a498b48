package ridge

// Flops counts the floating-point operations of FitCV + Predict for n
// training rows, p features, v voxels, nt test rows, k folds and na alphas:
// the numerator of the GEMM-bound floor (Flops / machine GEMM rate). The
// O(p^3) eigendecompositions are counted at LAPACK's nominal ~9p^3.
func Flops(n, p, v, nt, k, na int) float64 {
	N, P, V, NT, K, A := float64(n), float64(p), float64(v), float64(nt), float64(k), float64(na)
	nva := N / K
	rdim := min(nva, P)
	perFold := (N-nva)*P*P + 9*P*P*P + 2*nva*P*P + 2*nva*P*P // Gram, eig, Z, QR
	perVoxel := K * (4*P*P +                                 // [A|B] = V^T [..|..]
		A*P*rdim*triFactor(nva, P) + // R (D a) per alpha
		8*A*P) // the small cross/mean GEMMs
	cv := K*perFold + 2*N*P*V + V*perVoxel
	refit := N*P*P + 9*P*P*P + 2*N*P*V + 4*P*P*V
	return cv + refit + 2*NT*P*V
}

// triFactor is the cost multiplier of the per-alpha product: a triangular
// R costs half a GEMM.
func triFactor(nva, p float64) float64 {
	if nva > p {
		return 1
	}
	return 2
}
