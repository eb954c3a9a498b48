package network

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // graph code reads best unqualified
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// benchBatch is the batch size of the speed benchmarks: 32, or
// VOXFLOW_BENCH_BATCH (e.g. 256).
func benchBatch() int {
	if v, err := strconv.Atoi(os.Getenv("VOXFLOW_BENCH_BATCH")); err == nil && v > 0 {
		return v
	}
	return 32
}

// peakRSS returns this process's VmHWM in MB.
func peakRSS() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// classObjective is plain classification (cross-entropy) on random
// images and labels: the training workload of the speed benchmark.
func classObjective(cfg Config, imgs []uint8, labels []int32) Objective {
	return Objective{
		Trainable: cfg.Params(),
		Loss: func(p map[string]*Node, batch []*Node, train bool) (*Node, map[string]*Node) {
			var masks []*Node
			if train {
				masks = batch[2:4]
			}
			logits, _ := cfg.Forward(p, Normalize(batch[0]), masks, "")
			return CrossEntropy(logits, batch[1]), nil
		},
		Batch: func(split string, idx []int, rng *rand.Rand) ([]*tensors.Tensor, error) {
			lab := make([]int32, len(idx))
			for i, j := range idx {
				lab[i] = labels[j]
			}
			out := []*tensors.Tensor{GatherImages(imgs, cfg.ImageSize, idx), tensors.FromFlatDataAndDimensions(lab, len(idx))}
			if split == "train" {
				out = append(out, DropoutMasks(rng, cfg, len(idx), 0.5)...)
			}
			return out, nil
		},
	}
}

type speed struct {
	TrainIPS, ForwardIPS, TrainRSS, ForwardRSS float64
}

// childEnv makes the test binary a single-measurement helper process (as
// os/exec's own tests do), so that each figure's peak RSS is its own and
// not the high-water mark of an earlier phase or of buffer pools.
const childEnv = "VOXFLOW_SPEED_CHILD"

// TestSpeedChild is the helper process; it does nothing in a normal run.
func TestSpeedChild(t *testing.T) {
	spec := os.Getenv(childEnv)
	if spec == "" {
		return
	}
	var arch, phase string
	var batch, steps int
	if _, err := fmt.Sscan(spec, &arch, &phase, &batch, &steps); err != nil {
		t.Fatalf("%s=%q: %v", childEnv, spec, err)
	}
	cfg, err := ConfigFor(arch, 1000)
	if err != nil {
		t.Fatal(err)
	}
	ips := measure(t, cfg, phase, batch, steps)
	fmt.Printf("SPEED %g %g\n", ips, peakRSS())
}

// measure returns training or forward images/s, excluding compilation.
func measure(t testing.TB, cfg Config, phase string, batch, steps int) float64 {
	backend := testBackend(t)
	n := batch * steps
	imgs := randomImages(1, n, cfg.ImageSize)
	if phase == "train" {
		labels := make([]int32, n)
		for i := range labels {
			labels[i] = int32(i % cfg.NumClasses)
		}
		// Epoch 1 includes compilation; take epoch 2's own figure.
		res, err := Fit(context.Background(), backend, classObjective(cfg, imgs, labels), cfg.InitWeights(1), n, 2,
			TrainConfig{Epochs: 2, BatchSize: batch, LR: 1e-4, Seed: 1}, func(string, float64, float64, string, string) {}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		return res.Curve[len(res.Curve)-1].ImagesPerSec
	}
	pr, err := NewPredictor(backend, cfg, cfg.InitWeights(1), "output")
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	sz := 3 * cfg.ImageSize * cfg.ImageSize
	if _, _, err := pr.Run(imgs[:batch*sz], batch); err != nil { // compile
		t.Fatal(err)
	}
	start := time.Now()
	for i := range steps {
		if _, _, err := pr.Run(imgs[i*batch*sz:(i+1)*batch*sz], batch); err != nil {
			t.Fatal(err)
		}
	}
	return float64(n) / time.Since(start).Seconds()
}

// goSpeed runs each phase in its own helper process.
func goSpeed(b *testing.B, cfg Config, batch, steps int) speed {
	var s speed
	for _, phase := range []string{"train", "forward"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSpeedChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %d %d", childEnv, cfg.Arch, phase, batch, steps))
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("speed helper %s: %v\n%s", phase, err, out)
		}
		var ips, rss float64
		i := strings.Index(string(out), "SPEED ")
		if i < 0 {
			b.Fatalf("speed helper %s: no result in %q", phase, out)
		}
		if _, err := fmt.Sscan(string(out[i+6:]), &ips, &rss); err != nil {
			b.Fatalf("speed helper %s: %v in %q", phase, err, out)
		}
		if phase == "train" {
			s.TrainIPS, s.TrainRSS = ips, rss
		} else {
			s.ForwardIPS, s.ForwardRSS = ips, rss
		}
	}
	return s
}

// torchSpeed runs testdata/bench_torch.py for the same workload.
func torchSpeed(b *testing.B, cfg Config, batch, steps int) speed {
	dir := b.TempDir()
	if err := cfg.Save(dir); err != nil {
		b.Fatal(err)
	}
	out, err := exec.Command(python, "testdata/bench_torch.py", dir+"/"+ConfigFile, fmt.Sprint(batch), fmt.Sprint(steps)).Output()
	if err != nil {
		b.Fatalf("bench_torch.py: %v", err)
	}
	var r struct {
		Train, Forward       float64
		TrainRSS, ForwardRSS float64 `json:"-"`
		RSS                  float64 `json:"peak_rss_mb"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		b.Fatalf("bench_torch.py output %q: %v", out, err)
	}
	return speed{TrainIPS: r.Train, ForwardIPS: r.Forward, TrainRSS: r.RSS, ForwardRSS: r.RSS}
}

func benchVsTorch(b *testing.B, cfg Config, steps int) {
	batch := benchBatch()
	for range b.N {
		g := goSpeed(b, cfg, batch, steps)
		t := torchSpeed(b, cfg, batch, steps)
		b.ReportMetric(g.TrainIPS, "train_img/s")
		b.ReportMetric(g.ForwardIPS, "fwd_img/s")
		b.ReportMetric(g.TrainRSS, "train_peakRSS_MB")
		b.ReportMetric(g.ForwardRSS, "fwd_peakRSS_MB")
		b.ReportMetric(t.TrainIPS, "torch_train_img/s")
		b.ReportMetric(t.ForwardIPS, "torch_fwd_img/s")
		b.ReportMetric(t.TrainRSS, "torch_peakRSS_MB")
		b.ReportMetric(g.TrainIPS/t.TrainIPS, "train_ratio")
		b.ReportMetric(g.ForwardIPS/t.ForwardIPS, "fwd_ratio")
		b.Logf("%s %dpx batch %d: train %.1f img/s (torch %.1f, ratio %.2f), forward %.1f img/s (torch %.1f, ratio %.2f), peak RSS train %.0f / fwd %.0f MB (torch %.0f MB)",
			cfg.Arch, cfg.ImageSize, batch, g.TrainIPS, t.TrainIPS, g.TrainIPS/t.TrainIPS, g.ForwardIPS, t.ForwardIPS, g.ForwardIPS/t.ForwardIPS,
			g.TrainRSS, g.ForwardRSS, t.TrainRSS)
	}
}

// BenchmarkMini64 compares alexnet-mini (64x64) with PyTorch 1.13 CPU.
func BenchmarkMini64(b *testing.B) { benchVsTorch(b, Mini(1000), 4) }

// BenchmarkAlexNet224 compares AlexNet (224x224) with PyTorch 1.13 CPU.
func BenchmarkAlexNet224(b *testing.B) { benchVsTorch(b, AlexNet(1000), 2) }
