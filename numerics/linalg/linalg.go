// Package linalg is the dense linear algebra voxflow's regressions share:
// row-major BLAS-3 and the few LAPACK drivers they need, on OpenBLAS through
// cgo (Debian libopenblas-dev). Pure-Go GEMM runs at a tenth of what the
// machine can do, and ridge regression over tens of thousands of voxels is
// GEMM-bound, so the heavy lifting goes to OpenBLAS.
//
// Every routine is generic over float32 and float64 and mirrors the BLAS
// argument order, except that all matrices are row-major (C order, as in
// .npy files) with an explicit leading dimension (the row stride). Shape
// errors are programming errors and panic, as in gonum's blas packages;
// numerical failures (LAPACK info != 0) are returned as errors.
package linalg

// The LDFLAGS apply to every cgo file of the package.

/*
#cgo LDFLAGS: -lopenblas
*/
import "C"

import (
	"fmt"
	"math"
)

// Float is the element type of every routine: float32 or float64.
type Float interface {
	float32 | float64
}

// checkLen panics when a row-major rows x cols matrix with leading
// dimension ld does not fit in a slice of length n.
func checkLen(name string, n, rows, cols, ld int) {
	if rows < 0 || cols < 0 {
		panic(fmt.Sprintf("linalg: %s: negative dimension %dx%d", name, rows, cols))
	}
	if ld < max(cols, 1) {
		panic(fmt.Sprintf("linalg: %s: leading dimension %d < columns %d", name, ld, cols))
	}
	if rows == 0 || cols == 0 {
		return
	}
	if need := (rows-1)*ld + cols; n < need {
		panic(fmt.Sprintf("linalg: %s: slice of length %d holds no %dx%d matrix with stride %d (need %d)", name, n, rows, cols, ld, need))
	}
}

// overflowInt panics when a dimension does not fit a LAPACK/BLAS int.
func overflowInt(xs ...int) {
	for _, x := range xs {
		if x > math.MaxInt32 {
			panic(fmt.Sprintf("linalg: dimension %d exceeds the 32-bit BLAS interface", x))
		}
	}
}
