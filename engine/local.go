package engine

import (
	"context"
	"fmt"
	"io"

	"github.com/voxflow/voxflow/stages"
)

// LocalExecutor runs jobs on this machine: inline in this process, or in a
// plugin process when the job asks for isolation or its kind comes from a
// plugin binary.
type LocalExecutor struct {
	// Lookup resolves inline kinds; nil uses only Process.
	Lookup StageLookup
	// Process runs a job in a separate process (a plugin); nil means
	// isolation is unavailable and jobs run inline.
	Process Executor
}

// Execute runs job.
func (l LocalExecutor) Execute(ctx context.Context, job *Job, progress stages.Progress, log io.Writer) error {
	if (job.Isolate == "process" || job.Plugin != "") && l.Process != nil {
		return l.Process.Execute(ctx, job, progress, log)
	}
	if job.Plugin != "" {
		return fmt.Errorf("%s: kind %s comes from plugin %s, but plugins are not available", job.Instance, job.Kind, job.Plugin)
	}
	if l.Lookup == nil {
		return fmt.Errorf("%s: no stage implementation for kind %s", job.Instance, job.Kind)
	}
	st, err := l.Lookup(job)
	if err != nil {
		return err
	}
	return RunJob(ctx, st, job, progress, log)
}
