// Package tunecl is the tune-cl stage kind: it fine-tunes an AlexNet so that
// its image representations match one ROI's fMRI responses, with the
// poster's contrastive network (f_A, g_A, g_Y, g_H) and loss (Eq. 1).
// One instance trains one (subject, ROI) network.
package tunecl

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
const Kind = "tune-cl"

type stage struct{}

// New returns the tune-cl stage kind.
func New() stages.Stage { return stage{} }

// Describe implements stages.Stage.
func (stage) Describe() stages.Description {
	params := []stages.ParamSpec{
		{Name: "subject", Type: stages.TypeString, Default: "", Doc: "subject to tune on (\"\" = the artifact's only subject)"},
		{Name: "roi", Type: stages.TypeString, Default: "", Doc: "ROI whose responses the network is tuned to (required; usually bound by foreach)"},
		{Name: "temperature", Type: stages.TypeFloat, Default: 0.1, Min: stages.Bound(1e-6), Doc: "tau in Eq. 1"},
		{Name: "v1", Type: stages.TypeInt, Default: int64(512), Min: stages.Bound(1), Doc: "shared latent width of g_A and g_Y (clamped to the ROI's voxels)"},
		{Name: "v2", Type: stages.TypeInt, Default: int64(128), Min: stages.Bound(1), Doc: "projection width of g_H (clamped to v1)"},
		{Name: "denominator", Type: stages.TypeString, Default: network.DenomDecoupled,
			Enum: []string{network.DenomDecoupled, network.DenomSimCLR}, Doc: "decoupled: sum over j != i (Eq. 1); simclr: keep the positive"},
		{Name: "symmetric", Type: stages.TypeBool, Default: false, Doc: "average the y-anchored loss with the x-anchored one"},
	}
	params = append(params, training.TrainParams(20, 1024, 1e-4)...)
	params = append(params, training.BackboneLRParam(1))
	return stages.Description{
		Kind: Kind, Version: "2",
		Doc:     "fine-tune AlexNet to one ROI with the contrastive loss of the poster (Eq. 1)",
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
	head := network.Head{In: cfg.NumClasses, Voxels: d.V, V1: p.Int("v1"), V2: p.Int("v2")}
	if head.V1 > d.V {
		fmt.Fprintf(req.Log, "warning: v1 %d > %d voxels in %s; using v1 = %d (the poster requires v1 <= v_r)\n", head.V1, d.V, d.ROI, d.V)
		head.V1 = d.V
	}
	if head.V2 > head.V1 {
		fmt.Fprintf(req.Log, "warning: v2 %d > v1 %d; using v2 = %d\n", head.V2, head.V1, head.V1)
		head.V2 = head.V1
	}
	tc := training.TrainConfigFrom(p)
	backend, err := network.NewBackend(p.String("backend"))
	if err != nil {
		return err
	}
	defer backend.Finalize()

	// init is ours alone; adding the head to it avoids a second copy of f_A.
	w := init
	for k, v := range head.InitWeights(tc.Seed) {
		w[k] = v
	}
	tc.LRScale = training.BackboneLRScale(cfg, p.Float("backbone_lr_scale"))
	obj := Objective(cfg, head, d, p.Float("temperature"), p.String("denominator"), p.Bool("symmetric"), p.Float("dropout"))
	fmt.Fprintf(req.Log, "%s: subject %s roi %s: %d voxels, %d train / %d val images, %s %dpx, head %d->%d\n",
		req.Instance, d.Subject, d.ROI, d.V, d.Train.N, d.Val.N, cfg.Arch, cfg.ImageSize, head.V1, head.V2)
	res, err := network.Fit(ctx, backend, obj, w, d.Train.N, d.Val.N, tc, training.ProgressReporter(req.Progress), req.Log)
	if err != nil {
		return fmt.Errorf("%s: %w", req.Instance, err)
	}
	out := cfg
	out.Extra = map[string]any{"tuned_by": Kind, "subject": d.Subject, "roi": d.ROI, "init": req.Inputs["init"][0].Stage}
	resolved := training.ResolvedParams(p)
	resolved["subject"], resolved["roi"], resolved["v1"], resolved["v2"] = d.Subject, d.ROI, head.V1, head.V2
	resolved["net"] = cfg
	resolved["voxels"] = d.V
	resolved["n_train"], resolved["n_val"] = d.Train.N, d.Val.N
	resolved["batch_size"] = min(tc.BatchSize, d.Train.N)
	return training.WriteRunOutputs(req.OutDir, training.RunOutputs{
		Net: out, Result: res, Resolved: resolved, Title: fmt.Sprintf("tune-cl %s %s", d.Subject, d.ROI),
		Head: network.Subset(res.Best, append(head.Params(), head.State()...)),
	})
}

// Objective is the CL training objective for one ROI: f_A (the network)
// then the head, Eq. 1 on each batch.
func Objective(cfg network.Config, head network.Head, d *training.ROIData, tau float64, denom string, symmetric bool, dropout float64) network.Objective {
	return network.Objective{
		Trainable: append(cfg.Params(), head.Params()...),
		State:     head.State(),
		Loss: func(p map[string]*Node, batch []*Node, train bool) (*Node, map[string]*Node) {
			var masks []*Node
			if train {
				masks = batch[2:4]
			}
			a, _ := cfg.Forward(p, network.Normalize(batch[0]), masks, "")
			zx, zy, state := head.Project(p, a, batch[1], train)
			return network.CLLoss(zx, zy, tau, denom, symmetric), state
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
