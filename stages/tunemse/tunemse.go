// Package tunemse is the tune-mse stage kind: the poster's regression
// baseline, fine-tuning AlexNet plus a linear read-out 1000 -> v_r by MSE
// onto one ROI's z-scored training responses.
package tunemse

import (
	"context"
	"io"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // graph code reads best unqualified

	"github.com/voxflow/voxflow/numerics/network"
	"github.com/voxflow/voxflow/stages"
	"github.com/voxflow/voxflow/stages/training"
)

// Kind is the stage kind name.
const Kind = "tune-mse"

type stage struct{}

// New returns the tune-mse stage kind.
func New() stages.Stage { return stage{} }

// Describe implements stages.Stage.
func (stage) Describe() stages.Description {
	return training.TuneDescription(Kind, "2",
		"fine-tune AlexNet + a linear read-out to one ROI's responses by MSE",
		"ROI whose responses the network regresses onto (required; usually bound by foreach)",
		stages.ParamSpec{Name: "head_init_scale", Type: stages.TypeFloat, Default: 0.0, Min: stages.Bound(0),
			Doc: "scale of the read-out's initial weights relative to torch's Linear init (0 = start from predicting 0, so the first loss is 1 on z-scored responses instead of the random head's error on 1000 large logits)"},
	)
}

// Run implements stages.Stage.
func (stage) Run(ctx context.Context, req *stages.Request) error {
	p := req.Params
	return training.Tune(ctx, Kind, req, func(cfg network.Config, d *training.ROIData, tc network.TrainConfig, _ io.Writer) (*training.Head, error) {
		head := network.MSEHead{In: cfg.NumClasses, Voxels: d.V}
		init := head.InitWeights(tc.Seed)
		for _, v := range init {
			for i := range v.Data {
				v.Data[i] *= float32(p.Float("head_init_scale"))
			}
		}
		return &training.Head{Init: init, Objective: Objective(cfg, head, d, p.Float("dropout")), Saved: head.Params()}, nil
	})
}

// Objective is the MSE objective: network, linear read-out, mean squared
// error against the z-scored responses.
func Objective(cfg network.Config, head network.MSEHead, d *training.ROIData, dropout float64) network.Objective {
	return network.Objective{
		Trainable: append(cfg.Params(), head.Params()...),
		Loss: func(p map[string]*Node, batch []*Node, train bool) (*Node, map[string]*Node) {
			return network.MSELoss(head.Predict(p, training.Forward(cfg, p, batch, train)), batch[1]), nil
		},
		Batch: training.ROIBatches(cfg, d, dropout),
	}
}
