// Package python_test holds the Go side of the checks that voxflow-torch,
// the PyTorch plugin under plugins/python, computes what the Go stages
// compute.
package python_test

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/voxflow/voxflow/numerics/network"
	"github.com/voxflow/voxflow/numerics/npy"
	"github.com/voxflow/voxflow/stages/training"
	"github.com/voxflow/voxflow/stages/tunecl"
	"github.com/voxflow/voxflow/stages/tunemse"
)

// parityFixture writes a seeded alexnet-mini, a batch of n images and
// responses, and the settings for torch_step.py into a new directory.
func parityFixture(t *testing.T, n, v int) (string, network.Config, network.Weights, *training.ROIData) {
	t.Helper()
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("no /usr/bin/python3")
	}
	dir := t.TempDir()
	cfg := network.Mini(1000)
	// torch's default init, as a pretrained network has: no zero biases.
	w, err := cfg.InitWeightsScheme(3, network.InitTorch)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(11, 12))
	s := cfg.ImageSize
	// Images that differ in colour and layout, not only in pixel noise:
	// random-noise images give nearly equal network outputs, and
	// BatchNorm over a batch of nearly equal rows amplifies rounding.
	imgs := make([]uint8, n*3*s*s)
	for i := range n {
		for c := range 3 {
			base, gx, gy := rng.Float64()*255, (rng.Float64()-0.5)*8, (rng.Float64()-0.5)*8
			for y := range s {
				for x := range s {
					v := base + gx*float64(x-s/2) + gy*float64(y-s/2) + rng.NormFloat64()*10
					imgs[((i*3+c)*s+y)*s+x] = uint8(max(0, min(255, v)))
				}
			}
		}
	}
	vox := make([]float32, n*v)
	for i := range vox {
		vox[i] = float32(rng.NormFloat64())
	}
	if err := npy.WriteFile(filepath.Join(dir, "images.npy"), []int{n, 3, s, s}, imgs); err != nil {
		t.Fatal(err)
	}
	if err := npy.WriteFile(filepath.Join(dir, "voxels.npy"), []int{n, v}, vox); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Save(dir); err != nil {
		t.Fatal(err)
	}
	split := training.ROISplit{N: n, Images: imgs, Voxels: vox}
	return dir, cfg, w, &training.ROIData{Subject: "subj01", ROI: "FFA-1", V: v, Train: split, Val: split}
}

// runTorch runs torch_step.py with settings and returns its outputs.
func runTorch(t *testing.T, dir string, w network.Weights, settings map[string]any) (network.Weights, map[string]string) {
	t.Helper()
	if err := network.WriteSafetensors(filepath.Join(dir, "init.safetensors"), w, nil); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(settings)
	if err := os.WriteFile(filepath.Join(dir, "settings.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("/usr/bin/python3", "testdata/torch_step.py", dir).CombinedOutput(); err != nil {
		t.Fatalf("torch_step.py: %v\n%s", err, out)
	}
	got, meta, err := network.ReadSafetensors(filepath.Join(dir, "torch_out.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	return got, meta
}

// relDiff is |a - b| / |b| over a whole tensor (Euclidean norms).
func relDiff(a, b []float32) float64 {
	var num, den float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		num += d * d
		den += float64(b[i]) * float64(b[i])
	}
	if den == 0 {
		return math.Sqrt(num)
	}
	return math.Sqrt(num / den)
}

// AdamW settings of the parity step. Adam's first step is lr * g / (|g| +
// eps): with the usual eps of 1e-8 it is lr * sign(g), so wherever the true
// gradient is 0 (a BatchNorm in training mode removes every shift constant
// across the batch, making the gradients of classifier.6.bias, g_a.bias,
// ... exactly 0) or near it, two float32 computations move a weight by
// +-lr at random. eps = 1 makes the step a smooth function of the
// gradient, so the comparison tests the forward pass, the backward pass
// and every term of the AdamW update (moments, bias correction, decay)
// rather than the sign of rounding noise.
const adamEps, adamDecay = 1.0, 0.01

// oneStep trains obj for one step (epochs 1, batch = the whole training
// set, warm-up of one step, so the step's rate is lr) with the Go stages'
// loop and returns the weights after it and the step's loss.
func oneStep(t *testing.T, obj network.Objective, w network.Weights, n int, lr float64) (network.Weights, float64) {
	t.Helper()
	backend, err := network.NewBackend(network.BackendGo)
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Finalize()
	tc := network.TrainConfig{Epochs: 1, BatchSize: n, LR: lr, WarmupEpochs: 1, Seed: 1, Eps: adamEps, WeightDecay: adamDecay}
	res, err := network.Fit(context.Background(), backend, obj, w.Clone(), n, n, tc, nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return res.Best, res.Curve[0].TrainLoss
}

func compareStep(t *testing.T, kind string, init, goW, torchW network.Weights, goLoss, lr float64, meta map[string]string) {
	t.Helper()
	torchLoss, err1 := strconv.ParseFloat(meta["loss"], 64)
	ref, err2 := strconv.ParseFloat(meta["loss64"], 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("torch losses %q, %q", meta["loss"], meta["loss64"])
	}
	// Each float32 loss against the float64 reference: at tau = 0.1 the
	// two float32 computations round on opposite sides of it.
	for _, l := range []struct {
		who string
		v   float64
	}{{"Go", goLoss}, {"torch", torchLoss}} {
		if d := math.Abs(l.v-ref) / math.Abs(ref); d > 1e-5 {
			t.Errorf("%s %s loss %.8g vs float64 %.8g: relative difference %.2g, want <= 1e-5", kind, l.who, l.v, ref, d)
		}
	}
	worst, worstName := 0.0, ""
	for name, g := range goW {
		tw, ok := torchW[name]
		if !ok {
			t.Errorf("%s: torch has no %s", kind, name)
			continue
		}
		if relDiff(g.Data, init[name].Data) == 0 {
			t.Errorf("%s: the step left %s unchanged", kind, name)
		}
		if d := relDiff(g.Data, tw.Data); d > worst {
			worst, worstName = d, name
		}
	}
	if worst > 1e-5 {
		t.Errorf("%s: weights after one AdamW step differ by %.2g (relative, %s), want <= 1e-5", kind, worst, worstName)
	}
	t.Logf("%s: loss Go %.8g torch %.8g float64 %.8g; weights after one step agree to %.2g (worst %s)", kind, goLoss, torchLoss, ref, worst, worstName)
}

// TestTorchTuneStepParity: from the same weights, batch and learning rate,
// with dropout off, one optimiser step of tune-cl (each denominator,
// symmetric or not) and of tune-mse gives the same loss and weights in
// voxflow-torch as in the Go stages.
func TestTorchTuneStepParity(t *testing.T) {
	// lr is the demo's backbone rate (tune_lr 1e-3 x backbone_lr_scale 0.3).
	const n, v, lr = 24, 30, 3e-4
	for _, tc := range []struct {
		denom     string
		symmetric bool
	}{{network.DenomDecoupled, false}, {network.DenomSimCLR, true}} {
		dir, cfg, w, d := parityFixture(t, n, v)
		head := network.Head{In: cfg.NumClasses, Voxels: v, V1: 16, V2: 8}
		// BatchNorm's affine parameters as after some training rather
		// than at their init of 1 and 0: a zero tensor makes a relative
		// comparison of its one step measure rounding alone.
		rng := rand.New(rand.NewPCG(21, 22))
		hw := head.InitWeights(5)
		for _, k := range []string{"g_h.1.weight", "g_h.1.bias", "g_h.4.weight", "g_h.4.bias"} {
			for i := range hw[k].Data {
				hw[k].Data[i] += float32(rng.NormFloat64() * 0.1)
			}
		}
		for k, x := range hw {
			w[k] = x
		}
		goW, goLoss := oneStep(t, tunecl.Objective(cfg, head, d, 0.1, tc.denom, tc.symmetric, 0), w, n, lr)
		torchW, meta := runTorch(t, dir, w, map[string]any{"kind": "tune-cl", "v1": 16, "v2": 8, "tau": 0.1,
			"denominator": tc.denom, "symmetric": tc.symmetric, "lr": lr, "eps": adamEps, "weight_decay": adamDecay})
		compareStep(t, "tune-cl/"+tc.denom, w, goW, torchW, goLoss, lr, meta)
	}
	dir, cfg, w, d := parityFixture(t, n, v)
	head := network.MSEHead{In: cfg.NumClasses, Voxels: v}
	for k, x := range head.InitWeights(5) {
		w[k] = x
	}
	goW, goLoss := oneStep(t, tunemse.Objective(cfg, head, d, 0), w, n, lr)
	torchW, meta := runTorch(t, dir, w, map[string]any{"kind": "tune-mse", "lr": lr, "eps": adamEps, "weight_decay": adamDecay})
	compareStep(t, "tune-mse", w, goW, torchW, goLoss, lr, meta)
}

// TestTorchFeaturesParity: voxflow-torch's layer outputs equal the Go
// network's for conv, pooling and classifier layers.
func TestTorchFeaturesParity(t *testing.T) {
	const n = 8
	dir, cfg, w, d := parityFixture(t, n, 4)
	layers := []string{"features.2", "features.9", "avgpool", "classifier.2", "output"}
	torchOut, _ := runTorch(t, dir, w, map[string]any{"kind": "features", "layers": layers})
	backend, err := network.NewBackend(network.BackendGo)
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Finalize()
	for _, layer := range layers {
		pr, err := network.NewPredictor(backend, cfg, w, layer)
		if err != nil {
			t.Fatal(err)
		}
		got, dim, err := pr.Run(d.Train.Images, n)
		pr.Close()
		if err != nil {
			t.Fatal(err)
		}
		tw := torchOut[layer]
		if len(tw.Data) != n*dim {
			t.Fatalf("%s: torch %v, Go %d x %d", layer, tw.Shape, n, dim)
		}
		if r := relDiff(got, tw.Data); r > 1e-5 {
			t.Errorf("%s: Go and torch features differ by %.2g (relative), want <= 1e-5", layer, r)
		} else {
			t.Logf("%s (%d-d): agree to %.2g", layer, dim, r)
		}
	}
}
