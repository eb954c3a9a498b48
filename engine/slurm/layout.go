package slurm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// Layout names the files that the executor (on the engine's host) and
// `voxflow exec-job` (on a compute node) share in a job's work directory.
// Everything lives in the work directory so that a later engine, on any host
// that mounts the same filesystem, can find and adopt the job.
type Layout struct {
	Dir string // the job's work directory (engine.Job.WorkDir)
}

// Job is the engine.Job written as JSON, the argument of exec-job.
func (l Layout) Job() string { return filepath.Join(l.Dir, "job.json") }

// Script is the sbatch script; `sbatch job.sbatch` resubmits it by hand.
func (l Layout) Script() string { return filepath.Join(l.Dir, "job.sbatch") }

// Submission is the record of the Slurm job last submitted for this work
// directory (see Submission).
func (l Layout) Submission() string { return filepath.Join(l.Dir, "slurm.json") }

// Result is the record exec-job writes when the stage ends (see Result).
func (l Layout) Result() string { return filepath.Join(l.Dir, "result.json") }

// Progress is the stage's progress, one JSON object (ProgressLine) a line.
func (l Layout) Progress() string { return filepath.Join(l.Dir, "progress.jsonl") }

// Log is the Slurm output file (stdout and stderr) of one Slurm job. Each
// attempt keeps its own, so a retry does not overwrite the failure's log.
func (l Layout) Log(jobID string) string {
	return filepath.Join(l.Dir, "slurm-"+jobID+".log")
}

// logPattern is Log with Slurm's %j placeholder, for sbatch --output.
func (l Layout) logPattern() string { return filepath.Join(l.Dir, "slurm-%j.log") }

// lock is held while deciding whether to submit, so that two engines
// sharing a cache do not submit the same key twice.
func (l Layout) lock() string { return filepath.Join(l.Dir, "slurm.lock") }

// Submission is WorkDir/slurm.json: which Slurm job runs this work directory.
type Submission struct {
	JobID     string    `json:"job_id"`
	Key       string    `json:"key"`      // the instance's cache key
	Instance  string    `json:"instance"` // display name
	Submitted time.Time `json:"submitted"`
	Host      string    `json:"host"` // where sbatch ran
	Log       string    `json:"log"`  // the job's Slurm output file
}

// Result statuses written by exec-job.
const (
	StatusOK        = "ok"
	StatusFailed    = "failed"
	StatusCancelled = "cancelled"
)

// Result is WorkDir/result.json, written atomically by exec-job when the
// stage returns. Its presence with Status "ok" is what makes a finished job
// adoptable after Slurm has forgotten it.
type Result struct {
	Status string    `json:"status"` // StatusOK, StatusFailed or StatusCancelled
	Error  string    `json:"error,omitempty"`
	Key    string    `json:"key"`
	JobID  string    `json:"job_id,omitempty"` // SLURM_JOB_ID, empty outside Slurm
	Host   string    `json:"host"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
}

// ReadSubmission reads a slurm.json; it returns an error wrapping
// fs.ErrNotExist when nothing was submitted yet.
func ReadSubmission(path string) (*Submission, error) {
	var s Submission
	if err := readJSON(path, &s); err != nil {
		return nil, err
	}
	if s.JobID == "" {
		return nil, fmt.Errorf("read %s: field job_id is empty; want a Slurm job id", path)
	}
	return &s, nil
}

// ReadResult reads a result.json; it returns an error wrapping
// fs.ErrNotExist when the job has not finished.
func ReadResult(path string) (*Result, error) {
	var r Result
	if err := readJSON(path, &r); err != nil {
		return nil, err
	}
	switch r.Status {
	case StatusOK, StatusFailed, StatusCancelled:
	default:
		return nil, fmt.Errorf("read %s: field status is %q; want ok, failed or cancelled", path, r.Status)
	}
	return &r, nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	return nil
}

// writeJSONAtomic writes v to path through a synced temporary file and a
// rename, so a reader on another host sees the old file or the whole new one.
func writeJSONAtomic(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return writeFileAtomic(path, append(b, '\n'))
}

func writeFileAtomic(path string, data []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return fmt.Errorf("chmod %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("rename into %s: %w", path, err)
	}
	return nil
}

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
