package engine

import (
	"context"
	"errors"

	"github.com/voxflow/voxflow/engine/spec"
)

// ErrDetached is wrapped by the error of an executor that handed a job to
// a cluster without waiting for it (`voxflow run --detach`). The instance
// is recorded as submitted, not failed, and its dependents wait for a
// later run, which adopts the job.
var ErrDetached = errors.New("submitted, not waited for")

// remote reports whether exe runs jobs on other hosts.
func remote(exe Executor) bool {
	r, ok := exe.(interface{ Remote() bool })
	return ok && r.Remote()
}

// RemoteJobs is how many instances a run keeps in flight on a remote
// executor when -j is not given: a cluster's size, not the engine host's
// cores, bounds them. Slurm queues whatever does not fit yet.
const RemoteJobs = 64

// RequestChecker is implemented by remote executors that can tell, before
// anything is submitted, that an instance's declared resources can never
// be met where they would run it (more CPUs, memory or GPUs than any node
// of the partition has). The error says why, with the cluster's limits.
type RequestChecker interface {
	CheckRequest(ctx context.Context, job *Job) error
}

// executorOptions merges the spec's executor map with the stage's own
// slurm map (the stage wins).
func executorOptions(p *Project, inst *spec.Instance) map[string]any {
	out := map[string]any{}
	for k, v := range p.Spec.Executor {
		out[k] = v
	}
	for k, v := range inst.Stage.ExecOptions {
		out[k] = v
	}
	return out
}
