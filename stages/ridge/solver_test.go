package ridge

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/voxflow/voxflow/stages/linalg"
	"github.com/voxflow/voxflow/stages/npy"
	"gonum.org/v1/gonum/mat"
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
// centre the training rows, solve the normal equations, predict the
// held-out rows and score them.
func loopCV(xs []float64, n, p int, y []float64, v int, alphas []float64, folds int, score string) (alpha, best []float64) {
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
			mu := make([]float64, p)
			ybar := 0.0
			for _, i := range tr {
				for k := 0; k < p; k++ {
					mu[k] += xs[i*p+k] / float64(len(tr))
				}
				ybar += y[i*v+j] / float64(len(tr))
			}
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
	} {
		t.Run(tc.name, func(t *testing.T) {
			x, y := plantedData(uint64(tc.n+tc.p), tc.n, tc.p, tc.v)
			xs, _, _ := linalg.Standardize(x, tc.n, tc.p, nil, nil)
			score := ScoreMSE
			if tc.score == 1 {
				score = ScoreR
			}
			alphas := logspace(-2, 4, 13)
			cfg := Config{Alphas: alphas, Folds: tc.k, Score: score, VoxelBatch: tc.batch}
			got, gotScore, err := CrossValidate(context.Background(), xs, tc.n, tc.p, y, tc.v, tc.v, cfg)
			if err != nil {
				t.Fatal(err)
			}
			want, wantScore := loopCV(xs, tc.n, tc.p, y, tc.v, alphas, tc.k, score)
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
			got32, score32, err := CrossValidate(context.Background(), f32(xs), tc.n, tc.p, f32(y), tc.v, tc.v, cfg)
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
	xs, mean, scale := linalg.Standardize(xtr, n, p, nil, nil)
	w, b, err := Refit(context.Background(), xs, n, p, ytr, v, v, alpha, Config{})
	if err != nil {
		t.Fatal(err)
	}
	m := &Model[float64]{P: p, V: v, Mean: mean, Scale: scale, Alpha: alpha, Weights: w, Intercept: b}
	pred := m.Predict(xte, nt)
	for _, c := range []struct {
		name string
		got  []float64
	}{{"coef", w}, {"intercept", b}, {"pred", pred}} {
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
	m, _, err := FitCV(context.Background(), f32(x[:n*p]), n, p, f32(y[:n*v]), v, v, Config{Alphas: logspace(-1, 6, 15), Folds: 5})
	if err != nil {
		t.Fatal(err)
	}
	pred := m.Predict(f32(x[n*p:]), nt)
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
	if _, _, err := FitCV(ctx, x, 50, 4, y, 3, 3, Config{Alphas: []float64{1}, Folds: 5}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// TestCrossValidateBatchInvariance compares large voxel batches, whose
// element-wise passes run on several goroutines, with small serial ones.
func TestCrossValidateBatchInvariance(t *testing.T) {
	n, p, v := 300, 70, 1000
	x, y := plantedData(5, n, p, v)
	xs, _, _ := linalg.Standardize(x, n, p, nil, nil)
	for _, score := range []string{ScoreMSE, ScoreR} {
		cfg := Config{Alphas: logspace(-1, 6, 15), Folds: 5, Score: score}
		cfg.VoxelBatch = v
		a1, s1, err := CrossValidate(context.Background(), xs, n, p, y, v, v, cfg)
		if err != nil {
			t.Fatal(err)
		}
		cfg.VoxelBatch = 37
		a2, s2, err := CrossValidate(context.Background(), xs, n, p, y, v, v, cfg)
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
