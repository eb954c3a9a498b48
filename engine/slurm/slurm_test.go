package slurm

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/voxflow/voxflow/engine"
	"github.com/voxflow/voxflow/engine/slurm/slurmtest"
	"github.com/voxflow/voxflow/stages"
	"github.com/voxflow/voxflow/stages/builtin"
)

// Tests in this file run against the real Slurm cluster that .ci/slurm.sh
// starts. They skip only when Slurm is absent and CI is unset.

var (
	// testBin is the stand-in voxflow binary the jobs run (internal/testexec).
	testBin string
	// slurmErr says why Slurm tests cannot run; nil when they can.
	slurmErr error
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	slurmErr = slurmtest.Available()
	if slurmErr != nil && os.Getenv("CI") != "" {
		// In CI the cluster must be there: start it rather than skip.
		slurmErr = slurmtest.Start()
	}
	if slurmErr == nil {
		dir, err := os.MkdirTemp("", "voxflow-slurm-test")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		testBin = filepath.Join(dir, "voxflow")
		out, err := exec.Command("go", "build", "-o", testBin, "./internal/testexec").CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "slurm tests: build the test voxflow binary: %v\n%s", err, out)
			return 1
		}
	}
	return m.Run()
}

func needSlurm(t *testing.T) {
	t.Helper()
	if slurmErr == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("Slurm is required in CI: %v", slurmErr)
	}
	t.Skipf("Slurm is not available here (%v); start a one-node cluster with .ci/slurm.sh", slurmErr)
}

func newExecutor() *Executor {
	return &Executor{Bin: testBin, PollInterval: 200 * time.Millisecond}
}

// newJob returns a job with a fresh key and work directory.
func newJob(t testing.TB, kind string, params map[string]any) *engine.Job {
	t.Helper()
	var k [16]byte
	_, _ = rand.Read(k[:])
	work := filepath.Join(t.TempDir(), "work")
	return &engine.Job{
		Key:       hex.EncodeToString(k[:]),
		Spec:      "slurm-test",
		Instance:  t.Name() + "[r1]",
		Stage:     "s",
		Kind:      kind,
		Params:    params,
		Labels:    map[string]string{"roi": "FFA-1"},
		WorkDir:   work,
		OutDir:    filepath.Join(work, "out"),
		Resources: stages.Resources{CPUs: 1, MemoryMB: 300},
		Isolate:   "inline",
	}
}

func commandJob(t testing.TB, cmd string) *engine.Job {
	return newJob(t, "command", map[string]any{"cmd": cmd, "outs": []any{}, "env": map[string]any{}, "shell": "bash"})
}

// syncBuffer is a log sink the test may read while Execute writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type progressLog struct {
	mu sync.Mutex
	us []stages.Update
}

func (p *progressLog) Update(u stages.Update) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.us = append(p.us, u)
}

func (p *progressLog) updates() []stages.Update {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]stages.Update(nil), p.us...)
}

// squeue runs squeue with args and returns its trimmed output.
func squeue(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("squeue", append([]string{"--noheader"}, args...)...).CombinedOutput()
	if err != nil && !strings.Contains(string(out), "Invalid job id") {
		t.Fatalf("squeue %v: %v: %s", args, err, out)
	}
	if strings.Contains(string(out), "Invalid job id") {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func submission(t *testing.T, job *engine.Job) *Submission {
	t.Helper()
	sub, err := ReadSubmission(KeyDir(job.WorkDir).Submission())
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

func TestExecuteRunsStageAndForwardsProgress(t *testing.T) {
	needSlurm(t)
	t.Parallel()
	job := newJob(t, "test-counter", map[string]any{"n": int64(5), "scale": 2.0, "step_ms": int64(150)})
	e := newExecutor()
	var log syncBuffer
	var prog progressLog
	if err := e.Execute(context.Background(), job, &prog, &log); err != nil {
		t.Fatalf("Execute: %v\nlog:\n%s", err, log.String())
	}
	got, err := os.ReadFile(filepath.Join(job.OutDir, "count.txt"))
	if err != nil {
		t.Fatal(err)
	}
	// n arrived as int64 and scale as float64 (2.0 would be an int after a
	// naive JSON round trip), and the roi label reached the stage.
	if string(got) != "5 10 FFA-1\n" {
		t.Errorf("count.txt = %q, want %q", got, "5 10 FFA-1\n")
	}
	var last stages.Update
	for _, u := range prog.updates() {
		if u.Phase == "count" {
			last = u
		}
	}
	if last.Done != 5 || last.Total != 5 || last.Unit != "step" {
		t.Errorf("last forwarded progress = %+v, want count 5/5 step", last)
	}
	for _, want := range []string{"submitted slurm job", "counted 1", "counted 5", "exec-job: ok"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
	sub := submission(t, job)
	res, err := ReadResult(Layout{Dir: sub.Dir}.Result())
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != StatusOK || res.JobID != sub.JobID || res.Key != job.Key || res.Host == "" || !res.End.After(res.Start) {
		t.Errorf("result record = %+v, want ok for job %s, key %s, with host and times", res, sub.JobID, job.Key)
	}
	// The declared resources reached Slurm.
	out, err := exec.Command("scontrol", "show", "job", "-o", sub.JobID).CombinedOutput()
	if err != nil {
		t.Fatalf("scontrol: %v: %s", err, out)
	}
	for _, want := range []string{"JobState=COMPLETED", "NumCPUs=1", "mem=300M", "JobName=vf:" + job.Instance, "Comment=voxflow:" + job.Key} {
		if !strings.Contains(string(out), want) {
			t.Errorf("scontrol show job lacks %q:\n%s", want, out)
		}
	}
	if st, err := e.State(context.Background(), KeyDir(job.WorkDir)); err != nil || st != "COMPLETED" {
		t.Errorf("State = %q, %v; want COMPLETED", st, err)
	}
	never := KeyDir(t.TempDir())
	if m, err := e.States(context.Background(), []KeyDir{KeyDir(job.WorkDir), never}); err != nil || len(m) != 1 || m[KeyDir(job.WorkDir)] != "COMPLETED" {
		t.Errorf("States = %v, %v; want only %s: COMPLETED", m, err, job.WorkDir)
	}
	if s, a := e.Stats(); s != 1 || a != 0 {
		t.Errorf("Stats = %d submitted, %d adopted; want 1, 0", s, a)
	}
}

func TestFailedJobReportsStateAndLogTailThenRetries(t *testing.T) {
	needSlurm(t)
	t.Parallel()
	marker := filepath.Join(t.TempDir(), "marker")
	job := commandJob(t, fmt.Sprintf("echo preparing; test -f %s || { echo 'marker-missing-xyz' >&2; exit 3; }; echo fine > ok.txt", marker))
	e := newExecutor()
	err := e.Execute(context.Background(), job, nil, nil)
	if err == nil {
		t.Fatal("Execute succeeded; want the job to fail")
	}
	first := submission(t, job)
	for _, want := range []string{"slurm job " + first.JobID + " (attempt 1) ended FAILED", "exit status 3", "last lines of " + first.Log, "job script " + Layout{Dir: first.Dir}.Script(), "marker-missing-xyz"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	// A retry of the same key submits a new job (a failed one is never
	// adopted) and keeps the failed attempt's log.
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(err.Error(), job.Instance) {
		t.Errorf("error starts with the instance name, which the engine adds: %v", err)
	}
	if err := e.Execute(context.Background(), job, nil, nil); err != nil {
		t.Fatalf("retry: %v", err)
	}
	second := submission(t, job)
	if second.JobID == first.JobID || second.Attempt != 2 || second.Dir == first.Dir {
		t.Errorf("retry = job %s attempt %d in %s; want a new submission in a new attempt dir (failed: job %s in %s)", second.JobID, second.Attempt, second.Dir, first.JobID, first.Dir)
	}
	if b, err := os.ReadFile(filepath.Join(job.OutDir, "ok.txt")); err != nil || string(b) != "fine\n" {
		t.Errorf("ok.txt = %q, %v; want \"fine\\n\"", b, err)
	}
	as, err := Attempts(KeyDir(job.WorkDir))
	if err != nil || len(as) != 2 || as[0].End == nil || as[0].End.State != "FAILED" || as[1].End == nil || as[1].End.State != "COMPLETED" {
		t.Errorf("Attempts = %+v, %v; want attempt 1 FAILED and attempt 2 COMPLETED", as, err)
	}
	for _, p := range []string{first.Log, Layout{Dir: first.Dir}.Script(), Layout{Dir: first.Dir}.Result()} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("first attempt's %s is gone: %v", p, err)
		}
	}
	if b, err := os.ReadFile(first.Log); err != nil || !strings.Contains(string(b), "marker-missing-xyz") {
		t.Errorf("first attempt's log %s = %q, %v; want it kept", first.Log, b, err)
	}
	if s, a := e.Stats(); s != 2 || a != 0 {
		t.Errorf("Stats = %d submitted, %d adopted; want 2, 0", s, a)
	}
}

func TestJobPastTimeLimitEndsTIMEOUT(t *testing.T) {
	needSlurm(t)
	t.Parallel()
	// Slurm's limits are whole minutes and checked every 30 s, so this test
	// takes 60-90 s; it runs beside the others.
	job := commandJob(t, "echo started-sleeping; sleep 600")
	job.Executor = map[string]any{"time": int64(1)}
	e := newExecutor()
	start := time.Now()
	err := e.Execute(context.Background(), job, nil, nil)
	if err == nil {
		t.Fatal("Execute succeeded; want TIMEOUT")
	}
	sub := submission(t, job)
	for _, want := range []string{"slurm job " + sub.JobID + " (attempt 1) ended TIMEOUT", "started-sleeping"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	// Slurm keeps job times in whole seconds, so with the adaptive poll a
	// job killed right at its limit can be seen ending a fraction of a
	// second under a minute of our clock (59.987 s was measured).
	if d := time.Since(start); d < time.Minute-time.Second {
		t.Errorf("job ended after %s, before its 1-minute limit", d)
	}
}

func TestCancelScancelsAndWaitsForTheQueue(t *testing.T) {
	needSlurm(t)
	t.Parallel()
	job := commandJob(t, "echo $$ > pid; exec sleep 600")
	e := newExecutor()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var log syncBuffer
	done := make(chan error, 1)
	go func() { done <- e.Execute(ctx, job, nil, &log) }()

	// Wait for the stage's process to run on the node.
	pidFile := filepath.Join(KeyDir(job.WorkDir).Attempt(1).Out(), "pid")
	var pid int
	deadline := time.Now().Add(60 * time.Second)
	for pid == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the job did not start within 60 s; log:\n%s", log.String())
		}
		if b, err := os.ReadFile(pidFile); err == nil && strings.HasSuffix(string(b), "\n") {
			pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		time.Sleep(100 * time.Millisecond)
	}
	sub := submission(t, job)
	if st, err := e.State(context.Background(), KeyDir(job.WorkDir)); err != nil || st != "RUNNING" {
		t.Errorf("State while running = %q, %v; want RUNNING", st, err)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Execute after cancel = %v; want context.Canceled", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("Execute did not return within 2 minutes of cancellation")
	}
	// Nothing of the job is left: not in the queue, not as a process.
	if q := squeue(t, "--jobs="+sub.JobID); q != "" {
		t.Errorf("squeue still lists the job after Execute returned: %q", q)
	}
	if st := squeue(t, "--states=all", "--jobs="+sub.JobID, "--format=%T"); st != "CANCELLED" {
		t.Errorf("Slurm state = %q, want CANCELLED", st)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("stage process %d still exists after cancellation (kill 0: %v)", pid, err)
	}
	// exec-job saw the SIGTERM and recorded the cancellation.
	res, err := ReadResult(Layout{Dir: sub.Dir}.Result())
	if err != nil || res.Status != StatusCancelled {
		t.Errorf("result record = %+v, %v; want status cancelled", res, err)
	}
	// The engine took the cancellation: the next Execute is a new attempt.
	if sub := submission(t, job); !sub.Collected {
		t.Errorf("cancelled job's record = %+v; want it collected", sub)
	}
}

func TestRestartedEngineAdoptsInsteadOfResubmitting(t *testing.T) {
	needSlurm(t)
	t.Parallel()
	job := commandJob(t, "sleep 2; echo adopted > out.txt")
	// The first engine submits and goes away (--detach, or a crash).
	first := newExecutor()
	err := Detached{first}.Execute(context.Background(), job, nil, nil)
	if !errors.Is(err, engine.ErrDetached) {
		t.Fatalf("detached Execute = %v; want ErrDetached", err)
	}
	id := submission(t, job).JobID
	if st, err := first.State(context.Background(), KeyDir(job.WorkDir)); err != nil || (st != "PENDING" && st != "RUNNING") {
		t.Errorf("State just after Submit = %q, %v; want PENDING or RUNNING", st, err)
	}
	// Another detached run while it runs: the same job.
	second := newExecutor()
	if again, err := second.Submit(context.Background(), job); err != nil || again != id {
		t.Errorf("Submit while running = %q, %v; want the running job %s", again, err, id)
	}
	// A new engine, same key: it follows the running job.
	third := newExecutor()
	var log syncBuffer
	if err := third.Execute(context.Background(), job, nil, &log); err != nil {
		t.Fatalf("Execute: %v", err)
	}
	if !strings.Contains(log.String(), "adopting slurm job "+id) {
		t.Errorf("log does not say the job was adopted:\n%s", log.String())
	}
	if b, err := os.ReadFile(filepath.Join(job.OutDir, "out.txt")); err != nil || string(b) != "adopted\n" {
		t.Errorf("out.txt = %q, %v; want \"adopted\\n\"", b, err)
	}
	if s, a := second.Stats(); s != 0 || a != 1 {
		t.Errorf("second engine: %d submitted, %d adopted; want 0, 1", s, a)
	}
	if s, a := third.Stats(); s != 0 || a != 1 {
		t.Errorf("third engine: %d submitted, %d adopted; want 0, 1", s, a)
	}
	// Slurm saw exactly one job for this key.
	var ids []string
	for _, ln := range strings.Split(squeue(t, "--states=all", "--format=%i|%k"), "\n") {
		if i, c, _ := strings.Cut(ln, "|"); c == commentPrefix+job.Key {
			ids = append(ids, i)
		}
	}
	if len(ids) != 1 || ids[0] != id {
		t.Errorf("Slurm jobs for key %s = %q, want only %s", job.Key, ids, id)
	}
}

func TestSubmitErrorNamesSbatchMessage(t *testing.T) {
	needSlurm(t)
	t.Parallel()
	job := commandJob(t, "true")
	job.Executor = map[string]any{"gres": "gpu:1"} // verbatim: only sbatch judges it
	err := newExecutor().Execute(context.Background(), job, nil, nil)
	if err == nil {
		t.Fatal("Execute succeeded on a cluster without GPUs; want sbatch to refuse")
	}
	for _, want := range []string{"submit attempt 1", "sbatch", "gres"} {
		if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(want)) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if sub, err := ReadSubmission(KeyDir(job.WorkDir).Submission()); err != nil || sub.JobID != "" {
		t.Errorf("a refused submission recorded %+v, %v; want the record of an unanswered attempt", sub, err)
	}
}

func TestRequestBeyondThePartitionFailsBeforeSubmission(t *testing.T) {
	needSlurm(t)
	t.Parallel()
	e := newExecutor()
	for _, res := range []stages.Resources{{CPUs: 4096}, {CPUs: 1, MemoryMB: 1 << 30}, {CPUs: 1, GPUs: 1}} {
		job := commandJob(t, "true")
		job.Resources = res
		err := e.Execute(context.Background(), job, nil, nil)
		if err == nil {
			t.Fatalf("Execute of %+v succeeded; want a refusal", res)
		}
		for _, want := range []string{"not submitted", "more than any node offers", "partition ", "at most"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%+v: error lacks %q: %v", res, want, err)
			}
		}
		if _, err := os.Stat(KeyDir(job.WorkDir).Submission()); !os.IsNotExist(err) {
			t.Errorf("%+v: a refused request left a slurm.json (stat: %v)", res, err)
		}
	}
	if s, _ := e.Stats(); s != 0 {
		t.Errorf("%d job(s) submitted; want none", s)
	}
}

func TestJobPendingForeverIsFailed(t *testing.T) {
	needSlurm(t)
	t.Parallel()
	// Declared as 1 CPU, so the check before submission passes; the
	// verbatim flag asks for more than the node has, which this cluster
	// (EnforcePartLimits=NO) accepts and leaves pending (PartitionConfig).
	job := commandJob(t, "echo never-ran > o.txt")
	job.Executor = map[string]any{"sbatch": []any{"--cpus-per-task=4096"}}
	e := newExecutor()
	start := time.Now()
	err := e.Execute(context.Background(), job, nil, nil)
	if err == nil {
		t.Fatal("Execute succeeded; want the job failed as never able to start")
	}
	sub := submission(t, job)
	for _, want := range []string{"slurm job " + sub.JobID, "cannot start", "waiting does not clear", "partition "} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("took %s to give up on a job that can never start", d)
	}
	if st := squeue(t, "--states=all", "--jobs="+sub.JobID, "--format=%T"); st != "CANCELLED" {
		t.Errorf("Slurm state = %q, want CANCELLED", st)
	}
}

func TestStateOfUnsubmittedWorkDir(t *testing.T) {
	_, err := (&Executor{}).State(context.Background(), KeyDir(t.TempDir()))
	if !errors.Is(err, ErrNotSubmitted) {
		t.Errorf("State = %v; want ErrNotSubmitted", err)
	}
}

func TestExecJobThroughTheVoxflowCLI(t *testing.T) {
	needSlurm(t)
	t.Parallel()
	cli := slurmtest.BuildVoxflow(t)
	// The CLI's own registry: the command kind with its code identity.
	impl, _ := engine.NewRegistry(builtin.Stages(), nil).Builtin("command")
	e := &Executor{Bin: cli, PollInterval: 200 * time.Millisecond}

	job := commandJob(t, "echo from-the-cli > o.txt")
	job.Impl = impl.Impl
	if err := e.Execute(context.Background(), job, nil, nil); err != nil {
		t.Fatalf("Execute: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(job.OutDir, "o.txt")); err != nil || string(b) != "from-the-cli\n" {
		t.Errorf("o.txt = %q, %v; want \"from-the-cli\\n\"", b, err)
	}

	// A node whose voxflow implements the kind differently refuses the job
	// rather than file its outputs under the wrong key.
	stale := commandJob(t, "echo never > o.txt")
	stale.Impl = "builtin:0.0.0-other:command:1"
	err := e.Execute(context.Background(), stale, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "ended FAILED") || !strings.Contains(err.Error(), "engine planned builtin:0.0.0-other") {
		t.Errorf("Execute with another build's impl = %v; want FAILED naming the planned implementation", err)
	}
	if _, err := os.Stat(filepath.Join(KeyDir(stale.WorkDir).Attempt(1).Out(), "o.txt")); !os.IsNotExist(err) {
		t.Errorf("the refused job ran its command anyway (stat o.txt: %v)", err)
	}
}

func TestQueueSharesOneSqueueAmongWatchedJobs(t *testing.T) {
	needSlurm(t)
	t.Parallel()
	// Count squeue calls with a wrapper that still runs the real squeue.
	real, err := exec.LookPath("squeue")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	calls := filepath.Join(dir, "calls")
	wrapper := fmt.Sprintf("#!/bin/sh\necho \"$*\" >> %s\nexec %s \"$@\"\n", shellQuote(calls), shellQuote(real))
	if err := os.WriteFile(filepath.Join(dir, "squeue"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	e := newExecutor()
	a, b := commandJob(t, "true"), commandJob(t, "true")
	idA, err := e.Submit(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	idB, err := e.Submit(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	var q queue
	defer q.watch(idA)()
	defer q.watch(idB)()
	c := commands{dir: dir}
	ia, okA, err := q.lookup(context.Background(), c, idA, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ib, okB, err := q.lookup(context.Background(), c, idB, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !okA || !okB || ia.Comment != commentPrefix+a.Key || ib.Comment != commentPrefix+b.Key {
		t.Errorf("lookups = %+v (%v), %+v (%v); want both jobs with their keys", ia, okA, ib, okB)
	}
	got, err := os.ReadFile(calls)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(string(got)), "\n"); len(lines) != 1 ||
		!strings.Contains(lines[0], idA) || !strings.Contains(lines[0], idB) {
		t.Errorf("squeue calls:\n%s\nwant one call asking for both %s and %s", got, idA, idB)
	}
	// Let both jobs finish before the temporary directories go.
	for _, j := range []*engine.Job{a, b} {
		if err := e.Execute(context.Background(), j, nil, nil); err != nil {
			t.Error(err)
		}
	}
}

func TestOrphanOfAFailedAttemptCannotTouchTheRetry(t *testing.T) {
	needSlurm(t)
	t.Parallel()
	tmp := t.TempDir()
	marker, pidFile := filepath.Join(tmp, "marker"), filepath.Join(tmp, "orphan.pid")
	t.Cleanup(func() {
		if b, err := os.ReadFile(pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	// Attempt 1's job script leaves a writer behind that ignores SIGTERM
	// and escapes the job (the stage itself reaps its own descendants),
	// appending to the attempt's out/out.txt; the stage then fails. Attempt
	// 2 writes exactly three lines.
	job := commandJob(t, fmt.Sprintf(`if [ -f %[1]s.2 ]; then printf 'a\nb\nc\n' > out.txt; sleep 0.3; exit 0; fi
touch %[1]s.2; sleep 0.5; exit 1`, marker))
	job.Executor = map[string]any{"prelude": []any{fmt.Sprintf(
		`if [ ! -f %[1]s.1 ]; then touch %[1]s.1; setsid bash -c 'echo $$ > %[2]s; trap "" TERM; while :; do echo orphan >> "$0/out/out.txt"; sleep 0.05; done' "$PWD" </dev/null >/dev/null 2>&1 & fi`,
		marker, pidFile)}}
	e := newExecutor()
	if err := e.Execute(context.Background(), job, nil, nil); err == nil {
		t.Fatal("attempt 1 succeeded; want it to fail")
	}
	if err := e.Execute(context.Background(), job, nil, nil); err != nil {
		t.Fatalf("attempt 2: %v", err)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("the orphan %d did not survive its job (%v); the test proves nothing", pid, err)
	}
	time.Sleep(200 * time.Millisecond) // the orphan keeps writing meanwhile
	if got, err := os.ReadFile(filepath.Join(job.OutDir, "out.txt")); err != nil || string(got) != "a\nb\nc\n" {
		t.Errorf("outputs handed to the engine: out.txt = %q, %v; want exactly the retry's three lines", got, err)
	}
	if got, _ := os.ReadFile(filepath.Join(KeyDir(job.WorkDir).Attempt(1).Out(), "out.txt")); !strings.Contains(string(got), "orphan") {
		t.Errorf("attempt 1's out.txt = %q; want the orphan's lines there, and only there", got)
	}
}
