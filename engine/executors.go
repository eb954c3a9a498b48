package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/voxflow/voxflow/engine/spec"
)

// The executor seam. An executor is reached only through its driver
// (ExecutorDriver), registered by name in an Executors value that the CLI
// builds once. The spec language names no executor: `executor: {type: X,
// ...}` and a stage's `executor:` map are opaque options that the selected
// driver parses (CheckOptions) before anything runs. What the engine itself
// knows of executors is this file:
//
//   - Executor.Execute blocks until a job's outputs are complete, or fails.
//   - A driver's executor that reports Remote() true runs jobs elsewhere:
//     local CPU, GPU and memory budgets do not apply, and -j defaults to
//     RemoteJobs. RequestChecker lets it refuse impossible requests before
//     anything is submitted.
//   - An error wrapping ErrDetached means "handed off, not waited for":
//     the instance is recorded as submitted, and a later run adopts it.
//   - Optional driver capabilities (ExecutorGuard, PendingLister,
//     AttemptWriter) serve a local run's safety and `voxflow status` /
//     `voxflow log --attempt`; the CLI calls them through Executors.
//
// A second cluster executor is one package with a driver, and one more
// argument where the CLI calls NewExecutors.

// ErrDetached is wrapped by the error of an executor that handed a job to
// a cluster without waiting for it (`voxflow run --detach`). The instance
// is recorded as submitted, not failed, and its dependents wait for a
// later run, which adopts the job.
var ErrDetached = errors.New("submitted, not waited for")

// ErrNoAttempts is wrapped by an AttemptWriter's error when the driver
// keeps no attempts at all for a key, so that Executors.WriteAttempt can
// ask the next driver.
var ErrNoAttempts = errors.New("no attempts are kept")

// remote reports whether exe runs jobs on other hosts.
func remote(exe Executor) bool {
	r, ok := exe.(interface{ Remote() bool })
	return ok && r.Remote()
}

// RemoteJobs is how many instances a run keeps in flight on a remote
// executor when -j is not given: a cluster's size, not the engine host's
// cores, bounds them; the cluster's queue holds whatever does not fit yet.
const RemoteJobs = 64

// RequestChecker is implemented by remote executors that can tell, before
// anything is submitted, that an instance's declared resources can never
// be met where they would run it (more CPUs, memory or GPUs than any node
// of the partition has). The error says why, with the cluster's limits.
type RequestChecker interface {
	CheckRequest(ctx context.Context, job *Job) error
}

// ExecutorDriver is one kind of executor as the CLI and the spec see it: a
// name for `executor: {type: NAME}` and `--executor NAME`, the options it
// accepts, and a constructor.
type ExecutorDriver interface {
	// Name is the executor's name in specs and flags, e.g. "local".
	Name() string
	// Doc is a one-line description for help texts.
	Doc() string
	// CheckOptions validates one options map: the spec's top-level
	// `executor:` map without its type, or one stage's `executor:` map.
	// An error about one key should be an *OptionError, so that the
	// caller can point at that key in the spec.
	CheckOptions(opts map[string]any) error
	// New builds the executor a run uses. It fails when the driver cannot
	// serve cfg (for example cfg.Detach on an executor that always waits).
	New(cfg ExecutorConfig) (Executor, error)
}

// ExecutorConfig is what a driver gets to build an executor.
type ExecutorConfig struct {
	// Bin is the voxflow binary of this run, for executors that start
	// `voxflow exec-job` elsewhere.
	Bin string
	// Dir is the driver's own directory inside the cache
	// (CACHE/<driver name>, see ExecutorDir). The driver owns its layout;
	// for a cluster it is on the filesystem the nodes share.
	Dir string
	// Options are the spec's top-level executor options, without `type`.
	// Each job also carries them merged with its stage's (Job.Executor).
	Options map[string]any
	// Detach asks for an executor that submits and does not wait
	// (`voxflow run --detach`); its Execute returns errors wrapping
	// ErrDetached.
	Detach bool
	// Local runs jobs on this machine. The local driver returns it, and an
	// ExecutorGuard wraps it.
	Local Executor
}

// ExecutorGuard is implemented by drivers whose jobs may outlive the run
// that submitted them. Guard returns an executor that runs jobs with
// cfg.Local but refuses a key whose job of this driver may still be running,
// so a local run never becomes a second writer of the same key.
type ExecutorGuard interface {
	Guard(cfg ExecutorConfig) Executor
}

// PendingJob is a job a driver handed off whose outcome no run recorded yet.
type PendingJob struct {
	Key       string // the instance's cache key
	Instance  string // display name
	JobID     string // the driver's job id, e.g. a Slurm job id
	State     string // the driver's current state, e.g. PENDING
	Submitted time.Time
}

// PendingLister is implemented by drivers that hand jobs off, for `voxflow
// status`. PendingJobs lists the jobs kept in dir (the driver's ExecutorDir)
// whose outcome is not collected, skipping keys for which recorded is true.
// An error means their state could not be read.
type PendingLister interface {
	PendingJobs(ctx context.Context, dir string, recorded func(key string) bool) ([]PendingJob, error)
}

// AttemptWriter is implemented by drivers that keep each attempt of a key
// (`voxflow log INSTANCE --attempt N`). WriteAttempt writes attempt n of
// key, kept in dir (the driver's ExecutorDir), with its log; it returns an
// error wrapping ErrNoAttempts when the driver keeps none for the key.
type AttemptWriter interface {
	WriteAttempt(w io.Writer, dir, key, instance string, n int) error
}

// OptionError is a driver's complaint about one executor option, so that
// the error can name where the spec sets it.
type OptionError struct {
	Key string // the option, e.g. "partition"
	Err error
}

// Error is the driver's message, which names the key.
func (e *OptionError) Error() string { return e.Err.Error() }

// Unwrap returns the driver's error.
func (e *OptionError) Unwrap() error { return e.Err }

// ExecutorDir is a driver's directory inside the cache at storeDir.
func ExecutorDir(storeDir, name string) string { return filepath.Join(storeDir, name) }

// Executors is the set of executor drivers a voxflow binary offers, by name.
// It is built once (NewExecutors) and read-only afterwards.
type Executors struct {
	drivers []ExecutorDriver // in registration order
	byName  map[string]ExecutorDriver
}

// NewExecutors registers drivers. Names must be non-empty and distinct; a
// clash is a programming error in the binary's wiring, so it panics.
func NewExecutors(drivers ...ExecutorDriver) *Executors {
	x := &Executors{byName: make(map[string]ExecutorDriver, len(drivers))}
	for _, d := range drivers {
		name := d.Name()
		if name == "" || x.byName[name] != nil {
			panic(fmt.Sprintf("engine.NewExecutors: executor name %q is empty or registered twice", name))
		}
		x.byName[name] = d
		x.drivers = append(x.drivers, d)
	}
	return x
}

// Names lists the registered executors, sorted.
func (x *Executors) Names() []string {
	out := make([]string, 0, len(x.drivers))
	for _, d := range x.drivers {
		out = append(out, d.Name())
	}
	sort.Strings(out)
	return out
}

// Lookup returns the driver called name, or an error listing the known
// names with a did-you-mean hint.
func (x *Executors) Lookup(name string) (ExecutorDriver, error) {
	if d := x.byName[name]; d != nil {
		return d, nil
	}
	return nil, fmt.Errorf("unknown executor %q: want one of %s%s", name, strings.Join(x.Names(), ", "), spec.DidYouMean(name, x.Names()))
}

// ExecutorChoice is how a run picks and configures its executor.
type ExecutorChoice struct {
	// Name is the --executor flag; "" means the spec's `executor.type`,
	// else "local".
	Name string
	// Bin is the voxflow binary (ExecutorConfig.Bin).
	Bin string
	// StoreDir is the cache directory; each driver gets ExecutorDir in it.
	StoreDir string
	// Detach asks for a submit-and-return executor.
	Detach bool
	// Local runs jobs on this machine.
	Local Executor
}

// Check picks the driver for a run of s, the one called name ("" means
// the spec's `executor.type`, else "local"), and has it check the spec's
// executor options and every stage's. Errors name the spec file:line.
func (x *Executors) Check(s *spec.Spec, name string) (ExecutorDriver, error) {
	flag := name != ""
	if !flag {
		name, _ = s.Executor["type"].(string)
	}
	if name == "" {
		name = "local"
	}
	d, err := x.Lookup(name)
	if err != nil {
		if flag {
			return nil, fmt.Errorf("--executor: %w", err)
		}
		return nil, fmt.Errorf("%s: executor type: %w", fieldPos(s.FieldPos, "executor.type", s.Path), err)
	}
	if err := d.CheckOptions(specOptions(s)); err != nil {
		return nil, fmt.Errorf("%s: executor: %s: %w", optionPos(s.FieldPos, "executor", err, s.Path), name, err)
	}
	for _, st := range s.Stages {
		if len(st.ExecOptions) == 0 {
			continue
		}
		if err := d.CheckOptions(st.ExecOptions); err != nil {
			return nil, fmt.Errorf("%s: stage %s: executor: %s: %w", optionPos(st.FieldPos, "executor", err, st.Pos.String()), st.Name, name, err)
		}
	}
	return d, nil
}

// Open picks and checks the executor for a run of s (Check), before
// anything is submitted, and builds it (Build).
func (x *Executors) Open(s *spec.Spec, c ExecutorChoice) (Executor, error) {
	d, err := x.Check(s, c.Name)
	if err != nil {
		return nil, err
	}
	return x.Build(d, s, c)
}

// Build makes the executor of driver d, as Check returned it for s, for
// one run. A non-remote executor is wrapped by the guard of every driver
// that has one.
func (x *Executors) Build(d ExecutorDriver, s *spec.Spec, c ExecutorChoice) (Executor, error) {
	name, opts := d.Name(), specOptions(s)
	cfg := ExecutorConfig{Bin: c.Bin, Dir: ExecutorDir(c.StoreDir, name), Options: opts, Detach: c.Detach, Local: c.Local}
	exe, err := d.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("executor %s: %w", name, err)
	}
	if remote(exe) {
		return exe, nil
	}
	for _, g := range x.drivers {
		if gd, ok := g.(ExecutorGuard); ok && g != d {
			exe = gd.Guard(ExecutorConfig{Bin: c.Bin, Dir: ExecutorDir(c.StoreDir, g.Name()), Options: opts, Local: exe})
		}
	}
	return exe, nil
}

// specOptions is the spec's top-level executor map without its type, which
// picks the driver rather than configuring it.
func specOptions(s *spec.Spec) map[string]any {
	out := make(map[string]any, len(s.Executor))
	for k, v := range s.Executor {
		if k != "type" {
			out[k] = v
		}
	}
	return out
}

// fieldPos formats the spec position of field, or fallback when the spec
// does not record one (a spec built in code).
func fieldPos(pos map[string]spec.Pos, field, fallback string) string {
	if p, ok := pos[field]; ok {
		return p.String()
	}
	return fallback
}

// optionPos is the position of the option err is about, inside the map at
// field, else of the map itself.
func optionPos(pos map[string]spec.Pos, field string, err error, fallback string) string {
	var oe *OptionError
	if errors.As(err, &oe) {
		if p, ok := pos[field+"."+oe.Key]; ok {
			return p.String()
		}
	}
	return fieldPos(pos, field, fallback)
}

// PendingJobs lists, for every driver that hands jobs off, its jobs kept
// under storeDir whose outcome is not recorded, by driver name. A driver
// whose jobs' state cannot be read has its error in errs instead.
func (x *Executors) PendingJobs(ctx context.Context, storeDir string, recorded func(key string) bool) (jobs map[string][]PendingJob, errs map[string]error) {
	jobs, errs = map[string][]PendingJob{}, map[string]error{}
	for _, d := range x.drivers {
		pl, ok := d.(PendingLister)
		if !ok {
			continue
		}
		js, err := pl.PendingJobs(ctx, ExecutorDir(storeDir, d.Name()), recorded)
		switch {
		case err != nil:
			errs[d.Name()] = err
		case len(js) > 0:
			jobs[d.Name()] = js
		}
	}
	return jobs, errs
}

// WriteAttempt writes attempt n of key from the first driver that keeps
// attempts for it. With none, the error says so.
func (x *Executors) WriteAttempt(w io.Writer, storeDir, key, instance string, n int) error {
	for _, d := range x.drivers {
		aw, ok := d.(AttemptWriter)
		if !ok {
			continue
		}
		err := aw.WriteAttempt(w, ExecutorDir(storeDir, d.Name()), key, instance, n)
		if !errors.Is(err, ErrNoAttempts) {
			return err
		}
	}
	return fmt.Errorf("%s: no attempts are kept for key %.16s (only executors that hand jobs off keep them)", instance, key)
}

// executorOptions merges the spec's executor options with the stage's own
// `executor:` map (the stage wins): the options a driver checked, now for
// one job.
func executorOptions(p *Project, inst *spec.Instance) map[string]any {
	out := specOptions(p.Spec)
	for k, v := range inst.Stage.ExecOptions {
		out[k] = v
	}
	return out
}
