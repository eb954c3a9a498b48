// Package slurm is voxflow's Slurm executor: it runs each stage instance as
// one sbatch job that executes `voxflow exec-job` on a compute node against
// the shared object store, follows it with squeue, and adopts jobs that a
// previous engine submitted instead of submitting them twice.
//
// The engine and the job talk only through files in the job's work
// directory (see Layout): job.json and job.sbatch going out; progress.jsonl,
// the Slurm log and result.json coming back. Only the engine writes the
// cache's SQLite index.
package slurm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/voxflow/voxflow/engine"
	"github.com/voxflow/voxflow/stages"
)

// ErrNotSubmitted is returned by State and Cancel for a work directory that
// has no Slurm submission record.
var ErrNotSubmitted = errors.New("no slurm job was submitted for this work directory")

// Executor submits jobs to Slurm. Its zero value works: jobs run this very
// voxflow binary, options come from each job's executor map, and squeue is
// polled every 2 s. Use it through a pointer; it is safe for concurrent use.
type Executor struct {
	// Bin is the voxflow binary the compute nodes run; "" means this
	// process's executable. It must be reachable at that path on the nodes.
	// A job's `voxflow_bin` option overrides it.
	Bin string
	// Defaults apply to every job; a job's executor map overrides them key
	// by key.
	Defaults Options
	// PollInterval is how often the queue is read; 0 means 2 s.
	PollInterval time.Duration
	// SlurmBin is the directory holding sbatch, squeue and scancel; "" means
	// they are found on PATH.
	SlurmBin string

	queue     queue
	submitted atomic.Int64
	adopted   atomic.Int64
}

// Remote tells the engine that jobs run elsewhere, so local resource
// budgets (GPUs, memory) do not limit what may be submitted.
func (e *Executor) Remote() bool { return true }

// Stats reports how many jobs this executor submitted with sbatch and how
// many it adopted from an earlier submission, for run summaries and for
// tests that assert a cached rerun submits nothing.
func (e *Executor) Stats() (submitted, adopted int) {
	return int(e.submitted.Load()), int(e.adopted.Load())
}

func (e *Executor) cmds() commands { return commands{dir: e.SlurmBin} }

func (e *Executor) interval() time.Duration {
	if e.PollInterval > 0 {
		return e.PollInterval
	}
	return 2 * time.Second
}

// Execute runs job as a Slurm job and waits for it: it submits (or adopts a
// job already running for job.WorkDir), forwards progress and the job's log
// as they appear, and returns nil once the job completed with its outputs
// under job.OutDir. A job that ends in another state gives an error naming
// the state and the end of its log. Cancelling ctx scancels the job and
// waits until it has left the queue.
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
		fmt.Fprintf(log, "voxflow: adopting slurm job %s (submitted %s from %s)\n", sub.JobID, sub.Submitted.Format(time.RFC3339), sub.Host)
	} else {
		fmt.Fprintf(log, "voxflow: submitted slurm job %s\n", sub.JobID)
	}
	return e.wait(ctx, job, sub, progress, log)
}

// Submit submits job without waiting for it, or adopts the job an earlier
// call submitted for the same work directory when that one is still queued
// or running, or finished with a successful result. It returns the Slurm
// job id. This is `voxflow run --detach`; a later Execute (or State) picks
// the job up again.
func (e *Executor) Submit(ctx context.Context, job *engine.Job) (string, error) {
	sub, _, err := e.submit(ctx, job)
	if err != nil {
		return "", err
	}
	return sub.JobID, nil
}

// State reports the Slurm state of the job last submitted for workDir:
// squeue's state while the controller remembers the job (PENDING, RUNNING,
// COMPLETED, FAILED, TIMEOUT, ...), then COMPLETED, FAILED or CANCELLED from
// the job's result record, or UNKNOWN when neither exists (the job died
// without writing one). A work directory never submitted gives
// ErrNotSubmitted.
func (e *Executor) State(ctx context.Context, workDir string) (string, error) {
	states, err := e.States(ctx, []string{workDir})
	if err != nil {
		return "", err
	}
	return states[workDir], nil
}

// States is State for many work directories with one squeue call, for
// `voxflow status` over a whole run. Directories never submitted are
// absent from the map.
func (e *Executor) States(ctx context.Context, workDirs []string) (map[string]string, error) {
	subs := map[string]*Submission{}
	var ids []string
	for _, d := range workDirs {
		sub, err := ReadSubmission(Layout{Dir: d}.Submission())
		if err != nil {
			if isNotExist(err) {
				if len(workDirs) == 1 {
					return nil, fmt.Errorf("%s: %w", d, ErrNotSubmitted)
				}
				continue
			}
			return nil, err
		}
		subs[d] = sub
		ids = append(ids, sub.JobID)
	}
	queued := map[string]jobInfo{}
	if len(ids) > 0 {
		var err error
		if queued, err = e.cmds().squeue(ctx, ids); err != nil {
			return nil, fmt.Errorf("state of slurm jobs: %w", err)
		}
	}
	out := make(map[string]string, len(subs))
	for d, sub := range subs {
		if info, ok := queued[sub.JobID]; ok && info.Comment == commentPrefix+sub.Key {
			out[d] = info.State
			continue
		}
		res, err := ReadResult(Layout{Dir: d}.Result())
		switch {
		case err == nil && res.JobID == sub.JobID:
			out[d] = map[string]string{StatusOK: "COMPLETED", StatusFailed: "FAILED", StatusCancelled: "CANCELLED"}[res.Status]
		case err == nil || isNotExist(err):
			out[d] = "UNKNOWN"
		default:
			return nil, err
		}
	}
	return out, nil
}

// Cancel scancels the job last submitted for workDir (`voxflow cancel`).
// It does not wait for the job to leave the queue.
func (e *Executor) Cancel(ctx context.Context, workDir string) error {
	sub, err := ReadSubmission(Layout{Dir: workDir}.Submission())
	if err != nil {
		if isNotExist(err) {
			return fmt.Errorf("%s: %w", workDir, ErrNotSubmitted)
		}
		return err
	}
	_, err = e.cmds().run(ctx, "scancel", sub.JobID)
	return err
}

// submit adopts the recorded job for job.WorkDir when it is alive or
// finished well, and otherwise submits a fresh one.
func (e *Executor) submit(ctx context.Context, job *engine.Job) (*Submission, bool, error) {
	if job.WorkDir == "" || job.OutDir == "" {
		return nil, false, fmt.Errorf("%s: job has no work_dir or out_dir; the engine must set both", job.Instance)
	}
	l := Layout{Dir: job.WorkDir}
	if err := os.MkdirAll(l.Dir, 0o755); err != nil {
		return nil, false, fmt.Errorf("%s: create work dir: %w", job.Instance, err)
	}
	unlock, err := lockFile(ctx, l.lock())
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", job.Instance, err)
	}
	defer unlock()

	if sub, ok, err := e.adoptable(ctx, job, l); err != nil {
		return nil, false, err
	} else if ok {
		e.adopted.Add(1)
		return sub, true, nil
	}

	opts, err := ParseOptions(job.Executor)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", job.Instance, err)
	}
	opts = opts.merge(e.Defaults)
	bin := opts.Bin
	if bin == "" {
		bin = e.Bin
	}
	if bin == "" {
		if bin, err = os.Executable(); err != nil {
			return nil, false, fmt.Errorf("%s: find the voxflow binary for the compute nodes: %w (set voxflow_bin)", job.Instance, err)
		}
	}
	script, err := Script(job, opts, bin)
	if err != nil {
		return nil, false, err
	}
	// A fresh attempt starts from an empty output directory and no stale
	// records, so nothing of a failed attempt can be mistaken for this one's.
	for _, p := range []string{l.Result(), l.Progress()} {
		if err := os.Remove(p); err != nil && !isNotExist(err) {
			return nil, false, fmt.Errorf("%s: clear previous attempt: %w", job.Instance, err)
		}
	}
	if err := os.RemoveAll(job.OutDir); err != nil {
		return nil, false, fmt.Errorf("%s: clear output dir %s: %w", job.Instance, job.OutDir, err)
	}
	if err := os.MkdirAll(job.OutDir, 0o755); err != nil {
		return nil, false, fmt.Errorf("%s: create output dir: %w", job.Instance, err)
	}
	if err := writeJob(l.Job(), job); err != nil {
		return nil, false, fmt.Errorf("%s: %w", job.Instance, err)
	}
	if err := writeFileAtomic(l.Script(), []byte(script)); err != nil {
		return nil, false, fmt.Errorf("%s: %w", job.Instance, err)
	}
	// sbatch is not interrupted half-way: a job it submitted without us
	// learning its id could not be cancelled.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	out, err := e.cmds().run(sctx, "sbatch", "--parsable", l.Script())
	cancel()
	if err != nil {
		return nil, false, fmt.Errorf("%s: submit: %w", job.Instance, err)
	}
	id, _, _ := strings.Cut(strings.TrimSpace(out), ";") // "id;cluster" on federations
	if id == "" {
		return nil, false, fmt.Errorf("%s: submit: sbatch --parsable printed no job id (output %q)", job.Instance, out)
	}
	e.submitted.Add(1)
	host, _ := os.Hostname()
	sub := &Submission{JobID: id, Key: job.Key, Instance: job.Instance, Submitted: time.Now().UTC(), Host: host, Log: l.Log(id)}
	if err := writeJSONAtomic(l.Submission(), sub); err != nil {
		// Unrecorded, the job could be neither adopted nor cancelled later.
		if cerr := e.scancel(ctx, id); cerr != nil {
			err = errors.Join(err, cerr)
		}
		return nil, false, fmt.Errorf("%s: record slurm job %s: %w", job.Instance, id, err)
	}
	if ctx.Err() != nil {
		e.stop(ctx, sub, io.Discard)
		return nil, false, ctx.Err()
	}
	return sub, false, nil
}

// adoptable decides whether the recorded job for l can stand in for job.
func (e *Executor) adoptable(ctx context.Context, job *engine.Job, l Layout) (*Submission, bool, error) {
	sub, err := ReadSubmission(l.Submission())
	if err != nil || sub.Key != job.Key {
		// Nothing submitted yet, or a torn or foreign record: submit afresh
		// rather than fail the run.
		return nil, false, nil
	}
	info, found, err := e.queue.lookup(ctx, e.cmds(), sub.JobID, 0)
	if err != nil {
		return nil, false, fmt.Errorf("%s: look up recorded slurm job %s: %w", job.Instance, sub.JobID, err)
	}
	if found && info.Comment != commentPrefix+job.Key {
		found = false // the id now belongs to another job
	}
	if found && !terminal(info.State) {
		return sub, true, nil
	}
	if found && info.State != "COMPLETED" {
		return nil, false, nil
	}
	res, err := ReadResult(l.Result())
	if err == nil && res.Status == StatusOK && res.Key == job.Key && res.JobID == sub.JobID {
		return sub, true, nil
	}
	return nil, false, nil
}

// wait follows sub until it ends or ctx is cancelled.
func (e *Executor) wait(ctx context.Context, job *engine.Job, sub *Submission, progress stages.Progress, log io.Writer) error {
	l := Layout{Dir: job.WorkDir}
	unwatch := e.queue.watch(sub.JobID)
	defer unwatch()
	prog := &follower{path: l.Progress()}
	logf := &follower{path: sub.Log}
	forward := func(all bool) {
		if b, err := logf.next(all); err == nil && len(b) > 0 {
			_, _ = log.Write(b)
		}
		if b, err := prog.next(all); err == nil {
			forwardProgress(b, progress)
		}
	}
	tick := time.NewTicker(e.interval())
	defer tick.Stop()
	var lastState string
	var failingSince time.Time
	for {
		info, found, err := e.queue.lookup(ctx, e.cmds(), sub.JobID, e.interval()/2)
		switch {
		case ctx.Err() != nil:
		case err != nil:
			// slurmctld is briefly unreachable during restarts and failovers;
			// only a lasting outage fails the instance.
			if failingSince.IsZero() {
				failingSince = time.Now()
			} else if time.Since(failingSince) > 2*time.Minute {
				return fmt.Errorf("%s: follow slurm job %s: %w", job.Instance, sub.JobID, err)
			}
		default:
			failingSince = time.Time{}
			if found && info.Comment != commentPrefix+sub.Key {
				found = false
			}
			forward(false)
			if found && info.State != lastState {
				lastState = info.State
				if info.State == "PENDING" {
					progress.Update(stages.Update{Phase: "queued", Message: fmt.Sprintf("slurm job %s pending (%s)", sub.JobID, info.Reason)})
				}
			}
			if !found || terminal(info.State) {
				forward(true)
				return e.outcome(ctx, job, sub, info, found)
			}
		}
		select {
		case <-ctx.Done():
			e.stop(ctx, sub, log)
			forward(true)
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// outcome turns a finished (or vanished) job into the Execute result.
func (e *Executor) outcome(ctx context.Context, job *engine.Job, sub *Submission, info jobInfo, found bool) error {
	l := Layout{Dir: job.WorkDir}
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
		why = fmt.Sprintf("slurm job %s ended %s (%s)", sub.JobID, info.State, info.Reason)
	case found:
		why = fmt.Sprintf("slurm job %s ended %s", sub.JobID, info.State)
	default:
		why = fmt.Sprintf("slurm job %s left the queue", sub.JobID)
	}
	switch {
	case rerr == nil && res.Error != "":
		why += ": " + res.Error
	case rerr == nil:
		why += fmt.Sprintf(": result record says %s", res.Status)
	case isNotExist(rerr):
		why += " without writing " + l.Result()
	default:
		why += ": " + rerr.Error()
	}
	return fmt.Errorf("%s: %s%s", job.Instance, why, logTail(sub.Log))
}

// logTail formats the end of a job's log for an error message.
func logTail(path string) string {
	t := tail(path, 4096)
	if t == "" {
		return fmt.Sprintf("\n(log %s is empty or missing)", path)
	}
	lines := strings.Split(t, "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return fmt.Sprintf("\n--- last lines of %s:\n%s", path, strings.Join(lines, "\n"))
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
// so that on return no process of the job still writes to the work dir.
func (e *Executor) stop(ctx context.Context, sub *Submission, log io.Writer) {
	if err := e.scancel(ctx, sub.JobID); err != nil {
		fmt.Fprintf(log, "voxflow: %v\n", err)
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Minute)
	defer cancel()
	step := min(e.interval(), 500*time.Millisecond)
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

// lockFile takes an exclusive flock on path, waiting while another engine
// holds it.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); _ = f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			_ = f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
