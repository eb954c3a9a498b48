package slurm

import (
	"context"
	"fmt"
	"io"

	"github.com/voxflow/voxflow/engine"
	"github.com/voxflow/voxflow/stages"
)

// Detached is the executor of `voxflow run --executor slurm --detach`: its
// Execute submits the job (or adopts the one already queued or running for
// the key) and returns at once with an error wrapping engine.ErrDetached.
// A job that already ended without an engine collecting it (a previous
// detached run's) is collected instead: nil with its outputs when it
// completed, its failure otherwise, which counts against the stage's
// retries once.
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
		if done, err := d.ended(ctx, sub); err == nil && done {
			fmt.Fprintf(log, "voxflow: collecting slurm job %s (attempt %d), which ended\n", sub.JobID, sub.Attempt)
			return d.wait(ctx, job, sub, progress, log)
		}
	}
	fmt.Fprintf(log, "voxflow: slurm job %s (attempt %d) submitted; not waiting (--detach)\n", sub.JobID, sub.Attempt)
	return fmt.Errorf("slurm job %s: %w", sub.JobID, engine.ErrDetached)
}
