package linalg

/*
#include <cblas.h>
void openblas_set_num_threads(int);
*/
import "C"

import "unsafe"

func trans(t bool) C.enum_CBLAS_TRANSPOSE {
	if t {
		return C.CblasTrans
	}
	return C.CblasNoTrans
}

// ptr returns a C pointer to s[0], or nil for an empty slice (BLAS never
// dereferences it when a dimension is zero).
func ptr[T Float](s []T) unsafe.Pointer {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Pointer(&s[0])
}

// Gemm computes C = alpha*op(A)*op(B) + beta*C, where op(X) is X or X^T,
// op(A) is m x k, op(B) is k x n and C is m x n, all row-major.
func Gemm[T Float](transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	if transA {
		checkLen("Gemm A", len(a), k, m, lda)
	} else {
		checkLen("Gemm A", len(a), m, k, lda)
	}
	if transB {
		checkLen("Gemm B", len(b), n, k, ldb)
	} else {
		checkLen("Gemm B", len(b), k, n, ldb)
	}
	checkLen("Gemm C", len(c), m, n, ldc)
	overflowInt(m, n, k, lda, ldb, ldc)
	if m == 0 || n == 0 {
		return
	}
	switch any(alpha).(type) {
	case float32:
		C.cblas_sgemm(C.CblasRowMajor, trans(transA), trans(transB), C.blasint(m), C.blasint(n), C.blasint(k),
			C.float(alpha), (*C.float)(ptr(a)), C.blasint(lda), (*C.float)(ptr(b)), C.blasint(ldb),
			C.float(beta), (*C.float)(ptr(c)), C.blasint(ldc))
	case float64:
		C.cblas_dgemm(C.CblasRowMajor, trans(transA), trans(transB), C.blasint(m), C.blasint(n), C.blasint(k),
			C.double(alpha), (*C.double)(ptr(a)), C.blasint(lda), (*C.double)(ptr(b)), C.blasint(ldb),
			C.double(beta), (*C.double)(ptr(c)), C.blasint(ldc))
	}
}

// SyrkT computes the Gram matrix C = alpha*A^T*A + beta*C for a k x n matrix
// A, at half the cost of the equivalent Gemm. Both triangles of the n x n
// C are filled.
func SyrkT[T Float](n, k int, alpha T, a []T, lda int, beta T, c []T, ldc int) {
	checkLen("SyrkT A", len(a), k, n, lda)
	checkLen("SyrkT C", len(c), n, n, ldc)
	syrkUpper(C.CblasTrans, n, k, alpha, a, lda, beta, c, ldc)
	// BLAS only writes the upper triangle; callers want a plain symmetric matrix.
	Symmetrize(n, c, ldc)
}

// syrkUpper is BLAS syrk into the upper triangle of the row-major n x n C,
// with A used as given (CblasNoTrans: n x k) or transposed (CblasTrans:
// k x n); the caller has checked the lengths.
func syrkUpper[T Float](trans C.enum_CBLAS_TRANSPOSE, n, k int, alpha T, a []T, lda int, beta T, c []T, ldc int) {
	overflowInt(n, k, lda, ldc)
	if n == 0 {
		return
	}
	switch any(alpha).(type) {
	case float32:
		C.cblas_ssyrk(C.CblasRowMajor, C.CblasUpper, trans, C.blasint(n), C.blasint(k),
			C.float(alpha), (*C.float)(ptr(a)), C.blasint(lda), C.float(beta), (*C.float)(ptr(c)), C.blasint(ldc))
	case float64:
		C.cblas_dsyrk(C.CblasRowMajor, C.CblasUpper, trans, C.blasint(n), C.blasint(k),
			C.double(alpha), (*C.double)(ptr(a)), C.blasint(lda), C.double(beta), (*C.double)(ptr(c)), C.blasint(ldc))
	}
}

// SyrkNUpper computes the upper triangle of C = alpha*A*A^T + beta*C for
// an n x k matrix A (the n x n Gram matrix of A's rows), leaving the
// strictly lower triangle of C untouched: for accumulating a product over
// column blocks of A without an O(n^2) copy per block. Call Symmetrize
// once at the end.
func SyrkNUpper[T Float](n, k int, alpha T, a []T, lda int, beta T, c []T, ldc int) {
	checkLen("SyrkNUpper A", len(a), n, k, lda)
	checkLen("SyrkNUpper C", len(c), n, n, ldc)
	syrkUpper(C.CblasNoTrans, n, k, alpha, a, lda, beta, c, ldc)
}

// Symmetrize copies the upper triangle of the n x n matrix c into its
// strictly lower triangle.
func Symmetrize[T Float](n int, c []T, ldc int) {
	checkLen("Symmetrize C", len(c), n, n, ldc)
	for i := 1; i < n; i++ {
		for j := 0; j < i; j++ {
			c[i*ldc+j] = c[j*ldc+i]
		}
	}
}

// TrmmUpper computes B = R*B in place for an n x n upper-triangular R and
// an n x cols matrix B. Entries of R below the diagonal are not read.
func TrmmUpper[T Float](n, cols int, r []T, ldr int, b []T, ldb int) {
	checkLen("TrmmUpper R", len(r), n, n, ldr)
	checkLen("TrmmUpper B", len(b), n, cols, ldb)
	overflowInt(n, cols, ldr, ldb)
	if n == 0 || cols == 0 {
		return
	}
	switch any(r).(type) {
	case []float32:
		C.cblas_strmm(C.CblasRowMajor, C.CblasLeft, C.CblasUpper, C.CblasNoTrans, C.CblasNonUnit,
			C.blasint(n), C.blasint(cols), 1, (*C.float)(ptr(r)), C.blasint(ldr), (*C.float)(ptr(b)), C.blasint(ldb))
	case []float64:
		C.cblas_dtrmm(C.CblasRowMajor, C.CblasLeft, C.CblasUpper, C.CblasNoTrans, C.CblasNonUnit,
			C.blasint(n), C.blasint(cols), 1, (*C.double)(ptr(r)), C.blasint(ldr), (*C.double)(ptr(b)), C.blasint(ldb))
	}
}

// SetThreads sets how many threads OpenBLAS uses in this process. It is
// process-wide: call it from a stage that owns its process (ridge runs
// isolated for this reason), since the accel backend wants one thread and
// parallelises its GEMMs itself.
func SetThreads(n int) {
	if n < 1 {
		n = 1
	}
	C.openblas_set_num_threads(C.int(n))
}
