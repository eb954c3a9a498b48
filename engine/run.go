package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/voxflow/voxflow/cache"
	"github.com/voxflow/voxflow/engine/spec"
)

// Instance and run statuses.
const (
	StatusSucceeded   = "succeeded"
	StatusFailed      = "failed"
	StatusInterrupted = "interrupted"
	StatusSkipped     = "skipped"
	StatusRunning     = "running"
	// StatusSubmitted is an instance handed to a cluster by a detached run:
	// a later run adopts the job and records its outcome.
	StatusSubmitted = "submitted"
	// StatusDetached is a run that submitted work and returned.
	StatusDetached = "detached"
)

// Runner executes projects against one cache.
type Runner struct {
	Store   *cache.Store
	Display Display
	// Executor runs jobs; nil means in this process (LocalExecutor).
	Executor Executor
	// Host is recorded with each execution; empty means os.Hostname.
	Host string
}

// RunOptions are the knobs of one `voxflow run`.
type RunOptions struct {
	Jobs      int      // parallel instances; <= 0 means the core count
	CPUs      int      // CPU budget for local execution; <= 0 means the core count
	MemoryMB  int64    // memory budget; <= 0 means unlimited
	GPUs      int      // GPU budget for local execution
	KeepGoing bool     // keep running independent instances after a failure
	Force     []string // stage names or instance IDs to rerun regardless of the cache
	SpecPath  string
}

// RunResult summarises a run.
type RunResult struct {
	RunID                                                 int64
	Status                                                string
	Executed, Cached, Failed, Skipped, Interrupted, Total int
	Submitted                                             int
	// NotChosen counts instances a foreach selection left out (select.go).
	NotChosen int
	// Failures holds one error per failed instance.
	Failures []error
}

// Run executes every instance of p that the cache cannot answer, in
// dependency order and in parallel within the declared resources. It
// records the run in the cache, schedules it (scheduler.go) and records
// how it ended. An error means the cache index failed; the run's running
// executions are stopped before Run returns it.
func (r *Runner) Run(ctx context.Context, p *Project, opt RunOptions) (*RunResult, error) {
	opt = r.withDefaults(opt)
	host := r.host()
	runID, err := r.beginRun(ctx, p, opt, host)
	if err != nil {
		return nil, err
	}
	s, err := r.newScheduler(ctx, p, opt, runID, host)
	if err != nil {
		return nil, r.abort(ctx, runID, err)
	}
	// Executions run under a context of their own, so that a run that
	// gives up on an error stops them before it returns rather than leave
	// them writing to the cache and the display behind its back.
	execCtx, stop := context.WithCancel(ctx)
	defer stop()
	for {
		if err := s.startReady(execCtx); err != nil && ctx.Err() == nil {
			stop()
			s.drain()
			return nil, r.abort(ctx, runID, err)
		}
		// An error with ctx cancelled is the index query that Ctrl-C cut
		// short: the run ends as interrupted, as it would a moment later.
		if s.running == 0 {
			break
		}
		s.finish(s.collect())
	}
	res := s.result(ctx)
	// The run's end is recorded even when the caller's context is gone.
	if err := r.Store.EndRun(context.WithoutCancel(ctx), runID, res.Status); err != nil {
		return res, fmt.Errorf("record run %d end: %w", runID, err)
	}
	return res, nil
}

// abort records a run that could not go on (the cache index failed) as
// failed and returns err. Recording is best effort: the index may well be
// what failed, and then a later `voxflow status` shows the run as died.
func (r *Runner) abort(ctx context.Context, runID int64, err error) error {
	if endErr := r.Store.EndRun(context.WithoutCancel(ctx), runID, StatusFailed); endErr != nil {
		return errors.Join(err, fmt.Errorf("record run %d end: %w", runID, endErr))
	}
	return err
}

// withDefaults fills in the budgets opt leaves open: as many instances and
// CPUs as this host has cores, or RemoteJobs in flight on a cluster.
func (r *Runner) withDefaults(opt RunOptions) RunOptions {
	if opt.Jobs <= 0 {
		opt.Jobs = runtime.NumCPU()
		if remote(r.Executor) {
			opt.Jobs = RemoteJobs
		}
	}
	if opt.CPUs <= 0 {
		opt.CPUs = runtime.NumCPU()
	}
	return opt
}

// host is the host name recorded with the run and its executions.
func (r *Runner) host() string {
	if r.Host != "" {
		return r.Host
	}
	h, _ := os.Hostname()
	return h
}

// beginRun records the run as running and returns its ID.
func (r *Runner) beginRun(ctx context.Context, p *Project, opt RunOptions, host string) (int64, error) {
	specPath, _ := filepath.Abs(opt.SpecPath)
	runID, err := r.Store.BeginRun(ctx, &cache.Run{
		Spec: p.Spec.Name, SpecPath: specPath, SpecDigest: p.Spec.Digest, Variant: p.Spec.Variant,
		Overrides: p.Spec.Overrides, Status: StatusRunning, Start: time.Now(), Host: host, PID: os.Getpid(),
	})
	if err != nil {
		return 0, fmt.Errorf("record run: %w", err)
	}
	return runID, nil
}

// unsatisfiable says why an instance can never run under exe (nil: in
// this process): locally, a request beyond the run's budgets; remotely,
// what the executor's RequestChecker reports. A run fails such an
// instance with the reason, and plan shows it, rather than skip it.
func unsatisfiable(ctx context.Context, p *Project, inst *spec.Instance, exe Executor, opt RunOptions) string {
	res := declared(inst)
	if remote(exe) {
		c, ok := exe.(RequestChecker)
		if !ok {
			return ""
		}
		job := &Job{Instance: inst.ID, Stage: inst.Stage.Name, Timeout: inst.Stage.Timeout, Executor: executorOptions(p, inst),
			Resources: res}
		if err := c.CheckRequest(ctx, job); err != nil {
			return err.Error()
		}
		return ""
	}
	if res.GPUs > opt.GPUs {
		return fmt.Sprintf("needs %d GPU(s), this run has %d (set --gpus, or send it to a cluster executor with --executor)", res.GPUs, opt.GPUs)
	}
	if opt.MemoryMB > 0 && res.MemoryMB > opt.MemoryMB {
		return fmt.Sprintf("needs %d MB of memory, this run allows %d MB (--memory)", res.MemoryMB, opt.MemoryMB)
	}
	return ""
}

// isolation decides where an instance runs: the stage's own setting, the
// spec's default, then the kind's preference.
func isolation(p *Project, st *instState) string {
	switch {
	case st.kind.Plugin != "":
		return "process"
	case st.inst.Stage.Isolate != "":
		return st.inst.Stage.Isolate
	case p.Spec.Isolate != "":
		return p.Spec.Isolate
	case st.kind.Desc.Isolate != "":
		return st.kind.Desc.Isolate
	}
	return "inline"
}
