package slurm

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/voxflow/voxflow/engine"
)

// Driver is the "slurm" executor driver for engine.NewExecutors. It keeps
// its records in its own directory of the cache (engine.ExecutorConfig.Dir,
// CACHE/slurm): one KeyDir per cache key, with the key's submission record,
// lock and attempt directories. Besides the executor it offers a guard for
// local runs, the jobs `voxflow status` lists, and kept attempts for
// `voxflow log --attempt`.
func Driver() engine.ExecutorDriver { return driver{} }

type driver struct{}

// Name is "slurm".
func (driver) Name() string { return "slurm" }

// Doc describes the executor for help texts.
func (driver) Doc() string {
	return "one sbatch job per instance, running `voxflow exec-job` on a node that shares the cache"
}

// CheckOptions validates a map of Slurm options (see Options).
func (driver) CheckOptions(opts map[string]any) error {
	_, err := ParseOptions(opts)
	return err
}

// New builds the executor: a Detached one for cfg.Detach.
func (driver) New(cfg engine.ExecutorConfig) (engine.Executor, error) {
	e := &Executor{Bin: cfg.Bin, Dir: cfg.Dir}
	if cfg.Detach {
		return Detached{Executor: e}, nil
	}
	return e, nil
}

// Guard wraps cfg.Local so that it refuses a key whose Slurm job may still
// be running (see Guard).
func (driver) Guard(cfg engine.ExecutorConfig) engine.Executor {
	return Guard{Local: cfg.Local, Slurm: &Executor{Bin: cfg.Bin, Dir: cfg.Dir}}
}

// PendingJobs lists the Slurm jobs in dir whose outcome no engine collected
// and no run recorded, with their current Slurm state (one squeue call).
func (driver) PendingJobs(ctx context.Context, dir string, recorded func(key string) bool) ([]engine.PendingJob, error) {
	files, _ := filepath.Glob(filepath.Join(dir, "*", "slurm.json"))
	var dirs []KeyDir
	subs := map[KeyDir]*Submission{}
	for _, f := range files {
		sub, err := ReadSubmission(f)
		if err != nil || sub.Collected || recorded(sub.Key) {
			continue
		}
		d := KeyDir(filepath.Dir(f))
		dirs = append(dirs, d)
		subs[d] = sub
	}
	if len(dirs) == 0 {
		return nil, nil
	}
	states, err := (&Executor{}).States(ctx, dirs)
	if err != nil {
		return nil, err
	}
	out := make([]engine.PendingJob, 0, len(dirs))
	for _, d := range dirs {
		sub := subs[d]
		out = append(out, engine.PendingJob{Key: sub.Key, Instance: sub.Instance, JobID: sub.JobID, State: states[d], Submitted: sub.Submitted})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Instance < out[j].Instance })
	return out, nil
}

// WriteAttempt writes kept attempt n of key: its Slurm job id, how it
// ended, the paths of its job script and log, and the log itself.
func (driver) WriteAttempt(w io.Writer, dir, key, instance string, n int) error {
	kd := KeyDir(filepath.Join(dir, key))
	all, err := Attempts(kd)
	if err != nil {
		return err
	}
	var nums []string
	for _, a := range all {
		nums = append(nums, strconv.Itoa(a.N))
		if a.N == n {
			return writeAttempt(w, instance, a)
		}
	}
	if len(nums) == 0 {
		return fmt.Errorf("%s: no Slurm attempts for key %.16s in %s: %w", instance, key, kd, engine.ErrNoAttempts)
	}
	return fmt.Errorf("%s: no attempt %d; kept Slurm attempts: %s", instance, n, strings.Join(nums, ", "))
}

func writeAttempt(w io.Writer, instance string, a AttemptInfo) error {
	fmt.Fprintf(w, "%s attempt %d: slurm job %s\n", instance, a.N, orDefault(a.JobID, "- (sbatch never answered)"))
	switch {
	case a.End != nil && a.End.Error != "":
		fmt.Fprintf(w, "ended: %s (%s)\nerror: %s\n", a.End.State, a.End.Reason, firstLine(a.End.Error))
	case a.End != nil:
		fmt.Fprintf(w, "ended: %s\n", a.End.State)
	case a.Result != nil:
		fmt.Fprintf(w, "result: %s %s\n", a.Result.Status, a.Result.Error)
	default:
		fmt.Fprintln(w, "ended: not seen by an engine yet")
	}
	fmt.Fprintf(w, "script: %s\n", a.Layout.Script())
	for _, l := range a.Logs {
		fmt.Fprintf(w, "--- %s\n", l)
		f, err := os.Open(l)
		if err != nil {
			return fmt.Errorf("attempt %d log: %w", a.N, err)
		}
		_, err = io.Copy(w, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("attempt %d log %s: %w", a.N, l, err)
		}
	}
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func orDash(s string) string { return orDefault(s, "-") }

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
