package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strings"

	"golang.org/x/term"

	"github.com/voxflow/voxflow/cache"
	"github.com/voxflow/voxflow/cmd/voxflow/internal/display"
	"github.com/voxflow/voxflow/engine"
	"github.com/voxflow/voxflow/engine/spec"
)

// cmdRun is `voxflow run SPEC`: execute what the cache cannot answer and
// record the run. It exits 1 when an instance failed, 130 when interrupted.
func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", "SPEC [flags]", stdout, stderr)
	var sf specFlags
	sf.register(fs)
	jobs := fs.Int("j", 0, fmt.Sprintf("instances run at once (default: this host's %d cores; %d on a cluster executor)", runtime.NumCPU(), engine.RemoteJobs))
	keepGoing := fs.Bool("keep-going", false, "after a failure, keep running instances that do not depend on it")
	var force stringList
	fs.Var(&force, "force", "rerun this stage (or instance) even if cached (repeatable)")
	cpus := fs.Int("cpus", runtime.NumCPU(), "CPU budget shared by running instances")
	memory := fs.String("memory", "", "memory budget shared by running instances, e.g. 16GiB (default unlimited)")
	gpus := fs.Int("gpus", 0, "GPUs available to running instances")
	plain := fs.Bool("plain", false, "plain log lines even on a terminal")
	executor := fs.String("executor", "", "where instances run: one of "+executorNames()+" (default: the spec's executor.type, else this machine)")
	detach := fs.Bool("detach", false, "with a cluster executor: submit ready instances and return")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	path, err := onePositional(pos, "SPEC")
	if err != nil {
		return err
	}
	if err := checkCounts(map[string]int{"-j": *jobs, "--cpus": *cpus, "--gpus": *gpus}); err != nil {
		return err
	}
	memMB, err := parseMemoryFlag(*memory)
	if err != nil {
		return err
	}
	reg := newRegistry()
	p, err := loadProject(ctx, reg, path, &sf)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	if err := checkForce(p, force); err != nil {
		return err
	}
	store, err := openStore(ctx, sf.cache, path)
	if err != nil {
		return err
	}
	defer store.Close()
	if store.ReadOnly() {
		// A read-only cache can answer a run, not record one: refuse
		// before anything starts when some instance would have to run.
		if err := checkAllCached(ctx, store, p, force); err != nil {
			return err
		}
	}

	var disp engine.Display
	if f, ok := stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) && !*plain {
		w, _, _ := term.GetSize(int(f.Fd()))
		disp = display.NewTTY(stdout, w)
	} else {
		disp = &display.Plain{W: stdout}
	}
	exe, err := newExecutor(p, *executor, *detach, store)
	if err != nil {
		disp.Close()
		return err
	}
	runner := &engine.Runner{Store: store, Display: disp, Executor: exe}
	res, err := runner.Run(ctx, p, engine.RunOptions{
		Jobs: *jobs, CPUs: *cpus, MemoryMB: memMB, GPUs: *gpus, KeepGoing: *keepGoing, Force: force, SpecPath: path,
	})
	disp.Close()
	if err != nil {
		return err
	}
	runName := fmt.Sprintf("run %d", res.RunID)
	if store.ReadOnly() {
		runName = fmt.Sprintf("run (not recorded: the cache %s is read-only)", store.Dir())
	}
	notChosen := ""
	if res.NotChosen > 0 {
		notChosen = fmt.Sprintf(", %d not chosen", res.NotChosen)
	}
	fmt.Fprintf(stdout, "%s %s: %d executed, %d cached, %d failed, %d skipped, %d interrupted%s (of %d)\n",
		runName, res.Status, res.Executed, res.Cached, res.Failed, res.Skipped, res.Interrupted, notChosen, res.Total)
	if res.Submitted > 0 {
		fmt.Fprintf(stdout, "%d instance(s) submitted; `voxflow status` follows them and the next run on the same executor adopts them (a local run refuses them while they run)\n", res.Submitted)
	}
	switch res.Status {
	case engine.StatusInterrupted:
		return &exitError{code: 130, err: fmt.Errorf("interrupted; the next run resumes where this one stopped")}
	case engine.StatusFailed:
		msgs := make([]string, len(res.Failures))
		for i, f := range res.Failures {
			msgs[i] = f.Error()
		}
		return &exitError{code: 1, err: fmt.Errorf("%d instance(s) failed:\n  %s", res.Failed, strings.Join(msgs, "\n  "))}
	}
	return nil
}

// parseMemoryFlag reads --memory with the spec's parser (binary units, as
// in Slurm), so `--memory 16GB` admits a stage that declares 16GB.
func parseMemoryFlag(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	mb, err := spec.ParseMemory(s)
	if err != nil {
		return 0, &exitError{code: 2, err: fmt.Errorf("--memory: %w", err)}
	}
	return mb, nil
}

// checkCounts refuses negative counts: flag parsing accepts `-j -3`, and
// the engine would read it as "the default" without a word.
func checkCounts(flags map[string]int) error {
	names := make([]string, 0, len(flags))
	for n := range flags {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if flags[n] < 0 {
			return &exitError{code: 2, err: fmt.Errorf("%s %d: want a number >= 0 (0 means the default)", n, flags[n])}
		}
	}
	return nil
}

// checkForce refuses a --force target that names no stage and no instance
// of the spec: a typo would otherwise rerun nothing and exit 0.
func checkForce(p *engine.Project, force []string) error {
	if len(force) == 0 {
		return nil
	}
	known := map[string]bool{}
	var stageNames []string
	for _, st := range p.Spec.Stages {
		known[st.Name] = true
		stageNames = append(stageNames, st.Name)
	}
	var ids []string
	for _, inst := range p.Graph.Instances {
		known[inst.ID] = true
		ids = append(ids, inst.ID)
	}
	for _, f := range force {
		if known[f] {
			continue
		}
		hint := spec.DidYouMean(f, append(append([]string(nil), stageNames...), ids...))
		sort.Strings(stageNames)
		return &exitError{code: 2, err: fmt.Errorf("--force %q: no stage or instance of that name in spec %s%s (stages: %s)",
			f, p.Spec.Name, hint, strings.Join(stageNames, ", "))}
	}
	return nil
}

// checkAllCached fails, in one line, when a run on a read-only cache would
// have to execute anything: the result could not be stored.
func checkAllCached(ctx context.Context, store *cache.Store, p *engine.Project, force []string) error {
	items, err := engine.Plan(ctx, store, p, force)
	if err != nil {
		return err
	}
	var toRun []string
	for _, it := range items {
		if it.Action != engine.ActionCached && it.Action != engine.ActionNotChosen {
			toRun = append(toRun, it.Instance)
		}
	}
	n := len(toRun)
	if n == 0 {
		return nil
	}
	if n > 3 {
		toRun = append(toRun[:3], "...")
	}
	return &exitError{code: 1, err: fmt.Errorf("the cache %s is read-only and %d instance(s) are not cached (%s): run with a writable --cache",
		store.Dir(), n, strings.Join(toRun, ", "))}
}
