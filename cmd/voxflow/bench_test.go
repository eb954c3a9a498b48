package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
