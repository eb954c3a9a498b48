package features

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/voxflow/voxflow/numerics/network"
	"github.com/voxflow/voxflow/numerics/npy"
	"github.com/voxflow/voxflow/stages"
	"github.com/voxflow/voxflow/stages/artifact"
	"github.com/voxflow/voxflow/stages/artifact/artifacttest"
)

func run(t *testing.T, dataDir, netDir string, over stages.Params) string {
	t.Helper()
	p := stages.Params{}
	for _, ps := range New().Describe().Params {
		p[ps.Name] = ps.Default
	}
	for k, v := range over {
		p[k] = v
	}
	req := &stages.Request{Instance: "features[test]", Params: p, OutDir: t.TempDir(), Progress: stages.NopProgress{}, Log: &bytes.Buffer{},
		Inputs: map[string][]stages.Artifact{
			"data": {{Path: dataDir, Stage: "data"}},
			"net":  {{Path: netDir, Stage: "tune_cl", Labels: map[string]string{"roi": "V1v"}}},
		}}
	if err := New().Run(context.Background(), req); err != nil {
		t.Fatalf("run: %v\n%s", err, req.Log)
	}
	return filepath.Join(req.OutDir, "features")
}

// TestNSDFeaturesMatchDirectForward checks layout, features.json, and that
// batched, padded, streamed extraction equals one direct forward pass
// (images 48px, resized to the net's 64px on the way).
func TestNSDFeaturesMatchDirectForward(t *testing.T) {
	root := t.TempDir()
	dataDir, netDir := filepath.Join(root, "data"), filepath.Join(root, "net")
	if err := artifacttest.WriteNSD(dataDir, 48, artifacttest.NSDSizes{Train: 12, Val: 3, Test: 7}, []string{"V1v"}, 4, 1); err != nil {
		t.Fatal(err)
	}
	cfg := network.Mini(1000)
	if err := artifacttest.WriteNet(netDir, cfg, 2); err != nil {
		t.Fatal(err)
	}
	out := run(t, dataDir, netDir, stages.Params{"batch_size": int64(5)})
	var info artifact.Features
	b, err := os.ReadFile(filepath.Join(out, "features.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &info); err != nil {
		t.Fatal(err)
	}
	if info.Dim != 1000 || info.Kind != artifact.KindNSD || info.NetStage != "tune_cl" || info.NetLabels["roi"] != "V1v" || info.Layer != "output" {
		t.Errorf("features.json = %+v", info)
	}
	_, w, err := artifact.LoadNet(netDir)
	if err != nil {
		t.Fatal(err)
	}
	backend, err := network.NewBackend(network.BackendGo)
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Finalize()
	pr, err := network.NewPredictor(backend, cfg, w, "output")
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	for sp, n := range map[string]int{"train": 12, "val": 3, "test": 7} {
		got, err := npy.ReadFileExact[float32](filepath.Join(out, "subj01", sp+".npy"))
		if err != nil {
			t.Fatal(err)
		}
		if got.Shape[0] != n || got.Shape[1] != 1000 {
			t.Fatalf("%s: shape %v", sp, got.Shape)
		}
		img, err := artifact.LoadImages(dataDir, "subj01", sp)
		if err != nil {
			t.Fatal(err)
		}
		want, _, err := pr.Run(network.ResizeImages(img.Data, n, 48, 64), n)
		if err != nil {
			t.Fatal(err)
		}
		for i := range want {
			if d := got.Data[i] - want[i]; d > 1e-5 || d < -1e-5 {
				t.Fatalf("%s[%d]: %v, direct forward %v", sp, i, got.Data[i], want[i])
			}
		}
	}
}

func TestClassificationFeaturesNamedLayer(t *testing.T) {
	root := t.TempDir()
	dataDir, netDir := filepath.Join(root, "data"), filepath.Join(root, "net")
	if err := artifacttest.WriteClassification(dataDir, 64, 3, artifacttest.NSDSizes{Train: 6, Val: 2, Test: 4}, 1); err != nil {
		t.Fatal(err)
	}
	if err := artifacttest.WriteNet(netDir, network.Mini(10), 2); err != nil {
		t.Fatal(err)
	}
	out := run(t, dataDir, netDir, stages.Params{"layer": "classifier.5"})
	f, err := npy.ReadFileExact[float32](filepath.Join(out, "test.npy"))
	if err != nil {
		t.Fatal(err)
	}
	if f.Shape[0] != 4 || f.Shape[1] != 256 {
		t.Errorf("test features shape %v, want 4 x 256", f.Shape)
	}
	for _, v := range f.Data {
		if v < 0 {
			t.Fatalf("classifier.5 is a ReLU output, found %v", v)
		}
	}
	lab, err := npy.ReadFileExact[int32](filepath.Join(out, "test_labels.npy"))
	if err != nil || len(lab.Data) != 4 {
		t.Fatalf("labels: %v %v", lab, err)
	}
	if _, err := os.Stat(filepath.Join(out, "classes.json")); err != nil {
		t.Error(err)
	}
}
