// Package features is the features stage kind: one network's forward pass
// over every split of a data artifact, stored as an artifact of its own so
// that ridge and probe settings can change without recomputing features.
//
// Layout (port `features`; package artifact's Features, FeaturesPath):
//
//	features.json   {"net_stage", "layer", "dim", "kind", "subjects"|"classes", "net_labels"}
//	NSD:            <subject>/<split>.npy   float32 N x D
//	classification: <split>.npy float32 N x D, <split>_labels.npy int32 N, classes.json
package features

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/voxflow/voxflow/internal/jsonfile"
	"github.com/voxflow/voxflow/numerics/network"
	"github.com/voxflow/voxflow/numerics/npy"
	"github.com/voxflow/voxflow/stages"
	"github.com/voxflow/voxflow/stages/artifact"
)

// Kind is the stage kind name.
const Kind = "features"

type stage struct{}

// New returns the features stage kind.
func New() stages.Stage { return stage{} }

// Describe implements stages.Stage.
func (stage) Describe() stages.Description {
	return stages.Description{
		Kind: Kind, Version: "1",
		Doc: "a network's layer outputs on every split of a data artifact",
		Params: []stages.ParamSpec{
			{Name: "subject", Type: stages.TypeString, Default: "", Doc: "NSD subject (\"\" = all subjects)"},
			{Name: "layer", Type: stages.TypeString, Default: "output", Enum: network.Layers(), Doc: "layer to read (torchvision module names; output = classifier.6)"},
			{Name: "batch_size", Type: stages.TypeInt, Default: int64(64), Min: stages.Bound(1), Doc: "images per forward pass"},
			{Name: "backend", Type: stages.TypeString, Default: network.BackendGo, Enum: []string{network.BackendGo, network.BackendXLA}, Doc: "compute backend"},
		},
		Inputs: []stages.PortSpec{
			{Name: "data", Doc: "NSD-like or classification data artifact"},
			{Name: "net", Doc: "network artifact"},
		},
		Outputs: []stages.PortSpec{{Name: "features", Doc: "features directory (see package doc)"}},
		Isolate: "inline",
	}
}

// Run implements stages.Stage.
func (stage) Run(ctx context.Context, req *stages.Request) error {
	p := req.Params
	if len(req.Inputs["data"]) != 1 || len(req.Inputs["net"]) != 1 {
		return fmt.Errorf("%s: want one data and one net artifact, have %d and %d", Kind, len(req.Inputs["data"]), len(req.Inputs["net"]))
	}
	dataset, netArt := req.Inputs["data"][0].Path, req.Inputs["net"][0]
	cfg, w, err := artifact.LoadNet(netArt.Path)
	if err != nil {
		return fmt.Errorf("input net: %w", err)
	}
	m, err := artifact.ReadManifest(dataset)
	if err != nil {
		return fmt.Errorf("input data: %w", err)
	}
	backend, err := network.NewBackend(p.String("backend"))
	if err != nil {
		return err
	}
	defer backend.Finalize()
	pr, err := network.NewPredictor(backend, cfg, w, p.String("layer"))
	if err != nil {
		return err
	}
	defer pr.Close()
	out := filepath.Join(req.OutDir, "features")
	info := artifact.Features{NetStage: netArt.Stage, NetLabels: netArt.Labels, Layer: p.String("layer"), Kind: m.Kind,
		Arch: cfg.Arch, ImageSize: cfg.ImageSize}
	e := &extractor{pr: pr, size: cfg.ImageSize, batch: p.Int("batch_size"), progress: req.Progress}
	switch m.Kind {
	case artifact.KindNSD:
		subjects := m.Subjects
		if s := p.String("subject"); s != "" {
			if _, err := artifact.ResolveSubject(dataset, s); err != nil {
				return fmt.Errorf("param subject: %w", err)
			}
			subjects = []string{s}
		}
		info.Subjects = subjects
		for _, s := range subjects {
			for _, sp := range artifact.Splits() {
				if err := e.run(ctx, artifact.ImagesPath(dataset, s, sp), artifact.FeaturesPath(out, s, sp), s+"/"+sp); err != nil {
					return err
				}
			}
		}
	case artifact.KindClassification:
		info.Classes = m.Classes
		for _, sp := range artifact.Splits() {
			if err := e.run(ctx, artifact.ImagesPath(dataset, "", sp), artifact.FeaturesPath(out, "", sp), sp); err != nil {
				return err
			}
			lab, err := artifact.LoadLabels(dataset, sp)
			if err != nil {
				return fmt.Errorf("input data: %w", err)
			}
			if err := npy.WriteFile(artifact.FeatureLabelsPath(out, sp), []int{len(lab)}, lab); err != nil {
				return err
			}
		}
		if err := jsonfile.Write(filepath.Join(out, artifact.ClassesFile), m.Classes); err != nil {
			return err
		}
	}
	info.Dim = e.dim
	fmt.Fprintf(req.Log, "%s: %s layer %s (%d-d) of net %q on %s data\n", req.Instance, cfg.Arch, info.Layer, info.Dim, info.NetStage, m.Kind)
	return jsonfile.Write(filepath.Join(out, artifact.FeaturesFile), info)
}

// extractor streams one images.npy through the network into one
// features .npy, a batch at a time, so memory stays at one batch of images.
type extractor struct {
	pr       *network.Predictor
	size     int
	batch    int
	dim      int
	progress stages.Progress
}

func (e *extractor) run(ctx context.Context, imagesPath, outPath, phase string) error {
	f, err := npy.Open(imagesPath)
	if err != nil {
		return fmt.Errorf("input data: %w", err)
	}
	defer f.Close()
	h := f.Header
	if h.DType != npy.Uint8 || len(h.Shape) != 4 || h.Shape[1] != 3 || h.Shape[2] != h.Shape[3] {
		return fmt.Errorf("%s: %s %s, want uint8 N x 3 x H x H", imagesPath, h.DType, npy.ShapeString(h.Shape))
	}
	n, src := h.Shape[0], h.Shape[2]
	if err := os.MkdirAll(filepath.Dir(outPath), 0o755); err != nil {
		return fmt.Errorf("features: %w", err)
	}
	var wr *npy.Writer[float32]
	defer func() {
		if wr != nil {
			wr.Abort()
		}
	}()
	in := make([]uint8, e.batch*3*src*src)
	sz := 3 * e.size * e.size
	for lo := 0; lo < n; lo += e.batch {
		if err := ctx.Err(); err != nil {
			return err
		}
		k := min(e.batch, n-lo)
		if err := npy.ReadRows(f, in[:k*3*src*src]); err != nil {
			return fmt.Errorf("%s: rows %d-%d: %w", imagesPath, lo, lo+k, err)
		}
		imgs := network.ResizeImages(in[:k*3*src*src], k, src, e.size)
		// Pad the last batch to full size so one compiled graph serves
		// every batch; the padding rows are dropped below.
		if k < e.batch && n > e.batch {
			padded := make([]uint8, e.batch*sz)
			copy(padded, imgs)
			imgs = padded
		}
		rows := len(imgs) / sz
		feats, d, err := e.pr.Run(imgs, rows)
		if err != nil {
			return fmt.Errorf("%s: %w", imagesPath, err)
		}
		if wr == nil {
			e.dim = d
			if wr, err = npy.Create[float32](outPath, []int{n, d}); err != nil {
				return err
			}
		}
		if err := wr.Write(feats[:k*d]); err != nil {
			return fmt.Errorf("write %s: %w", outPath, err)
		}
		e.progress.Update(stages.Update{Phase: phase, Done: float64(lo + k), Total: float64(n), Unit: "img"})
	}
	if wr == nil { // an empty split still gets a (0 x D) file
		if wr, err = npy.Create[float32](outPath, []int{0, e.dim}); err != nil {
			return err
		}
	}
	err = wr.Close()
	wr = nil
	if err != nil {
		return fmt.Errorf("write %s: %w", outPath, err)
	}
	return nil
}
