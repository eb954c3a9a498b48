package engine

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/voxflow/voxflow/stages"
)

// Job is one stage instance ready to execute, in plain values so that it can
// be written as JSON and executed by another process or on another host
// (`voxflow exec-job job.json` on a cluster node, see ExecJobFile).
type Job struct {
	Key      string                       `json:"key"`      // the instance's cache key (hex BLAKE3)
	Spec     string                       `json:"spec"`     // spec name
	Instance string                       `json:"instance"` // display name, e.g. tune_cl[subj01,FFA-1]
	Stage    string                       `json:"stage"`    // stage name in the spec
	Kind     string                       `json:"kind"`     // stage kind, e.g. tune-cl
	Plugin   string                       `json:"plugin"`   // plugin binary path when the kind comes from a plugin
	Impl     string                       `json:"impl"`     // implementation digest
	Params   map[string]any               `json:"params"`   // resolved params
	Inputs   map[string][]stages.Artifact `json:"inputs"`   // input artifacts (paths in the object store)
	Labels   map[string]string            `json:"labels"`   // foreach bindings
	// WorkDir is the attempt's scratch directory, work/<key>/<attempt>/:
	// fresh for every attempt (retries and reruns alike) and never reused,
	// so that a process left from an earlier attempt cannot write into this
	// one's outputs. It is not stable across attempts: an executor that
	// must find something again later (a cluster job to adopt) keeps it in
	// a directory of its own, keyed by Key.
	WorkDir   string           `json:"work_dir"`
	OutDir    string           `json:"out_dir"`   // where outputs go; inside WorkDir
	Resources stages.Resources `json:"resources"` // declared resources
	Timeout   time.Duration    `json:"timeout"`   // 0 = none
	Isolate   string           `json:"isolate"`   // inline | process
	// Executor holds executor options merged from the spec's top-level
	// `executor:` map (without its type) and the stage's own `executor:`
	// map (the stage wins), for the executor that runs the job to parse.
	Executor map[string]any `json:"executor,omitempty"`
	// Protect lists directories the job must never write (the store); see
	// stages.Request.Protect.
	Protect []string `json:"protect,omitempty"`
}

// Executor runs jobs somewhere: in this process, in a plugin process, or
// on a cluster. Execute blocks until the job ends and returns nil only when
// the job's outputs are complete under job.OutDir. It must honour ctx:
// cancellation stops the job (scancel, kill) before Execute returns. A job
// that runs past job.Timeout fails (RunJob enforces it where the stage
// runs). An executor may also report Remote() true (it runs jobs on other
// hosts, beyond the local budgets; see RemoteJobs), implement
// RequestChecker, or hand jobs off and return an error wrapping
// ErrDetached (see executors.go).
type Executor interface {
	Execute(ctx context.Context, job *Job, progress stages.Progress, log io.Writer) error
}

// StageLookup resolves a job's stage kind to an implementation.
type StageLookup func(job *Job) (stages.Stage, error)

// RunJob executes job with stage in the calling process: the work an
// executor does at the far end. It never touches the cache index.
func RunJob(ctx context.Context, stage stages.Stage, job *Job, progress stages.Progress, log io.Writer) error {
	if progress == nil {
		progress = stages.NopProgress{}
	}
	if log == nil {
		log = io.Discard
	}
	req := &stages.Request{
		Instance:  job.Instance,
		Inputs:    job.Inputs,
		Params:    stages.Params(job.Params),
		Labels:    job.Labels,
		OutDir:    job.OutDir,
		Progress:  progress,
		Log:       log,
		Resources: job.Resources,
		Protect:   job.Protect,
	}
	if job.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, job.Timeout)
		defer cancel()
	}
	if err := runGuarded(ctx, stage, req); err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return fmt.Errorf("%s: timed out after %s: %w", job.Instance, job.Timeout, err)
		}
		return err
	}
	return nil
}

// runGuarded turns a panicking inline stage into an error, so one bad
// stage cannot take the engine and its other stages down.
func runGuarded(ctx context.Context, stage stages.Stage, req *stages.Request) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("stage %s panicked: %v", stage.Describe().Kind, r)
		}
	}()
	return stage.Run(ctx, req)
}
