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

// LocalDriver is the "local" executor: jobs run on this machine, with the
// run's CPU, GPU and memory budgets. It takes no options and ignores those
// written for other executors, so one spec runs locally and on a cluster.
func LocalDriver() ExecutorDriver { return localDriver{} }

type localDriver struct{}

// Name is "local".
func (localDriver) Name() string { return "local" }

// Doc describes the executor for help texts.
func (localDriver) Doc() string {
	return "run on this machine, inline or in plugin processes, within the run's budgets"
}

// CheckOptions accepts every map: options are addressed to whichever
// executor runs the stage, and the local one has none.
func (localDriver) CheckOptions(map[string]any) error { return nil }

// New returns cfg.Local; it cannot detach.
func (localDriver) New(cfg ExecutorConfig) (Executor, error) {
	if cfg.Detach {
		return nil, fmt.Errorf("--detach: the local executor waits for every job it starts; pick an executor that hands jobs off with --executor")
	}
	if cfg.Local == nil {
		return nil, fmt.Errorf("no local executor configured (ExecutorConfig.Local is nil)")
	}
	return cfg.Local, nil
}
