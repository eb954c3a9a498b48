package training

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/voxflow/voxflow/numerics/network"
	"github.com/voxflow/voxflow/stages"
)

// Head is what a fine-tuning kind (tune-cl, tune-mse) puts on top of the
// network; everything else about a fine-tune is shared (Tune).
type Head struct {
	// Init holds the head's initial weights; they join the network's.
	Init network.Weights
	// Objective trains the network and the head together.
	Objective network.Objective
	// Saved lists the head tensors written to net/head.safetensors.
	Saved []network.ParamSpec
	// Note is appended to the log line that describes the run.
	Note string
	// Resolved adds entries to config.json (e.g. clamped widths).
	Resolved map[string]any
}

// HeadFunc builds a kind's head for the starting network and the ROI's
// data; log takes warnings about clamped settings.
type HeadFunc func(cfg network.Config, d *ROIData, tc network.TrainConfig, log io.Writer) (*Head, error)

// Tune runs one fine-tuning request of kind: it loads the starting network
// and the (subject, ROI) data, adds the head that build makes, trains with
// the request's TrainParams and backbone_lr_scale, and writes the tuned
// network, curve, config and metrics (WriteRunOutputs).
func Tune(ctx context.Context, kind string, req *stages.Request, build HeadFunc) error {
	p := req.Params
	cfg, init, d, err := loadTuneInputs(kind, req)
	if err != nil {
		return err
	}
	tc := TrainConfigFrom(p)
	head, err := build(cfg, d, tc, req.Log)
	if err != nil {
		return fmt.Errorf("%s: %w", req.Instance, err)
	}
	backend, err := network.NewBackend(p.String("backend"))
	if err != nil {
		return err
	}
	defer backend.Finalize()
	// init is ours alone; adding the head to it avoids a second copy of f_A.
	w := init
	for k, v := range head.Init {
		w[k] = v
	}
	tc.LRScale = backboneLRScale(cfg, p.Float("backbone_lr_scale"))
	fmt.Fprintf(req.Log, "%s: subject %s roi %s: %d voxels, %d train / %d val images, %s %dpx%s\n",
		req.Instance, d.Subject, d.ROI, d.V, d.Train.N, d.Val.N, cfg.Arch, cfg.ImageSize, head.Note)
	res, err := network.Fit(ctx, backend, head.Objective, w, d.Train.N, d.Val.N, tc, ProgressReporter(req.Progress), req.Log)
	if err != nil {
		return fmt.Errorf("%s: %w", req.Instance, err)
	}
	out := cfg
	out.Extra = map[string]any{"tuned_by": kind, "subject": d.Subject, "roi": d.ROI, "init": req.Inputs["init"][0].Stage}
	resolved := ResolvedParams(p)
	resolved["subject"], resolved["roi"], resolved["net"], resolved["voxels"] = d.Subject, d.ROI, cfg, d.V
	resolved["n_train"], resolved["n_val"] = d.Train.N, d.Val.N
	resolved["batch_size"] = min(tc.BatchSize, d.Train.N)
	for k, v := range head.Resolved {
		resolved[k] = v
	}
	return WriteRunOutputs(req.OutDir, RunOutputs{
		Net: out, Result: res, Resolved: resolved, Title: fmt.Sprintf("%s %s %s", kind, d.Subject, d.ROI),
		Head: network.Subset(res.Best, head.Saved),
	})
}

// ROIBatches is the Batch function of an objective trained on one ROI's
// data: the images and the responses of the rows idx, and in training the
// two classifier dropout masks.
func ROIBatches(cfg network.Config, d *ROIData, dropout float64) func(split string, idx []int, rng *rand.Rand) ([]*tensors.Tensor, error) {
	return func(split string, idx []int, rng *rand.Rand) ([]*tensors.Tensor, error) {
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
	}
}

// TuneDescription is the description of a fine-tuning kind: the subject and
// roi params (roiDoc says what the kind does with the ROI), the kind's own
// params, then TrainParams and backbone_lr_scale, the tune inputs and
// outputs, run in a process of its own.
func TuneDescription(kind, version, doc, roiDoc string, own ...stages.ParamSpec) stages.Description {
	params := []stages.ParamSpec{
		{Name: "subject", Type: stages.TypeString, Default: "", Doc: "subject to tune on (\"\" = the artifact's only subject)"},
		{Name: "roi", Type: stages.TypeString, Default: "", Doc: roiDoc},
	}
	params = append(params, own...)
	params = append(params, TrainParams(20, 1024, 1e-4)...)
	params = append(params, BackboneLRParam(1))
	return stages.Description{
		Kind: kind, Version: version, Doc: doc, Params: params,
		Inputs: TuneInputs(), Outputs: TuneOutputs(), Isolate: "process",
	}
}

// Forward runs the network on a batch made by ROIBatches: the images
// normalised and, in training, with the dropout masks the batch carries.
// It returns the network's output (the head's input).
func Forward(cfg network.Config, p map[string]*graph.Node, batch []*graph.Node, train bool) *graph.Node {
	var masks []*graph.Node
	if train {
		masks = batch[2:4]
	}
	a, _ := cfg.Forward(p, network.Normalize(batch[0]), masks, "")
	return a
}
