package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/voxflow/voxflow/internal/jsonfile"
	"github.com/voxflow/voxflow/stages"
)

// The far end of a cluster executor is `voxflow exec-job JOBFILE` on a node
// (ExecJobFile). It talks to the executor only through files in the job
// file's directory, on the filesystem both share: the job file going out,
// JobProgressFile and JobResultFile coming back, and the stage's log on
// stdout, which the cluster captures. Any cluster executor reuses it.

// Names of the files ExecJobFile writes next to the job file.
const (
	JobProgressFile = "progress.jsonl" // one ProgressLine a line
	JobResultFile   = "result.json"    // the JobResult, written once the stage returns
)

// JobIDEnv is the environment variable through which a cluster executor's
// job script tells exec-job the cluster's id of the job, for its result
// record (e.g. `export VOXFLOW_JOB_ID="$SLURM_JOB_ID"`).
const JobIDEnv = "VOXFLOW_JOB_ID"

// progressEvery thins progress updates written to the shared filesystem.
const progressEvery = 500 * time.Millisecond

// Statuses of a JobResult.
const (
	JobOK        = "ok"
	JobFailed    = "failed"
	JobCancelled = "cancelled"
)

// JobResult is JobResultFile, written atomically by exec-job when the stage
// returns. Its presence with Status JobOK is what makes a finished job
// adoptable after the cluster has forgotten it.
type JobResult struct {
	Status string    `json:"status"` // JobOK, JobFailed or JobCancelled
	Error  string    `json:"error,omitempty"`
	Key    string    `json:"key"`
	JobID  string    `json:"job_id,omitempty"` // from JobIDEnv, empty outside a cluster
	Host   string    `json:"host"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
}

// ReadJobResult reads a JobResultFile; it returns an error wrapping
// fs.ErrNotExist when the job has not finished.
func ReadJobResult(path string) (*JobResult, error) {
	var r JobResult
	if err := jsonfile.Read(path, &r); err != nil {
		return nil, err
	}
	switch r.Status {
	case JobOK, JobFailed, JobCancelled:
	default:
		return nil, fmt.Errorf("read %s: field status is %q; want ok, failed or cancelled", path, r.Status)
	}
	return &r, nil
}

// ExecJobFile is `voxflow exec-job JOBFILE`: it reads the job, runs it with
// exe (a LocalExecutor on the node: builtin kinds inline, plugin kinds in
// their plugin process), writes progress lines to JobProgressFile and the
// stage's log to log, and finally writes JobResultFile, both next to the
// job file. It returns the stage's error, so the process exits non-zero
// and the cluster marks the job failed. SIGTERM (a cancel, a time limit or
// a preemption) cancels the stage and is recorded as JobCancelled.
func ExecJobFile(ctx context.Context, jobFile string, exe Executor, log io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	jobFile, err := filepath.Abs(jobFile)
	if err != nil {
		return fmt.Errorf("exec-job: %w", err)
	}
	dir := filepath.Dir(jobFile)
	progressPath := filepath.Join(dir, JobProgressFile)
	host, _ := os.Hostname()
	res := JobResult{JobID: os.Getenv(JobIDEnv), Host: host, Start: time.Now().UTC()}

	runErr := func() error {
		job, err := ReadJobFile(jobFile)
		if err != nil {
			return err
		}
		res.Key = job.Key
		fmt.Fprintf(log, "voxflow exec-job: %s (kind %s, key %.16s) on %s, job %s\n", job.Instance, job.Kind, job.Key, host, orDash(res.JobID))
		if err := os.MkdirAll(job.OutDir, 0o755); err != nil {
			return fmt.Errorf("create output dir: %w", err)
		}
		f, err := os.OpenFile(progressPath, os.O_CREATE|os.O_TRUNC|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("create progress file: %w", err)
		}
		pw := newProgressWriter(f, progressEvery)
		err = exe.Execute(ctx, job, pw, log)
		perr := pw.flush()
		if cerr := f.Close(); perr == nil && cerr != nil {
			perr = fmt.Errorf("close %s: %w", progressPath, cerr)
		}
		if err == nil && perr != nil {
			fmt.Fprintf(log, "voxflow exec-job: warning: %v\n", perr)
		}
		return err
	}()

	if runErr != nil && ctx.Err() == nil {
		// A cluster signals every process of the job in one sweep, so the
		// stage's children may die of SIGTERM a moment before ours arrives;
		// wait for it briefly, or a cancellation would be recorded as a
		// failure.
		select {
		case <-ctx.Done():
		case <-time.After(300 * time.Millisecond):
		}
	}
	res.End = time.Now().UTC()
	switch {
	case runErr == nil:
		res.Status = JobOK
	case ctx.Err() != nil:
		res.Status = JobCancelled
		res.Error = fmt.Sprintf("cancelled (SIGTERM: the job was cancelled, hit its time limit or was preempted): %v", runErr)
	default:
		res.Status = JobFailed
		res.Error = runErr.Error()
	}
	fmt.Fprintf(log, "voxflow exec-job: %s after %s\n", res.Status, res.End.Sub(res.Start).Round(time.Millisecond))
	if err := jsonfile.WriteAtomic(filepath.Join(dir, JobResultFile), res); err != nil {
		return errors.Join(runErr, err)
	}
	return runErr
}

// StagesExecutor runs a job in this process with the stage of ss whose
// kind matches, as exec-job does for builtin kinds in tests and small
// binaries. Plugin jobs are refused; wrap it in a LocalExecutor with a
// Process executor for those.
func StagesExecutor(ss []stages.Stage) Executor {
	byKind := make(map[string]stages.Stage, len(ss))
	for _, s := range ss {
		byKind[s.Describe().Kind] = s
	}
	return LocalExecutor{Lookup: func(job *Job) (stages.Stage, error) {
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

// ProgressLine is one line of JobProgressFile: a stages.Update with the
// time it was made.
type ProgressLine struct {
	Time    time.Time `json:"time"`
	Phase   string    `json:"phase,omitempty"`
	Done    float64   `json:"done"`
	Total   float64   `json:"total,omitempty"`
	Unit    string    `json:"unit,omitempty"`
	Rate    float64   `json:"rate,omitempty"`
	Message string    `json:"message,omitempty"`
}

// Update converts the line back to the update it records.
func (p ProgressLine) Update() stages.Update {
	return stages.Update{Phase: p.Phase, Done: p.Done, Total: p.Total, Unit: p.Unit, Rate: p.Rate, Message: p.Message}
}

// ForwardProgress decodes progress lines (JobProgressFile's content) and
// hands them to progress. A malformed line (a torn write seen over NFS) is
// skipped, not fatal: progress is advisory.
func ForwardProgress(lines []byte, progress stages.Progress) {
	for _, ln := range bytes.Split(lines, []byte{'\n'}) {
		if len(bytes.TrimSpace(ln)) == 0 {
			continue
		}
		var p ProgressLine
		if json.Unmarshal(ln, &p) == nil {
			progress.Update(p.Update())
		}
	}
}

// progressWriter is the stages.Progress exec-job hands the stage. Stages may
// report every batch; on a shared filesystem that is needless traffic, so
// updates within one phase are thinned to one per interval and the newest
// held-back update is written on close.
type progressWriter struct {
	every time.Duration

	mu        sync.Mutex
	w         io.Writer
	last      time.Time
	lastPhase string
	pending   *ProgressLine
	err       error // first write error, reported on close
}

func newProgressWriter(w io.Writer, every time.Duration) *progressWriter {
	return &progressWriter{w: w, every: every}
}

// Update records u, now or later (see progressWriter).
func (p *progressWriter) Update(u stages.Update) {
	line := ProgressLine{Time: time.Now().UTC(), Phase: u.Phase, Done: u.Done, Total: u.Total, Unit: u.Unit, Rate: u.Rate, Message: u.Message}
	p.mu.Lock()
	defer p.mu.Unlock()
	finished := u.Total > 0 && u.Done >= u.Total
	if u.Phase == p.lastPhase && !finished && line.Time.Sub(p.last) < p.every {
		p.pending = &line
		return
	}
	p.write(line)
}

func (p *progressWriter) write(line ProgressLine) {
	p.pending = nil
	p.last, p.lastPhase = line.Time, line.Phase
	b, err := json.Marshal(line)
	if err == nil {
		_, err = p.w.Write(append(b, '\n'))
	}
	if err != nil && p.err == nil {
		p.err = fmt.Errorf("write progress: %w", err)
	}
}

// flush writes the held-back update, if any, and returns the first error.
func (p *progressWriter) flush() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pending != nil {
		p.write(*p.pending)
	}
	return p.err
}
