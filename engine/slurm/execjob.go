package slurm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/voxflow/voxflow/engine"
	"github.com/voxflow/voxflow/stages"
)

// progressEvery thins progress updates written to the shared filesystem.
const progressEvery = 500 * time.Millisecond

// ExecJobMain is `voxflow exec-job JOBFILE`, the far end of the executor:
// it reads the job, runs it with exe (an engine.LocalExecutor on the node:
// builtin kinds inline, plugin kinds in their plugin process), writes
// progress lines to progress.jsonl and the stage's log to log (Slurm's
// output file), and finally writes result.json next to the job file. It
// returns the stage's error, so the process exits non-zero and Slurm marks
// the job FAILED. SIGTERM (scancel, time limit, preemption) cancels the
// stage and is recorded as status "cancelled".
func ExecJobMain(ctx context.Context, jobFile string, exe engine.Executor, log io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	jobFile, err := filepath.Abs(jobFile)
	if err != nil {
		return fmt.Errorf("exec-job: %w", err)
	}
	l := Layout{Dir: filepath.Dir(jobFile)}
	host, _ := os.Hostname()
	res := Result{JobID: os.Getenv("SLURM_JOB_ID"), Host: host, Start: time.Now().UTC()}

	runErr := func() error {
		job, err := ReadJob(jobFile)
		if err != nil {
			return err
		}
		res.Key = job.Key
		fmt.Fprintf(log, "voxflow exec-job: %s (kind %s, key %.16s) on %s, slurm job %s\n", job.Instance, job.Kind, job.Key, host, orDash(res.JobID))
		if err := os.MkdirAll(job.OutDir, 0o755); err != nil {
			return fmt.Errorf("create output dir: %w", err)
		}
		f, err := os.OpenFile(l.Progress(), os.O_CREATE|os.O_TRUNC|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("create progress file: %w", err)
		}
		pw := newProgressWriter(f, progressEvery)
		err = exe.Execute(ctx, job, pw, log)
		perr := pw.flush()
		if cerr := f.Close(); perr == nil && cerr != nil {
			perr = fmt.Errorf("close %s: %w", l.Progress(), cerr)
		}
		if err == nil && perr != nil {
			fmt.Fprintf(log, "voxflow exec-job: warning: %v\n", perr)
		}
		return err
	}()

	if runErr != nil && ctx.Err() == nil {
		// Slurm signals every process of the job in one sweep, so the stage's
		// children may die of SIGTERM a moment before ours arrives; wait for
		// it briefly, or a cancellation would be recorded as a failure.
		select {
		case <-ctx.Done():
		case <-time.After(300 * time.Millisecond):
		}
	}
	res.End = time.Now().UTC()
	switch {
	case runErr == nil:
		res.Status = StatusOK
	case ctx.Err() != nil:
		res.Status = StatusCancelled
		res.Error = fmt.Sprintf("cancelled (SIGTERM from scancel, a time limit or preemption): %v", runErr)
	default:
		res.Status = StatusFailed
		res.Error = runErr.Error()
	}
	fmt.Fprintf(log, "voxflow exec-job: %s after %s\n", res.Status, res.End.Sub(res.Start).Round(time.Millisecond))
	if err := writeJSONAtomic(l.Result(), res); err != nil {
		return errors.Join(runErr, err)
	}
	return runErr
}

// StagesExecutor is the executor exec-job uses for builtin kinds: it runs
// a job in this process with the stage whose kind matches. Plugin jobs are
// refused; wrap it in an engine.LocalExecutor with a Process executor for
// those.
func StagesExecutor(ss []stages.Stage) engine.Executor {
	byKind := make(map[string]stages.Stage, len(ss))
	for _, s := range ss {
		byKind[s.Describe().Kind] = s
	}
	return engine.LocalExecutor{Lookup: func(job *engine.Job) (stages.Stage, error) {
		s, ok := byKind[job.Kind]
		if !ok {
			return nil, fmt.Errorf("%s: stage kind %q is not built into this voxflow binary", job.Instance, job.Kind)
		}
		return s, nil
	}}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
