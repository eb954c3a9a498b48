package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writeBenchSpec writes a spec of n `command` stages: a chain of width 10
// (each stage reads its predecessor), so keys depend on upstream digests
// as in a real study.
func writeBenchSpec(b *testing.B, dir string, n int) string {
	b.Helper()
	var sb strings.Builder
	sb.WriteString("name: bench\nstages:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&sb, "  s%d:\n    uses: command\n", i)
		if i >= 10 {
			fmt.Fprintf(&sb, "    inputs: {deps: s%d}\n", i-10)
		}
		fmt.Fprintf(&sb, "    with: {cmd: 'echo %d > o'}\n", i)
	}
	p := filepath.Join(dir, "bench.yaml")
	if err := os.WriteFile(p, []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	return p
}

// timeVox runs voxflow and returns wall time and peak RSS in MB.
func timeVox(b *testing.B, dir string, args ...string) (time.Duration, float64) {
	b.Helper()
	cmd := exec.Command(voxBin, args...)
	cmd.Dir = dir
	start := time.Now()
	out, err := cmd.CombinedOutput()
	el := time.Since(start)
	if err != nil {
		b.Fatalf("voxflow %v: %v\n%s", args, err, out)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return el, float64(ru.Maxrss) / 1024
}

// BenchmarkNoopRerun measures a fully cached rerun and a plan of 100- and
// 10,000-stage DAGs of command stages (VOXFLOW_BENCH_BIG=0 skips the big
// one, whose first run spawns 10,000 shells).
func BenchmarkNoopRerun(b *testing.B) {
	sizes := []int{100, 10000}
	if os.Getenv("VOXFLOW_BENCH_BIG") == "0" {
		sizes = sizes[:1]
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("stages=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			writeBenchSpec(b, dir, n)
			timeVox(b, dir, "run", "bench.yaml", "-j", "4")
			b.ResetTimer()
			var wall, plan time.Duration
			var rss float64
			for i := 0; i < b.N; i++ {
				w, r := timeVox(b, dir, "run", "bench.yaml")
				p, _ := timeVox(b, dir, "plan", "bench.yaml")
				wall += w
				plan += p
				rss = max(rss, r)
			}
			b.ReportMetric(float64(wall.Milliseconds())/float64(b.N), "ms/noop-run")
			b.ReportMetric(float64(plan.Milliseconds())/float64(b.N), "ms/plan")
			b.ReportMetric(rss, "MB-peak-rss")
		})
	}
}

// BenchmarkFullShapeRehearsal times the poster's pipeline on one subject at
// NSD's real shape (`voxflow data synth --full-shape`: 9,841 + 159 images
// at 425 px, 19,004 + 20,544 vertices): the data stage (decode, resize to
// 224, z-score 4 ROIs), features of AlexNet 224 at two layers (features.12,
// 9,216-d, and classifier.5, 4,096-d) and a ridge on each (the conv layer
// pooled to 2x2 per channel, 1,024-d: ridge on all 9,216 features is
// stages/ridge's own benchmark), from an empty cache. It reports seconds per stage, voxflow's peak RSS and the
// disk a subject takes (source and cache), so a lab can plan a real run.
// Needs VOXFLOW_BENCH_FULL=1 (about a quarter of an hour on 2 cores).
func BenchmarkFullShapeRehearsal(b *testing.B) {
	if os.Getenv("VOXFLOW_BENCH_FULL") == "" {
		b.Skip("set VOXFLOW_BENCH_FULL=1 to run the full-shape rehearsal")
	}
	for range b.N {
		dir := b.TempDir()
		src := filepath.Join(dir, "release")
		synth, _ := timeVox(b, dir, "data", "synth", "--layout", "algonauts", "--full-shape", src)
		spec := `name: fullshape
stages:
  nsd:
    uses: data
    with: {source: algonauts, root: ` + src + `, subject: subj01, rois: [V1v, hV4, FFA-1, PPA], image_size: 224}
  net:
    uses: pretrain
    with: {arch: alexnet, init: random, init_scheme: torch, epochs: 0}
  feat_conv:
    uses: features
    inputs: {data: nsd.dataset, net: net.net}
    with: {layer: features.12, batch_size: 64}
  feat_fc:
    uses: features
    inputs: {data: nsd.dataset, net: net.net}
    with: {layer: classifier.5, batch_size: 64}
  ridge_conv:
    uses: ridge
    inputs: {data: nsd.dataset, features: [feat_conv.features]}
    with: {baseline: feat_conv, bootstrap: 200, reduce: "pool:2"}
    resources: {cpus: 2}
  ridge_fc:
    uses: ridge
    inputs: {data: nsd.dataset, features: [feat_fc.features]}
    with: {baseline: feat_fc, bootstrap: 200}
    resources: {cpus: 2}
`
		if err := os.WriteFile(filepath.Join(dir, "fs.yaml"), []byte(spec), 0o644); err != nil {
			b.Fatal(err)
		}
		cmd := exec.Command(voxBin, "run", "fs.yaml", "--plain", "-j", "1")
		cmd.Dir = dir
		start := time.Now()
		out, err := cmd.CombinedOutput()
		wall := time.Since(start)
		if err != nil {
			b.Fatalf("run: %v\n%s", err, out)
		}
		ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		re := regexp.MustCompile(`done\s+(\S+) \(([^)]+)\)`)
		for _, m := range re.FindAllStringSubmatch(string(out), -1) {
			d, err := time.ParseDuration(m[2])
			if err == nil {
				b.ReportMetric(d.Seconds(), "s/"+m[1])
			}
		}
		b.ReportMetric(synth.Seconds(), "s/synth")
		b.ReportMetric(wall.Seconds(), "s/run")
		b.ReportMetric(float64(ru.Maxrss)/(1<<20), "GB-peak-rss")
		b.ReportMetric(float64(duBytes(b, src))/(1<<30), "GB-source")
		b.ReportMetric(float64(duBytes(b, filepath.Join(dir, ".voxflow")))/(1<<30), "GB-cache")
	}
}

// duBytes is the size of the regular files under dir.
func duBytes(b *testing.B, dir string) int64 {
	b.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			n += info.Size()
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}
