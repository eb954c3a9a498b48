// Package tunecl is the tune-cl stage kind: it fine-tunes an AlexNet so that
// its image representations match one ROI's fMRI responses, with the
// poster's contrastive network (f_A, g_A, g_Y, g_H) and loss (Eq. 1).
// One instance trains one (subject, ROI) network.
package tunecl

import (
	"context"
	"fmt"
	"io"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // graph code reads best unqualified

	"github.com/voxflow/voxflow/numerics/network"
	"github.com/voxflow/voxflow/stages"
	"github.com/voxflow/voxflow/stages/training"
)

// Kind is the stage kind name.
const Kind = "tune-cl"

type stage struct{}

// New returns the tune-cl stage kind.
func New() stages.Stage { return stage{} }

// Describe implements stages.Stage.
func (stage) Describe() stages.Description {
	return training.TuneDescription(Kind, "2",
		"fine-tune AlexNet to one ROI with the contrastive loss of the poster (Eq. 1)",
		"ROI whose responses the network is tuned to (required; usually bound by foreach)",
		stages.ParamSpec{Name: "temperature", Type: stages.TypeFloat, Default: 0.1, Min: stages.Bound(1e-6), Doc: "tau in Eq. 1"},
		stages.ParamSpec{Name: "v1", Type: stages.TypeInt, Default: int64(512), Min: stages.Bound(1), Doc: "shared latent width of g_A and g_Y (clamped to the ROI's voxels)"},
		stages.ParamSpec{Name: "v2", Type: stages.TypeInt, Default: int64(128), Min: stages.Bound(1), Doc: "projection width of g_H (clamped to v1)"},
		stages.ParamSpec{Name: "denominator", Type: stages.TypeString, Default: network.DenomDecoupled,
			Enum: []string{network.DenomDecoupled, network.DenomSimCLR}, Doc: "decoupled: sum over j != i (Eq. 1); simclr: keep the positive"},
		stages.ParamSpec{Name: "symmetric", Type: stages.TypeBool, Default: false, Doc: "average the y-anchored loss with the x-anchored one"},
	)
}

// Run implements stages.Stage.
func (stage) Run(ctx context.Context, req *stages.Request) error {
	p := req.Params
	return training.Tune(ctx, Kind, req, func(cfg network.Config, d *training.ROIData, tc network.TrainConfig, log io.Writer) (*training.Head, error) {
		head := network.Head{In: cfg.NumClasses, Voxels: d.V, V1: p.Int("v1"), V2: p.Int("v2")}
		if head.V1 > d.V {
			fmt.Fprintf(log, "warning: v1 %d > %d voxels in %s; using v1 = %d (the poster requires v1 <= v_r)\n", head.V1, d.V, d.ROI, d.V)
			head.V1 = d.V
		}
		if head.V2 > head.V1 {
			fmt.Fprintf(log, "warning: v2 %d > v1 %d; using v2 = %d\n", head.V2, head.V1, head.V1)
			head.V2 = head.V1
		}
		return &training.Head{
			Init:      head.InitWeights(tc.Seed),
			Objective: Objective(cfg, head, d, p.Float("temperature"), p.String("denominator"), p.Bool("symmetric"), p.Float("dropout")),
			Saved:     append(head.Params(), head.State()...),
			Note:      fmt.Sprintf(", head %d->%d", head.V1, head.V2),
			Resolved:  map[string]any{"v1": head.V1, "v2": head.V2},
		}, nil
	})
}

// Objective is the CL training objective for one ROI: f_A (the network)
// then the head, Eq. 1 on each batch.
func Objective(cfg network.Config, head network.Head, d *training.ROIData, tau float64, denom string, symmetric bool, dropout float64) network.Objective {
	return network.Objective{
		Trainable: append(cfg.Params(), head.Params()...),
		State:     head.State(),
		Loss: func(p map[string]*Node, batch []*Node, train bool) (*Node, map[string]*Node) {
			zx, zy, state := head.Project(p, training.Forward(cfg, p, batch, train), batch[1], train)
			return network.CLLoss(zx, zy, tau, denom, symmetric), state
		},
		Batch: training.ROIBatches(cfg, d, dropout),
	}
}
