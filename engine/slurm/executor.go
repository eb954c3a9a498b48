// Package slurm is voxflow's Slurm executor: it runs each stage instance as
// one sbatch job that executes `voxflow exec-job` on a compute node against
// the shared object store, follows it with squeue, and adopts jobs that a
// previous engine submitted instead of submitting them twice.
//
// The engine reaches it only through Driver, registered as "slurm" in
// engine.Executors: the driver parses the spec's executor options
// (Options), builds the executor, and owns its directory in the cache
// (CACHE/slurm/<key>/, see KeyDir and Layout).
//
// The engine and the job talk only through files in the job's attempt
// directory (see Layout): job.json and job.sbatch going out; progress.jsonl,
// the Slurm log, out/ and result.json coming back. Only the engine writes
// the cache's SQLite index.
//
// One writer per key: before submitting, the executor looks for a live job
// of the key (the one recorded in the key's slurm.json, or one whose Slurm
// comment carries the key among the user's jobs in squeue) and adopts it.
// Each Slurm job gets a fresh attempt directory, and its outputs reach the
// engine by copy once Slurm says the job has ended, so processes a job left
// behind on a node can touch neither a later attempt nor the stored result.
package slurm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/voxflow/voxflow/engine"
	"github.com/voxflow/voxflow/internal/jsonfile"
	"github.com/voxflow/voxflow/stages"
)

// ErrNotSubmitted is wrapped by State's error (and by States' when asked
// about one key) for a key directory that has no Slurm submission record.
var ErrNotSubmitted = errors.New("no slurm job was submitted for this key")

// fastPoll is the squeue pause while a job is about to end: it just
// changed state, or exec-job already wrote its result record and is only
// exiting. Slower polls back off from here to PollInterval.
const fastPoll = 100 * time.Millisecond

// Executor submits jobs to Slurm. Its zero value works: jobs run this very
// voxflow binary, options come from each job's executor map, records live
// in each job's WorkDir, and squeue is polled adaptively up to every 2 s.
// Use it through a pointer; it is safe for concurrent use.
type Executor struct {
	// Bin is the voxflow binary the compute nodes run; "" means this
	// process's executable. It must be reachable at that path on the nodes.
	// A job's `voxflow_bin` option overrides it.
	Bin string
	// Defaults apply to every job; a job's executor map overrides them key
	// by key.
	Defaults Options
	// PollInterval is the longest pause between squeue polls; 0 means 2 s.
	// Polls start sub-second after a submission or a state change and back
	// off towards it.
	PollInterval time.Duration
	// SlurmBin is the directory holding sbatch, squeue, sinfo, scontrol and
	// scancel; "" means they are found on PATH.
	SlurmBin string
	// Dir holds one KeyDir per cache key (Dir/<key>): the key's submission
	// record, lock and attempt directories. It must be on the filesystem
	// the compute nodes share. "" means each job's WorkDir is its KeyDir.
	Dir string

	queue     queue
	parts     partitions
	submitted atomic.Int64
	adopted   atomic.Int64
}

// Remote tells the engine that jobs run elsewhere, so local resource
// budgets (CPUs, GPUs, memory) do not limit what may be submitted.
func (e *Executor) Remote() bool { return true }

// Stats reports how many jobs this executor submitted with sbatch and how
// many it adopted from an earlier submission, for tests that assert a
// cached rerun submits nothing.
func (e *Executor) Stats() (submitted, adopted int) {
	return int(e.submitted.Load()), int(e.adopted.Load())
}

// KeyDir is the directory of key's Slurm records for a job whose WorkDir
// is workDir (used only when Dir is empty).
func (e *Executor) KeyDir(key, workDir string) KeyDir {
	if e.Dir != "" {
		return KeyDir(filepath.Join(e.Dir, key))
	}
	return KeyDir(workDir)
}

func (e *Executor) keyDir(job *engine.Job) KeyDir { return e.KeyDir(job.Key, job.WorkDir) }

func (e *Executor) cmds() commands { return commands{dir: e.SlurmBin} }

func (e *Executor) interval() time.Duration {
	if e.PollInterval > 0 {
		return e.PollInterval
	}
	return 2 * time.Second
}

// options are job's Slurm options over the executor's defaults.
func (e *Executor) options(job *engine.Job) (Options, error) {
	opts, err := ParseOptions(job.Executor)
	if err != nil {
		return Options{}, err
	}
	return opts.merge(e.Defaults), nil
}

// Execute runs job as a Slurm job and waits for it: it submits (or adopts a
// job already running for the key), forwards progress and the job's log as
// they appear, and returns nil once the job completed, with a copy of its
// outputs in job.OutDir. A job that ends in another state gives an error
// naming the state, the files kept for it and the end of its log.
// Cancelling ctx scancels the job and waits until it has left the queue.
func (e *Executor) Execute(ctx context.Context, job *engine.Job, progress stages.Progress, log io.Writer) error {
	if progress == nil {
		progress = stages.NopProgress{}
	}
	if log == nil {
		log = io.Discard
	}
	sub, adopted, err := e.submit(ctx, job)
	if err != nil {
		return err
	}
	if adopted {
		fmt.Fprintf(log, "voxflow: adopting slurm job %s (attempt %d, submitted %s from %s)\n", sub.JobID, sub.Attempt, sub.Submitted.Format(time.RFC3339), orDash(sub.Host))
	} else {
		fmt.Fprintf(log, "voxflow: submitted slurm job %s (attempt %d, script %s)\n", sub.JobID, sub.Attempt, Layout{Dir: sub.Dir}.Script())
	}
	return e.wait(ctx, job, sub, progress, log)
}

// Submit submits job without waiting for it, or adopts the key's job that
// is still queued or running, or that ended without an engine collecting
// its outcome. It returns the Slurm job id; a later Execute (or State)
// picks the job up again. `voxflow run --detach` goes through Detached
// instead, which also collects a job that already ended.
func (e *Executor) Submit(ctx context.Context, job *engine.Job) (string, error) {
	sub, _, err := e.submit(ctx, job)
	if err != nil {
		return "", err
	}
	return sub.JobID, nil
}

// State reports the Slurm state of the job last submitted for the key
// whose records are in dir: squeue's state while the controller remembers
// the job (PENDING, RUNNING, COMPLETED, FAILED, TIMEOUT, ...), then
// COMPLETED, FAILED or CANCELLED from the job's result record, or UNKNOWN
// when neither exists (the job died without writing one, or sbatch never
// answered). A key never submitted gives ErrNotSubmitted.
func (e *Executor) State(ctx context.Context, dir KeyDir) (string, error) {
	states, err := e.States(ctx, []KeyDir{dir})
	if err != nil {
		return "", err
	}
	return states[dir], nil
}

// States is State for many keys with one squeue call, for `voxflow status`
// over a whole run. Keys never submitted are absent from the map.
func (e *Executor) States(ctx context.Context, dirs []KeyDir) (map[KeyDir]string, error) {
	subs := map[KeyDir]*Submission{}
	var ids []string
	for _, d := range dirs {
		sub, err := ReadSubmission(d.Submission())
		if err != nil {
			if isNotExist(err) {
				if len(dirs) == 1 {
					return nil, fmt.Errorf("%s: %w", d, ErrNotSubmitted)
				}
				continue
			}
			return nil, err
		}
		subs[d] = sub
		if sub.JobID != "" {
			ids = append(ids, sub.JobID)
		}
	}
	queued := map[string]jobInfo{}
	if len(ids) > 0 {
		var err error
		if queued, err = e.cmds().squeue(ctx, ids); err != nil {
			return nil, fmt.Errorf("state of slurm jobs: %w", err)
		}
	}
	out := make(map[KeyDir]string, len(subs))
	for d, sub := range subs {
		if info, ok := queued[sub.JobID]; ok && sub.JobID != "" && info.Comment == commentPrefix+sub.Key {
			out[d] = info.State
			continue
		}
		res, err := ReadResult(Layout{Dir: sub.Dir}.Result())
		switch {
		case err == nil && sub.JobID != "" && res.JobID == sub.JobID:
			out[d] = resultState[res.Status]
		case err == nil || isNotExist(err):
			out[d] = "UNKNOWN"
		default:
			return nil, err
		}
	}
	return out, nil
}

// CheckRequest reports a job whose resources the partition it would go to
// can never provide (more CPUs, memory or GPUs than its largest node has),
// with the partition's limits in the error, so that such a job fails
// before submission instead of pending forever. When Slurm cannot be asked
// (no sinfo here) it returns nil and leaves the verdict to sbatch. The
// engine calls it (engine.RequestChecker) before starting an instance, and
// `voxflow plan --executor slurm` for every instance it would run.
func (e *Executor) CheckRequest(ctx context.Context, job *engine.Job) error {
	opts, err := e.options(job)
	if err != nil {
		return err
	}
	l, err := e.parts.get(ctx, e.cmds(), opts.Partition)
	if err != nil {
		if errors.Is(err, errNoNodes) {
			return err
		}
		return nil
	}
	var over []string
	r := job.Resources
	if r.CPUs > l.CPUs {
		over = append(over, fmt.Sprintf("%d CPUs", r.CPUs))
	}
	if r.MemoryMB > l.MemoryMB {
		over = append(over, fmt.Sprintf("%d MB of memory", r.MemoryMB))
	}
	if opts.Gres == "" && r.GPUs > l.gpus(opts.GPUType) {
		g := fmt.Sprintf("%d GPU(s)", r.GPUs)
		if opts.GPUType != "" {
			g = fmt.Sprintf("%d GPU(s) of type %s", r.GPUs, opts.GPUType)
		}
		over = append(over, g)
	}
	if len(over) == 0 {
		return nil
	}
	return fmt.Errorf("asks for %s, more than any node offers (%s); lower the stage's resources or pick another partition (executor option partition)", strings.Join(over, " and "), l)
}

// LiveJob describes the key's Slurm job when one may still be running (a
// detached run's, or one a killed engine left), or returns "" when none
// does. A local run calls it (through Guard) before running the key itself.
// It asks squeue only when the key has a submission record, so machines
// without Slurm pay one stat per instance.
func (e *Executor) LiveJob(ctx context.Context, job *engine.Job) (string, error) {
	kd := e.keyDir(job)
	sub, err := ReadSubmission(kd.Submission())
	if err != nil {
		if isNotExist(err) {
			return "", nil
		}
		return "", err
	}
	if sub.Key != job.Key {
		return "", nil
	}
	if sub.JobID != "" {
		info, found, err := e.queue.lookup(ctx, e.cmds(), sub.JobID, 0)
		if err != nil {
			return "", fmt.Errorf("cannot tell whether slurm job %s (attempt %d, %s) still runs: %w; if it does not, remove %s", sub.JobID, sub.Attempt, sub.Dir, err, kd.Submission())
		}
		if found && info.Comment == commentPrefix+job.Key && !terminal(info.State) {
			return fmt.Sprintf("slurm job %s (%s, attempt %d, submitted %s from %s)", sub.JobID, info.State, sub.Attempt, sub.Submitted.Local().Format(time.DateTime), orDash(sub.Host)), nil
		}
		return "", nil
	}
	// sbatch never answered the engine that wrote this record: its job, if
	// any, is known only by the key in its comment.
	mine, err := e.cmds().mine(ctx)
	if err != nil {
		return "", fmt.Errorf("cannot tell whether a slurm job submitted for attempt %d (%s) still runs: %w; if none does, remove %s", sub.Attempt, sub.Dir, err, kd.Submission())
	}
	for _, j := range mine {
		if j.Comment == commentPrefix+job.Key && !terminal(j.State) && kd.holds(j.Dir) {
			return fmt.Sprintf("slurm job %s (%s, found by its key in squeue)", j.ID, j.State), nil
		}
	}
	return "", nil
}

// submit adopts the key's live or uncollected job, and otherwise submits a
// fresh attempt. It holds the key's lock throughout, and hands the lock to
// sbatch, so a second engine waits until the job is recorded or, if this
// engine dies, until sbatch has answered and the job is visible in squeue.
func (e *Executor) submit(ctx context.Context, job *engine.Job) (*Submission, bool, error) {
	if job.Key == "" || job.OutDir == "" || (e.Dir == "" && job.WorkDir == "") {
		return nil, false, fmt.Errorf("job has no key, out_dir or work_dir; the engine must set them")
	}
	kd := e.keyDir(job)
	if err := os.MkdirAll(string(kd), 0o755); err != nil {
		return nil, false, fmt.Errorf("create slurm key dir: %w", err)
	}
	lock, unlock, err := lockFile(ctx, kd.lock())
	if err != nil {
		return nil, false, err
	}
	defer unlock()

	if sub, ok, err := e.adoptable(ctx, job, kd); err != nil {
		return nil, false, err
	} else if ok {
		e.adopted.Add(1)
		return sub, true, nil
	}

	opts, err := e.options(job)
	if err != nil {
		return nil, false, err
	}
	if err := e.CheckRequest(ctx, job); err != nil {
		return nil, false, fmt.Errorf("not submitted: %w", err)
	}
	bin := opts.Bin
	if bin == "" {
		bin = e.Bin
	}
	if bin == "" {
		if bin, err = os.Executable(); err != nil {
			return nil, false, fmt.Errorf("find the voxflow binary for the compute nodes: %w (set voxflow_bin)", err)
		}
	}
	n, err := nextAttempt(kd)
	if err != nil {
		return nil, false, err
	}
	l := kd.Attempt(n)
	if err := os.MkdirAll(l.Out(), 0o755); err != nil {
		return nil, false, fmt.Errorf("create attempt dir: %w", err)
	}
	// The job on the node sees only its attempt directory.
	nodeJob := *job
	nodeJob.WorkDir, nodeJob.OutDir = l.Dir, l.Out()
	script, err := Script(&nodeJob, opts, bin)
	if err != nil {
		return nil, false, err
	}
	if err := engine.WriteJobFile(l.Job(), &nodeJob); err != nil {
		return nil, false, err
	}
	if err := jsonfile.WriteFileAtomic(l.Script(), []byte(script)); err != nil {
		return nil, false, err
	}
	host, _ := os.Hostname()
	sub := &Submission{Key: job.Key, Instance: job.Instance, Attempt: n, Dir: l.Dir, Submitted: time.Now().UTC(), Host: host}
	// Recorded before sbatch runs: if this engine dies while sbatch
	// answers, the next one knows which attempt to look for in squeue.
	if err := jsonfile.WriteAtomic(kd.Submission(), sub); err != nil {
		return nil, false, err
	}
	// sbatch is not interrupted half-way: a job it submitted without us
	// learning its id could not be cancelled. It holds the key's lock (an
	// inherited descriptor) until it exits, even if this engine is killed.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	out, err := e.cmds().runWith(sctx, []*os.File{lock}, "sbatch", "--parsable", l.Script())
	cancel()
	if err != nil {
		return nil, false, fmt.Errorf("submit attempt %d (%s): %w", n, l.Script(), err)
	}
	id, _, _ := strings.Cut(strings.TrimSpace(out), ";") // "id;cluster" on federations
	if id == "" {
		return nil, false, fmt.Errorf("submit attempt %d: sbatch --parsable printed no job id (output %q)", n, out)
	}
	e.submitted.Add(1)
	sub.JobID, sub.Log = id, l.Log(id)
	if err := jsonfile.WriteAtomic(kd.Submission(), sub); err != nil {
		// Unrecorded, the job could be neither adopted nor cancelled later.
		if cerr := e.scancel(ctx, id); cerr != nil {
			err = errors.Join(err, cerr)
		}
		return nil, false, fmt.Errorf("record slurm job %s: %w", id, err)
	}
	if ctx.Err() != nil {
		e.stop(ctx, sub, io.Discard)
		// Cancelled by this engine: no later one should adopt it. The lock
		// is ours already, so the record is updated here, not by collect.
		sub.Collected = true
		_ = jsonfile.WriteAtomic(kd.Submission(), sub)
		return nil, false, ctx.Err()
	}
	return sub, false, nil
}

// adoptable finds a job that can stand in for a new submission of job: the
// recorded one while it is queued or running, or once it ended if no
// engine collected its outcome yet; else any of the user's live jobs whose
// comment carries the key (its id was never recorded).
func (e *Executor) adoptable(ctx context.Context, job *engine.Job, kd KeyDir) (*Submission, bool, error) {
	sub, err := ReadSubmission(kd.Submission())
	if err != nil || sub.Key != job.Key || sub.Dir == "" {
		// Nothing submitted yet, or a torn or foreign record: look in the
		// queue rather than fail the run.
		sub = nil
	}
	if sub != nil && sub.JobID != "" {
		info, found, err := e.queue.lookup(ctx, e.cmds(), sub.JobID, 0)
		if err != nil {
			return nil, false, fmt.Errorf("look up recorded slurm job %s: %w", sub.JobID, err)
		}
		if found && info.Comment != commentPrefix+job.Key {
			found = false // the id now belongs to another job
		}
		if found && !terminal(info.State) || !sub.Collected {
			return sub, true, nil
		}
	}
	// Searching the queue costs slurmctld a listing of all the user's
	// jobs, so it is done only when a job may exist unrecorded: sbatch
	// never answered the engine that wrote the record, or attempts exist
	// without a readable record.
	search := sub != nil && sub.JobID == ""
	if sub == nil {
		if n, err := nextAttempt(kd); err == nil && n > 1 {
			search = true
		}
	}
	if !search {
		return nil, false, nil
	}
	mine, err := e.cmds().mine(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("look for slurm jobs of key %.16s: %w", job.Key, err)
	}
	var best *jobInfo
	for _, j := range mine {
		if j.Comment != commentPrefix+job.Key || (sub != nil && j.ID == sub.JobID) {
			continue
		}
		// Only attempts of this key directory: a job of the same key in
		// another cache writes elsewhere and is no second writer here.
		if !kd.holds(j.Dir) {
			continue
		}
		// The job of the record's unanswered sbatch is ours whatever its
		// state; other jobs of the key only while they may still write.
		pending := sub != nil && sub.JobID == "" && filepath.Clean(j.Dir) == filepath.Clean(sub.Dir)
		if !pending && terminal(j.State) {
			continue
		}
		if best == nil || jobNum(j.ID) > jobNum(best.ID) {
			j := j
			best = &j
		}
	}
	if best == nil {
		return nil, false, nil
	}
	found := &Submission{JobID: best.ID, Key: job.Key, Instance: job.Instance, Dir: best.Dir, Submitted: time.Now().UTC(), Log: Layout{Dir: best.Dir}.Log(best.ID)}
	if _, err := fmt.Sscanf(filepath.Base(best.Dir), "attempt-%d", &found.Attempt); err != nil && sub != nil {
		found.Attempt = sub.Attempt
	}
	if err := jsonfile.WriteAtomic(kd.Submission(), found); err != nil {
		return nil, false, fmt.Errorf("record slurm job %s found in squeue: %w", best.ID, err)
	}
	return found, true, nil
}

// jobNum orders Slurm job ids ("123", "123_4" for array tasks).
func jobNum(id string) int64 {
	head, _, _ := strings.Cut(id, "_")
	n, _ := strconv.ParseInt(head, 10, 64)
	return n
}

// ended reports whether sub's job has left the queue or reached a
// terminal state.
func (e *Executor) ended(ctx context.Context, sub *Submission) (bool, error) {
	info, found, err := e.queue.lookup(ctx, e.cmds(), sub.JobID, 0)
	if err != nil {
		return false, err
	}
	return !found || info.Comment != commentPrefix+sub.Key || terminal(info.State), nil
}

// wait follows sub until it ends or ctx is cancelled.
func (e *Executor) wait(ctx context.Context, job *engine.Job, sub *Submission, progress stages.Progress, log io.Writer) error {
	l := Layout{Dir: sub.Dir}
	kd := e.keyDir(job)
	unwatch := e.queue.watch(sub.JobID)
	defer unwatch()
	prog := &follower{path: l.Progress()}
	logf := &follower{path: sub.Log}
	forward := func(all bool) {
		if b, err := logf.next(all); err == nil && len(b) > 0 {
			_, _ = log.Write(b)
		}
		if b, err := prog.next(all); err == nil {
			engine.ForwardProgress(b, progress)
		}
	}
	var lastState string
	var failingSince time.Time
	step := min(fastPoll, e.interval())
	for {
		info, found, err := e.queue.lookup(ctx, e.cmds(), sub.JobID, step/2)
		switch {
		case ctx.Err() != nil:
		case err != nil:
			// slurmctld is briefly unreachable during restarts and failovers;
			// only a lasting outage fails the instance.
			if failingSince.IsZero() {
				failingSince = time.Now()
			} else if time.Since(failingSince) > 2*time.Minute {
				return fmt.Errorf("follow slurm job %s: %w", sub.JobID, err)
			}
		default:
			failingSince = time.Time{}
			if found && info.Comment != commentPrefix+sub.Key {
				found = false
			}
			forward(false)
			if found && info.State != lastState {
				lastState = info.State
				step = min(fastPoll, e.interval())
				if info.State == "PENDING" {
					progress.Update(stages.Update{Phase: "queued", Message: fmt.Sprintf("slurm job %s pending (%s)", sub.JobID, info.Reason)})
				}
			}
			if found && info.State == "PENDING" {
				if why := e.hopeless(ctx, job, info); why != "" {
					fmt.Fprintf(log, "voxflow: slurm job %s %s; cancelling it\n", sub.JobID, why)
					e.stop(ctx, sub, log)
					err := fmt.Errorf("slurm job %s (attempt %d) cannot start: %s; cancelled it (script %s)", sub.JobID, sub.Attempt, why, l.Script())
					e.finish(ctx, kd, sub, jobInfo{ID: sub.JobID, State: "CANCELLED", Reason: info.Reason}, true, err)
					return err
				}
			}
			if !found || terminal(info.State) {
				forward(true)
				err := e.outcome(ctx, job, sub, info, found)
				if err == nil {
					if cerr := copyTree(l.Out(), job.OutDir); cerr != nil {
						err = fmt.Errorf("slurm job %s completed, but its outputs could not be copied: %w", sub.JobID, cerr)
					} else {
						// The copy is what the engine stores; the attempt's own
						// outputs are garbage now (an orphan may still write
						// there, harmlessly).
						_ = os.RemoveAll(l.Out())
					}
				}
				e.finish(ctx, kd, sub, info, found, err)
				return err
			}
		}
		// Sub-second while the job is about to end (exec-job has written its
		// result and is exiting, or the state just changed), backing off to
		// the poll interval while it computes.
		if _, err := os.Stat(l.Result()); err == nil {
			step = min(fastPoll, e.interval())
		} else {
			step = min(step*3/2, e.interval())
		}
		select {
		case <-ctx.Done():
			e.stop(ctx, sub, log)
			forward(true)
			if ok, err := e.ended(context.WithoutCancel(ctx), sub); err == nil && ok {
				e.finish(ctx, kd, sub, jobInfo{ID: sub.JobID, State: "CANCELLED"}, true, ctx.Err())
			}
			return ctx.Err()
		case <-time.After(step):
		}
	}
}

// hopeless says why a pending job will never start, or "" while it may:
// a reason that no waiting clears, or ReqNodeNotAvail with every node of
// its partition down, drained or failed.
func (e *Executor) hopeless(ctx context.Context, job *engine.Job, info jobInfo) string {
	opts, _ := e.options(job)
	lim, lerr := e.parts.get(ctx, e.cmds(), opts.Partition)
	desc := ""
	if lerr == nil {
		desc = " (" + lim.String() + ")"
	}
	switch {
	case neverClears(info.Reason):
		return fmt.Sprintf("is pending for reason %s, which waiting does not clear: the request breaks a limit of the partition or names something it lacks%s", info.Reason, desc)
	case strings.HasPrefix(info.Reason, "ReqNodeNotAvail") && lerr == nil && lim.Usable == 0:
		return fmt.Sprintf("is pending for reason %s and every node of partition %s is down, drained or failed%s", info.Reason, lim.Partition, desc)
	}
	return ""
}

// resultState is the Slurm state a job's result record stands for.
var resultState = map[string]string{StatusOK: "COMPLETED", StatusFailed: "FAILED", StatusCancelled: "CANCELLED"}

// finish records how the job ended in its attempt directory and marks the
// outcome collected, so that no later engine adopts it again.
func (e *Executor) finish(ctx context.Context, kd KeyDir, sub *Submission, info jobInfo, found bool, outcome error) {
	end := End{JobID: sub.JobID, State: info.State, Reason: info.Reason, Time: time.Now().UTC()}
	if !found {
		end.State, end.Reason = "GONE", "slurm no longer lists the job"
		if res, err := ReadResult(Layout{Dir: sub.Dir}.Result()); err == nil {
			end.State = resultState[res.Status]
		}
	}
	if outcome != nil {
		end.Error = outcome.Error()
	}
	_ = jsonfile.WriteAtomic(Layout{Dir: sub.Dir}.End(), end)
	e.collect(ctx, kd, sub)
}

// collect marks sub's outcome as taken by an engine.
func (e *Executor) collect(ctx context.Context, kd KeyDir, sub *Submission) {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	_, unlock, err := lockFile(lctx, kd.lock())
	if err != nil {
		return
	}
	defer unlock()
	cur, err := ReadSubmission(kd.Submission())
	if err != nil || cur.JobID != sub.JobID || cur.Collected {
		return
	}
	cur.Collected = true
	_ = jsonfile.WriteAtomic(kd.Submission(), cur)
}

// outcome turns a finished (or vanished) job into the Execute result.
func (e *Executor) outcome(ctx context.Context, job *engine.Job, sub *Submission, info jobInfo, found bool) error {
	l := Layout{Dir: sub.Dir}
	res, rerr := ReadResult(l.Result())
	// Over NFS the record may show up a little after the job ends.
	for i := 0; isNotExist(rerr) && i < 20 && ctx.Err() == nil; i++ {
		time.Sleep(250 * time.Millisecond)
		res, rerr = ReadResult(l.Result())
	}
	if rerr == nil && res.JobID != "" && res.JobID != sub.JobID {
		res, rerr = nil, fmt.Errorf("read %s: written by slurm job %s, not %s", l.Result(), res.JobID, sub.JobID)
	}
	ok := rerr == nil && res.Status == StatusOK
	if ok && (!found || info.State == "COMPLETED") {
		return nil
	}
	var why string
	switch {
	case found && info.Reason != "" && info.Reason != "None":
		why = fmt.Sprintf("slurm job %s (attempt %d) ended %s (%s)", sub.JobID, sub.Attempt, info.State, info.Reason)
	case found:
		why = fmt.Sprintf("slurm job %s (attempt %d) ended %s", sub.JobID, sub.Attempt, info.State)
	default:
		why = fmt.Sprintf("slurm job %s (attempt %d) left the queue", sub.JobID, sub.Attempt)
	}
	switch {
	case rerr == nil && res.Error != "":
		// The stage's own error often starts with the instance name, which
		// the engine adds again.
		why += ": " + strings.TrimPrefix(res.Error, job.Instance+": ")
	case rerr == nil:
		why += fmt.Sprintf(": result record says %s", res.Status)
	case isNotExist(rerr):
		why += " without writing a result record"
	default:
		why += ": " + rerr.Error()
	}
	return fmt.Errorf("%s%s", why, logTail(sub.Log, l.Script()))
}

// logTail formats the end of a job's log for an error message. Both files
// are kept with the attempt, so the paths stay valid.
func logTail(path, script string) string {
	t := tail(path, 4096)
	if t == "" {
		return fmt.Sprintf("\n(log %s is empty or missing; job script %s)", path, script)
	}
	lines := strings.Split(t, "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return fmt.Sprintf("\n--- last lines of %s (job script %s):\n%s", path, script, strings.Join(lines, "\n"))
}

// scancel asks Slurm to cancel id, ignoring ctx's cancellation: it runs
// precisely when the caller is being cancelled.
func (e *Executor) scancel(ctx context.Context, id string) error {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	_, err := e.cmds().run(sctx, "scancel", id)
	return err
}

// stop scancels sub and waits until Slurm reports it ended or forgot it,
// so that on return no process Slurm tracks still writes to the attempt.
func (e *Executor) stop(ctx context.Context, sub *Submission, log io.Writer) {
	if err := e.scancel(ctx, sub.JobID); err != nil {
		fmt.Fprintf(log, "voxflow: %v\n", err)
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Minute)
	defer cancel()
	step := min(e.interval(), 250*time.Millisecond)
	for wctx.Err() == nil {
		info, found, err := e.queue.lookup(wctx, e.cmds(), sub.JobID, 0)
		if err == nil && (!found || terminal(info.State)) {
			fmt.Fprintf(log, "voxflow: cancelled slurm job %s\n", sub.JobID)
			return
		}
		time.Sleep(step)
	}
	fmt.Fprintf(log, "voxflow: slurm job %s still in the queue after scancel\n", sub.JobID)
}

// copyTree copies the directory src to dst (replaced), regular files and
// symlinks alike. A copy, not a rename: a process the job left behind may
// still hold files under src open.
func copyTree(src, dst string) error {
	if err := os.RemoveAll(dst); err != nil {
		return fmt.Errorf("clear %s: %w", dst, err)
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("copy outputs: %w", err)
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("copy outputs: %w", err)
		}
		switch {
		case d.IsDir():
			if err := os.MkdirAll(to, 0o755); err != nil {
				return fmt.Errorf("copy outputs: %w", err)
			}
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return fmt.Errorf("copy outputs: %w", err)
			}
			if err := os.Symlink(target, to); err != nil {
				return fmt.Errorf("copy outputs: %w", err)
			}
		case info.Mode().IsRegular():
			if err := copyFile(p, to, info.Mode().Perm()); err != nil {
				return err
			}
		default:
			return fmt.Errorf("copy outputs: %s is neither a file, a directory nor a symlink (%s)", p, info.Mode().Type())
		}
		return nil
	})
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy outputs: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, perm|0o200)
	if err != nil {
		return fmt.Errorf("copy outputs: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return fmt.Errorf("copy outputs: %s to %s: %w", src, dst, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("copy outputs: close %s: %w", dst, err)
	}
	return nil
}

// lockFile takes an exclusive flock on path, waiting while another engine
// (or an sbatch started by one) holds it. The open file is returned so a
// child process can inherit the lock.
func lockFile(ctx context.Context, path string) (*os.File, func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); _ = f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			_ = f.Close()
			return nil, nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Guard is the executor of a local run on a host that may share its cache
// with Slurm jobs: before running a job here it asks the Slurm executor
// whether a job of the same key may still be running on the cluster, and
// refuses to start a second writer, naming the job. It does not implement
// Remote: local budgets apply.
type Guard struct {
	Local engine.Executor
	Slurm *Executor
}

// Execute runs job with g.Local unless a Slurm job of its key may still run.
func (g Guard) Execute(ctx context.Context, job *engine.Job, progress stages.Progress, log io.Writer) error {
	live, err := g.Slurm.LiveJob(ctx, job)
	if err != nil {
		return fmt.Errorf("not run here: %w", err)
	}
	if live != "" {
		return fmt.Errorf("not run here: %s may still be computing this key; wait for it (voxflow status), adopt it with --executor slurm, or scancel it", live)
	}
	return g.Local.Execute(ctx, job, progress, log)
}

// errNoNodes marks a partition that does not exist or has no nodes.
var errNoNodes = errors.New("partition has no nodes")
