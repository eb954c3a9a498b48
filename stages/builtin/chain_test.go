package builtin

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/voxflow/voxflow/numerics/network"
	"github.com/voxflow/voxflow/numerics/npy"
	"github.com/voxflow/voxflow/stages"
	"github.com/voxflow/voxflow/stages/artifact"
	"github.com/voxflow/voxflow/stages/artifact/artifacttest"
	"github.com/voxflow/voxflow/stages/data"
	"github.com/voxflow/voxflow/stages/features"
	"github.com/voxflow/voxflow/stages/tunecl"
)

func runStage(t *testing.T, s stages.Stage, inputs map[string][]stages.Artifact, over stages.Params) string {
	t.Helper()
	p := stages.Params{}
	for _, ps := range s.Describe().Params {
		p[ps.Name] = ps.Default
	}
	for k, v := range over {
		p[k] = v
	}
	req := &stages.Request{Instance: s.Describe().Kind, Inputs: inputs, Params: p, OutDir: t.TempDir(),
		Progress: stages.NopProgress{}, Log: &bytes.Buffer{}}
	if err := s.Run(context.Background(), req); err != nil {
		t.Fatalf("%s: %v\n%s", s.Describe().Kind, err, req.Log)
	}
	return req.OutDir
}

// TestTuneCLOnSyntheticDataStage chains the real data stage (synthetic
// source), tune-cl and features, so the artifact conventions are checked
// end to end rather than against artifacttest's writer. It lives here, with
// the list of kinds, because no kind's package (tests included) imports
// another kind.
func TestTuneCLOnSyntheticDataStage(t *testing.T) {
	dataOut := runStage(t, data.New(), nil, stages.Params{
		"source": "synthetic", "n_images": int64(120), "n_subjects": int64(1), "voxels_per_roi": int64(12),
		"image_size": int64(64), "rois": []any{"FFA-1"}, "seed": int64(1),
	})
	dataset := filepath.Join(dataOut, data.OutputPort)
	netDir := filepath.Join(t.TempDir(), "net")
	if err := artifacttest.WriteNet(netDir, network.Mini(1000), 1); err != nil {
		t.Fatal(err)
	}
	m, err := artifact.ReadManifest(dataset)
	if err != nil {
		t.Fatal(err)
	}
	tuned := runStage(t, tunecl.New(), map[string][]stages.Artifact{
		"data": {{Path: dataset, Stage: "data"}}, "init": {{Path: netDir, Stage: "pretrained"}},
	}, stages.Params{"subject": m.Subjects[0], "roi": "FFA-1", "epochs": int64(2), "batch_size": int64(32), "lr": 1e-3, "v1": int64(8), "v2": int64(4)})
	feats := runStage(t, features.New(), map[string][]stages.Artifact{
		"data": {{Path: dataset, Stage: "data"}},
		"net":  {{Path: filepath.Join(tuned, "net"), Stage: "tune_cl", Labels: map[string]string{"roi": "FFA-1"}}},
	}, nil)
	sm, err := artifact.ReadSubjectManifest(filepath.Join(dataset, m.Subjects[0]))
	if err != nil {
		t.Fatal(err)
	}
	for _, sp := range artifact.Splits() {
		a, err := npy.ReadFileExact[float32](artifact.FeaturesPath(filepath.Join(feats, "features"), m.Subjects[0], sp))
		if err != nil {
			t.Fatal(err)
		}
		if a.Shape[0] != sm.Splits[sp] || a.Shape[1] != 1000 {
			t.Errorf("%s features %v, want %d x 1000", sp, a.Shape, sm.Splits[sp])
		}
	}
}
