package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/voxflow/voxflow/engine"
)

// cmdPlan is `voxflow plan SPEC`: what a run would execute and why, with
// warnings about what the executor or the budgets would refuse.
func cmdPlan(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("plan", "SPEC [flags]", stdout, stderr)
	var sf specFlags
	sf.register(fs)
	asJSON := fs.Bool("json", false, "print the plan as JSON")
	var force stringList
	fs.Var(&force, "force", "plan this stage (or instance) as forced (repeatable)")
	executor := fs.String("executor", "", "check each instance against this executor (one of "+executorNames()+"; default the spec's executor.type): what it cannot run is shown as FAIL")
	planGPUs := fs.Int("gpus", 0, "GPUs a local run would have, for that check")
	planMemory := fs.String("memory", "", "memory budget a local run would have, e.g. 16GiB: plan warns about instances that ask for more")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	path, err := onePositional(pos, "SPEC")
	if err != nil {
		return err
	}
	planMemMB, err := parseMemoryFlag(*planMemory)
	if err != nil {
		return err
	}
	p, err := loadProject(ctx, newRegistry(), path, &sf)
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
	items, err := engine.Plan(ctx, store, p, force)
	if err != nil {
		return err
	}
	// Without --executor, only a spec that names another executor than
	// this machine is checked against it; a local plan keeps showing what
	// would run.
	if *executor != "" || specNamesOtherExecutor(p) {
		exe, err := newExecutor(p, *executor, false, store)
		if err != nil {
			return err
		}
		engine.CheckPlan(ctx, p, items, exe, engine.RunOptions{GPUs: *planGPUs})
	} else {
		// Locally, warn (on stderr, so --json stays clean) about what a
		// run with these budgets would fail, and how to fix it.
		for _, w := range engine.ResourceWarnings(ctx, p, items, engine.RunOptions{GPUs: *planGPUs, MemoryMB: planMemMB}) {
			fmt.Fprintln(stderr, "warning: "+w)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(items)
	}
	return engine.WritePlan(stdout, items)
}
