package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/voxflow/voxflow/cache"
	"github.com/voxflow/voxflow/engine"
	"github.com/voxflow/voxflow/engine/slurm"
	"github.com/voxflow/voxflow/plugins"
	"github.com/voxflow/voxflow/stages"
)

// slurmDir is where the Slurm executor keeps each key's job records and
// attempts (slurm.KeyDir) inside the cache: on the shared filesystem, next
// to the objects the jobs write.
func slurmDir(store *cache.Store) string { return filepath.Join(store.Dir(), "slurm") }

// newExecutor picks where instances run: the --executor flag, else the
// spec's `executor.type`, else this machine. A local executor is guarded:
// it refuses a key whose Slurm job (a detached run's, or one a killed
// engine left) may still be running, rather than become a second writer.
func newExecutor(ctx context.Context, p *engine.Project, flagExec string, detach bool, store *cache.Store) (engine.Executor, error) {
	kind := flagExec
	if kind == "" {
		if t, ok := p.Spec.Executor["type"].(string); ok {
			kind = t
		}
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the voxflow binary: %w", err)
	}
	local := engine.LocalExecutor{Process: engine.ProcessExecutor{Self: self}, Lookup: func(job *engine.Job) (stages.Stage, error) {
		if k := p.Kinds[job.Stage]; k != nil && k.Stage != nil {
			return k.Stage, nil
		}
		return nil, fmt.Errorf("%s: kind %s has no in-process implementation", job.Instance, job.Kind)
	}}
	switch kind {
	case "", "local":
		if detach {
			return nil, fmt.Errorf("--detach needs --executor slurm")
		}
		return slurm.Guard{Local: local, Slurm: &slurm.Executor{Bin: self, Dir: slurmDir(store)}}, nil
	case "slurm":
		// Typos in executor options are caught before anything is submitted.
		if _, err := slurm.ParseOptions(p.Spec.Executor); err != nil {
			return nil, fmt.Errorf("%s: executor: %w", p.Spec.Path, err)
		}
		for _, st := range p.Spec.Stages {
			if _, err := slurm.ParseOptions(st.ExecOptions); err != nil {
				return nil, fmt.Errorf("%s: stage %s: slurm: %w", st.Pos, st.Name, err)
			}
		}
		se := &slurm.Executor{Bin: self, Dir: slurmDir(store)}
		if detach {
			return slurm.Detached{Executor: se}, nil
		}
		return se, nil
	}
	return nil, fmt.Errorf("unknown executor %q: want local or slurm", kind)
}

// describePlugin reads the kinds a plugin binary serves.
func describePlugin(ctx context.Context, path string) ([]stages.Description, string, error) {
	return plugins.Describe(ctx, path)
}

// printAttempt is `voxflow log INSTANCE --attempt N`: one kept Slurm
// attempt of the execution's key, with its job id, how it ended, the paths
// of its job script and log, and the log itself.
func printAttempt(w io.Writer, store *cache.Store, e *cache.Execution, n int) error {
	kd := slurm.KeyDir(filepath.Join(slurmDir(store), string(e.Key)))
	all, err := slurm.Attempts(kd)
	if err != nil {
		return err
	}
	var nums []string
	for _, a := range all {
		nums = append(nums, strconv.Itoa(a.N))
		if a.N != n {
			continue
		}
		fmt.Fprintf(w, "%s attempt %d: slurm job %s\n", e.Instance, a.N, orDefault(a.JobID, "- (sbatch never answered)"))
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
				return err
			}
			_, err = io.Copy(w, f)
			f.Close()
			if err != nil {
				return err
			}
		}
		return nil
	}
	if len(nums) == 0 {
		return fmt.Errorf("%s: no Slurm attempts are kept for key %.16s (in %s)", e.Instance, e.Key, kd)
	}
	return fmt.Errorf("%s: no attempt %d; kept Slurm attempts: %s", e.Instance, n, strings.Join(nums, ", "))
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// clusterJobs lists Slurm jobs submitted for instances whose outcome is not
// recorded yet (a detached run, or a run that is still waiting), with their
// current state.
func clusterJobs(ctx context.Context, store *cache.Store, w io.Writer) error {
	files, _ := filepath.Glob(filepath.Join(slurmDir(store), "*", "slurm.json"))
	var dirs []slurm.KeyDir
	subs := map[slurm.KeyDir]*slurm.Submission{}
	for _, f := range files {
		sub, err := slurm.ReadSubmission(f)
		if err != nil || sub.Collected {
			continue
		}
		if _, done, err := store.Lookup(ctx, cache.Digest(sub.Key)); err == nil && done {
			continue
		}
		dir := slurm.KeyDir(filepath.Dir(f))
		dirs = append(dirs, dir)
		subs[dir] = sub
	}
	if len(dirs) == 0 {
		return nil
	}
	states, err := (&slurm.Executor{}).States(ctx, dirs)
	if err != nil {
		fmt.Fprintf(w, "\ncluster jobs: cannot read their state: %v\n", err)
		return nil
	}
	sort.Slice(dirs, func(i, j int) bool { return subs[dirs[i]].Instance < subs[dirs[j]].Instance })
	fmt.Fprintln(w, "\nCLUSTER JOBS (not yet recorded; the next `voxflow run --executor slurm` adopts them)")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tSLURM JOB\tSTATE\tSUBMITTED")
	for _, d := range dirs {
		sub := subs[d]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", sub.Instance, sub.JobID, states[d], sub.Submitted.Local().Format("2006-01-02 15:04:05"))
	}
	return tw.Flush()
}
