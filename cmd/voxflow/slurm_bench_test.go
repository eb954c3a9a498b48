package main

import (
	"testing"
	"time"

	"github.com/voxflow/voxflow/engine/slurm/slurmtest"
)

// BenchmarkDAG15LocalVsSlurm runs the 15-stage DAG of command stages (ten
// roots, five dependents: two levels) from an empty cache, once in this
// process and once with every instance as a Slurm job on the one-node
// cluster. The difference is the executor's overhead per level: sbatch,
// the job's start on the node, and how soon squeue polling notices the end
// (adaptive: sub-second while a job is about to finish).
func BenchmarkDAG15LocalVsSlurm(b *testing.B) {
	if err := slurmtest.Available(); err != nil {
		b.Skipf("Slurm is not available here (%v); start it with .ci/slurm.sh", err)
	}
	var local, remote time.Duration
	for i := 0; i < b.N; i++ {
		dir := b.TempDir()
		writeBenchSpec(b, dir, 15)
		w, _ := timeVox(b, dir, "run", "bench.yaml")
		local += w
		dir = b.TempDir()
		writeBenchSpec(b, dir, 15)
		w, _ = timeVox(b, dir, "run", "bench.yaml", "--executor", "slurm")
		remote += w
	}
	b.ReportMetric(float64(local.Milliseconds())/float64(b.N), "ms/run-local")
	b.ReportMetric(float64(remote.Milliseconds())/float64(b.N), "ms/run-slurm")
}
