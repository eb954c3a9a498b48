package network

import (
	"encoding/json"
	"fmt"
	"image/color"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/voxflow/voxflow/stages"
)

func f64p(v float64) *float64 { return &v }

// TrainParams declares the training params shared by tune-cl, tune-mse and
// pretrain; defaults differ per kind, so they are arguments.
func TrainParams(epochs, batch int, lr float64) []stages.ParamSpec {
	return []stages.ParamSpec{
		{Name: "epochs", Type: stages.TypeInt, Default: int64(epochs), Min: f64p(0), Doc: "maximum training epochs (0 = export init)"},
		{Name: "batch_size", Type: stages.TypeInt, Default: int64(batch), Min: f64p(2), Doc: "training batch size, clamped to the training set size"},
		{Name: "lr", Type: stages.TypeFloat, Default: lr, Min: f64p(0), Doc: "peak AdamW learning rate"},
		{Name: "weight_decay", Type: stages.TypeFloat, Default: 0.0, Min: f64p(0), Doc: "decoupled (AdamW) weight decay"},
		{Name: "warmup_epochs", Type: stages.TypeFloat, Default: 1.0, Min: f64p(0), Doc: "linear warm-up length; cosine decay follows"},
		{Name: "patience", Type: stages.TypeInt, Default: int64(5), Min: f64p(0), Doc: "early stopping: epochs without a better validation loss (0 = off)"},
		{Name: "seed", Type: stages.TypeInt, Default: int64(0), Doc: "seed for init, shuffling and dropout"},
		{Name: "dropout", Type: stages.TypeFloat, Default: 0.5, Min: f64p(0), Max: f64p(0.95), Doc: "classifier dropout while training (torchvision: 0.5)"},
		{Name: "backend", Type: stages.TypeString, Default: BackendGo, Enum: []string{BackendGo, BackendXLA}, Doc: "compute backend"},
	}
}

// BackboneLRParam declares backbone_lr_scale for the tuning stages.
func BackboneLRParam(def float64) stages.ParamSpec {
	return stages.ParamSpec{Name: "backbone_lr_scale", Type: stages.TypeFloat, Default: def, Min: f64p(0),
		Doc: "learning-rate multiplier for the pretrained network's parameters (the fresh head gets lr); 1 tunes all alike, 0 freezes the backbone"}
}

// BackboneLRScale returns TrainConfig.LRScale giving every parameter of
// cfg's network the multiplier scale (nil when scale is 1).
func BackboneLRScale(cfg Config, scale float64) map[string]float64 {
	if scale == 1 {
		return nil
	}
	m := map[string]float64{}
	for _, p := range cfg.Params() {
		m[p.Name] = scale
	}
	return m
}

// TrainConfigFrom reads the TrainParams from resolved params.
func TrainConfigFrom(p stages.Params) TrainConfig {
	return TrainConfig{
		Epochs: p.Int("epochs"), BatchSize: p.Int("batch_size"), LR: p.Float("lr"),
		WeightDecay: p.Float("weight_decay"), WarmupEpochs: p.Float("warmup_epochs"),
		Patience: p.Int("patience"), Seed: uint64(p.Int("seed")),
	}
}

// ProgressReporter adapts a stage's Progress to Fit's Reporter.
func ProgressReporter(pr stages.Progress) Reporter {
	return func(phase string, done, total float64, unit, msg string) {
		pr.Update(stages.Update{Phase: phase, Done: done, Total: total, Unit: unit, Message: msg})
	}
}

// LoadNet reads a network artifact directory (config.json +
// weights.safetensors) and checks the weights fit the config.
func LoadNet(dir string) (Config, Weights, error) {
	cfg, err := LoadConfig(dir)
	if err != nil {
		return Config{}, nil, err
	}
	w, _, err := ReadSafetensors(filepath.Join(dir, WeightsFile))
	if err != nil {
		return Config{}, nil, err
	}
	// Extra tensors (torch's num_batches_tracked and the like) are dropped.
	net := Weights{}
	for _, p := range cfg.Params() {
		if t, ok := w[p.Name]; ok {
			net[p.Name] = t
		}
	}
	if err := CheckWeights(cfg.Params(), net); err != nil {
		return Config{}, nil, fmt.Errorf("%s: %w", filepath.Join(dir, WeightsFile), err)
	}
	return cfg, net, nil
}

// SaveNet writes a network artifact directory: config.json and
// weights.safetensors holding only the network's own parameters.
func SaveNet(dir string, cfg Config, w Weights) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save net: %w", err)
	}
	net := Weights{}
	for _, p := range cfg.Params() {
		net[p.Name] = w[p.Name]
	}
	if err := CheckWeights(cfg.Params(), net); err != nil {
		return fmt.Errorf("save net %s: %w", dir, err)
	}
	if err := cfg.Save(dir); err != nil {
		return err
	}
	return WriteSafetensors(filepath.Join(dir, WeightsFile), net, map[string]string{"arch": cfg.Arch, "format": "pt"})
}

// WriteJSON writes v indented to path.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// WriteCurve writes curve.json ({"epochs": [...], "best_epoch": k, ...})
// and curve.png (train and validation loss per epoch) under outDir.
func WriteCurve(outDir, title string, res *FitResult) error {
	curve := res.Curve
	if curve == nil {
		curve = []EpochStats{}
	}
	if err := WriteJSON(filepath.Join(outDir, "curve.json"), map[string]any{
		"epochs": curve, "best_epoch": res.BestEpoch, "best_val_loss": res.BestVal, "stopped": res.Stopped,
	}); err != nil {
		return err
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "epoch"
	p.Y.Label.Text = "loss"
	p.Legend.Top = true
	plotColors := [2]color.RGBA{{R: 31, G: 119, B: 180, A: 255}, {R: 214, G: 39, B: 40, A: 255}}
	tr, va := make(plotter.XYs, len(curve)), make(plotter.XYs, len(curve))
	for i, e := range curve {
		tr[i] = plotter.XY{X: float64(e.Epoch), Y: e.TrainLoss}
		va[i] = plotter.XY{X: float64(e.Epoch), Y: e.ValLoss}
	}
	for i, s := range []struct {
		name string
		xy   plotter.XYs
	}{{"train", tr}, {"validation", va}} {
		if len(s.xy) == 0 {
			continue
		}
		l, pts, err := plotter.NewLinePoints(s.xy)
		if err != nil {
			return fmt.Errorf("plot %s curve: %w", s.name, err)
		}
		l.Color = plotColors[i]
		pts.Color = plotColors[i]
		p.Add(l, pts)
		p.Legend.Add(s.name, l, pts)
	}
	// Headroom above the curves for the legend (top right), so that it
	// never sits on a line.
	if p.Y.Max > p.Y.Min {
		p.Y.Max += 0.25 * (p.Y.Max - p.Y.Min)
	}
	path := filepath.Join(outDir, "curve.png")
	if err := p.Save(6*vg.Inch, 4*vg.Inch, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// DropoutMasks draws the two classifier dropout masks for a batch of n:
// classifier.0 acts on the pooled features ([n, Channels[4]*PoolSize^2]),
// classifier.3 on the first hidden layer ([n, Hidden[0]]). Values are 0 or
// 1/(1-p), as torch's inverted dropout; p = 0 gives all-ones masks.
func DropoutMasks(rng *rand.Rand, cfg Config, n int, p float64) []*tensors.Tensor {
	out := make([]*tensors.Tensor, 2)
	for k, h := range [2]int{cfg.Channels[4] * cfg.PoolSize * cfg.PoolSize, cfg.Hidden[0]} {
		m := make([]float32, n*h)
		keep := float32(1 / (1 - p))
		for i := range m {
			if p == 0 || rng.Float64() >= p {
				m[i] = keep
			}
		}
		out[k] = tensors.FromFlatDataAndDimensions(m, n, h)
	}
	return out
}

// GatherImages copies images idx (each 3 x s x s) of a flat uint8 array
// into a new [len(idx),3,s,s] tensor.
func GatherImages(all []uint8, s int, idx []int) *tensors.Tensor {
	sz := 3 * s * s
	out := make([]uint8, len(idx)*sz)
	for i, j := range idx {
		copy(out[i*sz:(i+1)*sz], all[j*sz:(j+1)*sz])
	}
	return tensors.FromFlatDataAndDimensions(out, len(idx), 3, s, s)
}

// GatherRows copies rows idx (each d wide) of a flat float32 matrix into a
// new [len(idx), d] tensor.
func GatherRows(all []float32, d int, idx []int) *tensors.Tensor {
	out := make([]float32, len(idx)*d)
	for i, j := range idx {
		copy(out[i*d:(i+1)*d], all[j*d:(j+1)*d])
	}
	return tensors.FromFlatDataAndDimensions(out, len(idx), d)
}

// ResizeImages rescales n uint8 images 3 x from x from to 3 x to x to with
// bilinear interpolation (half-pixel centres, as torch's
// interpolate(align_corners=False)); from == to returns src unchanged.
func ResizeImages(src []uint8, n, from, to int) []uint8 {
	if from == to {
		return src
	}
	dst := make([]uint8, n*3*to*to)
	scale := float64(from) / float64(to)
	type tap struct {
		i0, i1 int
		w1     float64
	}
	taps := make([]tap, to)
	for o := range taps {
		x := (float64(o)+0.5)*scale - 0.5
		if x < 0 {
			x = 0
		}
		i0 := int(x)
		i1 := min(i0+1, from-1)
		taps[o] = tap{i0, i1, x - float64(i0)}
	}
	for c := 0; c < n*3; c++ {
		s := src[c*from*from : (c+1)*from*from]
		d := dst[c*to*to : (c+1)*to*to]
		for y, ty := range taps {
			for x, tx := range taps {
				v00 := float64(s[ty.i0*from+tx.i0])
				v01 := float64(s[ty.i0*from+tx.i1])
				v10 := float64(s[ty.i1*from+tx.i0])
				v11 := float64(s[ty.i1*from+tx.i1])
				v := (v00*(1-tx.w1)+v01*tx.w1)*(1-ty.w1) + (v10*(1-tx.w1)+v11*tx.w1)*ty.w1
				d[y*to+x] = uint8(min(255, v+0.5))
			}
		}
	}
	return dst
}

// RunOutputs is what a training stage writes under its OutDir.
type RunOutputs struct {
	Net      Config
	Result   *FitResult
	Head     Weights        // optional: extra trained weights saved as net/head.safetensors
	Resolved map[string]any // written as config.json
	Metrics  map[string]any // merged into metrics.json beside the standard ones
	Title    string         // plot title
}

// WriteRunOutputs writes net/ (weights.safetensors, config.json and, when
// set, head.safetensors), curve.json, curve.png, config.json and
// metrics.json (best_val_loss, best_epoch, epochs_run, images_per_s plus
// o.Metrics).
func WriteRunOutputs(outDir string, o RunOutputs) error {
	netDir := filepath.Join(outDir, "net")
	if err := SaveNet(netDir, o.Net, o.Result.Best); err != nil {
		return err
	}
	if len(o.Head) > 0 {
		if err := WriteSafetensors(filepath.Join(netDir, "head.safetensors"), o.Head, nil); err != nil {
			return err
		}
	}
	if err := WriteCurve(outDir, o.Title, o.Result); err != nil {
		return err
	}
	if err := WriteJSON(filepath.Join(outDir, "config.json"), o.Resolved); err != nil {
		return err
	}
	m := map[string]any{
		"best_val_loss": o.Result.BestVal, "best_epoch": o.Result.BestEpoch,
		"epochs_run": len(o.Result.Curve), "images_per_s": o.Result.ImagesPerSec,
	}
	if n := len(o.Result.Curve); n > 0 {
		m["final_train_loss"] = o.Result.Curve[n-1].TrainLoss
		m["first_train_loss"] = o.Result.Curve[0].TrainLoss
	}
	for k, v := range o.Metrics {
		m[k] = v
	}
	return WriteJSON(filepath.Join(outDir, "metrics.json"), m)
}

// ResolvedParams copies resolved params into a plain map for config.json.
func ResolvedParams(p stages.Params) map[string]any {
	out := map[string]any{}
	for k, v := range p {
		out[k] = v
	}
	return out
}

// Subset returns the tensors of w whose names appear in specs.
func Subset(w Weights, specs []ParamSpec) Weights {
	out := Weights{}
	for _, p := range specs {
		if t, ok := w[p.Name]; ok {
			out[p.Name] = t
		}
	}
	return out
}

// TuneInputs are the input ports of the fine-tuning kinds (tune-cl,
// tune-mse): the data to tune on and the network to start from.
func TuneInputs() []stages.PortSpec {
	return []stages.PortSpec{
		{Name: "data", Doc: "NSD-like data artifact"},
		{Name: "init", Doc: "network artifact to start from (weights.safetensors + config.json)"},
	}
}

// TuneOutputs are the output ports of the fine-tuning kinds.
func TuneOutputs() []stages.PortSpec {
	return []stages.PortSpec{
		{Name: "net", Doc: "tuned network (weights.safetensors, config.json, head.safetensors)"},
		{Name: "curve.json", Doc: "train/validation loss and images/s per epoch"},
		{Name: "curve.png", Doc: "training curve plot"},
		{Name: "config.json", Doc: "resolved configuration"},
	}
}

// LoadTuneInputs reads a fine-tuning request's inputs: the starting
// network and the (subject, roi) responses, images resized to the
// network's input.
func LoadTuneInputs(kind string, req *stages.Request) (Config, Weights, *ROIData, error) {
	if len(req.Inputs["data"]) != 1 || len(req.Inputs["init"]) != 1 {
		return Config{}, nil, nil, fmt.Errorf("%s: want one data and one init artifact, have %d and %d", kind, len(req.Inputs["data"]), len(req.Inputs["init"]))
	}
	cfg, init, err := LoadNet(req.Inputs["init"][0].Path)
	if err != nil {
		return Config{}, nil, nil, fmt.Errorf("input init: %w", err)
	}
	d, err := LoadROIData(req.Inputs["data"][0].Path, req.Params.String("subject"), req.Params.String("roi"), cfg.ImageSize)
	if err != nil {
		return Config{}, nil, nil, fmt.Errorf("input data: %w", err)
	}
	return cfg, init, d, nil
}
