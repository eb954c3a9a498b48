package python_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/voxflow/voxflow/numerics/network"
	"github.com/voxflow/voxflow/numerics/npy"
	"github.com/voxflow/voxflow/plugins"
	"github.com/voxflow/voxflow/stages"
	"github.com/voxflow/voxflow/stages/pretrain"
)

// classArtifact writes a classification data artifact of random 224 px
// images: ntrain training and nval validation images over 10 classes.
func classArtifact(b *testing.B, dir string, ntrain, nval int) string {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	ds := filepath.Join(dir, "dataset")
	for split, n := range map[string]int{"train": ntrain, "val": nval, "test": 2} {
		img := make([]uint8, n*3*224*224)
		for i := range img {
			img[i] = uint8(rng.IntN(256))
		}
		lab := make([]int32, n)
		for i := range lab {
			lab[i] = int32(i % 10)
		}
		if err := os.MkdirAll(filepath.Join(ds, split), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := npy.WriteFile(filepath.Join(ds, split, "images.npy"), []int{n, 3, 224, 224}, img); err != nil {
			b.Fatal(err)
		}
		if err := npy.WriteFile(filepath.Join(ds, split, "labels.npy"), []int{n}, lab); err != nil {
			b.Fatal(err)
		}
	}
	classes := []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}
	m, _ := json.Marshal(map[string]any{"kind": "classification", "source": "bench", "classes": classes, "image_size": 224})
	if err := os.WriteFile(filepath.Join(ds, "manifest.json"), m, 0o644); err != nil {
		b.Fatal(err)
	}
	return ds
}

// epochSecondsPerStep reads curve.json's first epoch: seconds per step.
func epochSecondsPerStep(b *testing.B, outDir string, steps int) float64 {
	b.Helper()
	raw, err := os.ReadFile(filepath.Join(outDir, "curve.json"))
	if err != nil {
		b.Fatal(err)
	}
	var c struct {
		Epochs []struct {
			Seconds float64 `json:"seconds"`
		} `json:"epochs"`
	}
	if err := json.Unmarshal(raw, &c); err != nil || len(c.Epochs) == 0 {
		b.Fatalf("curve.json: %v %s", err, raw)
	}
	return c.Epochs[0].Seconds / float64(steps)
}

// BenchmarkTrainStepAlexNet224 times one AdamW training step of AlexNet at
// 224 px, batch 32 and 256, three ways in the same run: PyTorch called
// directly (torch_bench.py), the same step through voxflow-torch's
// pretrain kind in its plugin process (the epoch's seconds per step, so
// the plugin's per-step overhead shows), and the Go backend's pretrain
// stage. Each reports seconds per step and the ratio to direct PyTorch.
// VOXFLOW_BENCH_FULL=1 runs batch 256 as well.
func BenchmarkTrainStepAlexNet224(b *testing.B) {
	const steps = 3
	batches := []int{32}
	if os.Getenv("VOXFLOW_BENCH_FULL") != "" {
		batches = append(batches, 256)
	}
	threads := runtime.NumCPU()
	for _, batch := range batches {
		b.Run(fmt.Sprintf("batch%d", batch), func(b *testing.B) {
			dir := b.TempDir()
			ds := classArtifact(b, dir, steps*batch, 2)
			params := func(st stages.Stage) stages.Params {
				p := stages.Params{}
				for _, ps := range st.Describe().Params {
					p[ps.Name] = ps.Default
				}
				p["arch"], p["epochs"], p["batch_size"], p["lr"] = "alexnet", int64(1), int64(batch), 1e-4
				p["init_scheme"], p["patience"], p["warmup_epochs"] = "torch", int64(0), 0.0
				return p
			}
			run := func(st stages.Stage, out string) {
				req := &stages.Request{Instance: "bench", Inputs: map[string][]stages.Artifact{"data": {{Path: ds, Stage: "data"}}},
					Params: params(st), OutDir: out, Progress: stages.NopProgress{}, Log: io.Discard,
					Resources: stages.Resources{CPUs: threads}}
				if err := st.Run(context.Background(), req); err != nil {
					b.Fatal(err)
				}
			}
			for range b.N {
				out, err := exec.Command("/usr/bin/python3", "testdata/torch_bench.py", strconv.Itoa(batch), strconv.Itoa(steps), strconv.Itoa(threads)).Output()
				if err != nil {
					b.Fatalf("torch_bench.py: %v", err)
				}
				direct, err := strconv.ParseFloat(strings.TrimSpace(string(bytes.TrimSpace(out))), 64)
				if err != nil {
					b.Fatal(err)
				}
				c, err := plugins.Open(context.Background(), "voxflow-torch")
				if err != nil {
					b.Fatal(err)
				}
				var torchStage stages.Stage
				for _, s := range c.Stages() {
					if s.Describe().Kind == pretrain.Kind {
						torchStage = s
					}
				}
				tOut := filepath.Join(dir, "torch")
				run(torchStage, tOut)
				c.Close()
				viaPlugin := epochSecondsPerStep(b, tOut, steps)
				gOut := filepath.Join(dir, "go")
				run(pretrain.New(), gOut)
				goStep := epochSecondsPerStep(b, gOut, steps)
				b.ReportMetric(direct, "s/step-torch-direct")
				b.ReportMetric(viaPlugin, "s/step-torch-plugin")
				b.ReportMetric(goStep, "s/step-go")
				b.ReportMetric(viaPlugin/direct, "plugin/direct")
				b.ReportMetric(goStep/direct, "go/direct")
				_ = os.RemoveAll(tOut)
				_ = os.RemoveAll(gOut)
			}
		})
	}
	_ = network.ArchAlexNet
}
