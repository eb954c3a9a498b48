package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/term"

	"github.com/voxflow/voxflow/engine"
)

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", "SPEC [flags]", stderr)
	var sf specFlags
	sf.register(fs)
	jobs := fs.Int("j", runtime.NumCPU(), "instances run at once")
	keepGoing := fs.Bool("keep-going", false, "after a failure, keep running instances that do not depend on it")
	var force stringList
	fs.Var(&force, "force", "rerun this stage (or instance) even if cached (repeatable)")
	cpus := fs.Int("cpus", runtime.NumCPU(), "CPU budget shared by running instances")
	memory := fs.String("memory", "", "memory budget shared by running instances, e.g. 16GiB (default unlimited)")
	gpus := fs.Int("gpus", 0, "GPUs available to running instances")
	plain := fs.Bool("plain", false, "plain log lines even on a terminal")
	executor := fs.String("executor", "", "where instances run: local (default) or slurm (overrides the spec's executor)")
	detach := fs.Bool("detach", false, "with --executor slurm: submit ready instances and return")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	path, err := onePositional(pos, "SPEC")
	if err != nil {
		return err
	}
	memMB, err := parseMemoryMB(*memory)
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("--memory: %w", err)}
	}
	reg := newRegistry()
	p, err := loadProject(ctx, reg, path, &sf)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	store, err := openStore(ctx, sf.cache, path)
	if err != nil {
		return err
	}
	defer store.Close()

	var display engine.Display
	if f, ok := stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) && !*plain {
		w, _, _ := term.GetSize(int(f.Fd()))
		display = engine.NewTTYDisplay(stdout, w)
	} else {
		display = &engine.PlainDisplay{W: stdout}
	}
	exe, err := newExecutor(ctx, p, *executor, *detach, store)
	if err != nil {
		display.Close()
		return &exitError{code: 2, err: err}
	}
	runner := &engine.Runner{Store: store, Display: display, Executor: exe}
	res, err := runner.Run(ctx, p, engine.RunOptions{
		Jobs: *jobs, CPUs: *cpus, MemoryMB: memMB, GPUs: *gpus, KeepGoing: *keepGoing, Force: force, SpecPath: path,
	})
	display.Close()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "run %d %s: %d executed, %d cached, %d failed, %d skipped, %d interrupted (of %d)\n",
		res.RunID, res.Status, res.Executed, res.Cached, res.Failed, res.Skipped, res.Interrupted, res.Total)
	if res.Submitted > 0 {
		fmt.Fprintf(stdout, "%d instance(s) submitted; `voxflow status` follows them and the next `voxflow run` adopts them\n", res.Submitted)
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

// parseMemoryMB parses "512MiB", "16GiB", "2G", "800M" or plain MB.
func parseMemoryMB(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	t := strings.TrimSpace(strings.ToUpper(s))
	mult := float64(1)
	for _, u := range []struct {
		suf string
		m   float64
	}{{"TIB", 1 << 20}, {"GIB", 1 << 10}, {"MIB", 1}, {"TB", 1e12 / (1 << 20)}, {"GB", 1e9 / (1 << 20)}, {"MB", 1e6 / (1 << 20)}, {"T", 1 << 20}, {"G", 1 << 10}, {"M", 1}} {
		if strings.HasSuffix(t, u.suf) {
			t, mult = strings.TrimSuffix(t, u.suf), u.m
			break
		}
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("want a size like 512MiB or 16GiB, got %q", s)
	}
	return int64(v * mult), nil
}

func cmdPlan(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("plan", "SPEC [flags]", stderr)
	var sf specFlags
	sf.register(fs)
	asJSON := fs.Bool("json", false, "print the plan as JSON")
	var force stringList
	fs.Var(&force, "force", "plan this stage (or instance) as forced (repeatable)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	path, err := onePositional(pos, "SPEC")
	if err != nil {
		return err
	}
	p, err := loadProject(ctx, newRegistry(), path, &sf)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	store, err := openStore(ctx, sf.cache, path)
	if err != nil {
		return err
	}
	defer store.Close()
	items, err := engine.Plan(ctx, store, p, force)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(items)
	}
	return engine.WritePlan(stdout, items)
}

func cmdValidate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("validate", "SPEC [flags]", stderr)
	var sf specFlags
	sf.register(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	path, err := onePositional(pos, "SPEC")
	if err != nil {
		return err
	}
	p, err := loadProject(ctx, newRegistry(), path, &sf)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	fmt.Fprintf(stdout, "%s: valid (%d stages, %d instances)\n", path, len(p.Spec.Stages), len(p.Graph.Instances))
	return nil
}

func cmdVersion(_ context.Context, _ []string, stdout, _ io.Writer) error {
	_, err := fmt.Fprintf(stdout, "voxflow %s (%s)\n", engine.Version, runtime.Version())
	return err
}
