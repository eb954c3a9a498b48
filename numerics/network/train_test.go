package network

import (
	"context"
	"io"
	"math"
	"math/rand/v2"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // graph code reads best unqualified
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// regression is a linear least-squares objective whose validation targets
// come from a different map than the training ones, so that fitting the
// training data makes validation worse: early stopping must trigger and
// the best checkpoint must be an early epoch's.
func regression(n, d int) (Objective, Weights) { return leastSquares(n, d, 1, true) }

// fitLine is least squares on one linear map for training and validation
// alike, so that validation improves every epoch and the best checkpoint
// is the last epoch's.
func fitLine(n, d int) (Objective, Weights) { return leastSquares(n, d, 2, false) }

// leastSquares fits y = x.w to y_j = sum_j (j+1) x_j on n random rows of d
// features drawn from seed; with flipVal the validation targets are the
// negated map.
func leastSquares(n, d int, seed uint64, flipVal bool) (Objective, Weights) {
	rng := newRand(seed)
	x := make([]float32, n*d)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	yTrain, yVal := make([]float32, n), make([]float32, n)
	for i := range n {
		var a float64
		for j := range d {
			a += float64(x[i*d+j]) * float64(j+1)
		}
		yTrain[i], yVal[i] = float32(a), float32(a)
		if flipVal {
			yVal[i] = float32(-a)
		}
	}
	obj := Objective{
		Trainable: []ParamSpec{{"w", []int{d, 1}}},
		Loss: func(p map[string]*Node, batch []*Node, train bool) (*Node, map[string]*Node) {
			return MSELoss(Einsum("nd,dk->nk", batch[0], p["w"]), batch[1]), nil
		},
		Batch: func(split string, idx []int, _ *rand.Rand) ([]*tensors.Tensor, error) {
			y := yVal
			if split == "train" {
				y = yTrain
			}
			ys := make([]float32, len(idx))
			for i, j := range idx {
				ys[i] = y[j]
			}
			return []*tensors.Tensor{GatherRows(x, d, idx), tensors.FromFlatDataAndDimensions(ys, len(idx), 1)}, nil
		},
	}
	return obj, Weights{"w": NewTensor(d, 1)}
}

func TestFitEarlyStoppingKeepsBestCheckpoint(t *testing.T) {
	obj, init := regression(64, 4)
	cfg := TrainConfig{Epochs: 30, BatchSize: 16, LR: 0.05, Patience: 3, Seed: 1}
	var updates int
	res, err := Fit(context.Background(), testBackend(t), obj, init, 64, 64, cfg,
		func(string, float64, float64, string, string) { updates++ }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != "patience" || len(res.Curve) != res.BestEpoch+cfg.Patience {
		t.Fatalf("stopped %q after %d epochs, best epoch %d, patience %d", res.Stopped, len(res.Curve), res.BestEpoch, cfg.Patience)
	}
	if updates != len(res.Curve)*4 {
		t.Errorf("%d progress updates, want one per step (%d)", updates, len(res.Curve)*4)
	}
	best := math.Inf(1)
	for _, e := range res.Curve {
		best = math.Min(best, e.ValLoss)
	}
	if res.BestVal != best || res.Curve[res.BestEpoch-1].ValLoss != best {
		t.Errorf("best val %v at epoch %d, curve minimum %v", res.BestVal, res.BestEpoch, best)
	}
	if !(res.Curve[len(res.Curve)-1].TrainLoss < res.Curve[0].TrainLoss) {
		t.Errorf("training loss did not drop: %+v", res.Curve)
	}
	// The returned weights are the best epoch's: re-evaluating them gives
	// the recorded best validation loss, not the last epoch's.
	again, err := Fit(context.Background(), testBackend(t), obj, res.Best, 64, 64, TrainConfig{Epochs: 0, BatchSize: 16}, nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(again.BestVal-res.BestVal) > 1e-6*math.Max(1, res.BestVal) {
		t.Errorf("best weights evaluate to val loss %v, recorded %v", again.BestVal, res.BestVal)
	}
}

func TestFitIsDeterministic(t *testing.T) {
	obj, init := regression(48, 3)
	cfg := TrainConfig{Epochs: 3, BatchSize: 8, LR: 0.01, WeightDecay: 0.01, WarmupEpochs: 1, Seed: 7}
	run := func(seed uint64) []float32 {
		c := cfg
		c.Seed = seed
		res, err := Fit(context.Background(), testBackend(t), obj, init, 48, 48, c, func(string, float64, float64, string, string) {}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		return res.Best["w"].Data
	}
	a, b, c := run(7), run(7), run(8)
	same := func(x, y []float32) bool {
		for i := range x {
			if math.Float32bits(x[i]) != math.Float32bits(y[i]) {
				return false
			}
		}
		return true
	}
	if !same(a, b) {
		t.Errorf("same seed, different weights: %v vs %v", a, b)
	}
	if same(a, c) {
		t.Error("different seeds (different shuffles), identical weights")
	}
}

// TestAdamWMatchesTorch runs three host AdamW steps and compares them with
// torch.optim.AdamW on the same gradients.
func TestAdamWMatchesTorch(t *testing.T) {
	const n, steps = 1 << 17, 3 // large enough to take the parallel path
	rng := newRand(3)
	p0 := make([]float32, n)
	gs := make([]float32, steps*n)
	for i := range p0 {
		p0[i] = float32(rng.NormFloat64())
	}
	for i := range gs {
		gs[i] = float32(rng.NormFloat64() * 0.1)
	}
	dir := t.TempDir()
	saveNpy(t, dir+"/p.npy", tensors.FromFlatDataAndDimensions(p0, n))
	saveNpy(t, dir+"/g.npy", tensors.FromFlatDataAndDimensions(gs, steps, n))
	torchRef(t, "adamw", dir+"/p.npy", dir+"/g.npy", "0.01", "0.1", dir+"/out.npy")
	want, _ := loadNpyF32(t, dir+"/out.npy")

	param := tensors.FromFlatDataAndDimensions(p0, n)
	m, v := make([]float32, n), make([]float32, n)
	for k := range steps {
		g := tensors.FromFlatDataAndDimensions(gs[k*n:(k+1)*n], n)
		if err := adamW(param, g, m, v, adamHyper{lr: 0.01, b1: 0.9, b2: 0.999, eps: 1e-8, wd: 0.1, t: k + 1}); err != nil {
			t.Fatal(err)
		}
	}
	got := tensors.MustCopyFlatData[float32](param)
	var maxd float64
	for i := range got {
		maxd = math.Max(maxd, math.Abs(float64(got[i]-want[i])))
	}
	if maxd > 1e-6 {
		t.Errorf("AdamW differs from torch by up to %g", maxd)
	}
}

// LRScale 0 freezes a parameter; other parameters still train.
func TestFitLRScaleFreezes(t *testing.T) {
	obj, init := regression(64, 4)
	obj.Trainable = append(obj.Trainable, ParamSpec{"frozen", []int{1}})
	loss := obj.Loss
	obj.Loss = func(p map[string]*Node, batch []*Node, train bool) (*Node, map[string]*Node) {
		l, s := loss(p, batch, train)
		return Add(l, ReduceAllSum(Square(p["frozen"]))), s
	}
	init["frozen"] = filled(3, 1)
	cfg := TrainConfig{Epochs: 3, BatchSize: 16, LR: 0.05, Seed: 1, LRScale: map[string]float64{"frozen": 0}}
	res, err := Fit(context.Background(), testBackend(t), obj, init, 64, 64, cfg, nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Best["frozen"].Data[0]; got != 3 {
		t.Errorf("frozen parameter moved: %v", got)
	}
	var moved bool
	for _, v := range res.Best["w"].Data {
		moved = moved || v != 0
	}
	if !moved {
		t.Error("unscaled parameter did not train")
	}
}
