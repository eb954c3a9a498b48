package tunemse

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/voxflow/voxflow/numerics/network"
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
	log := &bytes.Buffer{}
	req := &stages.Request{
		Instance: "tune_mse[test]",
		Inputs: map[string][]stages.Artifact{
			"data": {{Path: dataDir, Stage: "data"}},
			"init": {{Path: netDir, Stage: "pretrained"}},
		},
		Params: p, OutDir: t.TempDir(), Progress: stages.NopProgress{}, Log: log,
	}
	if err := New().Run(context.Background(), req); err != nil {
		t.Fatalf("run: %v\nlog:\n%s", err, log)
	}
	t.Logf("log:\n%s", log)
	return req.OutDir
}

func curve(t *testing.T, dir string) []network.EpochStats {
	t.Helper()
	var c struct {
		Epochs []network.EpochStats `json:"epochs"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "curve.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c.Epochs
}

// TestRunLowersLossDeterministically trains twice with one seed: the
// training loss drops, and both runs give bit-identical weights and
// curves. A third run with another seed differs.
func TestRunLowersLossDeterministically(t *testing.T) {
	root := t.TempDir()
	dataDir, netDir := filepath.Join(root, "data"), filepath.Join(root, "net")
	if err := artifacttest.WriteNSD(dataDir, 64, artifacttest.NSDSizes{Train: 64, Val: 32, Test: 16}, []string{"FFA-1"}, 20, 1); err != nil {
		t.Fatal(err)
	}
	if err := artifacttest.WriteNet(netDir, network.Mini(1000), 2); err != nil {
		t.Fatal(err)
	}
	params := stages.Params{
		"roi": "FFA-1", "epochs": int64(4), "batch_size": int64(16), "lr": 1e-3,
		"warmup_epochs": 0.5, "patience": int64(0), "seed": int64(5), "dropout": 0.5,
	}
	a := run(t, dataDir, netDir, params)
	b := run(t, dataDir, netDir, params)
	params["seed"] = int64(6)
	c := run(t, dataDir, netDir, params)

	ca := curve(t, a)
	if len(ca) != 4 || !(ca[3].TrainLoss < ca[0].TrainLoss) {
		t.Errorf("training loss did not drop over 4 epochs: %+v", ca)
	}
	cb := curve(t, b)
	for i := range ca {
		if ca[i].TrainLoss != cb[i].TrainLoss || ca[i].ValLoss != cb[i].ValLoss {
			t.Errorf("epoch %d differs between identical runs: %+v vs %+v", i+1, ca[i], cb[i])
		}
	}
	_, wa, err := artifact.LoadNet(filepath.Join(a, "net"))
	if err != nil {
		t.Fatal(err)
	}
	_, wb, _ := artifact.LoadNet(filepath.Join(b, "net"))
	_, wc, _ := artifact.LoadNet(filepath.Join(c, "net"))
	var diffAB, diffAC float64
	for k, ta := range wa {
		for i := range ta.Data {
			diffAB = math.Max(diffAB, math.Abs(float64(ta.Data[i]-wb[k].Data[i])))
			diffAC = math.Max(diffAC, math.Abs(float64(ta.Data[i]-wc[k].Data[i])))
		}
	}
	if diffAB != 0 {
		t.Errorf("same seed, weights differ by up to %g", diffAB)
	}
	if diffAC == 0 {
		t.Error("different seeds gave identical weights")
	}
	var m map[string]any
	b2, _ := os.ReadFile(filepath.Join(a, "metrics.json"))
	if err := json.Unmarshal(b2, &m); err != nil {
		t.Fatal(err)
	}
	if m["epochs_run"] != 4.0 || m["best_val_loss"] == nil {
		t.Errorf("metrics.json = %v", m)
	}
}

func TestMissingROIIsAnError(t *testing.T) {
	root := t.TempDir()
	dataDir, netDir := filepath.Join(root, "data"), filepath.Join(root, "net")
	if err := artifacttest.WriteNSD(dataDir, 64, artifacttest.NSDSizes{Train: 8, Val: 4, Test: 4}, []string{"V1v"}, 4, 1); err != nil {
		t.Fatal(err)
	}
	if err := artifacttest.WriteNet(netDir, network.Mini(10), 2); err != nil {
		t.Fatal(err)
	}
	p := stages.Params{}
	for _, ps := range New().Describe().Params {
		p[ps.Name] = ps.Default
	}
	p["roi"] = "PPA"
	req := &stages.Request{Inputs: map[string][]stages.Artifact{"data": {{Path: dataDir}}, "init": {{Path: netDir}}},
		Params: p, OutDir: t.TempDir(), Progress: stages.NopProgress{}, Log: &bytes.Buffer{}}
	err := New().Run(context.Background(), req)
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("PPA")) {
		t.Errorf("err = %v, want one naming the ROI", err)
	}
}
