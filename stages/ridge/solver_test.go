package ridge

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/voxflow/voxflow/numerics/linalg"
	"github.com/voxflow/voxflow/numerics/npy"
	"github.com/voxflow/voxflow/numerics/stats"
)

// plantedData draws n x p features and n x v targets y = x w + noise, with
// noise levels that vary across voxels so that CV picks different alphas.
func plantedData(seed uint64, n, p, v int) (x, y []float64) {
	rng := rand.New(rand.NewPCG(seed, 99))
	x = make([]float64, n*p)
	for i := range x {
		x[i] = rng.NormFloat64()*float64(1+i%3) + 0.5
	}
	w := make([]float64, p*v)
	for i := range w {
		w[i] = rng.NormFloat64()
	}
	y = make([]float64, n*v)
	for i := 0; i < n; i++ {
		for j := 0; j < v; j++ {
			s := 0.0
			for k := 0; k < p; k++ {
				s += x[i*p+k] * w[k*v+j]
			}
			noise := math.Pow(10, float64(j%6)-2)
			y[i*v+j] = s + noise*rng.NormFloat64() + 3
		}
	}
	return x, y
}

func logspace(lo, hi float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = math.Pow(10, lo+(hi-lo)*float64(i)/float64(n-1))
	}
	return out
}

// loopCV is the straightforward reference: for every voxel, fold and alpha,
// standardise with the training rows' statistics, solve the normal
// equations, predict the held-out rows and score them.
func loopCV(x []float64, n, p int, y []float64, v int, alphas []float64, folds int, score string) (alpha, best []float64) {
	alpha, best = make([]float64, v), make([]float64, v)
	for j := 0; j < v; j++ {
		scores := make([]float64, len(alphas))
		for f := 0; f < folds; f++ {
			lo, hi := foldBounds(n, folds, f)
			var tr []int
			for i := 0; i < n; i++ {
				if i < lo || i >= hi {
					tr = append(tr, i)
				}
			}
			trx := make([]float64, 0, len(tr)*p)
			ybar := 0.0
			for _, i := range tr {
				trx = append(trx, x[i*p:(i+1)*p]...)
				ybar += y[i*v+j] / float64(len(tr))
			}
			_, mean, scale := linalg.Standardize(trx, len(tr), p, nil, nil)
			xs, _, _ := linalg.Standardize(x, n, p, mean, scale)
			mu := make([]float64, p) // standardised training rows have mean 0
			xc := mat.NewDense(len(tr), p, nil)
			yc := mat.NewVecDense(len(tr), nil)
			for r, i := range tr {
				for k := 0; k < p; k++ {
					xc.Set(r, k, xs[i*p+k]-mu[k])
				}
				yc.SetVec(r, y[i*v+j]-ybar)
			}
			for ai, a := range alphas {
				var g mat.Dense
				g.Mul(xc.T(), xc)
				for k := 0; k < p; k++ {
					g.Set(k, k, g.At(k, k)+a)
				}
				var rhs, w mat.VecDense
				rhs.MulVec(xc.T(), yc)
				if err := w.SolveVec(&g, &rhs); err != nil {
					panic(err)
				}
				pred := make([]float64, hi-lo)
				obs := make([]float64, hi-lo)
				for i := lo; i < hi; i++ {
					s := ybar
					for k := 0; k < p; k++ {
						s += (xs[i*p+k] - mu[k]) * w.AtVec(k)
					}
					pred[i-lo], obs[i-lo] = s, y[i*v+j]
				}
				if score == ScoreR {
					scores[ai] += pearson64(pred, obs) / float64(folds)
				} else {
					mse := 0.0
					for i := range pred {
						mse += (pred[i] - obs[i]) * (pred[i] - obs[i])
					}
					scores[ai] += mse / float64(len(pred)) / float64(folds)
				}
			}
		}
		b := 0
		for ai := range scores {
			if (score == ScoreR && scores[ai] > scores[b]) || (score != ScoreR && scores[ai] < scores[b]) {
				b = ai
			}
		}
		alpha[j], best[j] = alphas[b], scores[b]
	}
	return alpha, best
}

func pearson64(a, b []float64) float64 {
	var ma, mb float64
	for i := range a {
		ma += a[i] / float64(len(a))
		mb += b[i] / float64(len(b))
	}
	var sab, saa, sbb float64
	for i := range a {
		sab += (a[i] - ma) * (b[i] - mb)
		saa += (a[i] - ma) * (a[i] - ma)
		sbb += (b[i] - mb) * (b[i] - mb)
	}
	return sab / math.Sqrt(saa*sbb)
}

func TestCrossValidateMatchesLoop(t *testing.T) {
	for _, tc := range []struct {
		name         string
		n, p, v, k   int
		score, batch int
	}{
		{"tall-mse", 83, 7, 14, 5, 0, 0},
		{"tall-r", 83, 7, 14, 5, 1, 5}, // batch 5 exercises a ragged last batch
		{"wide-mse", 40, 12, 9, 5, 0, 4},
		{"wide-r", 40, 12, 9, 4, 1, 0},
		{"dual-mse", 30, 50, 9, 5, 0, 0},
		{"dual-r", 30, 50, 9, 3, 1, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x, y := plantedData(uint64(tc.n+tc.p), tc.n, tc.p, tc.v)
			score := ScoreMSE
			if tc.score == 1 {
				score = ScoreR
			}
			alphas := logspace(-2, 4, 13)
			cfg := Config{Alphas: alphas, Folds: tc.k, Score: score, VoxelBatch: tc.batch}
			got, gotScore, err := CrossValidate(context.Background(), x, tc.n, tc.p, y, tc.v, tc.v, cfg)
			if err != nil {
				t.Fatal(err)
			}
			want, wantScore := loopCV(x, tc.n, tc.p, y, tc.v, alphas, tc.k, score)
			distinct := map[float64]bool{}
			for j := range want {
				distinct[want[j]] = true
				if got[j] != want[j] {
					t.Errorf("voxel %d: alpha %g, reference %g", j, got[j], want[j])
				}
				if d := math.Abs(gotScore[j] - wantScore[j]); d > 1e-7*math.Max(1, math.Abs(wantScore[j])) {
					t.Errorf("voxel %d: CV score %.12g, reference %.12g", j, gotScore[j], wantScore[j])
				}
			}
			if len(distinct) < 2 {
				t.Errorf("the planted noise levels should lead to different alphas, all voxels chose %v", distinct)
			}
			// float32 agrees on the scores to single precision.
			got32, score32, err := CrossValidate(context.Background(), f32(x), tc.n, tc.p, f32(y), tc.v, tc.v, cfg)
			if err != nil {
				t.Fatal(err)
			}
			same := 0
			for j := range want {
				if got32[j] == want[j] {
					same++
				}
				if d := math.Abs(score32[j] - wantScore[j]); d > 2e-3*math.Max(1e-2, math.Abs(wantScore[j])) {
					t.Errorf("float32 voxel %d: CV score %.7g, reference %.7g", j, score32[j], wantScore[j])
				}
			}
			if same < len(want)*3/4 {
				t.Errorf("float32 path chose the reference alpha for only %d of %d voxels", same, len(want))
			}
		})
	}
}

func f32(x []float64) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(v)
	}
	return out
}

// TestRefitMatchesSklearn checks coefficients, intercepts and predictions
// against sklearn's Ridge (float64 path) with a different alpha per voxel.
func TestRefitMatchesSklearn(t *testing.T) {
	n, p, v, nt := 70, 9, 6, 15
	x, y := plantedData(7, n+nt, p, v)
	x[3] = 0 // make sure constant columns are handled like StandardScaler
	for i := 0; i < n+nt; i++ {
		x[i*p+4] = 2.5
	}
	xtr, xte := x[:n*p], x[n*p:]
	ytr := y[:n*v]
	alpha := []float64{0.01, 1, 10, 100, 1e3, 0.5}
	dir := t.TempDir()
	for name, a := range map[string]struct {
		shape []int
		data  []float64
	}{
		"x": {[]int{n, p}, xtr}, "y": {[]int{n, v}, ytr}, "xtest": {[]int{nt, p}, xte}, "alpha": {[]int{v}, alpha},
	} {
		if err := npy.WriteFile(filepath.Join(dir, name+".npy"), a.shape, a.data); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command("/usr/bin/python3", "testdata/sklearn_ridge.py", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("sklearn reference: %v\n%s", err, out)
	}
	m, err := Refit(context.Background(), xtr, n, p, ytr, v, v, alpha, xte, nt, Config{KeepWeights: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		got  []float64
	}{{"coef", m.Weights}, {"intercept", m.Intercept}, {"pred", m.Pred}, {"pred", m.Predict(xte, nt)}} {
		ref, err := npy.ReadFile[float64](filepath.Join(dir, c.name+".npy"))
		if err != nil {
			t.Fatal(err)
		}
		assertRelClose(t, c.name, c.got, ref.Data, 1e-6)
	}
}

// assertRelClose requires |got-want| <= tol * max|want| elementwise.
func assertRelClose(t *testing.T, name string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", name, len(got), len(want))
	}
	scale := 0.0
	for _, w := range want {
		scale = math.Max(scale, math.Abs(w))
	}
	for i := range want {
		if d := math.Abs(got[i] - want[i]); d > tol*scale {
			t.Fatalf("%s[%d] = %.12g, reference %.12g (rel diff %.2g)", name, i, got[i], want[i], d/scale)
		}
	}
}

func TestFitCVRecoversPlantedModel(t *testing.T) {
	n, p, v, nt := 300, 20, 30, 100
	x, y := plantedData(11, n+nt, p, v)
	m, err := FitCV(context.Background(), f32(x[:n*p]), n, p, f32(y[:n*v]), v, v, f32(x[n*p:]), nt, Config{Alphas: logspace(-1, 6, 15), Folds: 5, Score: ScoreMSE})
	if err != nil {
		t.Fatal(err)
	}
	pred := m.Pred
	for j := 0; j < v; j++ {
		noise := math.Pow(10, float64(j%6)-2)
		a, b := make([]float64, nt), make([]float64, nt)
		for i := 0; i < nt; i++ {
			a[i], b[i] = float64(pred[i*v+j]), y[(n+i)*v+j]
		}
		// Signal variance is about p * 2.3 = 46: voxels with noise <= 1 are
		// almost noiseless, the ones with noise 1000 are pure noise.
		if r := pearson64(a, b); noise <= 1 && r < 0.95 {
			t.Errorf("voxel %d (noise %g): test r = %.3f, want > 0.95", j, noise, r)
		}
		if noise == 1000 && m.Alpha[j] <= m.Alpha[j-5] {
			t.Errorf("voxel %d (noise %g) chose alpha %g, no larger than %g of voxel %d (noise 0.01)", j, noise, m.Alpha[j], m.Alpha[j-5], j-5)
		}
	}
}

func TestCrossValidateRejectsBadConfig(t *testing.T) {
	x := make([]float64, 10*2)
	for _, cfg := range []Config{
		{Alphas: []float64{1}, Folds: 1},
		{Alphas: []float64{1}, Folds: 11},
		{Alphas: nil, Folds: 2},
		{Alphas: []float64{-1}, Folds: 2},
		{Alphas: []float64{1}, Folds: 2, Score: "r2"},
	} {
		if _, _, err := CrossValidate(context.Background(), x, 10, 2, x, 2, 2, cfg); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
}

func TestFitCVStopsWhenCancelled(t *testing.T) {
	x, y := plantedData(3, 50, 4, 3)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := FitCV(ctx, x, 50, 4, y, 3, 3, nil, 0, Config{Alphas: []float64{1}, Folds: 5}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// TestCrossValidateBatchInvariance compares large voxel batches, whose
// element-wise passes run on several goroutines, with small serial ones.
func TestCrossValidateBatchInvariance(t *testing.T) {
	n, p, v := 300, 70, 1000
	x, y := plantedData(5, n, p, v)
	for _, score := range []string{ScoreMSE, ScoreR} {
		cfg := Config{Alphas: logspace(-1, 6, 15), Folds: 5, Score: score}
		cfg.VoxelBatch = v
		a1, s1, err := CrossValidate(context.Background(), x, n, p, y, v, v, cfg)
		if err != nil {
			t.Fatal(err)
		}
		cfg.VoxelBatch = 37
		a2, s2, err := CrossValidate(context.Background(), x, n, p, y, v, v, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for j := range a1 {
			if a1[j] != a2[j] || math.Abs(s1[j]-s2[j]) > 1e-9*math.Max(1, math.Abs(s1[j])) {
				t.Fatalf("%s voxel %d: batch %d gives (%g, %.12g), batch 37 (%g, %.12g)", score, j, v, a1[j], s1[j], a2[j], s2[j])
			}
		}
	}
}

// illConditioned draws n+nt rows of p features whose standardised Gram
// matrix spans about nine orders of magnitude (a few strong latent factors
// shared by all features, plus weak independent parts at decaying scales,
// as in a conv layer's correlated units), and v voxels driven by the
// latent factors at mixed noise levels.
func illConditioned(seed uint64, n, nt, p, v int) (x, y []float64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	const latent = 5
	rows := n + nt
	z := make([]float64, rows*latent)
	for i := range z {
		z[i] = rng.NormFloat64()
	}
	x = make([]float64, rows*p)
	mix := make([]float64, latent*p)
	for i := range mix {
		mix[i] = rng.NormFloat64()
	}
	for i := 0; i < rows; i++ {
		for k := 0; k < p; k++ {
			s := 0.0
			for l := 0; l < latent; l++ {
				s += z[i*latent+l] * mix[l*p+k]
			}
			weak := math.Pow(10, -4.5*float64(k)/float64(p))
			x[i*p+k] = s + weak*rng.NormFloat64() + 10*float64(k%4) // offsets: standardisation matters
		}
	}
	y = make([]float64, rows*v)
	for i := 0; i < rows; i++ {
		for j := 0; j < v; j++ {
			s := 0.0
			for l := 0; l < latent; l++ {
				s += z[i*latent+l] * math.Cos(float64(j*latent+l))
			}
			// A weak feature-specific signal rewards small alphas on some voxels.
			s += 50 * x[i*p+(j*7)%p] * math.Pow(10, -2+4.5*float64((j*7)%p)/float64(p)) / 100
			y[i*v+j] = s + float64(j%5)*rng.NormFloat64() + 2
		}
	}
	return x, y
}

// TestFloat32MatchesFloat64AtEveryAlpha fits ill-conditioned features at
// every alpha of the default grid in both precisions and requires the
// per-voxel test r to agree within 1e-4, in the primal (p < n) and dual
// (p > n) forms. The old float32 solver (float32 eigendecomposition of
// the Gram matrix, V^T X^T y in float32) was off by 4.5e-3 on the primal
// case (condition number 8e11) at alpha 0.1; this one by about 1e-7.
func TestFloat32MatchesFloat64AtEveryAlpha(t *testing.T) {
	alphas := logspace(-1, 6, 15)
	for _, tc := range []struct {
		name     string
		n, nt, p int
	}{{"primal", 1200, 200, 500}, {"dual", 400, 150, 1200}} {
		t.Run(tc.name, func(t *testing.T) {
			const v = 12
			x, y := illConditioned(3, tc.n, tc.nt, tc.p, v)
			// One column per (voxel, alpha): every alpha in one refit.
			nv := v * len(alphas)
			yy := make([]float64, tc.n*nv)
			al := make([]float64, nv)
			for i := 0; i < tc.n; i++ {
				for ai := range alphas {
					copy(yy[i*nv+ai*v:i*nv+(ai+1)*v], y[i*v:(i+1)*v])
				}
			}
			for ai, a := range alphas {
				for j := 0; j < v; j++ {
					al[ai*v+j] = a
				}
			}
			yte := make([]float64, tc.nt*nv)
			for i := 0; i < tc.nt; i++ {
				for ai := range alphas {
					copy(yte[i*nv+ai*v:i*nv+(ai+1)*v], y[(tc.n+i)*v:(tc.n+i+1)*v])
				}
			}
			x32 := f32(x)
			xtr, xte := x32[:tc.n*tc.p], x32[tc.n*tc.p:]
			y32 := f32(yy)
			b, err := newBasis(context.Background(), widen(xtr), tc.p, rowSet{{0, tc.n}}, true)
			if err != nil {
				t.Fatal(err)
			}
			if c := b.s[len(b.s)-1] / b.s[0]; c < 1e6 {
				t.Fatalf("condition number of the standardised Gram matrix %.2g; the test wants > 1e6", c)
			} else {
				t.Logf("condition number %.2g, smallest eigenvalue %.2g", c, b.s[0])
			}
			m32, err := Refit(context.Background(), xtr, tc.n, tc.p, y32, nv, nv, al, xte, tc.nt, Config{})
			if err != nil {
				t.Fatal(err)
			}
			m64, err := Refit(context.Background(), widen(xtr), tc.n, tc.p, widen(y32), nv, nv, al, widen(xte), tc.nt, Config{})
			if err != nil {
				t.Fatal(err)
			}
			r32 := stats.PearsonCols(m32.Pred, f32(yte), tc.nt, nv)
			r64 := stats.PearsonCols(m64.Pred, widen(f32(yte)), tc.nt, nv)
			worst := 0.0
			for c := range r32 {
				d := math.Abs(r32[c] - r64[c])
				worst = math.Max(worst, d)
				if d > 1e-4 {
					t.Errorf("alpha %g voxel %d: test r %.7f in float32, %.7f in float64", al[c], c%v, r32[c], r64[c])
				}
			}
			t.Logf("max |r32 - r64| over %d alphas x %d voxels: %.2g", len(alphas), v, worst)
		})
	}
}

// TestParityWithNumpyReference runs the whole CV + refit + test scoring
// under each setting (cv_score r and mse, dtype float32 and float64, the
// primal and the dual form) against testdata/ridge_cv_reference.py, a plain
// numpy implementation of the same conventions (per-fold standardisation,
// contiguous folds) that solves the normal equations per alpha. The
// chosen alpha must agree for >= 99% of voxels and, where it agrees, test
// r within 1e-4.
func TestParityWithNumpyReference(t *testing.T) {
	alphas := logspace(-1, 6, 15)
	for _, shape := range []struct {
		name        string
		n, nt, p, v int
		folds       int
	}{{"primal", 300, 100, 60, 200, 5}, {"dual", 120, 80, 300, 200, 4}} {
		x, y := illConditioned(11, shape.n, shape.nt, shape.p, shape.v)
		// Both precisions see the same (float32-representable) inputs.
		x, y = widen(f32(x)), widen(f32(y))
		n, p, v, nt := shape.n, shape.p, shape.v, shape.nt
		xtr, xte, ytr, yte := x[:n*p], x[n*p:], y[:n*v], y[n*v:]
		for _, score := range []string{ScoreR, ScoreMSE} {
			dir := t.TempDir()
			for name, a := range map[string]struct {
				shape []int
				data  []float64
			}{
				"x": {[]int{n, p}, xtr}, "y": {[]int{n, v}, ytr}, "xtest": {[]int{nt, p}, xte},
				"ytest": {[]int{nt, v}, yte}, "alphas": {[]int{len(alphas)}, alphas},
			} {
				if err := npy.WriteFile(filepath.Join(dir, name+".npy"), a.shape, a.data); err != nil {
					t.Fatal(err)
				}
			}
			out, err := exec.Command("/usr/bin/python3", "testdata/ridge_cv_reference.py", dir, score, strconv.Itoa(shape.folds)).CombinedOutput()
			if err != nil {
				t.Fatalf("numpy reference: %v\n%s", err, out)
			}
			refAlpha, err := npy.ReadFile[float64](filepath.Join(dir, "alpha.npy"))
			if err != nil {
				t.Fatal(err)
			}
			refR, err := npy.ReadFile[float64](filepath.Join(dir, "r.npy"))
			if err != nil {
				t.Fatal(err)
			}
			cfg := Config{Alphas: alphas, Folds: shape.folds, Score: score}
			for _, dtype := range []string{"float32", "float64"} {
				t.Run(shape.name+"/"+score+"/"+dtype, func(t *testing.T) {
					var alpha, r []float64
					if dtype == "float32" {
						m, err := FitCV(context.Background(), f32(xtr), n, p, f32(ytr), v, v, f32(xte), nt, cfg)
						if err != nil {
							t.Fatal(err)
						}
						alpha, r = m.Alpha, stats.PearsonCols(m.Pred, f32(yte), nt, v)
					} else {
						m, err := FitCV(context.Background(), xtr, n, p, ytr, v, v, xte, nt, cfg)
						if err != nil {
							t.Fatal(err)
						}
						alpha, r = m.Alpha, stats.PearsonCols(m.Pred, yte, nt, v)
					}
					same, worst := 0, 0.0
					distinct := map[float64]bool{}
					for j := 0; j < v; j++ {
						distinct[refAlpha.Data[j]] = true
						if alpha[j] != refAlpha.Data[j] {
							continue
						}
						same++
						d := math.Abs(r[j] - refR.Data[j])
						worst = math.Max(worst, d)
						if d > 1e-4 {
							t.Errorf("voxel %d (alpha %g): test r %.7f, reference %.7f", j, alpha[j], r[j], refR.Data[j])
						}
					}
					if 100*same < 99*v {
						t.Errorf("same alpha as the reference for %d of %d voxels, want >= 99%%", same, v)
					}
					if len(distinct) < 3 {
						t.Errorf("the reference chose only alphas %v: the data should call for several", distinct)
					}
					t.Logf("same alpha %d/%d, %d distinct alphas, max |r - ref| %.2g", same, v, len(distinct), worst)
				})
			}
		}
	}
}

func TestFitCVNamesNonFiniteValues(t *testing.T) {
	x, y := plantedData(3, 50, 4, 3)
	x[7*4+2] = math.NaN()
	_, err := FitCV(context.Background(), x, 50, 4, y, 3, 3, nil, 0, Config{Alphas: []float64{1}, Folds: 5})
	if err == nil || !strings.Contains(err.Error(), "features: row 7, column 2 is NaN") {
		t.Fatalf("err = %v, want one naming row 7, column 2", err)
	}
}

func TestFitCVRefusesConstantFeatures(t *testing.T) {
	_, y := plantedData(3, 50, 4, 3)
	x := make([]float64, 50*4)
	for i := range x {
		x[i] = 2.5
	}
	_, err := FitCV(context.Background(), x, 50, 4, y, 3, 3, nil, 0, Config{Alphas: []float64{1}, Folds: 5})
	if err == nil || !strings.Contains(err.Error(), "constant") {
		t.Fatalf("err = %v, want one saying the features are constant", err)
	}
}
