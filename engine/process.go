package engine

import (
	"context"
	"fmt"
	"io"

	"github.com/voxflow/voxflow/plugins"
	"github.com/voxflow/voxflow/stages"
)

// ProcessExecutor runs each job in a plugin process of its own: the
// plugin binary for plugin kinds, or voxflow itself (`voxflow
// plugin-serve`) for builtin kinds isolated with `isolate: process`. A
// crash, panic or kill of that process fails the one job, never the engine.
type ProcessExecutor struct {
	// Self is the voxflow binary that serves the builtin kinds.
	Self string
}

// Execute starts the job's plugin process, runs the job and stops the
// process. The plugin runs in a process group of its own under a
// supervisor (plugins.Open), and Close returns once the group is empty, so
// nothing the plugin started can write to job.OutDir after Execute returns.
func (p ProcessExecutor) Execute(ctx context.Context, job *Job, progress stages.Progress, log io.Writer) error {
	path, args := job.Plugin, []string(nil)
	if path == "" {
		path, args = p.Self, []string{"plugin-serve"}
	}
	c, err := plugins.Open(ctx, path, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", job.Instance, err)
	}
	defer c.Close()
	if job.Plugin != "" && !sameImpl(job.Impl, c.Digest()) {
		// The binary changed between planning and running: its outputs
		// would be recorded under a key that does not describe them.
		return fmt.Errorf("%s: plugin %s changed since the run started; rerun", job.Instance, path)
	}
	for _, s := range c.Stages() {
		if s.Describe().Kind == job.Kind {
			return RunJob(ctx, s, job, progress, log)
		}
	}
	return fmt.Errorf("%s: %s serves no kind %q", job.Instance, path, job.Kind)
}

// sameImpl reports whether an implementation string names digest.
func sameImpl(impl, digest string) bool {
	return len(impl) > len("plugin:")+len(digest) && impl[len("plugin:"):len("plugin:")+len(digest)] == digest
}
