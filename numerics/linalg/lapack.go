package linalg

/*
#include <stddef.h>
#include <stdlib.h>

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
	"math"
	"unsafe"
)

// syevdWork returns the workspace sizes ?syevd needs for all eigenvectors
// of an n x n matrix (LAPACK's documented minimum: lwork = 1 + 6n + 2n^2,
// liwork = 3 + 5n). They are computed here rather than taken from the
// workspace query, because the query returns lwork in a float: in float32
// it is rounded to 24 bits, so from n = 2,897 (2n^2 > 2^24) it can come back
// below the minimum and the real call then fails with info = -8 (the lwork
// argument). That was the "?syevd info=-8" seen at p = 3,136 in float32.
// ok is false when a size does not fit LAPACK's 32-bit integers (n > 32,766).
func syevdWork(n int) (lwork, liwork int, ok bool) {
	lwork = 1 + 6*n + 2*n*n
	liwork = 3 + 5*n
	return lwork, liwork, lwork <= math.MaxInt32 && liwork <= math.MaxInt32
}

// syevdArg names ?syevd's arguments by position, for error messages.
var syevdArg = [...]string{1: "JOBZ", 2: "UPLO", 3: "N", 4: "A", 5: "LDA", 6: "W", 7: "WORK", 8: "LWORK", 9: "IWORK", 10: "LIWORK"}

// SymEig computes all eigenvalues and eigenvectors of the symmetric n x n
// matrix a (row-major, leading dimension lda; both triangles must hold the
// matrix) with LAPACK's divide-and-conquer driver (?syevd). It returns the
// eigenvalues in ascending order and overwrites a so that row i holds the
// unit eigenvector of eigenvalue i: on return a = V^T where A = V diag(w) V^T.
//
// The workspace (about 2n^2 elements) is allocated outside the Go heap and
// freed on return, so that it never inflates the garbage collector's heap
// target. Errors never carry a bare LAPACK code: non-finite input, a
// workspace too large for 32-bit LAPACK and failed convergence each say so.
func SymEig[T Float](n int, a []T, lda int) ([]T, error) {
	checkLen("SymEig A", len(a), n, n, lda)
	overflowInt(n, lda)
	w := make([]T, n)
	if n == 0 {
		return w, nil
	}
	for i := 0; i < n; i++ {
		for _, v := range a[i*lda : i*lda+n] {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("symmetric eigendecomposition of a %dx%d matrix: row %d holds %v; want finite values (are the features or responses NaN/Inf?)", n, n, i, v)
			}
		}
	}
	lw, liw, ok := syevdWork(n)
	if !ok {
		return nil, fmt.Errorf("symmetric eigendecomposition of a %dx%d matrix: its workspace (%d elements) exceeds LAPACK's 32-bit sizes; reduce the dimension (fewer features or images)", n, n, lw)
	}
	// A row-major symmetric matrix is its own column-major transpose, and
	// column-major eigenvector columns read as row-major rows: no copies.
	jobz, uplo := C.char('V'), C.char('L')
	cn, clda := C.int(n), C.int(lda)
	var info C.int
	lwork, liwork := C.int(lw), C.int(liw)
	var zero T
	work, freeWork, err := Malloc[T](lw)
	if err != nil {
		return nil, fmt.Errorf("symmetric eigendecomposition of a %dx%d matrix: workspace of %d MB: %w", n, n, lw*int(unsafe.Sizeof(zero))>>20, err)
	}
	defer freeWork()
	iwork := C.malloc(C.size_t(liw) * C.size_t(unsafe.Sizeof(C.int(0))))
	if iwork == nil {
		return nil, fmt.Errorf("symmetric eigendecomposition of a %dx%d matrix: out of memory for %d integers of workspace", n, n, liw)
	}
	defer C.free(iwork)
	switch any(a).(type) {
	case []float32:
		C.ssyevd_(&jobz, &uplo, &cn, (*C.float)(ptr(a)), &clda, (*C.float)(ptr(w)),
			(*C.float)(ptr(work)), &lwork, (*C.int)(iwork), &liwork, &info, 1, 1)
	case []float64:
		C.dsyevd_(&jobz, &uplo, &cn, (*C.double)(ptr(a)), &clda, (*C.double)(ptr(w)),
			(*C.double)(ptr(work)), &lwork, (*C.int)(iwork), &liwork, &info, 1, 1)
	}
	switch {
	case info < 0:
		name := "?"
		if int(-info) < len(syevdArg) {
			name = syevdArg[-info]
		}
		return nil, fmt.Errorf("symmetric eigendecomposition of a %dx%d matrix: LAPACK rejected argument %d (%s); this is a bug in voxflow's call (e.g. a workspace size that overflowed), please report it", n, n, int(-info), name)
	case info > 0:
		return nil, fmt.Errorf("symmetric eigendecomposition of a %dx%d matrix did not converge (%d off-diagonal elements of an intermediate tridiagonal form stayed nonzero); the matrix may hold extreme values: check the features for huge magnitudes", n, n, int(info))
	}
	return w, nil
}

// Malloc returns a slice of n elements allocated with C's malloc, and the
// function that frees it. Use it for large short-lived work arrays: Go's
// collector lets its heap grow to twice the live data before collecting,
// so a few gigabytes of garbage-collected temporaries can double a job's
// peak memory; C memory is returned the moment it is freed. The slice must
// not be used after free, and holds no Go pointers (it is plain floats).
func Malloc[T Float](n int) (s []T, free func(), err error) {
	if n <= 0 {
		return nil, func() {}, nil
	}
	var zero T
	p := C.malloc(C.size_t(n) * C.size_t(unsafe.Sizeof(zero)))
	if p == nil {
		return nil, nil, fmt.Errorf("out of memory allocating %d MB", n*int(unsafe.Sizeof(zero))>>20)
	}
	return unsafe.Slice((*T)(p), n), func() { C.free(p) }, nil
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
		// ?gelqf fails only on an illegal argument (info = -i).
		return nil, fmt.Errorf("QR factorisation of a %dx%d matrix: LAPACK rejected argument %d; this is a bug in voxflow's call, please report it", m, n, int(-info))
	}
	for i := 0; i < n; i++ {
		copy(r[i*n+i:(i+1)*n], a[i*lda+i:i*lda+n])
	}
	return r, nil
}
