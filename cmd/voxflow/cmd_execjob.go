package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/voxflow/voxflow/engine"
	"github.com/voxflow/voxflow/stages"
	"github.com/voxflow/voxflow/stages/builtin"
)

// cmdExecJob is `voxflow exec-job JOBFILE`: run one job file written by a
// cluster executor, on the compute node (engine.ExecJobFile). Builtin kinds
// run in this process (or in a plugin-serve child with `isolate: process`),
// plugin kinds in their plugin binary. Progress goes to progress.jsonl and
// the result record to result.json next to the job file; the stage's log
// goes to stdout, which the cluster captures.
func cmdExecJob(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("exec-job", "JOBFILE", stdout, stderr)
	fs.notes = "Runs one stage instance from a job file written by a cluster executor (used on cluster nodes)."
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	jobFile, err := onePositional(pos, "JOBFILE")
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the voxflow binary: %w", err)
	}
	reg := engine.NewRegistry(builtin.Stages(), nil)
	exe := engine.LocalExecutor{
		Process: engine.ProcessExecutor{Self: self},
		Lookup: func(job *engine.Job) (stages.Stage, error) {
			k, ok := reg.Builtin(job.Kind)
			if !ok {
				return nil, fmt.Errorf("%s: stage kind %q is not built into this voxflow binary (%s)", job.Instance, job.Kind, self)
			}
			// Outputs are recorded under the key the engine computed; a node
			// running another voxflow build would file them under a key
			// that does not describe them.
			if job.Impl != "" && job.Impl != k.Impl {
				return nil, fmt.Errorf("%s: this voxflow (%s) implements %s as %s, but the engine planned %s; install the same voxflow build on the nodes (executor option voxflow_bin)", job.Instance, self, job.Kind, k.Impl, job.Impl)
			}
			return k.Stage, nil
		},
	}
	return engine.ExecJobFile(ctx, jobFile, exe, stdout)
}
