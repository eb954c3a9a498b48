package accel

/*
#cgo LDFLAGS: -lm
#include <math.h>

// Vectorising the loop needs sqrtf without errno (cgo refuses
// -fno-math-errno as a flag, so it is set here).
#pragma GCC optimize ("O3", "no-math-errno")

// adamw is torch.optim.AdamW's update for one contiguous slice, in the
// same order of float32 operations, in one pass over memory.
static void adamw(float *w, const float *g, float *m, float *v, long n,
                  float decay, float b1, float c1, float b2, float c2,
                  float step, float bc2sqrt, float eps) {
	for (long i = 0; i < n; i++) {
		float gi = g[i];
		float wi = w[i] * decay;
		float mi = m[i] * b1 + gi * c1;
		float vi = v[i] * b2 + gi * gi * c2;
		m[i] = mi;
		v[i] = vi;
		w[i] = wi + (-step) * (mi / (sqrtf(vi) / bc2sqrt + eps));
	}
}
*/
import "C"

import (
	"fmt"
	"math"
	"runtime"
	"unsafe"
)

// AdamW is torch.optim.AdamW's update rule (decoupled weight decay, bias
// correction) as one fused pass over float32 slices. gomlx spells an
// optimizer as ~14 element-wise graph ops, each a full pass over all
// parameters; for AlexNet's 62M parameters that traffic rivals the
// convolutions, so training loops that hold their parameters as tensors
// can update them here instead (tensors.Tensor.MutableFlatData gives the
// slices).
type AdamW struct {
	LR, Beta1, Beta2, Eps, WeightDecay float64
	// Threads splits the update across goroutines; 0 means GOMAXPROCS.
	Threads int
}

// Step applies update number step (1-based) to weights w with gradient g,
// first moment m and second moment v, all in place and of equal length.
func (o AdamW) Step(step int, w, g, m, v []float32) error {
	n := len(w)
	if len(g) != n || len(m) != n || len(v) != n {
		return fmt.Errorf("accel AdamW: weights %d, gradient %d, moments %d and %d: expected equal lengths",
			n, len(g), len(m), len(v))
	}
	if step < 1 {
		return fmt.Errorf("accel AdamW: step %d, expected >= 1", step)
	}
	if n == 0 {
		return nil
	}
	// The scalars are computed in float64 and rounded once, as torch
	// computes them in Python floats.
	bc1 := 1 - math.Pow(o.Beta1, float64(step))
	bc2 := 1 - math.Pow(o.Beta2, float64(step))
	decay := C.float(1 - o.LR*o.WeightDecay)
	b1, c1 := C.float(o.Beta1), C.float(1-o.Beta1)
	b2, c2 := C.float(o.Beta2), C.float(1-o.Beta2)
	stepSize, bc2sqrt, eps := C.float(o.LR/bc1), C.float(math.Sqrt(bc2)), C.float(o.Eps)
	run := func(lo, hi int) {
		C.adamw((*C.float)(unsafe.Pointer(&w[lo])), (*C.float)(unsafe.Pointer(&g[lo])),
			(*C.float)(unsafe.Pointer(&m[lo])), (*C.float)(unsafe.Pointer(&v[lo])), C.long(hi-lo),
			decay, b1, c1, b2, c2, stepSize, bc2sqrt, eps)
	}
	threads := o.Threads
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	splitRange(min(threads, max(1, n>>16)), n, run)
	return nil
}
