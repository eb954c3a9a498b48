package probe

import (
	"context"
	"fmt"
	"math"
	"sort"

	"gonum.org/v1/gonum/optimize"

	"github.com/voxflow/voxflow/numerics/linalg"
)

// LogReg is a multinomial logistic regression on standardised features.
type LogReg struct {
	P, K        int
	Mean, Scale []float64 // feature standardisation from the training rows
	W           []float64 // P x K, row-major
	B           []float64 // K intercepts
	Iterations  int       // L-BFGS major iterations used
	Status      string    // why the optimiser stopped
}

// FitConfig configures FitLogReg.
type FitConfig struct {
	// C is the inverse L2 strength with scikit-learn's meaning: the
	// objective is 0.5*||W||^2 + C * sum_i crossentropy_i (intercepts are
	// not penalised).
	C float64
	// MaxIter bounds L-BFGS major iterations.
	MaxIter int
	// Tol stops when the max-norm of the gradient of the objective divided
	// by C*n falls below it.
	Tol float64
}

// FitLogReg fits a multinomial logistic regression with L2 penalty by
// L-BFGS (gonum/optimize) on n rows of p raw features x (standardised
// internally with training statistics) and labels in [0, k).
func FitLogReg(ctx context.Context, x []float64, n, p int, labels []int32, k int, cfg FitConfig) (*LogReg, error) {
	if len(x) != n*p || len(labels) != n {
		return nil, fmt.Errorf("fit: %d features and %d labels for %d rows of %d", len(x), len(labels), n, p)
	}
	if !(cfg.C > 0) {
		return nil, fmt.Errorf("C = %g: want a positive inverse regularisation strength", cfg.C)
	}
	for i, l := range labels {
		if l < 0 || int(l) >= k {
			return nil, fmt.Errorf("label %d of row %d: want 0 <= label < %d classes", l, i, k)
		}
	}
	xs, mean, scale := linalg.Standardize(x, n, p, nil, nil)
	logits := make([]float64, n*k)
	gw := make([]float64, p*k)
	// The objective is divided by C*n so its scale, and the meaning of Tol,
	// do not depend on the training set's size.
	lam := 1 / (cfg.C * float64(n))
	eval := func(grad, theta []float64) float64 {
		w, b := theta[:p*k], theta[p*k:]
		for i := 0; i < n; i++ {
			copy(logits[i*k:(i+1)*k], b)
		}
		linalg.Gemm(false, false, n, k, p, 1, xs, p, w, k, 1, logits, k)
		loss := 0.0
		for i := 0; i < n; i++ {
			row := logits[i*k : (i+1)*k]
			mx := math.Inf(-1)
			for _, v := range row {
				mx = math.Max(mx, v)
			}
			s := 0.0
			for c, v := range row {
				row[c] = math.Exp(v - mx)
				s += row[c]
			}
			loss += math.Log(s) + mx - (math.Log(row[labels[i]]) + mx)
			for c := range row {
				row[c] /= s // softmax; becomes the gradient below
			}
			row[labels[i]] -= 1
		}
		reg := 0.0
		for _, v := range w {
			reg += v * v
		}
		if grad != nil {
			linalg.Gemm(true, false, p, k, n, 1/float64(n), xs, p, logits, k, 0, gw, k)
			for i := range gw {
				grad[i] = gw[i] + lam*w[i]
			}
			gb := grad[p*k:]
			clear(gb)
			for i := 0; i < n; i++ {
				for c := 0; c < k; c++ {
					gb[c] += logits[i*k+c] / float64(n)
				}
			}
		}
		return loss/float64(n) + 0.5*lam*reg
	}
	prob := optimize.Problem{
		Func: func(theta []float64) float64 { return eval(nil, theta) },
		Grad: func(grad, theta []float64) { eval(grad, theta) },
		Status: func() (optimize.Status, error) {
			if err := ctx.Err(); err != nil {
				return optimize.Failure, err
			}
			return optimize.NotTerminated, nil
		},
	}
	settings := &optimize.Settings{MajorIterations: cfg.MaxIter, GradientThreshold: cfg.Tol}
	res, err := optimize.Minimize(prob, make([]float64, p*k+k), settings, &optimize.LBFGS{})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if res == nil {
		return nil, fmt.Errorf("L-BFGS: %w", err)
	}
	// A line search that stalls near the optimum, or the iteration limit,
	// still leaves a usable model: report the status, do not fail.
	m := &LogReg{P: p, K: k, Mean: mean, Scale: scale, Iterations: res.Stats.MajorIterations, Status: res.Status.String()}
	m.W = append([]float64(nil), res.X[:p*k]...)
	m.B = append([]float64(nil), res.X[p*k:]...)
	if err != nil {
		m.Status += " (" + err.Error() + ")"
	}
	return m, nil
}

// Scores returns the n x K logits for raw features x.
func (m *LogReg) Scores(x []float64, n int) []float64 {
	xs, _, _ := linalg.Standardize(x, n, m.P, m.Mean, m.Scale)
	out := make([]float64, n*m.K)
	for i := 0; i < n; i++ {
		copy(out[i*m.K:(i+1)*m.K], m.B)
	}
	linalg.Gemm(false, false, n, m.K, m.P, 1, xs, m.P, m.W, m.K, 1, out, m.K)
	return out
}

// TopK returns the fraction of rows whose label is among the k highest
// scores (ties broken by class index), for each k in ks.
func TopK(scores []float64, n, classes int, labels []int32, ks ...int) []float64 {
	hits := make([]int, len(ks))
	idx := make([]int, classes)
	for i := 0; i < n; i++ {
		row := scores[i*classes : (i+1)*classes]
		for c := range idx {
			idx[c] = c
		}
		sort.SliceStable(idx, func(a, b int) bool { return row[idx[a]] > row[idx[b]] })
		for q, k := range ks {
			for _, c := range idx[:min(k, classes)] {
				if int32(c) == labels[i] {
					hits[q]++
					break
				}
			}
		}
	}
	out := make([]float64, len(ks))
	for q := range ks {
		out[q] = float64(hits[q]) / float64(max(n, 1))
	}
	return out
}
