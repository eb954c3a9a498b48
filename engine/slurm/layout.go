package slurm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/voxflow/voxflow/engine"
	"github.com/voxflow/voxflow/internal/jsonfile"
)

// Layout names the files of one attempt: the directory a single Slurm job
// owns. The executor (on the engine's host) and `voxflow exec-job` (on a
// compute node) share them. Every attempt at a key gets a fresh directory,
// so processes an earlier job left behind on a node (an orphan that ignored
// SIGTERM) can never write into a later attempt's outputs.
//
// The attempts of one key live in its key directory (see KeyDir), next to
// the record of the job last submitted for the key (slurm.json) and the lock
// that keeps two engines from submitting it twice. Everything lives on the
// shared filesystem so that a later engine, on any host that mounts it, can
// find and adopt the job.
type Layout struct {
	Dir string // the attempt directory
}

// Job is the engine.Job written as JSON, the argument of exec-job.
func (l Layout) Job() string { return filepath.Join(l.Dir, "job.json") }

// Script is the sbatch script; `sbatch job.sbatch` resubmits it by hand.
func (l Layout) Script() string { return filepath.Join(l.Dir, "job.sbatch") }

// Result is the record exec-job writes when the stage ends (see Result).
func (l Layout) Result() string { return filepath.Join(l.Dir, engine.JobResultFile) }

// Progress is the stage's progress, one JSON object (engine.ProgressLine)
// a line.
func (l Layout) Progress() string { return filepath.Join(l.Dir, engine.JobProgressFile) }

// Out is the directory the stage writes its outputs to. The engine gets a
// copy of it once Slurm says the job has ended.
func (l Layout) Out() string { return filepath.Join(l.Dir, "out") }

// End is the executor's record of how Slurm ended the job (see End).
func (l Layout) End() string { return filepath.Join(l.Dir, "end.json") }

// Log is the Slurm output file (stdout and stderr) of one Slurm job.
func (l Layout) Log(jobID string) string {
	return filepath.Join(l.Dir, "slurm-"+jobID+".log")
}

// logPattern is Log with Slurm's %j placeholder, for sbatch --output.
func (l Layout) logPattern() string { return filepath.Join(l.Dir, "slurm-%j.log") }

// KeyDir is the directory of one cache key's Slurm records: slurm.json,
// slurm.lock and one attempt-N directory per Slurm job.
type KeyDir string

// Submission is the record of the Slurm job last submitted for the key.
func (k KeyDir) Submission() string { return filepath.Join(string(k), "slurm.json") }

// lock is held while deciding whether to submit, and by sbatch itself while
// it runs, so that two engines sharing a cache (or an engine and the sbatch
// a killed engine left running) never submit the same key twice.
func (k KeyDir) lock() string { return filepath.Join(string(k), "slurm.lock") }

// Attempt is the directory of attempt n (1-based).
func (k KeyDir) Attempt(n int) Layout {
	return Layout{Dir: filepath.Join(string(k), fmt.Sprintf("attempt-%d", n))}
}

// holds reports whether attemptDir (a job's working directory as squeue
// shows it) is one of k's attempt directories.
func (k KeyDir) holds(attemptDir string) bool {
	return filepath.Clean(filepath.Dir(attemptDir)) == filepath.Clean(string(k))
}

// Submission is KeyDir/slurm.json: which Slurm job runs (or ran) the key's
// latest attempt.
type Submission struct {
	// JobID is empty in the record written just before sbatch runs: an
	// engine killed while sbatch answers leaves it, and the next engine
	// finds the job by its key in squeue instead of submitting a second.
	JobID     string    `json:"job_id"`
	Key       string    `json:"key"`      // the instance's cache key
	Instance  string    `json:"instance"` // display name
	Attempt   int       `json:"attempt"`  // 1 for the key's first Slurm job
	Dir       string    `json:"dir"`      // the attempt directory (Layout)
	Submitted time.Time `json:"submitted"`
	Host      string    `json:"host"` // where sbatch ran
	Log       string    `json:"log"`  // the job's Slurm output file
	// Collected is set once an engine took the job's outcome (stored its
	// outputs, counted its failure, or cancelled it). A collected job is
	// never adopted again: the next Execute is a new attempt. An ended job
	// nobody collected (a detached run's) is adopted, failure included, so
	// it counts against the stage's retries exactly once.
	Collected bool `json:"collected,omitempty"`
}

// End is an attempt's end.json: the Slurm state the executor saw when the
// job left the queue, kept with the attempt for `voxflow log --attempt`.
type End struct {
	JobID  string    `json:"job_id"`
	State  string    `json:"state"`            // COMPLETED, FAILED, TIMEOUT, CANCELLED, ... or GONE
	Reason string    `json:"reason,omitempty"` // squeue's reason, e.g. NonZeroExitCode
	Error  string    `json:"error,omitempty"`  // what the executor reported, empty on success
	Time   time.Time `json:"time"`
}

// Result statuses written by exec-job (engine.ExecJobFile).
const (
	StatusOK        = engine.JobOK
	StatusFailed    = engine.JobFailed
	StatusCancelled = engine.JobCancelled
)

// Result is an attempt's result.json, written by exec-job when the stage
// returns (engine.JobResult). Its presence with Status "ok" is what makes a
// finished job adoptable after Slurm has forgotten it.
type Result = engine.JobResult

// ReadSubmission reads a slurm.json; it returns an error wrapping
// fs.ErrNotExist when nothing was submitted yet.
func ReadSubmission(path string) (*Submission, error) {
	var s Submission
	if err := jsonfile.Read(path, &s); err != nil {
		return nil, err
	}
	if s.Key == "" {
		return nil, fmt.Errorf("read %s: field key is empty; want the cache key the job computes", path)
	}
	return &s, nil
}

// ReadResult reads a result.json; it returns an error wrapping
// fs.ErrNotExist when the job has not finished.
func ReadResult(path string) (*Result, error) { return engine.ReadJobResult(path) }

// tail returns the last max bytes of the file at path, starting at a line
// boundary where one is near, for error messages. Missing files give "".
func tail(path string, max int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := st.Size() - max
	if off < 0 {
		off = 0
	}
	b, err := io.ReadAll(io.NewSectionReader(f, off, st.Size()-off))
	if err != nil {
		return ""
	}
	if off > 0 {
		if i := bytes.IndexByte(b, '\n'); i >= 0 && i < len(b)-1 {
			b = b[i+1:]
		}
	}
	return string(bytes.TrimRight(b, "\n"))
}

// isNotExist reports whether err says a record file is missing.
func isNotExist(err error) bool { return errors.Is(err, os.ErrNotExist) }

// AttemptInfo is one kept attempt of a key, for `voxflow log --attempt`.
type AttemptInfo struct {
	N      int
	Layout Layout // its directory and files
	JobID  string // the Slurm job, "" when sbatch never answered
	Logs   []string
	Result *Result // nil when exec-job wrote none (killed, never started)
	End    *End    // nil while the job runs or when no engine saw it end
}

// Attempts lists the attempts kept in dir, oldest first. A directory that
// does not exist has none.
func Attempts(dir KeyDir) ([]AttemptInfo, error) {
	nums, err := attemptNums(dir)
	if err != nil {
		return nil, err
	}
	var out []AttemptInfo
	for _, n := range nums {
		a := AttemptInfo{N: n, Layout: dir.Attempt(n)}
		a.Logs, _ = filepath.Glob(filepath.Join(a.Layout.Dir, "slurm-*.log"))
		if r, err := ReadResult(a.Layout.Result()); err == nil {
			a.Result = r
			a.JobID = r.JobID
		}
		var end End
		if err := jsonfile.Read(a.Layout.End(), &end); err == nil {
			a.End = &end
			a.JobID = end.JobID
		}
		if a.JobID == "" && len(a.Logs) > 0 {
			b := filepath.Base(a.Logs[len(a.Logs)-1])
			a.JobID = strings.TrimSuffix(strings.TrimPrefix(b, "slurm-"), ".log")
		}
		out = append(out, a)
	}
	return out, nil
}

// attemptNums lists the numbers of the attempt directories in dir, in
// increasing order. A directory that does not exist has none.
func attemptNums(dir KeyDir) ([]int, error) {
	entries, err := os.ReadDir(string(dir))
	if err != nil {
		if isNotExist(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("list attempts in %s: %w", dir, err)
	}
	var nums []int
	for _, e := range entries {
		var n int
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "attempt-") {
			continue
		}
		if _, err := fmt.Sscanf(e.Name(), "attempt-%d", &n); err != nil || n < 1 {
			continue
		}
		nums = append(nums, n)
	}
	sort.Ints(nums)
	return nums, nil
}

// nextAttempt is the number of the key's next attempt: one past every
// attempt directory already there, so no two jobs ever share one.
func nextAttempt(dir KeyDir) (int, error) {
	nums, err := attemptNums(dir)
	if err != nil {
		return 0, err
	}
	if len(nums) == 0 {
		return 1, nil
	}
	return nums[len(nums)-1] + 1, nil
}
