package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/voxflow/voxflow/cache"
	"github.com/voxflow/voxflow/engine"
	"github.com/voxflow/voxflow/engine/slurm"
)

// executors is every executor this binary offers. It is the one place the
// CLI names an executor: a new one is a package with a driver, added here.
func executors() *engine.Executors {
	return engine.NewExecutors(engine.LocalDriver(), slurm.Driver())
}

// newExecutor picks where instances run: the --executor flag, else the
// spec's `executor.type`, else this machine. The chosen driver checks the
// spec's executor options before anything runs. A local executor is
// guarded by every driver whose jobs may outlive a run: it refuses a key
// whose cluster job (a detached run's, or one a killed engine left) may
// still be running, rather than become a second writer.
//
// Its errors carry their exit status: 2 for a wrong --executor or a flag
// the executor cannot honour (--detach on this machine), 1 for a spec
// whose executor type or options are wrong, as `voxflow validate` says.
func newExecutor(p *engine.Project, flagExec string, detach bool, store *cache.Store) (engine.Executor, error) {
	x := executors()
	if flagExec != "" {
		if _, err := x.Lookup(flagExec); err != nil {
			return nil, &exitError{code: 2, err: fmt.Errorf("--executor: %w", err)}
		}
	}
	d, err := x.Check(p.Spec, flagExec)
	if err != nil {
		return nil, &exitError{code: 1, err: err}
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the voxflow binary: %w", err)
	}
	local := engine.LocalExecutor{Process: engine.ProcessExecutor{Self: self}, Lookup: p.StageOf}
	exe, err := x.Build(d, p.Spec, engine.ExecutorChoice{Name: flagExec, Bin: self, StoreDir: store.Dir(), Detach: detach, Local: local})
	if err != nil {
		return nil, &exitError{code: 2, err: err}
	}
	return exe, nil
}

// specNamesOtherExecutor reports whether the spec's `executor.type` picks
// an executor other than this machine's, which `voxflow plan` then checks
// each instance against.
func specNamesOtherExecutor(p *engine.Project) bool {
	t, _ := p.Spec.Executor["type"].(string)
	return t != "" && t != engine.LocalDriver().Name()
}

// printAttempt is `voxflow log INSTANCE --attempt N`: one attempt of the
// execution's key, as kept by the executor that ran it (its job, how it
// ended, its files and its log).
func printAttempt(w io.Writer, store *cache.Store, e *cache.Execution, n int) error {
	return executors().WriteAttempt(w, store.Dir(), string(e.Key), e.Instance, n)
}

// clusterJobs lists jobs handed to a cluster for instances whose outcome
// is not recorded yet (a detached run, or a run that is still waiting),
// with their current state, one table per executor.
func clusterJobs(ctx context.Context, store *cache.Store, w io.Writer) error {
	recorded := func(key string) bool {
		_, done, err := store.Lookup(ctx, cache.Digest(key))
		return err == nil && done
	}
	jobs, errs := executors().PendingJobs(ctx, store.Dir(), recorded)
	names := make([]string, 0, len(jobs)+len(errs))
	for n := range jobs {
		names = append(names, n)
	}
	for n := range errs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := errs[name]; err != nil {
			fmt.Fprintf(w, "\ncluster jobs: cannot read their state: %v\n", err)
			continue
		}
		fmt.Fprintf(w, "\nCLUSTER JOBS (not yet recorded; the next `voxflow run --executor %s` adopts them)\n", name)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "INSTANCE\t%s JOB\tSTATE\tSUBMITTED\n", strings.ToUpper(name))
		for _, j := range jobs[name] {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", j.Instance, j.JobID, j.State, j.Submitted.Local().Format("2006-01-02 15:04:05"))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// executorNames lists the executors for help texts, e.g. "local, slurm".
func executorNames() string { return strings.Join(executors().Names(), ", ") }
