package pretrain

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voxflow/voxflow/numerics/network"
	"github.com/voxflow/voxflow/stages"
	"github.com/voxflow/voxflow/stages/artifact"
	"github.com/voxflow/voxflow/stages/artifact/artifacttest"
)

func request(t *testing.T, inputs map[string][]stages.Artifact, over stages.Params) *stages.Request {
	t.Helper()
	p := stages.Params{}
	for _, ps := range New().Describe().Params {
		p[ps.Name] = ps.Default
	}
	for k, v := range over {
		p[k] = v
	}
	return &stages.Request{Instance: "pretrain", Inputs: inputs, Params: p, OutDir: t.TempDir(),
		Progress: stages.NopProgress{}, Log: &bytes.Buffer{}}
}

// TestTrainClassification pretrains alexnet-mini on a small learnable
// classification set, with both init schemes and loss_classes settings:
// the loss drops and validation accuracy beats chance.
func TestTrainClassification(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	if err := artifacttest.WriteClassification(dataDir, 64, 4, artifacttest.NSDSizes{Train: 128, Val: 64, Test: 16}, 1); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ init, classes string }{{network.InitTorch, LossAllClasses}, {network.InitKaiming, LossDataClasses}} {
		t.Run(tc.init+"/"+tc.classes, func(t *testing.T) { trainClassification(t, dataDir, tc.init, tc.classes) })
	}
}

func trainClassification(t *testing.T, dataDir, init, classes string) {
	req := request(t, map[string][]stages.Artifact{"data": {{Path: dataDir, Stage: "data"}}}, stages.Params{
		"epochs": int64(5), "batch_size": int64(32), "lr": 2e-3, "num_classes": int64(10), "seed": int64(1),
		"warmup_epochs": 0.5, "patience": int64(0), "dropout": 0.0, "init_scheme": init, "loss_classes": classes,
	})
	if err := New().Run(context.Background(), req); err != nil {
		t.Fatalf("run: %v\n%s", err, req.Log)
	}
	t.Logf("log:\n%s", req.Log)
	var m map[string]float64
	b, err := os.ReadFile(filepath.Join(req.OutDir, "metrics.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if !(m["final_train_loss"] < m["first_train_loss"]) {
		t.Errorf("training loss did not drop: %v -> %v", m["first_train_loss"], m["final_train_loss"])
	}
	if m["val_accuracy"] <= 0.4 { // chance is 0.25
		t.Errorf("val accuracy %.3f, want > 0.4 (chance 0.25)", m["val_accuracy"])
	}
	cfg, _, err := artifact.LoadNet(filepath.Join(req.OutDir, "net"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Arch != network.ArchMini || cfg.NumClasses != 10 {
		t.Errorf("config %+v", cfg)
	}
}

// TestImportWeights imports a torchvision-named safetensors file with
// epochs 0: the artifact holds exactly those weights.
func TestImportWeights(t *testing.T) {
	dir := t.TempDir()
	cfg := network.Mini(1000)
	w := cfg.InitWeights(9)
	w["extra.num_batches_tracked"] = network.NewTensor(1) // dropped on import
	path := filepath.Join(dir, "alexnet.safetensors")
	if err := network.WriteSafetensors(path, w, nil); err != nil {
		t.Fatal(err)
	}
	req := request(t, nil, stages.Params{"epochs": int64(0), "init": path})
	if err := New().Run(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	got, gw, err := artifact.LoadNet(filepath.Join(req.OutDir, "net"))
	if err != nil {
		t.Fatal(err)
	}
	if got.NumClasses != 1000 || got.ImageSize != 64 {
		t.Errorf("config %+v", got)
	}
	for _, p := range cfg.Params() {
		for i, v := range w[p.Name].Data {
			if gw[p.Name].Data[i] != v {
				t.Fatalf("%s[%d] = %v, want %v", p.Name, i, gw[p.Name].Data[i], v)
			}
		}
	}
	// A file for another architecture is refused with the names at fault.
	req = request(t, nil, stages.Params{"epochs": int64(0), "init": path, "arch": network.ArchAlexNet})
	if err := New().Run(context.Background(), req); err == nil {
		t.Error("mini weights accepted as alexnet")
	}
}

// TestImportDataParallelWeights: a state dict saved from nn.DataParallel
// ("module." before every name) imports, and the log says the prefix was
// stripped; a file with other names is refused with the unexpected names
// listed beside the missing ones.
func TestImportDataParallelWeights(t *testing.T) {
	dir := t.TempDir()
	cfg := network.Mini(1000)
	w := cfg.InitWeights(9)
	prefixed, renamed := network.Weights{}, network.Weights{}
	for k, v := range w {
		prefixed["module."+k] = v
		renamed["backbone."+k] = v
	}
	for name, ws := range map[string]network.Weights{"dp.safetensors": prefixed, "renamed.safetensors": renamed} {
		if err := network.WriteSafetensors(filepath.Join(dir, name), ws, nil); err != nil {
			t.Fatal(err)
		}
	}
	var log strings.Builder
	req := request(t, nil, stages.Params{"epochs": int64(0), "init": filepath.Join(dir, "dp.safetensors")})
	req.Log = &log
	if err := New().Run(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), `stripped the prefix "module."`) {
		t.Errorf("log does not say the prefix was stripped:\n%s", log.String())
	}
	_, gw, err := artifact.LoadNet(filepath.Join(req.OutDir, "net"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := gw["features.0.weight"].Data[3], w["features.0.weight"].Data[3]; got != want {
		t.Errorf("features.0.weight[3] = %v, want %v", got, want)
	}
	req = request(t, nil, stages.Params{"epochs": int64(0), "init": filepath.Join(dir, "renamed.safetensors")})
	err = New().Run(context.Background(), req)
	if err == nil || !strings.Contains(err.Error(), "missing features.0.weight") || !strings.Contains(err.Error(), "unexpected names in the file: backbone.") {
		t.Errorf("renamed weights: error %v, want missing and unexpected names", err)
	}
}
