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

// benchBatches are the batch sizes the speed benchmarks compare, each as a
// sub-benchmark: 32 and 256, or only VOXFLOW_BENCH_BATCH when it is set.
func benchBatches() []int {
	if v, err := strconv.Atoi(os.Getenv("VOXFLOW_BENCH_BATCH")); err == nil && v > 0 {
		return []int{v}
	}
	return []int{32, 256}
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

// classObjective is plain classification (cross-entropy) of random images
// and labels, the training workload of the speed benchmark. Example i is
// image i mod the number of images, so that the harness holds one batch of
// images however many steps it times, as bench_torch.py does.
func classObjective(cfg Config, imgs []uint8, labels []int32) Objective {
	nimg := len(imgs) / (3 * cfg.ImageSize * cfg.ImageSize)
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
			at := make([]int, len(idx))
			for i, j := range idx {
				lab[i] = labels[j%len(labels)]
				at[i] = j % nimg
			}
			out := []*tensors.Tensor{GatherImages(imgs, cfg.ImageSize, at), tensors.FromFlatDataAndDimensions(lab, len(idx))}
			if split == "train" {
				out = append(out, DropoutMasks(rng, cfg, len(idx), 0.5)...)
			}
			return out, nil
		},
	}
}

// speed is one phase's figures: images/s and peak RSS in MB.
type speed struct {
	IPS, RSS float64
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

// measure returns training or forward images/s over steps batches, after
// one untimed warm-up batch that also compiles, as bench_torch.py does. The
// harness holds one batch of images and, for training, lets go of the
// initial weights once Fit has them, as torch's harness holds only the
// module's parameters.
func measure(t testing.TB, cfg Config, phase string, batch, steps int) float64 {
	backend := testBackend(t)
	imgs := randomImages(1, batch, cfg.ImageSize)
	switch phase {
	case "train":
		labels := make([]int32, batch)
		for i := range labels {
			labels[i] = int32(i % cfg.NumClasses)
		}
		// One epoch of steps+1 batches, timed from the end of the first:
		// a single epoch also leaves out the best-epoch checkpoint that
		// a later epoch would keep beside the weights, which torch's
		// harness does not have.
		n := batch * (steps + 1)
		var t0, t1 time.Time
		report := func(_ string, done, _ float64, _, _ string) {
			switch int(done) {
			case batch:
				t0 = time.Now()
			case n:
				t1 = time.Now()
			}
		}
		if _, err := Fit(context.Background(), backend, classObjective(cfg, imgs, labels), cfg.InitWeights(1), n, 2,
			TrainConfig{Epochs: 1, BatchSize: batch, LR: 1e-4, Seed: 1}, report, io.Discard); err != nil {
			t.Fatal(err)
		}
		if t0.IsZero() || t1.IsZero() {
			t.Fatalf("train: Fit reported no first or last step of %d", steps+1)
		}
		return float64(batch*steps) / t1.Sub(t0).Seconds()
	case "forward":
		pr, err := NewPredictor(backend, cfg, cfg.InitWeights(1), "output")
		if err != nil {
			t.Fatal(err)
		}
		defer pr.Close()
		if _, _, err := pr.Run(imgs, batch); err != nil { // compile
			t.Fatal(err)
		}
		start := time.Now()
		for range steps {
			if _, _, err := pr.Run(imgs, batch); err != nil {
				t.Fatal(err)
			}
		}
		return float64(batch*steps) / time.Since(start).Seconds()
	}
	t.Fatalf("phase %q: want train or forward", phase)
	return 0
}

// goSpeed runs one phase in its own helper process.
func goSpeed(b *testing.B, cfg Config, phase string, batch, steps int) speed {
	cmd := exec.Command(os.Args[0], "-test.run=^TestSpeedChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %d %d", childEnv, cfg.Arch, phase, batch, steps))
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("speed helper %s: %v\n%s", phase, err, out)
	}
	i := strings.Index(string(out), "SPEED ")
	if i < 0 {
		b.Fatalf("speed helper %s: no result in %q", phase, out)
	}
	var s speed
	if _, err := fmt.Sscan(string(out[i+6:]), &s.IPS, &s.RSS); err != nil {
		b.Fatalf("speed helper %s: %v in %q", phase, err, out)
	}
	return s
}

// torchSpeed runs one phase of testdata/bench_torch.py for the same
// workload.
func torchSpeed(b *testing.B, cfg Config, phase string, batch, steps int) speed {
	dir := b.TempDir()
	if err := cfg.Save(dir); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(python, "testdata/bench_torch.py", dir+"/"+ConfigFile, fmt.Sprint(batch), fmt.Sprint(steps), phase)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("bench_torch.py %s: %v\n%s", phase, err, stderr.String())
	}
	var r struct {
		IPS float64 `json:"img_per_s"`
		RSS float64 `json:"peak_rss_mb"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		b.Fatalf("bench_torch.py %s output %q: %v", phase, out, err)
	}
	return speed{IPS: r.IPS, RSS: r.RSS}
}

// benchVsTorch measures cfg beside PyTorch at each of benchBatches, as
// sub-benchmarks batch32, batch256. steps gives the timed steps per batch
// size (AlexNet at 256 takes seconds a step on two cores).
func benchVsTorch(b *testing.B, cfg Config, steps func(batch int) int) {
	for _, batch := range benchBatches() {
		b.Run(fmt.Sprintf("batch%d", batch), func(b *testing.B) {
			n := steps(batch)
			for range b.N {
				var g, t [2]speed // train, forward
				for i, phase := range []string{"train", "forward"} {
					g[i] = goSpeed(b, cfg, phase, batch, n)
					t[i] = torchSpeed(b, cfg, phase, batch, n)
				}
				b.ReportMetric(g[0].IPS, "train_img/s")
				b.ReportMetric(g[1].IPS, "fwd_img/s")
				b.ReportMetric(g[0].RSS, "train_peakRSS_MB")
				b.ReportMetric(g[1].RSS, "fwd_peakRSS_MB")
				b.ReportMetric(t[0].IPS, "torch_train_img/s")
				b.ReportMetric(t[1].IPS, "torch_fwd_img/s")
				b.ReportMetric(t[0].RSS, "torch_train_peakRSS_MB")
				b.ReportMetric(t[1].RSS, "torch_fwd_peakRSS_MB")
				b.ReportMetric(g[0].IPS/t[0].IPS, "train_ratio")
				b.ReportMetric(g[1].IPS/t[1].IPS, "fwd_ratio")
				b.ReportMetric(g[0].RSS/t[0].RSS, "train_rss_ratio")
				b.ReportMetric(g[1].RSS/t[1].RSS, "fwd_rss_ratio")
				b.Logf("%s %dpx batch %d, %d timed steps: train %.1f img/s (torch %.1f, ratio %.2f), forward %.1f img/s (torch %.1f, ratio %.2f); "+
					"peak RSS train %.0f MB (torch %.0f, ratio %.2f), forward %.0f MB (torch %.0f, ratio %.2f)",
					cfg.Arch, cfg.ImageSize, batch, n, g[0].IPS, t[0].IPS, g[0].IPS/t[0].IPS, g[1].IPS, t[1].IPS, g[1].IPS/t[1].IPS,
					g[0].RSS, t[0].RSS, g[0].RSS/t[0].RSS, g[1].RSS, t[1].RSS, g[1].RSS/t[1].RSS)
			}
		})
	}
}

// BenchmarkMini64 compares alexnet-mini (64x64) with PyTorch 1.13 CPU:
// 40 timed steps at batch 32, 20 at 256 (a step takes milliseconds, so
// fewer would time the machine's noise).
func BenchmarkMini64(b *testing.B) {
	benchVsTorch(b, Mini(1000), func(batch int) int { return max(20, 1280/batch) })
}

// BenchmarkAlexNet224 compares AlexNet (224x224) with PyTorch 1.13 CPU:
// 4 timed steps at batch 32, 2 at 256.
func BenchmarkAlexNet224(b *testing.B) {
	benchVsTorch(b, AlexNet(1000), func(batch int) int { return max(2, 128/batch) })
}
