// Package tunemse is the tune-mse stage kind: the poster's regression
// baseline, fine-tuning AlexNet plus a linear read-out 1000 -> v_r by MSE
// onto one ROI's z-scored training responses.
package tunemse

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/voxflow/voxflow/stages/training"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // graph code reads best unqualified
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/voxflow/voxflow/internal/network"
	"github.com/voxflow/voxflow/stages"
)

// Kind is the stage kind name.
const Kind = "tune-mse"

type stage struct{}

// New returns the tune-mse stage kind.
func New() stages.Stage { return stage{} }

// Describe implements stages.Stage.
func (stage) Describe() stages.Description {
	params := []stages.ParamSpec{
		{Name: "subject", Type: stages.TypeString, Default: "", Doc: "subject to tune on (\"\" = the artifact's only subject)"},
		{Name: "roi", Type: stages.TypeString, Default: "", Doc: "ROI whose responses the network regresses onto (required; usually bound by foreach)"},
	}
	params = append(params, training.TrainParams(20, 1024, 1e-4)...)
	params = append(params, training.BackboneLRParam(1),
		stages.ParamSpec{Name: "head_init_scale", Type: stages.TypeFloat, Default: 0.0, Min: stages.Bound(0),
			Doc: "scale of the read-out's initial weights relative to torch's Linear init (0 = start from predicting 0, so the first loss is 1 on z-scored responses instead of the random head's error on 1000 large logits)"})
	return stages.Description{
		Kind: Kind, Version: "2",
		Doc:     "fine-tune AlexNet + a linear read-out to one ROI's responses by MSE",
		Params:  params,
		Inputs:  training.TuneInputs(),
		Outputs: training.TuneOutputs(),
		Isolate: "process",
	}
}

// Run implements stages.Stage.
func (stage) Run(ctx context.Context, req *stages.Request) error {
	p := req.Params
	cfg, init, d, err := training.LoadTuneInputs(Kind, req)
	if err != nil {
		return err
	}
	head := network.MSEHead{In: cfg.NumClasses, Voxels: d.V}
	tc := training.TrainConfigFrom(p)
	backend, err := network.NewBackend(p.String("backend"))
	if err != nil {
		return err
	}
	defer backend.Finalize()
	// init is ours alone; adding the head to it avoids a second copy of f_A.
	w := init
	for k, v := range head.InitWeights(tc.Seed) {
		for i := range v.Data {
			v.Data[i] *= float32(p.Float("head_init_scale"))
		}
		w[k] = v
	}
	tc.LRScale = training.BackboneLRScale(cfg, p.Float("backbone_lr_scale"))
	obj := Objective(cfg, head, d, p.Float("dropout"))
	fmt.Fprintf(req.Log, "%s: subject %s roi %s: %d voxels, %d train / %d val images, %s %dpx\n",
		req.Instance, d.Subject, d.ROI, d.V, d.Train.N, d.Val.N, cfg.Arch, cfg.ImageSize)
	res, err := network.Fit(ctx, backend, obj, w, d.Train.N, d.Val.N, tc, training.ProgressReporter(req.Progress), req.Log)
	if err != nil {
		return fmt.Errorf("%s: %w", req.Instance, err)
	}
	out := cfg
	out.Extra = map[string]any{"tuned_by": Kind, "subject": d.Subject, "roi": d.ROI, "init": req.Inputs["init"][0].Stage}
	resolved := training.ResolvedParams(p)
	resolved["subject"], resolved["roi"], resolved["net"], resolved["voxels"] = d.Subject, d.ROI, cfg, d.V
	resolved["n_train"], resolved["n_val"] = d.Train.N, d.Val.N
	resolved["batch_size"] = min(tc.BatchSize, d.Train.N)
	return training.WriteRunOutputs(req.OutDir, training.RunOutputs{
		Net: out, Result: res, Resolved: resolved, Title: fmt.Sprintf("tune-mse %s %s", d.Subject, d.ROI),
		Head: network.Subset(res.Best, head.Params()),
	})
}

// Objective is the MSE objective: network, linear read-out, mean squared
// error against the z-scored responses.
func Objective(cfg network.Config, head network.MSEHead, d *training.ROIData, dropout float64) network.Objective {
	return network.Objective{
		Trainable: append(cfg.Params(), head.Params()...),
		Loss: func(p map[string]*Node, batch []*Node, train bool) (*Node, map[string]*Node) {
			var masks []*Node
			if train {
				masks = batch[2:4]
			}
			a, _ := cfg.Forward(p, network.Normalize(batch[0]), masks, "")
			return network.MSELoss(head.Predict(p, a), batch[1]), nil
		},
		Batch: func(split string, idx []int, rng *rand.Rand) ([]*tensors.Tensor, error) {
			s := d.Val
			if split == "train" {
				s = d.Train
			}
			out := []*tensors.Tensor{
				network.GatherImages(s.Images, cfg.ImageSize, idx),
				network.GatherRows(s.Voxels, d.V, idx),
			}
			if split == "train" {
				out = append(out, network.DropoutMasks(rng, cfg, len(idx), dropout)...)
			}
			return out, nil
		},
	}
}
