package linalg

/*
#include <stddef.h>

// LAPACK's Fortran entry points, exported by libopenblas (Debian builds it
// with LAPACK). Declared here because lapacke.h is not part of
// libopenblas-dev. Trailing size_t arguments are gfortran's hidden lengths
// of the character arguments.
void ssyevd_(const char *jobz, const char *uplo, const int *n, float *a, const int *lda,
	float *w, float *work, const int *lwork, int *iwork, const int *liwork, int *info,
	size_t, size_t);
void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda,
	double *w, double *work, const int *lwork, int *iwork, const int *liwork, int *info,
	size_t, size_t);
void sgelqf_(const int *m, const int *n, float *a, const int *lda, float *tau,
	float *work, const int *lwork, int *info);
void dgelqf_(const int *m, const int *n, double *a, const int *lda, double *tau,
	double *work, const int *lwork, int *info);
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// SymEig computes all eigenvalues and eigenvectors of the symmetric n x n
// matrix a (row-major, leading dimension lda; both triangles must hold the
// matrix) with LAPACK's divide-and-conquer driver (?syevd). It returns the
// eigenvalues in ascending order and overwrites a so that row i holds the
// unit eigenvector of eigenvalue i: on return a = V^T where A = V diag(w) V^T.
func SymEig[T Float](n int, a []T, lda int) ([]T, error) {
	checkLen("SymEig A", len(a), n, n, lda)
	overflowInt(n, lda)
	w := make([]T, n)
	if n == 0 {
		return w, nil
	}
	// A row-major symmetric matrix is its own column-major transpose, and
	// column-major eigenvector columns read as row-major rows: no copies.
	jobz, uplo := C.char('V'), C.char('L')
	cn, clda := C.int(n), C.int(lda)
	var info C.int
	lwork, liwork := C.int(-1), C.int(-1)
	var iworkQ C.int
	switch any(a).(type) {
	case []float32:
		var q C.float
		C.ssyevd_(&jobz, &uplo, &cn, (*C.float)(ptr(a)), &clda, (*C.float)(ptr(w)), &q, &lwork, &iworkQ, &liwork, &info, 1, 1)
		lwork, liwork = C.int(q), iworkQ
		work := make([]float32, int(lwork))
		iwork := make([]C.int, int(liwork))
		C.ssyevd_(&jobz, &uplo, &cn, (*C.float)(ptr(a)), &clda, (*C.float)(ptr(w)),
			(*C.float)(unsafe.Pointer(&work[0])), &lwork, &iwork[0], &liwork, &info, 1, 1)
	case []float64:
		var q C.double
		C.dsyevd_(&jobz, &uplo, &cn, (*C.double)(ptr(a)), &clda, (*C.double)(ptr(w)), &q, &lwork, &iworkQ, &liwork, &info, 1, 1)
		lwork, liwork = C.int(q), iworkQ
		work := make([]float64, int(lwork))
		iwork := make([]C.int, int(liwork))
		C.dsyevd_(&jobz, &uplo, &cn, (*C.double)(ptr(a)), &clda, (*C.double)(ptr(w)),
			(*C.double)(unsafe.Pointer(&work[0])), &lwork, &iwork[0], &liwork, &info, 1, 1)
	}
	if info != 0 {
		return nil, fmt.Errorf("symmetric eigendecomposition of %dx%d matrix: LAPACK ?syevd info=%d (want 0; >0 means it did not converge)", n, n, int(info))
	}
	return w, nil
}

// TriFactor returns an n x n upper-triangular R (row-major, contiguous,
// zeros below the diagonal) with R^T R = A^T A for the m x n matrix a
// (m >= n), i.e. the R of A's QR factorisation. It works on the data itself
// rather than on A^T A, so it stays accurate where A^T A is singular or
// ill-conditioned. a is overwritten.
func TriFactor[T Float](m, n int, a []T, lda int) ([]T, error) {
	checkLen("TriFactor A", len(a), m, n, lda)
	overflowInt(m, n, lda)
	if m < n {
		panic(fmt.Sprintf("linalg: TriFactor: %dx%d matrix has fewer rows than columns", m, n))
	}
	r := make([]T, n*n)
	if n == 0 {
		return r, nil
	}
	// Row-major A is column-major A^T (n x m); its LQ factorisation
	// A^T = L Q gives A = Q^T L^T, so R = L^T, which is exactly the
	// column-major L read back row-major.
	cm, cn, clda := C.int(n), C.int(m), C.int(lda)
	var info C.int
	lwork := C.int(-1)
	tau := make([]T, n)
	switch any(a).(type) {
	case []float32:
		var q C.float
		C.sgelqf_(&cm, &cn, (*C.float)(ptr(a)), &clda, (*C.float)(ptr(tau)), &q, &lwork, &info)
		lwork = C.int(q)
		work := make([]float32, max(int(lwork), 1))
		C.sgelqf_(&cm, &cn, (*C.float)(ptr(a)), &clda, (*C.float)(ptr(tau)), (*C.float)(unsafe.Pointer(&work[0])), &lwork, &info)
	case []float64:
		var q C.double
		C.dgelqf_(&cm, &cn, (*C.double)(ptr(a)), &clda, (*C.double)(ptr(tau)), &q, &lwork, &info)
		lwork = C.int(q)
		work := make([]float64, max(int(lwork), 1))
		C.dgelqf_(&cm, &cn, (*C.double)(ptr(a)), &clda, (*C.double)(ptr(tau)), (*C.double)(unsafe.Pointer(&work[0])), &lwork, &info)
	}
	if info != 0 {
		return nil, fmt.Errorf("QR factorisation of %dx%d matrix: LAPACK ?gelqf info=%d (want 0)", m, n, int(info))
	}
	for i := 0; i < n; i++ {
		copy(r[i*n+i:(i+1)*n], a[i*lda+i:i*lda+n])
	}
	return r, nil
}
