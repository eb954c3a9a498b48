package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voxflow/voxflow/cache"
	"github.com/voxflow/voxflow/engine/spec"
	"github.com/voxflow/voxflow/stages"
)

// fakeStage is the one kind of the scheduler tests: instances of it are
// run by fakeExec only, never in process.
type fakeStage struct{}

func (fakeStage) Describe() stages.Description {
	return stages.Description{
		Kind: "fake", Version: "1",
		Params:  []stages.ParamSpec{{Name: "v", Type: stages.TypeString, Default: ""}},
		Inputs:  []stages.PortSpec{{Name: "in", Many: true, Optional: true}},
		Outputs: []stages.PortSpec{{Name: "out"}},
	}
}

func (fakeStage) Run(context.Context, *stages.Request) error {
	return errors.New("fakeStage runs through fakeExec only")
}

// fakeExec stands in for an executor. Execute runs the test's script for
// the job's instance and attempt (nil: succeed at once) and, when that
// succeeds, writes the output file "out": the instance ID followed by its
// inputs' outputs, read from the paths the engine handed over, so that
// the outputs spell out what each instance was given. It records when
// jobs start and end and the most that ran, and asked for, at once.
type fakeExec struct {
	script  func(ctx context.Context, job *Job, attempt int) error
	started chan string // when set, receives each started instance

	mu       sync.Mutex
	attempts map[string]int
	events   []fakeEvent
	running  int
	use      stages.Resources
	peak     int
	peakUse  stages.Resources
	jobs     map[string][]*Job // instance -> the job of each attempt
}

type fakeEvent struct {
	instance string
	start    bool
}

func newFakeExec(script func(ctx context.Context, job *Job, attempt int) error) *fakeExec {
	return &fakeExec{script: script, attempts: map[string]int{}, jobs: map[string][]*Job{}}
}

func (f *fakeExec) Execute(ctx context.Context, job *Job, _ stages.Progress, _ io.Writer) error {
	f.mu.Lock()
	f.attempts[job.Instance]++
	attempt := f.attempts[job.Instance]
	j := *job
	f.jobs[job.Instance] = append(f.jobs[job.Instance], &j)
	f.events = append(f.events, fakeEvent{job.Instance, true})
	f.running++
	f.use = addResources(f.use, job.Resources, 1)
	f.peak = max(f.peak, f.running)
	f.peakUse = stages.Resources{CPUs: max(f.peakUse.CPUs, f.use.CPUs), MemoryMB: max(f.peakUse.MemoryMB, f.use.MemoryMB), GPUs: max(f.peakUse.GPUs, f.use.GPUs)}
	f.mu.Unlock()
	if f.started != nil {
		f.started <- job.Instance
	}
	var err error
	if f.script != nil {
		err = f.script(ctx, job, attempt)
	}
	if err == nil {
		err = writeFakeOutput(job)
	}
	f.mu.Lock()
	f.running--
	f.use = addResources(f.use, job.Resources, -1)
	f.events = append(f.events, fakeEvent{job.Instance, false})
	f.mu.Unlock()
	return err
}

// writeFakeOutput writes "ID(input outputs, sorted)" to job.OutDir/out.
func writeFakeOutput(job *Job) error {
	var ins []string
	for _, arts := range job.Inputs {
		for _, a := range arts {
			b, err := os.ReadFile(filepath.Join(a.Path, "out"))
			if err != nil {
				return fmt.Errorf("read input from %s: %w", a.Stage, err)
			}
			ins = append(ins, string(b))
		}
	}
	slices.Sort(ins)
	return os.WriteFile(filepath.Join(job.OutDir, "out"), []byte(job.Instance+"("+strings.Join(ins, ",")+")"), 0o644)
}

func (f *fakeExec) attemptsOf(instance string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.attempts[instance]
}

// fixture is a project of fake stages over a fresh cache.
type fixture struct {
	t     *testing.T
	dir   string
	store *cache.Store
	p     *Project
}

// newFixture loads the stages given in spec YAML (below `stages:`) with
// fakeStage as kind "fake", over a cache in a temporary directory.
func newFixture(t *testing.T, stagesYAML string) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	specPath := filepath.Join(dir, "sched.yaml")
	if err := os.WriteFile(specPath, []byte("name: sched\nstages:\n"+stagesYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	store, err := cache.Open(ctx, filepath.Join(dir, ".voxflow"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	p, err := Load(ctx, NewRegistry([]stages.Stage{fakeStage{}}, nil), specPath, spec.Options{})
	if err != nil {
		t.Fatalf("load spec: %v", err)
	}
	return &fixture{t: t, dir: dir, store: store, p: p}
}

// run runs the project through exe, failing the test on an engine error.
func (fx *fixture) run(ctx context.Context, exe Executor, opt RunOptions) *RunResult {
	fx.t.Helper()
	if opt.Jobs == 0 {
		opt.Jobs = 4
	}
	if opt.CPUs == 0 {
		opt.CPUs = 8
	}
	opt.SpecPath = filepath.Join(fx.dir, "sched.yaml")
	res, err := (&Runner{Store: fx.store, Display: discardDisplay{}, Executor: exe, Host: "test"}).Run(ctx, fx.p, opt)
	if err != nil {
		fx.t.Fatalf("run: %v", err)
	}
	return res
}

// output reads the recorded output of instance's last success.
func (fx *fixture) output(ctx context.Context, instance string) string {
	fx.t.Helper()
	ex, ok, err := fx.store.LastForInstance(ctx, "sched", instance)
	if err != nil || !ok {
		fx.t.Fatalf("no success recorded for %s: %v", instance, err)
	}
	dir, err := fx.store.Path(ctx, ex.Output)
	if err != nil {
		fx.t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "out"))
	if err != nil {
		fx.t.Fatal(err)
	}
	return string(b)
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// diamond: a feeds b and c, which both feed d; e stands alone.
const diamond = `  a: {uses: fake, with: {v: a}}
  b: {uses: fake, inputs: {in: a}, with: {v: b}}
  c: {uses: fake, inputs: {in: a}, with: {v: c}}
  d: {uses: fake, inputs: {in: [b, c]}, with: {v: d}}
  e: {uses: fake, with: {v: e}}
`

// TestSchedulerStartsDependentsAfterTheirInputs: with room for all five
// instances at once, no instance starts before every instance it reads
// has ended, and each gets its inputs' recorded outputs.
func TestSchedulerStartsDependentsAfterTheirInputs(t *testing.T) {
	ctx := testContext(t)
	fx := newFixture(t, diamond)
	exe := newFakeExec(func(ctx context.Context, job *Job, _ int) error {
		time.Sleep(20 * time.Millisecond) // lets a wrong start overlap its input
		return nil
	})
	res := fx.run(ctx, exe, RunOptions{Jobs: 5})
	if res.Status != StatusSucceeded || res.Executed != 5 {
		t.Fatalf("run = %+v (%v); want 5 executed", res, res.Failures)
	}
	ended := map[string]int{}
	for i, ev := range exe.events {
		if !ev.start {
			ended[ev.instance] = i
			continue
		}
		for _, dep := range fx.p.Graph.ByID[ev.instance].Deps {
			if at, ok := ended[dep.ID]; !ok || at > i {
				t.Errorf("%s started before its input %s ended (events %v)", ev.instance, dep.ID, exe.events)
			}
		}
	}
	if got, want := fx.output(ctx, "d"), "d(b(a()),c(a()))"; got != want {
		t.Errorf("d's output = %q; want %q", got, want)
	}
}

// TestSchedulerKeepsWithinBudgets: two 2-CPU instances under a 3-CPU
// budget never run at once, nor two 1 GiB instances under 1.5 GiB, nor two
// 1-GPU instances on one GPU; with room for both they do.
func TestSchedulerKeepsWithinBudgets(t *testing.T) {
	ctx := testContext(t)
	for _, c := range []struct {
		name      string
		resources string
		opt       RunOptions
		peak      int
	}{
		{"cpus over budget", "{cpus: 2}", RunOptions{CPUs: 3}, 1},
		{"cpus within budget", "{cpus: 2}", RunOptions{CPUs: 4}, 2},
		{"memory over budget", "{memory: 1GiB}", RunOptions{CPUs: 8, MemoryMB: 1536}, 1},
		{"memory within budget", "{memory: 1GiB}", RunOptions{CPUs: 8, MemoryMB: 2048}, 2},
		{"gpus over budget", "{gpus: 1}", RunOptions{CPUs: 8, GPUs: 1}, 1},
		{"gpus within budget", "{gpus: 1}", RunOptions{CPUs: 8, GPUs: 2}, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			fx := newFixture(t, fmt.Sprintf("  a: {uses: fake, resources: %s, with: {v: a}}\n  b: {uses: fake, resources: %[1]s, with: {v: b}}\n", c.resources))
			exe := newFakeExec(func(ctx context.Context, _ *Job, _ int) error {
				select {
				case <-time.After(100 * time.Millisecond):
				case <-ctx.Done():
				}
				return ctx.Err()
			})
			res := fx.run(ctx, exe, c.opt)
			if res.Status != StatusSucceeded || res.Executed != 2 {
				t.Fatalf("run = %+v (%v); want both executed", res, res.Failures)
			}
			if exe.peak != c.peak {
				t.Errorf("%d instances ran at once (peak use %+v); want %d", exe.peak, exe.peakUse, c.peak)
			}
			if c.opt.MemoryMB > 0 && exe.peakUse.MemoryMB > c.opt.MemoryMB ||
				c.peak == 1 && exe.peakUse.CPUs > c.opt.CPUs || exe.peakUse.GPUs > c.opt.GPUs {
				t.Errorf("peak use %+v exceeds the budget %+v", exe.peakUse, c.opt)
			}
		})
	}
}

// chainAndLoner: b reads a, c reads b; d stands alone.
const chainAndLoner = `  a: {uses: fake, with: {v: a}}
  b: {uses: fake, inputs: {in: a}, with: {v: b}}
  c: {uses: fake, inputs: {in: b}, with: {v: c}}
  d: {uses: fake, with: {v: d}}
`

// TestSchedulerSkipsDependentsOfAFailure: a failing skips everything
// downstream of it; without --keep-going the run starts nothing more, with
// it the independent d still runs.
func TestSchedulerSkipsDependentsOfAFailure(t *testing.T) {
	ctx := testContext(t)
	failA := func(_ context.Context, job *Job, _ int) error {
		if job.Instance == "a" {
			return errors.New("exit status 3")
		}
		return nil
	}
	for _, c := range []struct {
		keepGoing                 bool
		executed, skipped, dCalls int
	}{
		{false, 0, 3, 0},
		{true, 1, 2, 1},
	} {
		t.Run(fmt.Sprintf("keep-going=%v", c.keepGoing), func(t *testing.T) {
			fx := newFixture(t, chainAndLoner)
			exe := newFakeExec(failA)
			// One job at a time: d waits behind a, so only --keep-going
			// lets it start after a failed.
			res := fx.run(ctx, exe, RunOptions{Jobs: 1, KeepGoing: c.keepGoing})
			if res.Status != StatusFailed || res.Failed != 1 || res.Executed != c.executed || res.Skipped != c.skipped {
				t.Errorf("run = %+v; want failed with 1 failed, %d executed, %d skipped", res, c.executed, c.skipped)
			}
			if len(res.Failures) != 1 || !strings.Contains(res.Failures[0].Error(), "a: exit status 3") {
				t.Errorf("failures = %v; want a's error, naming a", res.Failures)
			}
			for _, id := range []string{"b", "c"} {
				if n := exe.attemptsOf(id); n != 0 {
					t.Errorf("%s, downstream of the failure, was executed %d times", id, n)
				}
			}
			if n := exe.attemptsOf("d"); n != c.dCalls {
				t.Errorf("d executed %d times; want %d", n, c.dCalls)
			}
		})
	}
}

// TestSchedulerRetries: retries: 2 gives a flaky instance three attempts,
// each in a fresh work directory, and the log of the one recorded says it
// was retried; retries: 1 gives up after two.
func TestSchedulerRetries(t *testing.T) {
	ctx := testContext(t)
	fx := newFixture(t, "  flaky: {uses: fake, retries: 2, with: {v: f}}\n  broken: {uses: fake, retries: 1, with: {v: b}}\n")
	exe := newFakeExec(func(_ context.Context, job *Job, attempt int) error {
		if job.Instance == "broken" || attempt < 3 {
			return fmt.Errorf("flaky attempt %d", attempt)
		}
		return nil
	})
	res := fx.run(ctx, exe, RunOptions{KeepGoing: true})
	if res.Executed != 1 || res.Failed != 1 {
		t.Fatalf("run = %+v (%v); want flaky executed and broken failed", res, res.Failures)
	}
	if n := exe.attemptsOf("flaky"); n != 3 {
		t.Errorf("flaky had %d attempts; want 3", n)
	}
	if n := exe.attemptsOf("broken"); n != 2 {
		t.Errorf("broken had %d attempts; want 2", n)
	}
	dirs := map[string]bool{}
	for _, j := range exe.jobs["flaky"] {
		dirs[j.WorkDir] = true
	}
	if len(dirs) != 3 {
		t.Errorf("flaky's attempts used %d distinct work directories; want 3", len(dirs))
	}
	ex, ok, err := fx.store.LastForInstance(ctx, "sched", "flaky")
	if err != nil || !ok {
		t.Fatalf("flaky's success is not recorded: %v", err)
	}
	logPath, err := fx.store.Path(ctx, ex.Log)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(logPath); !strings.Contains(string(b), "voxflow: retry 2/2 after: flaky attempt 2") {
		t.Errorf("flaky's log = %q; want it to say the last retry and why", b)
	}
}

// blockingStage runs until its context ends.
type blockingStage struct{ fakeStage }

func (blockingStage) Run(ctx context.Context, _ *stages.Request) error {
	<-ctx.Done()
	return ctx.Err()
}

// TestSchedulerTimeout: the stage's timeout reaches the executor in the
// job; a job that runs past it (here through RunJob, as the local
// executor runs one) fails the instance, rather than interrupting the run.
func TestSchedulerTimeout(t *testing.T) {
	ctx := testContext(t)
	fx := newFixture(t, "  hang: {uses: fake, timeout: 200ms, with: {v: h}}\n")
	exe := newFakeExec(func(ctx context.Context, job *Job, _ int) error {
		return RunJob(ctx, blockingStage{}, job, nil, nil)
	})
	start := time.Now()
	res := fx.run(ctx, exe, RunOptions{})
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the run took %s; the timeout is 200ms", took)
	}
	if res.Status != StatusFailed || res.Failed != 1 || res.Interrupted != 0 {
		t.Errorf("run = %+v; want one failure, no interruption", res)
	}
	if len(res.Failures) != 1 || !strings.Contains(res.Failures[0].Error(), "timed out after 200ms") {
		t.Errorf("failures = %v; want the timeout named", res.Failures)
	}
	if jobs := exe.jobs["hang"]; len(jobs) != 1 || jobs[0].Timeout != 200*time.Millisecond {
		t.Errorf("executor got %d jobs; want one with the stage's 200ms timeout", len(jobs))
	}
}

// TestSchedulerCancel: cancelling the run's context stops the running
// jobs, skips what waits for them and records the run as interrupted.
func TestSchedulerCancel(t *testing.T) {
	ctx := testContext(t)
	fx := newFixture(t, chainAndLoner)
	exe := newFakeExec(func(ctx context.Context, _ *Job, _ int) error {
		<-ctx.Done()
		return ctx.Err()
	})
	exe.started = make(chan string, 4)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		<-exe.started // a
		<-exe.started // d
		cancel()
	}()
	res := fx.run(runCtx, exe, RunOptions{})
	if res.Status != StatusInterrupted || res.Interrupted != 2 || res.Skipped != 2 || res.Executed != 0 {
		t.Errorf("run = %+v; want interrupted with a and d interrupted, b and c skipped", res)
	}
	exe.mu.Lock()
	if exe.running != 0 {
		t.Errorf("%d jobs still running after Run returned", exe.running)
	}
	exe.mu.Unlock()
	run, err := fx.store.Run(ctx, res.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if run.Status != StatusInterrupted {
		t.Errorf("run recorded as %q; want %q", run.Status, StatusInterrupted)
	}
}

// TestSchedulerReusesTheCache: a second run executes nothing, as plan
// says beforehand; forcing b reruns b alone, and plan and run agree on
// that too (c's input is unchanged, so c stays cached).
func TestSchedulerReusesTheCache(t *testing.T) {
	ctx := testContext(t)
	fx := newFixture(t, diamond)
	if res := fx.run(ctx, newFakeExec(nil), RunOptions{}); res.Executed != 5 {
		t.Fatalf("first run = %+v (%v); want 5 executed", res, res.Failures)
	}
	actions := func(force []string) map[string]string {
		t.Helper()
		items, err := Plan(ctx, fx.store, fx.p, force)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, it := range items {
			out[it.Instance] = it.Action
		}
		return out
	}
	if got := actions(nil); slices.ContainsFunc(slices.Collect(maps.Values(got)), func(a string) bool { return a != ActionCached }) {
		t.Errorf("plan after a run: %v; want everything cached", got)
	}
	exe := newFakeExec(nil)
	if res := fx.run(ctx, exe, RunOptions{}); res.Executed != 0 || res.Cached != 5 || len(exe.attempts) != 0 {
		t.Errorf("second run = %+v, executor called for %v; want all 5 cached", res, exe.attempts)
	}
	plan := actions([]string{"b"})
	if plan["b"] != ActionRun || plan["a"] != ActionCached || plan["e"] != ActionCached {
		t.Errorf("plan with --force b: %v; want b to run, a and e cached", plan)
	}
	exe = newFakeExec(nil)
	res := fx.run(ctx, exe, RunOptions{Force: []string{"b"}})
	if res.Executed != 1 || res.Cached != 4 || exe.attemptsOf("b") != 1 {
		t.Errorf("run with --force b = %+v, executor called for %v; want b alone executed", res, exe.attempts)
	}
}

// TestSchedulerStopsItsJobsWhenTheIndexFails: when the cache index fails
// mid-run (here the store is closed under it), Run returns the error only
// after the jobs it started have stopped, so none outlives it.
func TestSchedulerStopsItsJobsWhenTheIndexFails(t *testing.T) {
	ctx := testContext(t)
	fx := newFixture(t, "  a: {uses: fake, with: {v: a}}\n  b: {uses: fake, with: {v: b}}\n  c: {uses: fake, with: {v: c}}\n")
	exe := newFakeExec(func(ctx context.Context, job *Job, _ int) error {
		if job.Instance == "a" {
			// c, waiting for a job slot, is looked up in a closed index.
			return fx.store.Close()
		}
		<-ctx.Done()
		return ctx.Err()
	})
	_, err := (&Runner{Store: fx.store, Display: discardDisplay{}, Executor: exe, Host: "test"}).Run(ctx, fx.p,
		RunOptions{Jobs: 2, CPUs: 8, KeepGoing: true, SpecPath: filepath.Join(fx.dir, "sched.yaml")})
	if err == nil {
		t.Fatal("run with a closed index returned no error")
	}
	exe.mu.Lock()
	defer exe.mu.Unlock()
	if exe.running != 0 || exe.attempts["b"] != 1 || exe.attempts["c"] != 0 {
		t.Errorf("after Run returned %v: %d jobs still running, attempts %v; want b started and stopped, c never started", err, exe.running, exe.attempts)
	}
}

// TestSchedulerDetach: an executor that hands a job off (ErrDetached)
// gets it once, retries notwithstanding; the instance counts as submitted,
// not failed, nothing is recorded for it, its dependents wait for a later
// run (skipped here) while independent instances run, and the run ends
// detached.
func TestSchedulerDetach(t *testing.T) {
	ctx := testContext(t)
	fx := newFixture(t, `  a: {uses: fake, retries: 2, with: {v: a}}
  b: {uses: fake, inputs: {in: a}, with: {v: b}}
  d: {uses: fake, with: {v: d}}
`)
	exe := newFakeExec(func(_ context.Context, job *Job, _ int) error {
		if job.Instance == "a" {
			return fmt.Errorf("slurm job 42: %w", ErrDetached)
		}
		return nil
	})
	res := fx.run(ctx, exe, RunOptions{})
	if res.Status != StatusDetached || res.Submitted != 1 || res.Executed != 1 || res.Skipped != 1 || res.Failed != 0 {
		t.Errorf("run = %+v (%v); want detached: a submitted, d executed, b skipped", res, res.Failures)
	}
	if n := exe.attemptsOf("a"); n != 1 {
		t.Errorf("a was handed to the executor %d times; want once", n)
	}
	if _, ok, err := fx.store.LastForInstance(ctx, "sched", "a"); err != nil || ok {
		t.Errorf("a has a success recorded (%v); a submitted job's outcome is a later run's to record", err)
	}
	run, err := fx.store.Run(ctx, res.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if run.Status != StatusDetached {
		t.Errorf("run recorded as %q; want %q", run.Status, StatusDetached)
	}
}

// TestPlanAndRunAgreeOnABrokenSelection: a selection by a metric the
// upstream never records fails the selected instances in a run, and plan
// shows the same reason as their problem, which checking the plan against
// an executor (CheckPlan) keeps rather than clears.
func TestPlanAndRunAgreeOnABrokenSelection(t *testing.T) {
	ctx := testContext(t)
	fx := newFixture(t, `  r: {uses: fake, foreach: {s: [s1, s2]}, with: {v: r}}
  p:
    uses: fake
    foreach: {s: {from: [s1, s2], top: 1, by: "r[{s}].acc"}}
    with: {v: p}
`)
	res := fx.run(ctx, newFakeExec(nil), RunOptions{KeepGoing: true})
	if res.Executed != 2 || res.Failed != 2 || len(res.Failures) != 2 {
		t.Fatalf("run = %+v (%v); want r executed and both p failed", res, res.Failures)
	}
	items, err := Plan(ctx, fx.store, fx.p, nil)
	if err != nil {
		t.Fatal(err)
	}
	CheckPlan(ctx, fx.p, items, &clusterExecutor{all: make(chan struct{})}, RunOptions{})
	n := 0
	for _, it := range items {
		if it.Stage != "p" {
			continue
		}
		n++
		if it.Problem == "" || !strings.Contains(it.Problem, `records no metric "acc"`) {
			t.Errorf("plan: %s problem %q; want the missing metric named", it.Instance, it.Problem)
		}
		for _, f := range res.Failures {
			if strings.HasPrefix(f.Error(), it.Instance+": ") && !strings.Contains(f.Error(), it.Problem) {
				t.Errorf("run failed %s with %q; plan says %q", it.Instance, f, it.Problem)
			}
		}
	}
	if n != 2 {
		t.Errorf("plan has %d instances of p; want 2", n)
	}
}

// TestPlanExplainsARerunWithNothingChanged: an instance whose last success
// has its key but whose output was invalidated reruns for that reason; one
// whose last success has the same params, inputs and code but another key
// (a key derivation from an older voxflow) reruns for that one.
func TestPlanExplainsARerunWithNothingChanged(t *testing.T) {
	ctx := testContext(t)
	fx := newFixture(t, "  a: {uses: fake, with: {v: a}}\n")
	if res := fx.run(ctx, newFakeExec(nil), RunOptions{}); res.Executed != 1 {
		t.Fatalf("run = %+v (%v); want a executed", res, res.Failures)
	}
	last, ok, err := fx.store.LastForInstance(ctx, "sched", "a")
	if err != nil || !ok {
		t.Fatalf("a's success is not recorded: %v", err)
	}
	reasons := func() []string {
		t.Helper()
		items, err := Plan(ctx, fx.store, fx.p, nil)
		if err != nil || len(items) != 1 || items[0].Action != ActionRun {
			t.Fatalf("plan = %+v, %v; want a to run", items, err)
		}
		return items[0].Reasons
	}
	if err := fx.store.Invalidate(ctx, last.Key); err != nil {
		t.Fatal(err)
	}
	if got, want := reasons(), []string{"previous output invalidated or collected"}; !slices.Equal(got, want) {
		t.Errorf("plan after invalidating a's output: %q; want %q", got, want)
	}
	older := *last
	older.Key = cache.Digest(strings.Repeat("0f", 32))
	if _, err := fx.store.RecordExecution(ctx, &older); err != nil {
		t.Fatal(err)
	}
	if got := reasons(); len(got) != 1 || !strings.HasPrefix(got[0], "cache key changed with no change") {
		t.Errorf("plan after a success under another key: %q; want the key derivation named", got)
	}
}
