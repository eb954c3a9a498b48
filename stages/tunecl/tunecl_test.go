package tunecl

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/voxflow/voxflow/numerics/network"
	"github.com/voxflow/voxflow/stages"
	"github.com/voxflow/voxflow/stages/artifact"
	"github.com/voxflow/voxflow/stages/artifact/artifacttest"
)

func request(t *testing.T, s stages.Stage, dataDir, netDir string, over stages.Params) *stages.Request {
	t.Helper()
	p := stages.Params{}
	for _, ps := range s.Describe().Params {
		p[ps.Name] = ps.Default
	}
	for k, v := range over {
		p[k] = v
	}
	return &stages.Request{
		Instance: "tune_cl[test]",
		Inputs: map[string][]stages.Artifact{
			"data": {{Path: dataDir, Stage: "data"}},
			"init": {{Path: netDir, Stage: "pretrained"}},
		},
		Params: p, OutDir: t.TempDir(), Progress: stages.NopProgress{}, Log: &bytes.Buffer{},
	}
}

func TestRunLowersLoss(t *testing.T) {
	root := t.TempDir()
	dataDir, netDir := filepath.Join(root, "data"), filepath.Join(root, "net")
	if err := artifacttest.WriteNSD(dataDir, 64, artifacttest.NSDSizes{Train: 64, Val: 32, Test: 16}, []string{"V1v"}, 24, 1); err != nil {
		t.Fatal(err)
	}
	if err := artifacttest.WriteNet(netDir, network.Mini(1000), 2); err != nil {
		t.Fatal(err)
	}
	req := request(t, New(), dataDir, netDir, stages.Params{
		"roi": "V1v", "epochs": int64(4), "batch_size": int64(32), "lr": 1e-3, "v1": int64(16), "v2": int64(8),
		"dropout": 0.0, "warmup_epochs": 0.5, "patience": int64(0), "seed": int64(3),
	})
	if err := New().Run(context.Background(), req); err != nil {
		t.Fatalf("run: %v\nlog:\n%s", err, req.Log)
	}
	t.Logf("log:\n%s", req.Log)
	var curve struct {
		Epochs []network.EpochStats `json:"epochs"`
	}
	b, err := os.ReadFile(filepath.Join(req.OutDir, "curve.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &curve); err != nil {
		t.Fatal(err)
	}
	if len(curve.Epochs) != 4 {
		t.Fatalf("curve has %d epochs, want 4", len(curve.Epochs))
	}
	first, last := curve.Epochs[0].TrainLoss, curve.Epochs[3].TrainLoss
	if !(last < first) {
		t.Errorf("training loss did not drop: %v -> %v", first, last)
	}
	cfg, w, err := artifact.LoadNet(filepath.Join(req.OutDir, "net"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Extra["roi"] != "V1v" || cfg.Arch != network.ArchMini {
		t.Errorf("net config %+v", cfg)
	}
	_, w0, _ := artifact.LoadNet(netDir)
	if w["features.0.weight"].Data[0] == w0["features.0.weight"].Data[0] {
		t.Error("f_A weights unchanged by training")
	}
	for _, f := range []string{"curve.png", "config.json", "metrics.json", "net/head.safetensors"} {
		if st, err := os.Stat(filepath.Join(req.OutDir, f)); err != nil || st.Size() == 0 {
			t.Errorf("output %s missing or empty: %v", f, err)
		}
	}
}
