// Package pretrain is the pretrain stage kind: the offline stand-in for
// ImageNet pretraining. It trains an AlexNet (alexnet-mini by default) by
// classification on a classification data artifact, or, with init set to a
// weights file and epochs 0, imports that file as a network artifact (the
// control network for real data, e.g. torchvision's AlexNet exported to
// safetensors).
package pretrain

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strings"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // graph code reads best unqualified
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/voxflow/voxflow/internal/jsonfile"
	"github.com/voxflow/voxflow/numerics/network"
	"github.com/voxflow/voxflow/stages"
	"github.com/voxflow/voxflow/stages/artifact"
	"github.com/voxflow/voxflow/stages/training"
)

// Kind is the stage kind name.
const Kind = "pretrain"

// InitRandom is the init value that starts from torch-style random weights.
const InitRandom = "random"

// Values of param loss_classes.
const (
	LossDataClasses = "data"
	LossAllClasses  = "all"
)

type stage struct{}

// New returns the pretrain stage kind.
func New() stages.Stage { return stage{} }

// Describe implements stages.Stage.
func (stage) Describe() stages.Description {
	params := []stages.ParamSpec{
		{Name: "arch", Type: stages.TypeString, Default: network.ArchMini, Enum: []string{network.ArchMini, network.ArchAlexNet}, Doc: "network architecture"},
		{Name: "image_size", Type: stages.TypeInt, Default: int64(0), Min: stages.Bound(0), Doc: "input size (0 = the arch's: 64 mini, 224 alexnet)"},
		{Name: "num_classes", Type: stages.TypeInt, Default: int64(1000), Min: stages.Bound(1), Doc: "output units (1000 as AlexNet, so downstream features are 1000-d); must cover the data's classes"},
		{Name: "init", Type: stages.TypePath, NotPaths: []string{InitRandom}, Default: InitRandom, Doc: "\"random\" or the path of a safetensors weights file with torchvision names (relative to the spec's directory; its content is part of the key)"},
		{Name: "loss_classes", Type: stages.TypeString, Default: LossDataClasses, Enum: []string{LossDataClasses, LossAllClasses},
			Doc: "data: the softmax covers only the data's classes (the other outputs of the 1000-d layer keep their init and serve as extra random read-outs of the penultimate layer); all: every output, so training first spends its steps pushing the unused logits down"},
		{Name: "init_scheme", Type: stages.TypeString, Default: network.InitKaiming, Enum: network.InitSchemes,
			Doc: "random init: kaiming (He normal convs, normal(0, 0.01) linears, zero biases; trains from scratch without BatchNorm) or torch (torchvision AlexNet's default uniform init)"},
	}
	params = append(params, training.TrainParams(10, 64, 1e-3)...)
	return stages.Description{
		Kind: Kind, Version: "2",
		Doc:    "train AlexNet/alexnet-mini by classification, or import a torchvision weights file",
		Params: params,
		Inputs: []stages.PortSpec{
			{Name: "data", Doc: "classification data artifact (not needed to import weights with epochs 0)", Optional: true},
		},
		Outputs: []stages.PortSpec{
			{Name: "net", Doc: "network (weights.safetensors, config.json)"},
			{Name: "curve.json", Doc: "train/validation loss and images/s per epoch"},
			{Name: "curve.png", Doc: "training curve plot"},
			{Name: "config.json", Doc: "resolved configuration"},
		},
		Isolate: "process",
	}
}

// Run implements stages.Stage.
func (stage) Run(ctx context.Context, req *stages.Request) error {
	p := req.Params
	cfg, err := network.ConfigFor(p.String("arch"), p.Int("num_classes"))
	if err != nil {
		return fmt.Errorf("param arch: %w", err)
	}
	if s := p.Int("image_size"); s > 0 {
		cfg.ImageSize = s
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("params arch/image_size/num_classes: %w", err)
	}
	tc := training.TrainConfigFrom(p)
	var w network.Weights
	init := p.String("init")
	if init == InitRandom {
		if w, err = cfg.InitWeightsScheme(tc.Seed, p.String("init_scheme")); err != nil {
			return fmt.Errorf("param init_scheme: %w", err)
		}
	} else {
		if w, err = importWeights(init, &cfg, req.Log); err != nil {
			return fmt.Errorf("param init: %w", err)
		}
	}
	cfg.Extra = map[string]any{"init": init, "pretrained_by": Kind}
	resolved := training.ResolvedParams(p)
	resolved["net"] = cfg
	if tc.Epochs == 0 {
		fmt.Fprintf(req.Log, "epochs 0: exporting %s as the network\n", init)
		if err := artifact.SaveNet(filepath.Join(req.OutDir, "net"), cfg, w); err != nil {
			return err
		}
		return jsonfile.Write(filepath.Join(req.OutDir, "config.json"), resolved)
	}
	if len(req.Inputs["data"]) != 1 {
		return fmt.Errorf("%s: training (epochs %d) needs one classification data artifact on input data, have %d", Kind, tc.Epochs, len(req.Inputs["data"]))
	}
	dataset := req.Inputs["data"][0].Path
	m, err := artifact.ReadManifest(dataset)
	if err != nil {
		return fmt.Errorf("input data: %w", err)
	}
	if m.Kind != artifact.KindClassification {
		return fmt.Errorf("input data %s: kind %q, want %q", dataset, m.Kind, artifact.KindClassification)
	}
	if len(m.Classes) > cfg.NumClasses {
		return fmt.Errorf("param num_classes %d < %d classes in %s", cfg.NumClasses, len(m.Classes), dataset)
	}
	train, err := training.LoadClassSplit(dataset, artifact.SplitTrain, cfg.ImageSize)
	if err != nil {
		return fmt.Errorf("input data: %w", err)
	}
	val, err := training.LoadClassSplit(dataset, artifact.SplitVal, cfg.ImageSize)
	if err != nil {
		return fmt.Errorf("input data: %w", err)
	}
	backend, err := network.NewBackend(p.String("backend"))
	if err != nil {
		return err
	}
	defer backend.Finalize()
	fmt.Fprintf(req.Log, "%s: %s %dpx on %s (%d classes): %d train / %d val images\n",
		req.Instance, cfg.Arch, cfg.ImageSize, m.Source, len(m.Classes), train.N, val.N)
	lossK := cfg.NumClasses
	if p.String("loss_classes") == LossDataClasses {
		lossK = len(m.Classes)
	}
	res, err := network.Fit(ctx, backend, Objective(cfg, train, val, p.Float("dropout"), lossK), w, train.N, val.N, tc,
		training.ProgressReporter(req.Progress), req.Log)
	if err != nil {
		return fmt.Errorf("%s: %w", req.Instance, err)
	}
	acc, err := Accuracy(backend, cfg, res.Best, val, p.Int("batch_size"), lossK)
	if err != nil {
		return err
	}
	fmt.Fprintf(req.Log, "best epoch %d: val loss %.4f, val accuracy %.3f\n", res.BestEpoch, res.BestVal, acc)
	cfg.Extra["source"] = m.Source
	resolved["n_train"], resolved["n_val"], resolved["classes"] = train.N, val.N, m.Classes
	return training.WriteRunOutputs(req.OutDir, training.RunOutputs{
		Net: cfg, Result: res, Resolved: resolved, Title: fmt.Sprintf("pretrain %s on %s", cfg.Arch, m.Source),
		Metrics: map[string]any{"val_accuracy": acc},
	})
}

// importWeights reads a safetensors file with torchvision names, adapting
// cfg's num_classes to the file's classifier.6 and dropping extra tensors.
// A state dict saved from nn.DataParallel or DistributedDataParallel has
// every name prefixed with "module."; the prefix is stripped, and log says
// so.
func importWeights(path string, cfg *network.Config, log io.Writer) (network.Weights, error) {
	all, _, err := network.ReadSafetensors(path)
	if err != nil {
		return nil, err
	}
	if stripped, ok := stripPrefix(all, dataParallelPrefix); ok {
		fmt.Fprintf(log, "%s: stripped the prefix %q from all %d tensor names (a state dict saved from nn.DataParallel)\n", path, dataParallelPrefix, len(all))
		all = stripped
	}
	if t, ok := all["classifier.6.weight"]; ok && len(t.Shape) == 2 {
		cfg.NumClasses = t.Shape[0]
	}
	w := network.Subset(all, cfg.Params())
	if err := network.CheckWeights(cfg.Params(), w); err != nil {
		// Name what the file holds that the network did not take: a
		// renamed or prefixed state dict is recognisable at a glance.
		var unused []string
		for k := range all {
			if _, ok := w[k]; !ok {
				unused = append(unused, k)
			}
		}
		sort.Strings(unused)
		if len(unused) > 8 {
			unused = append(unused[:8], fmt.Sprintf("and %d more", len(unused)-8))
		}
		msg := "none"
		if len(unused) > 0 {
			msg = strings.Join(unused, ", ")
		}
		return nil, fmt.Errorf("%s (arch %s, image_size %d): %w; unexpected names in the file: %s (expected torchvision's AlexNet names, e.g. features.0.weight)",
			path, cfg.Arch, cfg.ImageSize, err, msg)
	}
	return w, nil
}

// dataParallelPrefix is what nn.DataParallel puts before every name.
const dataParallelPrefix = "module."

// stripPrefix removes prefix from every name when every name has it.
func stripPrefix(w network.Weights, prefix string) (network.Weights, bool) {
	if len(w) == 0 {
		return w, false
	}
	out := make(network.Weights, len(w))
	for k, t := range w {
		name, ok := strings.CutPrefix(k, prefix)
		if !ok {
			return w, false
		}
		out[name] = t
	}
	return out, true
}

// Objective is cross-entropy classification with dropout masks while
// training, over the first k outputs (k = cfg.NumClasses for all).
func Objective(cfg network.Config, train, val *training.ClassSplit, dropout float64, k int) network.Objective {
	return network.Objective{
		Trainable: cfg.Params(),
		Loss: func(p map[string]*Node, batch []*Node, training bool) (*Node, map[string]*Node) {
			var masks []*Node
			if training {
				masks = batch[2:4]
			}
			logits, _ := cfg.Forward(p, network.Normalize(batch[0]), masks, "")
			if k < cfg.NumClasses {
				logits = Slice(logits, AxisRange(), AxisRange(0, k))
			}
			return network.CrossEntropy(logits, batch[1]), nil
		},
		Batch: func(split string, idx []int, rng *rand.Rand) ([]*tensors.Tensor, error) {
			s := val
			if split == "train" {
				s = train
			}
			lab := make([]int32, len(idx))
			for i, j := range idx {
				lab[i] = s.Labels[j]
			}
			out := []*tensors.Tensor{network.GatherImages(s.Images, cfg.ImageSize, idx), tensors.FromFlatDataAndDimensions(lab, len(idx))}
			if split == "train" {
				out = append(out, network.DropoutMasks(rng, cfg, len(idx), dropout)...)
			}
			return out, nil
		},
	}
}

// Accuracy is the top-1 accuracy of weights w on split s, over the first
// k outputs.
func Accuracy(backend network.BackendT, cfg network.Config, w network.Weights, s *training.ClassSplit, batch, k int) (float64, error) {
	pr, err := network.NewPredictor(backend, cfg, w, "output")
	if err != nil {
		return 0, err
	}
	defer pr.Close()
	correct := 0
	sz := 3 * cfg.ImageSize * cfg.ImageSize
	for lo := 0; lo < s.N; lo += batch {
		hi := min(lo+batch, s.N)
		out, d, err := pr.Run(s.Images[lo*sz:hi*sz], hi-lo)
		if err != nil {
			return 0, err
		}
		for i := range hi - lo {
			best := 0
			for j := range min(k, d) {
				if out[i*d+j] > out[i*d+best] {
					best = j
				}
			}
			if int32(best) == s.Labels[lo+i] {
				correct++
			}
		}
	}
	return float64(correct) / float64(s.N), nil
}
