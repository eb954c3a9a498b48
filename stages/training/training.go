// Package training is the kit the training kinds (pretrain, tune-cl,
// tune-mse) share: their common params, inputs and outputs, loading a
// tuning request's data, and writing a run's network, curve and metrics.
package training

import (
	"fmt"
	"image/color"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/voxflow/voxflow/internal/jsonfile"
	"github.com/voxflow/voxflow/numerics/network"
	"github.com/voxflow/voxflow/stages"
	"github.com/voxflow/voxflow/stages/artifact"
)

// TrainParams declares the training params shared by tune-cl, tune-mse and
// pretrain; defaults differ per kind, so they are arguments.
func TrainParams(epochs, batch int, lr float64) []stages.ParamSpec {
	return []stages.ParamSpec{
		{Name: "epochs", Type: stages.TypeInt, Default: int64(epochs), Min: stages.Bound(0), Doc: "maximum training epochs (0 = export init)"},
		{Name: "batch_size", Type: stages.TypeInt, Default: int64(batch), Min: stages.Bound(2), Doc: "training batch size, clamped to the training set size"},
		{Name: "lr", Type: stages.TypeFloat, Default: lr, Min: stages.Bound(0), Doc: "peak AdamW learning rate"},
		{Name: "weight_decay", Type: stages.TypeFloat, Default: 0.0, Min: stages.Bound(0), Doc: "decoupled (AdamW) weight decay"},
		{Name: "warmup_epochs", Type: stages.TypeFloat, Default: 1.0, Min: stages.Bound(0), Doc: "linear warm-up length; cosine decay follows"},
		{Name: "patience", Type: stages.TypeInt, Default: int64(5), Min: stages.Bound(0), Doc: "early stopping: epochs without a better validation loss (0 = off)"},
		{Name: "seed", Type: stages.TypeInt, Default: int64(0), Doc: "seed for init, shuffling and dropout"},
		{Name: "dropout", Type: stages.TypeFloat, Default: 0.5, Min: stages.Bound(0), Max: stages.Bound(0.95), Doc: "classifier dropout while training (torchvision: 0.5)"},
		{Name: "backend", Type: stages.TypeString, Default: network.BackendGo, Enum: []string{network.BackendGo, network.BackendXLA}, Doc: "compute backend"},
	}
}

// BackboneLRParam declares backbone_lr_scale for the tuning stages.
func BackboneLRParam(def float64) stages.ParamSpec {
	return stages.ParamSpec{Name: "backbone_lr_scale", Type: stages.TypeFloat, Default: def, Min: stages.Bound(0),
		Doc: "learning-rate multiplier for the pretrained network's parameters (the fresh head gets lr); 1 tunes all alike, 0 freezes the backbone"}
}

// backboneLRScale returns network.TrainConfig.LRScale giving every parameter of
// cfg's network the multiplier scale (nil when scale is 1).
func backboneLRScale(cfg network.Config, scale float64) map[string]float64 {
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
func TrainConfigFrom(p stages.Params) network.TrainConfig {
	return network.TrainConfig{
		Epochs: p.Int("epochs"), BatchSize: p.Int("batch_size"), LR: p.Float("lr"),
		WeightDecay: p.Float("weight_decay"), WarmupEpochs: p.Float("warmup_epochs"),
		Patience: p.Int("patience"), Seed: uint64(p.Int("seed")),
	}
}

// ProgressReporter adapts a stage's Progress to Fit's network.Reporter.
func ProgressReporter(pr stages.Progress) network.Reporter {
	return func(phase string, done, total float64, unit, msg string) {
		pr.Update(stages.Update{Phase: phase, Done: done, Total: total, Unit: unit, Message: msg})
	}
}

// writeCurve writes curve.json (artifact.Curve)
// and curve.png (train and validation loss per epoch) under outDir.
func writeCurve(outDir, title string, res *network.FitResult) error {
	curve := res.Curve
	if curve == nil {
		curve = []network.EpochStats{}
	}
	if err := jsonfile.Write(filepath.Join(outDir, artifact.CurveFile), map[string]any{
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

// RunOutputs is what a training stage writes under its OutDir.
type RunOutputs struct {
	Net      network.Config
	Result   *network.FitResult
	Head     network.Weights // optional: extra trained weights saved as net/head.safetensors
	Resolved map[string]any  // written as config.json
	Metrics  map[string]any  // merged into metrics.json beside the standard ones
	Title    string          // plot title
}

// WriteRunOutputs writes net/ (weights.safetensors, config.json and, when
// set, head.safetensors), curve.json, curve.png, config.json and
// metrics.json (best_val_loss, best_epoch, epochs_run, images_per_s plus
// o.Metrics).
func WriteRunOutputs(outDir string, o RunOutputs) error {
	netDir := filepath.Join(outDir, "net")
	if err := artifact.SaveNet(netDir, o.Net, o.Result.Best); err != nil {
		return err
	}
	if len(o.Head) > 0 {
		if err := network.WriteSafetensors(filepath.Join(netDir, "head.safetensors"), o.Head, nil); err != nil {
			return err
		}
	}
	if err := writeCurve(outDir, o.Title, o.Result); err != nil {
		return err
	}
	if err := jsonfile.Write(filepath.Join(outDir, "config.json"), o.Resolved); err != nil {
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
	return jsonfile.Write(filepath.Join(outDir, "metrics.json"), m)
}

// ResolvedParams copies resolved params into a plain map for config.json.
func ResolvedParams(p stages.Params) map[string]any {
	out := map[string]any{}
	for k, v := range p {
		out[k] = v
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

// loadTuneInputs reads a fine-tuning request's inputs: the starting
// network and the (subject, roi) responses, images resized to the
// network's input.
func loadTuneInputs(kind string, req *stages.Request) (network.Config, network.Weights, *ROIData, error) {
	if len(req.Inputs["data"]) != 1 || len(req.Inputs["init"]) != 1 {
		return network.Config{}, nil, nil, fmt.Errorf("%s: want one data and one init artifact, have %d and %d", kind, len(req.Inputs["data"]), len(req.Inputs["init"]))
	}
	cfg, init, err := artifact.LoadNet(req.Inputs["init"][0].Path)
	if err != nil {
		return network.Config{}, nil, nil, fmt.Errorf("input init: %w", err)
	}
	d, err := loadROIData(req.Inputs["data"][0].Path, req.Params.String("subject"), req.Params.String("roi"), cfg.ImageSize)
	if err != nil {
		return network.Config{}, nil, nil, fmt.Errorf("input data: %w", err)
	}
	return cfg, init, d, nil
}
