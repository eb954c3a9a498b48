package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/voxflow/voxflow/cache"
	"github.com/voxflow/voxflow/engine/spec"
	"github.com/voxflow/voxflow/stages"
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

// instState tracks one instance through a run.
type instState struct {
	inst    *spec.Instance
	kind    *Kind
	waiting int // unfinished upstream instances
	status  string
	res     resources
}

type resources struct {
	cpus int
	mem  int64
	gpus int
}

type instResult struct {
	st     *instState
	output cache.Digest
	status string
	err    error
	cached bool
}

// Run executes every instance of p that the cache cannot answer, in
// dependency order and in parallel within the declared resources.
func (r *Runner) Run(ctx context.Context, p *Project, opt RunOptions) (*RunResult, error) {
	if opt.Jobs <= 0 {
		opt.Jobs = runtime.NumCPU()
		if remote(r.Executor) {
			opt.Jobs = RemoteJobs
		}
	}
	if opt.CPUs <= 0 {
		opt.CPUs = runtime.NumCPU()
	}
	host := r.Host
	if host == "" {
		host, _ = os.Hostname()
	}
	exe := r.Executor
	if exe == nil {
		exe = LocalExecutor{Lookup: func(job *Job) (stages.Stage, error) {
			if k := p.Kinds[job.Stage]; k != nil && k.Stage != nil {
				return k.Stage, nil
			}
			return nil, fmt.Errorf("%s: kind %s has no in-process implementation", job.Instance, job.Kind)
		}}
	}
	specPath, _ := filepath.Abs(opt.SpecPath)
	runID, err := r.Store.BeginRun(ctx, &cache.Run{
		Spec: p.Spec.Name, SpecPath: specPath, SpecDigest: p.Spec.Digest, Variant: p.Spec.Variant,
		Overrides: p.Spec.Overrides, Status: StatusRunning, Start: time.Now(), Host: host, PID: os.Getpid(),
	})
	if err != nil {
		return nil, fmt.Errorf("record run: %w", err)
	}
	res := &RunResult{RunID: runID, Total: len(p.Graph.Instances)}

	states := make(map[string]*instState, len(p.Graph.Instances))
	dependents := map[string][]*instState{}
	var ready []*instState
	for _, inst := range p.Graph.Instances {
		st := &instState{inst: inst, kind: p.Kinds[inst.Stage.Name], waiting: len(inst.Deps)}
		st.res = resources{cpus: max(1, inst.Stage.Resources.CPUs), mem: inst.Stage.Resources.MemoryMB, gpus: inst.Stage.Resources.GPUs}
		states[inst.ID] = st
		for _, d := range inst.Deps {
			dependents[d.ID] = append(dependents[d.ID], st)
		}
		if st.waiting == 0 {
			ready = append(ready, st)
		}
	}

	reusable, err := r.Store.Reusable(ctx, p.Spec.Name)
	if err != nil {
		return nil, err
	}
	outputs := map[string]cache.Digest{}
	memo := newPathMemo() // one fingerprint per outside path per run
	sel := newSelector(r.Store)
	results := make(chan instResult)
	running := 0
	used := resources{}
	stopping := false // a failure without --keep-going: start nothing new

	finish := func(ir instResult) {
		st := ir.st
		st.status = ir.status
		switch ir.status {
		case StatusSucceeded, StatusNotChosen:
			switch {
			case ir.status == StatusNotChosen:
				// Dependents become ready as after a success; select.go
				// decides whether they run without it or are not chosen
				// either.
				res.NotChosen++
			case ir.cached:
				outputs[st.inst.ID] = ir.output
				res.Cached++
			default:
				outputs[st.inst.ID] = ir.output
				res.Executed++
			}
			for _, d := range dependents[st.inst.ID] {
				d.waiting--
				if d.waiting == 0 && d.status == "" {
					ready = append(ready, d)
				}
			}
		case StatusInterrupted:
			res.Interrupted++
		case StatusSubmitted:
			res.Submitted++
		default:
			res.Failed++
			if ir.err != nil {
				res.Failures = append(res.Failures, ir.err)
			}
			if !opt.KeepGoing {
				stopping = true
			}
			r.skipDependents(st, dependents, res)
		}
	}

	for {
		// Start what is ready and fits, answering cache hits on the spot so
		// a fully cached run never leaves this loop's thread.
		var deferred []*instState
		// Cache hits are linked to the run before gc may look again.
		hits, err := r.openHits(ctx, runID)
		if err != nil {
			return nil, err
		}
		for len(ready) > 0 && !stopping && ctx.Err() == nil {
			st := ready[0]
			ready = ready[1:]
			if ir, done := r.admit(ctx, sel, st); done {
				finish(ir)
				continue
			}
			forced := slices.Contains(opt.Force, st.inst.Stage.Name) || slices.Contains(opt.Force, st.inst.ID)
			in, _, err := artifacts(ctx, r.Store, st.inst, outputs, false)
			if err != nil {
				finish(instResult{st: st, status: StatusFailed, err: fmt.Errorf("%s: %w", st.inst.ID, err)})
				continue
			}
			key, _, err := instanceKey(ctx, r.Store, memo, st.kind, st.inst, in, true)
			if err != nil {
				finish(instResult{st: st, status: StatusFailed, err: fmt.Errorf("%s: %w", st.inst.ID, err)})
				continue
			}
			sel.keyed(st.inst.ID, key.Digest)
			if !forced {
				ex, ok, err := r.cachedHit(ctx, st.inst.ID, key.Digest, reusable)
				if err != nil {
					hits.close(ctx)
					return nil, fmt.Errorf("%s: %w", st.inst.ID, err)
				}
				if ok {
					r.Display.Cached(st.inst.ID)
					hits.add(ex.ID)
					finish(instResult{st: st, status: StatusSucceeded, output: ex.Output, cached: true})
					continue
				}
			}
			if reason := unsatisfiable(ctx, p, st.inst, r.Executor, opt); reason != "" {
				err := fmt.Errorf("%s: %s", st.inst.ID, reason)
				r.Display.Started(st.inst.ID)
				r.Display.Finished(st.inst.ID, StatusFailed, 0, err, nil)
				finish(instResult{st: st, status: StatusFailed, err: err})
				continue
			}
			need := r.grant(st, opt)
			// Local budgets bound local instances only; a cluster queues
			// what does not fit on it.
			if running >= opt.Jobs || !remote(exe) && (used.cpus+need.cpus > opt.CPUs && running > 0 ||
				opt.MemoryMB > 0 && used.mem+need.mem > opt.MemoryMB && running > 0 ||
				used.gpus+need.gpus > opt.GPUs && need.gpus > 0) {
				deferred = append(deferred, st)
				continue
			}
			in, _, err = artifacts(ctx, r.Store, st.inst, outputs, true)
			if err != nil {
				finish(instResult{st: st, status: StatusFailed, err: fmt.Errorf("%s: %w", st.inst.ID, err)})
				continue
			}
			used.cpus += need.cpus
			used.mem += need.mem
			used.gpus += need.gpus
			running++
			r.Display.Started(st.inst.ID)
			go func() {
				results <- r.execute(ctx, p, st, key, in, exe, forced, runID, host, need)
			}()
		}
		if err := hits.close(ctx); err != nil {
			return nil, err
		}
		ready = append(deferred, ready...)
		if running == 0 {
			break
		}
		ir := <-results
		running--
		need := r.grant(ir.st, opt)
		used.cpus -= need.cpus
		used.mem -= need.mem
		used.gpus -= need.gpus
		finish(ir)
	}
	// Whatever never started was skipped (failure upstream, stop, or Ctrl-C).
	for _, inst := range p.Graph.Instances {
		if st := states[inst.ID]; st.status == "" || st.status == StatusSkipped {
			st.status = StatusSkipped
			res.Skipped++
		}
	}
	switch {
	case res.Submitted > 0 && res.Failed == 0 && ctx.Err() == nil:
		res.Status = StatusDetached
	case ctx.Err() != nil || res.Interrupted > 0:
		res.Status = StatusInterrupted
	case res.Failed > 0:
		res.Status = StatusFailed
	default:
		res.Status = StatusSucceeded
	}
	// The run's end is recorded even when the caller's context is gone.
	if err := r.Store.EndRun(context.WithoutCancel(ctx), runID, res.Status); err != nil {
		return res, fmt.Errorf("record run %d end: %w", runID, err)
	}
	return res, nil
}

// skipDependents marks every transitive dependent of a failed instance.
func (r *Runner) skipDependents(st *instState, dependents map[string][]*instState, res *RunResult) {
	for _, d := range dependents[st.inst.ID] {
		if d.status == "" {
			d.status = StatusSkipped
			r.skipDependents(d, dependents, res)
		}
	}
}

// unsatisfiable says why an instance can never run under exe (nil: in
// this process): locally, a request beyond the run's budgets; remotely,
// what the executor's RequestChecker reports. A run fails such an
// instance with the reason, and plan shows it, rather than skip it.
func unsatisfiable(ctx context.Context, p *Project, inst *spec.Instance, exe Executor, opt RunOptions) string {
	res := inst.Stage.Resources
	if remote(exe) {
		c, ok := exe.(RequestChecker)
		if !ok {
			return ""
		}
		job := &Job{Instance: inst.ID, Stage: inst.Stage.Name, Timeout: inst.Stage.Timeout, Executor: executorOptions(p, inst),
			Resources: stages.Resources{CPUs: max(1, res.CPUs), MemoryMB: res.MemoryMB, GPUs: res.GPUs}}
		if err := c.CheckRequest(ctx, job); err != nil {
			return err.Error()
		}
		return ""
	}
	if res.GPUs > opt.GPUs {
		return fmt.Sprintf("needs %d GPU(s), this run has %d (set --gpus, or run it on a cluster with --executor slurm)", res.GPUs, opt.GPUs)
	}
	if opt.MemoryMB > 0 && res.MemoryMB > opt.MemoryMB {
		return fmt.Sprintf("needs %d MB of memory, this run allows %d MB (--memory)", res.MemoryMB, opt.MemoryMB)
	}
	return ""
}

// grant is what an instance takes from the local budget: its declared CPUs,
// clamped to the budget so a big request still runs, alone. A remote
// executor gets the declaration as is: the cluster's nodes, not the
// engine host, decide what fits.
func (r *Runner) grant(st *instState, opt RunOptions) resources {
	g := st.res
	if !remote(r.Executor) {
		g.cpus = min(g.cpus, opt.CPUs)
	}
	return g
}

// execute runs one instance under its key's lock and records the outcome.
func (r *Runner) execute(ctx context.Context, p *Project, st *instState, key Key, in map[string][]stages.Artifact, exe Executor, forced bool, runID int64, host string, grant resources) instResult {
	start := time.Now()
	inst := st.inst
	fail := func(status string, err error, tail []string) instResult {
		r.Display.Finished(inst.ID, status, time.Since(start), err, tail)
		return instResult{st: st, status: status, err: err}
	}
	// Another voxflow on this cache may be running the same key: wait for
	// it, then take its result instead of computing it twice.
	unlock, ok, err := r.Store.TryLock(key.Digest)
	if err != nil {
		return fail(StatusFailed, fmt.Errorf("%s: lock: %w", inst.ID, err), nil)
	}
	if !ok {
		r.Display.Waiting(inst.ID, "another voxflow run is computing this key")
		unlock, err = r.Store.Lock(ctx, key.Digest)
		if err != nil {
			if ctx.Err() != nil {
				return fail(StatusInterrupted, fmt.Errorf("%s: %w", inst.ID, ctx.Err()), nil)
			}
			return fail(StatusFailed, fmt.Errorf("%s: lock: %w", inst.ID, err), nil)
		}
	}
	defer unlock()
	if !forced || !ok {
		// Decided and linked under the gc lock, as the run loop's hits are.
		if release, err := r.Store.Protect(ctx); err == nil {
			ex, hit, err := r.cachedHit(ctx, inst.ID, key.Digest, nil)
			if err == nil && hit {
				err = r.Store.LinkRun(context.WithoutCancel(ctx), runID, ex.ID, true)
				release()
				if err != nil {
					return fail(StatusFailed, err, nil)
				}
				r.Display.Finished(inst.ID, StatusSucceeded, time.Since(start), nil, nil)
				return instResult{st: st, status: StatusSucceeded, output: ex.Output, cached: true}
			}
			release()
		}
	}

	job := &Job{
		Key: string(key.Digest), Spec: p.Spec.Name, Instance: inst.ID, Stage: inst.Stage.Name,
		Kind: st.kind.Desc.Kind, Plugin: st.kind.Plugin, Impl: st.kind.Impl,
		Params: inst.Params, Inputs: in, Labels: inst.Labels,
		Resources: stages.Resources{CPUs: grant.cpus, MemoryMB: grant.mem, GPUs: grant.gpus},
		Timeout:   inst.Stage.Timeout,
		Isolate:   isolation(p, st),
		Executor:  executorOptions(p, inst),
		Protect:   []string{r.Store.Dir()},
	}
	// Attempts work in fresh directories below the key's (workdir.go):
	// job.WorkDir, job.OutDir and logPath are set per attempt.
	keyDir := filepath.Join(r.Store.Dir(), "work", string(key.Digest))
	var (
		att     *attemptDir
		logPath string
	)
	cleanAttempts(keyDir)
	defer func() {
		if att != nil {
			att.remove()
		}
		_ = os.Remove(keyDir) // only once empty
	}()
	var (
		runErr error
		tail   []string
		status = StatusFailed
	)
	for attempt := 0; attempt <= inst.Stage.Retries; attempt++ {
		// Each attempt gets a fresh directory, so a process of an earlier
		// attempt (this run's failed try, or an orphan of a killed run) can
		// only ever write in its own. A remote executor keeps what must
		// outlive an attempt (a cluster job to adopt) in its own directory.
		if att != nil {
			att.remove()
		}
		if att, err = newAttemptDir(keyDir); err != nil {
			return fail(StatusFailed, fmt.Errorf("%s: %w", inst.ID, err), nil)
		}
		job.WorkDir, job.OutDir = att.dir, filepath.Join(att.dir, "out")
		logPath = filepath.Join(att.dir, "log")
		lw, err := newLogWriter(logPath, 20)
		if err != nil {
			return fail(StatusFailed, fmt.Errorf("%s: %w", inst.ID, err), nil)
		}
		if attempt > 0 {
			fmt.Fprintf(lw, "voxflow: retry %d/%d after: %v\n", attempt, inst.Stage.Retries, runErr)
		}
		prog := stages.ProgressFunc(func(u stages.Update) { r.Display.Progress(inst.ID, u) })
		runErr = exe.Execute(ctx, job, prog, lw)
		if errors.Is(runErr, ErrDetached) {
			lw.Close()
			r.Display.Finished(inst.ID, StatusSubmitted, time.Since(start), runErr, nil)
			return instResult{st: st, status: StatusSubmitted}
		}
		tail = lw.Tail()
		lw.Close()
		if runErr == nil {
			status = StatusSucceeded
			break
		}
		if ctx.Err() != nil {
			status = StatusInterrupted
			break
		}
	}
	end := time.Now()
	rec := &cache.Execution{
		Key: key.Digest, RunID: runID, Spec: p.Spec.Name, Instance: inst.ID, Stage: inst.Stage.Name,
		Kind: st.kind.Desc.Kind, Impl: st.kind.Impl, Params: key.Params, Inputs: key.Inputs,
		Status: status, Start: start, End: end, Host: host,
	}
	// Records outlive a Ctrl-C: the interruption itself is worth keeping.
	rctx := context.WithoutCancel(ctx)
	if d, err := r.Store.PutFile(rctx, logPath, true); err == nil {
		rec.Log = d
	}
	if status != StatusSucceeded {
		rec.Error = runErr.Error()
		if _, err := r.Store.RecordExecution(rctx, rec); err != nil {
			runErr = errors.Join(runErr, fmt.Errorf("record failure: %w", err))
		}
		_ = os.RemoveAll(job.WorkDir)
		return fail(status, fmt.Errorf("%s: %w", inst.ID, runErr), tail)
	}
	metrics, merr := readMetrics(filepath.Join(job.OutDir, "metrics.json"))
	if merr != nil {
		return fail(StatusFailed, fmt.Errorf("%s: %w", inst.ID, merr), tail)
	}
	// No gc between storing the outputs and the record that keeps them.
	release, err := r.Store.Protect(rctx)
	if err != nil {
		return fail(StatusFailed, fmt.Errorf("%s: %w", inst.ID, err), tail)
	}
	defer release()
	out, err := r.Store.PutTree(rctx, job.OutDir, true)
	if err != nil {
		return fail(StatusFailed, fmt.Errorf("%s: store outputs: %w", inst.ID, err), tail)
	}
	rec.Output = out
	id, err := r.Store.RecordExecution(rctx, rec)
	if err != nil {
		return fail(StatusFailed, fmt.Errorf("%s: record execution: %w", inst.ID, err), tail)
	}
	if len(metrics) > 0 {
		if err := r.Store.RecordMetrics(rctx, id, metrics); err != nil {
			return fail(StatusFailed, fmt.Errorf("%s: record metrics: %w", inst.ID, err), tail)
		}
	}
	if err := r.Store.LinkRun(rctx, runID, id, false); err != nil {
		return fail(StatusFailed, fmt.Errorf("%s: %w", inst.ID, err), tail)
	}
	_ = os.RemoveAll(job.WorkDir)
	r.Display.Finished(inst.ID, StatusSucceeded, end.Sub(start), nil, nil)
	return instResult{st: st, status: StatusSucceeded, output: out}
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
