package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/voxflow/voxflow/engine"
	"github.com/voxflow/voxflow/engine/slurm"
	"github.com/voxflow/voxflow/stages"
	"github.com/voxflow/voxflow/stages/builtin"
)

// cmdExecJob is `voxflow exec-job JOBFILE`: run one job file written by the
// Slurm executor, on the compute node. Builtin kinds run in this process
// (or in a plugin-serve child with `isolate: process`), plugin kinds in
// their plugin binary. Progress goes to progress.jsonl and the result record
// to result.json next to the job file; the stage's log goes to stdout, which
// Slurm captures.
func cmdExecJob(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("exec-job", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: voxflow exec-job JOBFILE\n\nRuns one stage instance from a job file written by the Slurm executor (used on cluster nodes).")
	}
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2, err: err}
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return &exitError{code: 2, err: fmt.Errorf("want exactly one job file, have %d arguments", fs.NArg())}
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
	return slurm.ExecJobMain(ctx, fs.Arg(0), exe, stdout)
}
