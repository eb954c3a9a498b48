package main

import (
	"context"
	"fmt"
	"os"

	"github.com/voxflow/voxflow/cache"
	"github.com/voxflow/voxflow/engine"
	"github.com/voxflow/voxflow/engine/slurm"
	"github.com/voxflow/voxflow/plugins"
	"github.com/voxflow/voxflow/stages"
)

// newExecutor picks where instances run: the --executor flag, else the
// spec's `executor.type`, else this machine.
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
		return local, nil
	case "slurm":
		// Typos in executor options are caught before anything is submitted.
		if _, err := slurm.ParseOptions(p.Spec.Executor); err != nil {
			return nil, fmt.Errorf("%s: executor: %w", p.Spec.Path, err)
		}
		for _, st := range p.Spec.Stages {
			if _, err := slurm.ParseOptions(st.Slurm); err != nil {
				return nil, fmt.Errorf("%s: stage %s: slurm: %w", st.Pos, st.Name, err)
			}
		}
		se := &slurm.Executor{Bin: self}
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
