package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/voxflow/voxflow/cache"
	"github.com/voxflow/voxflow/engine/spec"
	"github.com/voxflow/voxflow/stages"
)

// The scheduler owns one run's state. Run drives it in rounds: start every
// ready instance the budgets allow (answering cache hits on the spot), then
// wait for one running instance to end and finish it, which may make its
// dependents ready, until nothing runs. Only the loop's goroutine touches
// this state; executions report back over results.

// instState tracks one instance through a run.
type instState struct {
	inst    *spec.Instance
	kind    *Kind
	waiting int    // unfinished upstream instances
	status  string // "" until finished or skipped
	// granted is what the instance holds of the local budgets while it runs.
	granted stages.Resources
}

// instResult is how one instance ended.
type instResult struct {
	st     *instState
	output cache.Digest
	status string
	err    error
	cached bool
}

// scheduler is one run of a project: its instances' states, what is ready,
// what runs and what of the budgets it holds.
type scheduler struct {
	r      *Runner
	p      *Project
	opt    RunOptions
	exe    Executor
	remote bool // exe runs jobs elsewhere: local budgets do not apply
	runID  int64
	host   string
	dec    *decider

	states     []*instState            // in graph order
	dependents map[string][]*instState // instance ID -> instances that read it
	ready      []*instState            // all upstream finished, not started
	running    int
	used       stages.Resources // taken from the local budgets by running instances
	stopping   bool             // a failure without --keep-going: start nothing new
	results    chan instResult
	res        RunResult
}

// newScheduler prepares a run of p: every instance waits for its upstream
// instances, those without any are ready.
func (r *Runner) newScheduler(ctx context.Context, p *Project, opt RunOptions, runID int64, host string) (*scheduler, error) {
	dec, err := newDecider(ctx, r.Store, p, opt.Force, true)
	if err != nil {
		return nil, err
	}
	exe := r.Executor
	if exe == nil {
		exe = LocalExecutor{Lookup: p.StageOf}
	}
	n := len(p.Graph.Instances)
	s := &scheduler{r: r, p: p, opt: opt, exe: exe, remote: remote(exe), runID: runID, host: host, dec: dec,
		states: make([]*instState, 0, n), dependents: map[string][]*instState{},
		// Buffered for every instance, so an execution can always report,
		// even after the loop gave up on an error.
		results: make(chan instResult, n),
		res:     RunResult{RunID: runID, Total: n}}
	for _, inst := range p.Graph.Instances {
		st := &instState{inst: inst, kind: p.Kinds[inst.Stage.Name], waiting: len(inst.Deps)}
		s.states = append(s.states, st)
		for _, d := range inst.Deps {
			s.dependents[d.ID] = append(s.dependents[d.ID], st)
		}
		if st.waiting == 0 {
			s.ready = append(s.ready, st)
		}
	}
	return s, nil
}

// startReady is one scheduling round: it decides every ready instance and
// starts those that fit. Instances that do not fit yet stay ready, ahead
// of the others, for the next round. The error is the cache index
// failing, which ends the run.
func (s *scheduler) startReady(ctx context.Context) error {
	// Cache hits are linked to the run before gc may look again.
	hits, err := openHits(ctx, s.r.Store, s.runID)
	if err != nil {
		return err
	}
	var deferred []*instState
	for len(s.ready) > 0 && !s.stopping && ctx.Err() == nil {
		st := s.ready[0]
		s.ready = s.ready[1:]
		started, err := s.consider(ctx, st, hits)
		if err != nil {
			hits.close(ctx)
			return err
		}
		if !started {
			deferred = append(deferred, st)
		}
	}
	if err := hits.close(ctx); err != nil {
		return err
	}
	s.ready = append(deferred, s.ready...)
	return nil
}

// consider settles st if it can be (cached, not chosen, or failed before
// it starts), starts it if it fits the budgets, and otherwise reports it
// not started. A deferred instance is decided again next round, when the
// cache may answer it after all.
func (s *scheduler) consider(ctx context.Context, st *instState, hits *hitBatch) (started bool, err error) {
	dec, err := s.dec.decide(ctx, st.inst)
	if err != nil {
		return false, err
	}
	st.inst = dec.inst
	id := st.inst.ID
	switch {
	case dec.selErr != nil:
		s.failEarly(st, fmt.Errorf("%s: %w", id, dec.selErr))
		return true, nil
	case dec.action == ActionWaiting:
		// Every upstream instance succeeded in this run, so its metrics
		// are recorded: not finding them is a broken cache, not a wait.
		s.failEarly(st, fmt.Errorf("%s: %s: the upstream succeeded but its execution is not in the cache index", id, dec.reasons[0]))
		return true, nil
	case dec.action == ActionNotChosen:
		s.r.Display.Started(id)
		s.r.Display.Finished(id, StatusNotChosen, 0, errors.New(dec.reasons[0]), nil)
		s.finish(instResult{st: st, status: StatusNotChosen})
		return true, nil
	case dec.keyErr != nil:
		s.finish(instResult{st: st, status: StatusFailed, err: dec.keyErr})
		return true, nil
	case dec.action == ActionCached:
		s.r.Display.Cached(id)
		hits.add(dec.hit.ID)
		s.finish(instResult{st: st, status: StatusSucceeded, output: dec.hit.Output, cached: true})
		return true, nil
	}
	if reason := unsatisfiable(ctx, s.p, st.inst, s.exe, s.opt); reason != "" {
		s.failEarly(st, fmt.Errorf("%s: %s", id, reason))
		return true, nil
	}
	need := s.grant(st.inst)
	if !s.fits(need) {
		return false, nil
	}
	in, _, err := artifacts(ctx, s.r.Store, st.inst, s.dec.outputs, true)
	if err != nil {
		s.finish(instResult{st: st, status: StatusFailed, err: fmt.Errorf("%s: %w", id, err)})
		return true, nil
	}
	s.start(ctx, st, dec, in, need)
	return true, nil
}

// failEarly fails an instance that never started, showing it as started
// and failed so the display lists the reason with the others.
func (s *scheduler) failEarly(st *instState, err error) {
	s.r.Display.Started(st.inst.ID)
	s.r.Display.Finished(st.inst.ID, StatusFailed, 0, err, nil)
	s.finish(instResult{st: st, status: StatusFailed, err: err})
}

// declared is what inst asks for; every instance takes at least one CPU.
func declared(inst *spec.Instance) stages.Resources {
	r := inst.Stage.Resources
	return stages.Resources{CPUs: max(1, r.CPUs), MemoryMB: r.MemoryMB, GPUs: r.GPUs}
}

// grant is what an instance takes from the local budget: its declared CPUs,
// clamped to the budget so a big request still runs, alone. A remote
// executor gets the declaration as is: the cluster's nodes, not the
// engine host, decide what fits.
func (s *scheduler) grant(inst *spec.Instance) stages.Resources {
	g := declared(inst)
	if !s.remote {
		g.CPUs = min(g.CPUs, s.opt.CPUs)
	}
	return g
}

// fits reports whether an instance granted need may start now. Local
// budgets bound local instances only (a cluster queues what does not fit
// on it), and the first instance to run always gets the CPUs and memory
// it was granted; GPUs are never shared.
func (s *scheduler) fits(need stages.Resources) bool {
	switch {
	case s.running >= s.opt.Jobs:
		return false
	case s.remote:
		return true
	case s.running > 0 && s.used.CPUs+need.CPUs > s.opt.CPUs:
		return false
	case s.running > 0 && s.opt.MemoryMB > 0 && s.used.MemoryMB+need.MemoryMB > s.opt.MemoryMB:
		return false
	case need.GPUs > 0 && s.used.GPUs+need.GPUs > s.opt.GPUs:
		return false
	}
	return true
}

// start takes need from the budgets and executes st in a goroutine of its
// own, which reports on results.
func (s *scheduler) start(ctx context.Context, st *instState, dec decision, in map[string][]stages.Artifact, need stages.Resources) {
	st.granted = need
	s.used = addResources(s.used, need, 1)
	s.running++
	s.r.Display.Started(st.inst.ID)
	x := &execution{
		store: s.r.Store, display: s.r.Display, exe: s.exe, runID: s.runID, host: s.host,
		st: st, key: dec.key, forced: dec.forced, job: s.job(st, dec.key, in, need),
	}
	go func() { s.results <- x.run(ctx) }()
}

// job describes st's execution to the executor.
func (s *scheduler) job(st *instState, key Key, in map[string][]stages.Artifact, granted stages.Resources) *Job {
	inst := st.inst
	return &Job{
		Key: string(key.Digest), Spec: s.p.Spec.Name, Instance: inst.ID, Stage: inst.Stage.Name,
		Kind: st.kind.Desc.Kind, Plugin: st.kind.Plugin, Impl: st.kind.Impl,
		Params: inst.Params, Inputs: in, Labels: inst.Labels,
		Resources: granted,
		Timeout:   inst.Stage.Timeout,
		Isolate:   isolation(s.p, st),
		Executor:  executorOptions(s.p, inst),
		Protect:   []string{s.r.Store.Dir()},
	}
}

// collect waits for a running instance to end and gives its resources
// back to the budgets.
func (s *scheduler) collect() instResult {
	ir := <-s.results
	s.running--
	s.used = addResources(s.used, ir.st.granted, -1)
	return ir
}

// drain waits for every running execution to report, once their context
// is cancelled, so that none outlives a run that gave up.
func (s *scheduler) drain() {
	for s.running > 0 {
		s.collect()
	}
}

// addResources returns a plus sign times b.
func addResources(a, b stages.Resources, sign int) stages.Resources {
	return stages.Resources{CPUs: a.CPUs + sign*b.CPUs, MemoryMB: a.MemoryMB + int64(sign)*b.MemoryMB, GPUs: a.GPUs + sign*b.GPUs}
}

// finish records how an instance ended: a success (cached or not) or an
// instance not chosen lets its dependents go ahead; a failure skips them,
// and without --keep-going stops the run from starting anything else.
func (s *scheduler) finish(ir instResult) {
	st := ir.st
	st.status = ir.status
	switch ir.status {
	case StatusSucceeded, StatusNotChosen:
		switch {
		case ir.status == StatusNotChosen:
			// Dependents become ready as after a success; the selector
			// decides whether they run without it or are not chosen
			// either.
			s.res.NotChosen++
		case ir.cached:
			s.dec.produced(st.inst.ID, ir.output)
			s.res.Cached++
		default:
			s.dec.produced(st.inst.ID, ir.output)
			s.res.Executed++
		}
		for _, d := range s.dependents[st.inst.ID] {
			d.waiting--
			if d.waiting == 0 && d.status == "" {
				s.ready = append(s.ready, d)
			}
		}
	case StatusInterrupted:
		s.res.Interrupted++
	case StatusSubmitted:
		s.res.Submitted++
	default:
		s.res.Failed++
		if ir.err != nil {
			s.res.Failures = append(s.res.Failures, ir.err)
		}
		if !s.opt.KeepGoing {
			s.stopping = true
		}
		s.skipDependents(st)
	}
}

// skipDependents marks every transitive dependent of a failed instance.
func (s *scheduler) skipDependents(st *instState) {
	for _, d := range s.dependents[st.inst.ID] {
		if d.status == "" {
			d.status = StatusSkipped
			s.skipDependents(d)
		}
	}
}

// result counts whatever never started as skipped (a failure upstream, a
// stop, or Ctrl-C) and says how the run ended.
func (s *scheduler) result(ctx context.Context) *RunResult {
	res := &s.res
	for _, st := range s.states {
		if st.status == "" || st.status == StatusSkipped {
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
	return res
}

// execution carries one started instance through its steps: take the
// key's lock, reuse what another run made meanwhile, run attempts in fresh
// work directories, then store the outputs and record the outcome. It runs
// in a goroutine of its own and touches no scheduler state.
type execution struct {
	store   *cache.Store
	display Display
	exe     Executor
	runID   int64
	host    string
	st      *instState
	key     Key
	forced  bool
	job     *Job
	start   time.Time
	keyDir  string      // work/<key>: the attempts' parent
	att     *attemptDir // the current attempt's directory
	logPath string      // the current attempt's log
	tail    []string    // the last log lines of the last attempt
}

// run executes the instance under its key's lock and records the outcome.
func (x *execution) run(ctx context.Context) instResult {
	x.start = time.Now()
	unlock, waited, err := x.lock(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return x.fail(StatusInterrupted, ctx.Err())
		}
		return x.fail(StatusFailed, fmt.Errorf("lock: %w", err))
	}
	defer unlock()
	// A forced instance runs anyway, unless another run was computing it
	// meanwhile: then that run's result is as fresh as this one's would be.
	if !x.forced || waited {
		if ir, ok := x.reuse(ctx); ok {
			return ir
		}
	}
	x.keyDir = filepath.Join(x.store.Dir(), "work", string(x.key.Digest))
	cleanAttempts(x.keyDir)
	defer x.removeWork()
	status, runErr, err := x.attempts(ctx)
	switch {
	case err != nil:
		return x.fail(StatusFailed, err)
	case status == StatusSubmitted:
		x.display.Finished(x.st.inst.ID, StatusSubmitted, time.Since(x.start), runErr, nil)
		return instResult{st: x.st, status: StatusSubmitted}
	case status != StatusSucceeded:
		return x.recordFailure(ctx, status, runErr)
	}
	return x.recordSuccess(ctx)
}

// fail shows and returns the instance's end with err, naming the instance.
func (x *execution) fail(status string, err error) instResult {
	err = fmt.Errorf("%s: %w", x.st.inst.ID, err)
	x.display.Finished(x.st.inst.ID, status, time.Since(x.start), err, x.tail)
	return instResult{st: x.st, status: status, err: err}
}

// lock takes the key's lock. Another voxflow on this cache may be running
// the same key: then it waits for that run (waited is true), so that its
// result is taken instead of computing it twice.
func (x *execution) lock(ctx context.Context) (unlock func(), waited bool, err error) {
	unlock, ok, err := x.store.TryLock(x.key.Digest)
	if err != nil || ok {
		return unlock, false, err
	}
	x.display.Waiting(x.st.inst.ID, "another voxflow run is computing this key")
	unlock, err = x.store.Lock(ctx, x.key.Digest)
	return unlock, true, err
}

// reuse answers the instance from the cache if a run finished it since the
// scheduler decided to run it; decided and linked under the gc lock, as
// the scheduler's hits are. Problems here only mean it runs.
func (x *execution) reuse(ctx context.Context) (instResult, bool) {
	release, err := x.store.Protect(ctx)
	if err != nil {
		return instResult{}, false
	}
	defer release()
	ex, hit, err := cachedHit(ctx, x.store, x.st.inst.ID, x.key.Digest, nil)
	if err != nil || !hit {
		return instResult{}, false
	}
	if err := x.store.LinkRun(context.WithoutCancel(ctx), x.runID, ex.ID, true); err != nil {
		return x.fail(StatusFailed, err), true
	}
	x.display.Finished(x.st.inst.ID, StatusSucceeded, time.Since(x.start), nil, nil)
	return instResult{st: x.st, status: StatusSucceeded, output: ex.Output, cached: true}, true
}

// attempts runs the job once plus up to the stage's retries, each attempt
// in a fresh directory. It returns the last attempt's status and error;
// err is a failure to prepare an attempt.
func (x *execution) attempts(ctx context.Context) (status string, runErr, err error) {
	retries := x.st.inst.Stage.Retries
	for attempt := 0; attempt <= retries; attempt++ {
		if err := x.newAttempt(); err != nil {
			return StatusFailed, nil, err
		}
		lw, err := newLogWriter(x.logPath, 20)
		if err != nil {
			return StatusFailed, nil, err
		}
		if attempt > 0 {
			fmt.Fprintf(lw, "voxflow: retry %d/%d after: %v\n", attempt, retries, runErr)
		}
		id := x.st.inst.ID
		prog := stages.ProgressFunc(func(u stages.Update) { x.display.Progress(id, u) })
		runErr = x.exe.Execute(ctx, x.job, prog, lw)
		if errors.Is(runErr, ErrDetached) {
			lw.Close()
			return StatusSubmitted, runErr, nil
		}
		x.tail = lw.Tail()
		lw.Close()
		if runErr == nil {
			return StatusSucceeded, nil, nil
		}
		if ctx.Err() != nil {
			return StatusInterrupted, runErr, nil
		}
	}
	return StatusFailed, runErr, nil
}

// newAttempt gives the job a fresh directory (workdir.go), so a process of
// an earlier attempt (this run's failed try, or an orphan of a killed run)
// can only ever write in its own. A remote executor keeps what must
// outlive an attempt (a cluster job to adopt) in its own directory.
func (x *execution) newAttempt() error {
	if x.att != nil {
		x.att.remove()
		x.att = nil
	}
	att, err := newAttemptDir(x.keyDir)
	if err != nil {
		return err
	}
	x.att = att
	x.job.WorkDir, x.job.OutDir = att.dir, filepath.Join(att.dir, "out")
	x.logPath = filepath.Join(att.dir, "log")
	return nil
}

// removeWork deletes the last attempt's directory and the key's, once
// empty.
func (x *execution) removeWork() {
	if x.att != nil {
		x.att.remove()
	}
	_ = os.Remove(x.keyDir)
}

// record is the execution's record, with the last attempt's log stored.
// Records outlive a Ctrl-C: the interruption itself is worth keeping, so
// rctx is never cancelled.
func (x *execution) record(rctx context.Context, status string, end time.Time) *cache.Execution {
	inst := x.st.inst
	rec := &cache.Execution{
		Key: x.key.Digest, RunID: x.runID, Spec: x.job.Spec, Instance: inst.ID, Stage: inst.Stage.Name,
		Kind: x.st.kind.Desc.Kind, Impl: x.st.kind.Impl, Params: x.key.Params, Inputs: x.key.Inputs,
		Status: status, Start: x.start, End: end, Host: x.host,
	}
	if d, err := x.store.PutFile(rctx, x.logPath, true); err == nil {
		rec.Log = d
	}
	return rec
}

// recordFailure records a failed or interrupted execution with its error.
func (x *execution) recordFailure(ctx context.Context, status string, runErr error) instResult {
	rctx := context.WithoutCancel(ctx)
	rec := x.record(rctx, status, time.Now())
	rec.Error = runErr.Error()
	if _, err := x.store.RecordExecution(rctx, rec); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("record failure: %w", err))
	}
	_ = os.RemoveAll(x.job.WorkDir)
	return x.fail(status, runErr)
}

// recordSuccess stores the outputs and metrics and records the execution
// as the run's.
func (x *execution) recordSuccess(ctx context.Context) instResult {
	end := time.Now()
	rctx := context.WithoutCancel(ctx)
	rec := x.record(rctx, StatusSucceeded, end)
	metrics, err := readMetrics(filepath.Join(x.job.OutDir, "metrics.json"))
	if err != nil {
		return x.fail(StatusFailed, err)
	}
	// No gc between storing the outputs and the record that keeps them.
	release, err := x.store.Protect(rctx)
	if err != nil {
		return x.fail(StatusFailed, err)
	}
	defer release()
	out, err := x.store.PutTree(rctx, x.job.OutDir, true)
	if err != nil {
		return x.fail(StatusFailed, fmt.Errorf("store outputs: %w", err))
	}
	rec.Output = out
	id, err := x.store.RecordExecution(rctx, rec)
	if err != nil {
		return x.fail(StatusFailed, fmt.Errorf("record execution: %w", err))
	}
	if len(metrics) > 0 {
		if err := x.store.RecordMetrics(rctx, id, metrics); err != nil {
			return x.fail(StatusFailed, fmt.Errorf("record metrics: %w", err))
		}
	}
	if err := x.store.LinkRun(rctx, x.runID, id, false); err != nil {
		return x.fail(StatusFailed, err)
	}
	_ = os.RemoveAll(x.job.WorkDir)
	x.display.Finished(x.st.inst.ID, StatusSucceeded, end.Sub(x.start), nil, nil)
	return instResult{st: x.st, status: StatusSucceeded, output: out}
}
