package slurm

import (
	"context"
	"testing"
	"time"
)

// BenchmarkTrivialJobRoundTrip measures one instance's overhead on Slurm:
// write job.json, sbatch, start exec-job on the node, poll until COMPLETED,
// read the result record. The stage itself does nothing.
func BenchmarkTrivialJobRoundTrip(b *testing.B) {
	if slurmErr != nil {
		b.Skipf("Slurm is not available here (%v)", slurmErr)
	}
	e := &Executor{Bin: testBin, PollInterval: 100 * time.Millisecond}
	for i := 0; i < b.N; i++ {
		job := commandJob(b, "true")
		if err := e.Execute(context.Background(), job, nil, nil); err != nil {
			b.Fatal(err)
		}
	}
}
