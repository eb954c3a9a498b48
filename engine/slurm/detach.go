package slurm

import (
	"context"
	"fmt"
	"io"

	"github.com/voxflow/voxflow/engine"
	"github.com/voxflow/voxflow/stages"
)

// ErrDetached is wrapped by the error a Detached executor returns for a job
// it submitted (or found already submitted) and did not wait for. The
// engine should record such an instance as submitted, not failed, and not
// start its dependents; a later run adopts the job.
var ErrDetached = engine.ErrDetached

// Detached is the executor of `voxflow run --executor slurm --detach`: its
// Execute submits the job (or adopts the one already queued or running for
// the work directory) and returns at once with an error wrapping
// ErrDetached, or nil when the job already finished with its outputs.
type Detached struct {
	*Executor
}

// Execute submits job and returns without waiting (see Detached).
func (d Detached) Execute(ctx context.Context, job *engine.Job, progress stages.Progress, log io.Writer) error {
	if progress == nil {
		progress = stages.NopProgress{}
	}
	if log == nil {
		log = io.Discard
	}
	sub, adopted, err := d.submit(ctx, job)
	if err != nil {
		return err
	}
	if adopted {
		// A finished, successful job needs no waiting: let the engine ingest it.
		if st, err := d.State(ctx, job.WorkDir); err == nil && st == "COMPLETED" {
			return d.wait(ctx, job, sub, progress, log)
		}
	}
	fmt.Fprintf(log, "voxflow: slurm job %s submitted; not waiting (--detach)\n", sub.JobID)
	return fmt.Errorf("%s: slurm job %s: %w", job.Instance, sub.JobID, ErrDetached)
}
