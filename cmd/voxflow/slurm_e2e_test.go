package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/voxflow/voxflow/cache"
	"github.com/voxflow/voxflow/engine/slurm"
	"github.com/voxflow/voxflow/engine/slurm/slurmtest"
)

// slurmJobs maps the id of every job Slurm still remembers that one of this
// package's specs submitted (job names "vf:<instance>" with the given
// instance prefix) to its state, so tests can see whether a run submitted
// anything. Other packages' tests use the same cluster at the same time.
func slurmJobs(t *testing.T, prefix string) map[string]string {
	t.Helper()
	out, err := exec.Command("squeue", "--states=all", "-h", "-o", "%i %j %T").Output()
	if err != nil {
		t.Fatalf("squeue: %v", err)
	}
	jobs := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(l)
		if len(f) == 3 && strings.HasPrefix(f[1], "vf:"+prefix) {
			jobs[f[0]] = f[2]
		}
	}
	return jobs
}

const slurmSpec = `name: sl
executor: {type: slurm}
stages:
  e2edag_a:
    uses: command
    with: {cmd: 'echo $SLURM_JOB_ID > job; echo a > a.txt', outs: [a.txt]}
  e2edag_b:
    uses: command
    inputs: {deps: e2edag_a}
    with: {cmd: 'echo $SLURM_JOB_ID > job; tr a b < $IN_e2edag_a/a.txt > b.txt', outs: [b.txt]}
  e2edag_c:
    uses: command
    inputs: {deps: [e2edag_a, e2edag_b]}
    resources: {cpus: 1, memory: 64MiB}
    with: {cmd: 'echo $SLURM_JOB_ID > job; cat $IN_e2edag_a/a.txt $IN_e2edag_b/b.txt > c.txt', outs: [c.txt]}
`

func TestSlurmRunsTheDAGAndRerunSubmitsNothing(t *testing.T) {
	slurmtest.Require(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "sl.yaml"), slurmSpec)
	before := len(slurmJobs(t, "e2edag_"))
	r := vox(t, dir, "run", "sl.yaml", "--plain")
	if r.code != 0 || !strings.Contains(r.stdout, "3 executed") {
		t.Fatalf("slurm run:\n%s", r)
	}
	after := slurmJobs(t, "e2edag_")
	if len(after)-before < 3 {
		t.Fatalf("want 3 new slurm jobs, squeue shows %d -> %d", before, len(after))
	}
	// Each stage ran inside a Slurm job.
	r = vox(t, dir, "show", "e2edag_c", "--json")
	if !strings.Contains(r.stdout, `"status": "succeeded"`) {
		t.Fatalf("show c:\n%s", r)
	}
	r = vox(t, dir, "run", "sl.yaml", "--plain")
	if r.code != 0 || !strings.Contains(r.stdout, "0 executed, 3 cached") {
		t.Fatalf("rerun:\n%s", r)
	}
	if n := len(slurmJobs(t, "e2edag_")); n != len(after) {
		t.Fatalf("a fully cached rerun submitted %d job(s)", n-len(after))
	}
}

func TestSlurmFailureAndCancel(t *testing.T) {
	slurmtest.Require(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "f.yaml"), `name: slf
executor: {type: slurm}
stages:
  bad:
    uses: command
    with: {cmd: 'echo about to fail; exit 4'}
`)
	r := vox(t, dir, "run", "f.yaml", "--plain")
	if r.code != 1 || !strings.Contains(r.stdout+r.stderr, "ended FAILED") || !strings.Contains(r.stdout+r.stderr, "about to fail") {
		t.Fatalf("a failing job should report its Slurm state and log tail:\n%s", r)
	}

	writeFile(t, filepath.Join(dir, "c.yaml"), `name: slc
executor: {type: slurm}
stages:
  e2ecancel:
    uses: command
    with: {cmd: 'sleep 120'}
`)
	cmd := exec.Command(voxBin, "run", "c.yaml", "--plain")
	cmd.Dir = dir
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var id string
	waitFor(t, func() bool {
		for j, st := range slurmJobs(t, "e2ecancel") {
			if st == "RUNNING" && strings.Contains(out.String(), "start    e2ecancel") {
				id = j
				return true
			}
		}
		return false
	})
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil {
		t.Fatalf("interrupted run should exit non-zero:\n%s", out.String())
	}
	if st := slurmJobs(t, "e2ecancel")[id]; st == "RUNNING" || st == "PENDING" {
		t.Fatalf("Ctrl-C must scancel job %s; it is %s", id, st)
	}
}

func TestSlurmDetachStatusAndAdopt(t *testing.T) {
	slurmtest.Require(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "d.yaml"), `name: sld
stages:
  e2edetach_first:
    uses: command
    with: {cmd: 'sleep 3; echo 1 > one', outs: [one]}
  e2edetach_second:
    uses: command
    inputs: {deps: e2edetach_first}
    with: {cmd: 'cat $IN_e2edetach_first/one > two', outs: [two]}
`)
	r := vox(t, dir, "run", "d.yaml", "--executor", "slurm", "--detach", "--plain")
	if r.code != 0 || !strings.Contains(r.stdout, "1 instance(s) submitted") {
		t.Fatalf("detached run:\n%s", r)
	}
	jobs := slurmJobs(t, "e2edetach_")
	r = vox(t, dir, "status")
	if !strings.Contains(r.stdout, "CLUSTER JOBS") || !strings.Contains(r.stdout, "e2edetach_first") {
		t.Fatalf("status should follow the submitted job:\n%s", r)
	}
	// The next run adopts the job instead of submitting it again.
	r = vox(t, dir, "run", "d.yaml", "--executor", "slurm", "--plain")
	if r.code != 0 || !strings.Contains(r.stdout, "2 executed") {
		t.Fatalf("adopting run:\n%s", r)
	}
	now := slurmJobs(t, "e2edetach_")
	if len(now) != len(jobs)+1 {
		t.Fatalf("want exactly one new job (second); squeue went from %d to %d jobs", len(jobs), len(now))
	}
	if r := vox(t, dir, "log", "e2edetach_first"); !strings.Contains(r.stdout, "adopting slurm job") {
		t.Fatalf("first should have been adopted:\n%s", r)
	}
}

// dirJobs maps the id of every job Slurm still remembers whose working
// directory lies under dir (a test's cache) to its state: unlike
// slurmJobs, it cannot see an earlier run of the same test.
func dirJobs(t *testing.T, dir string) map[string]string {
	t.Helper()
	out, err := exec.Command("squeue", "--me", "--states=all", "-h", "-o", "%i|%T|%Z").Output()
	if err != nil {
		t.Fatalf("squeue: %v", err)
	}
	jobs := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.SplitN(l, "|", 3)
		if len(f) == 3 && strings.HasPrefix(f[2], dir+string(filepath.Separator)) {
			jobs[f[0]] = f[1]
		}
	}
	return jobs
}

// slurmStoredFile reads file name from the stored output of instance's
// newest execution in dir's cache, failing the test unless that execution
// succeeded.
func slurmStoredFile(t *testing.T, dir, instance, name string) string {
	t.Helper()
	ctx := context.Background()
	store, err := cache.Open(ctx, filepath.Join(dir, ".voxflow"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	exs, err := store.FindExecutions(ctx, "", instance, 1)
	if err != nil || len(exs) != 1 || exs[0].Status != "succeeded" {
		t.Fatalf("%s: want a succeeded execution; have %+v, %v", instance, exs, err)
	}
	d, err := store.Sub(ctx, exs[0].Output, name)
	if err != nil {
		t.Fatal(err)
	}
	p, err := store.Path(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	return readFile(t, p)
}

// voxEnv starts voxflow in dir with extra environment entries.
func voxEnv(dir string, env []string, out io.Writer, args ...string) *exec.Cmd {
	cmd := exec.Command(voxBin, args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "VOXFLOW_CACHE="), env...)
	cmd.Stdout, cmd.Stderr = out, out
	return cmd
}

// eightLines is a stage that writes 8 numbered lines over about 2 s, so a
// second writer of the same key would show up as extra lines. tag keeps
// each test's key its own.
func eightLines(tag string) string {
	return `for i in 1 2 3 4 5 6 7 8; do echo $i >> lines; sleep 0.25; done # ` + tag
}

const wantEight = "1\n2\n3\n4\n5\n6\n7\n8\n"

func TestSlurmResourcesAreTheClustersAndNothingIsSkipped(t *testing.T) {
	slurmtest.Require(t)
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "r.yaml"), `name: slres
stages:
  e2eres_wide:
    uses: command
    resources: {cpus: 2}
    with: {cmd: 'echo $SLURM_CPUS_PER_TASK > n', outs: [n]}
  e2eres_gpu:
    uses: command
    resources: {gpus: 1}
    with: {cmd: 'echo gpu > g', outs: [g]}
  e2eres_after:
    uses: command
    inputs: {deps: e2eres_gpu}
    with: {cmd: 'echo after > a', outs: [a]}
  e2eres_huge:
    uses: command
    resources: {cpus: 4096}
    with: {cmd: 'echo huge > h', outs: [h]}
`)
	// plan shows what Slurm cannot run before anything is submitted.
	r := vox(t, dir, "plan", "r.yaml", "--executor", "slurm")
	for _, want := range []string{"FAIL  e2eres_gpu", "FAIL  e2eres_huge", "1 GPU(s)", "4096 CPUs", "no GPUs", "2 cannot run"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("plan --executor slurm lacks %q:\n%s", want, r)
		}
	}
	if n := len(dirJobs(t, dir)); n != 0 {
		t.Fatalf("plan submitted %d job(s)", n)
	}
	// The engine host's --cpus and --gpus do not limit cluster jobs; the
	// partition does, and what it can never run fails, with its limits.
	r = vox(t, dir, "run", "r.yaml", "--executor", "slurm", "--cpus", "1", "--keep-going", "--plain")
	if r.code != 1 || !strings.Contains(r.stdout, "1 executed, 0 cached, 2 failed, 1 skipped") {
		t.Fatalf("run: want 1 executed and the GPU and huge stages failed:\n%s", r)
	}
	for _, want := range []string{"e2eres_gpu: asks for 1 GPU(s)", "e2eres_huge: asks for 4096 CPUs", "at most"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("failures lack %q:\n%s", want, r.stderr)
		}
	}
	if got := slurmStoredFile(t, dir, "e2eres_wide", "n"); got != "2\n" {
		t.Errorf("stored SLURM_CPUS_PER_TASK = %q; want the declared 2, not --cpus 1", got)
	}
	jobs := dirJobs(t, dir)
	if len(jobs) != 1 {
		t.Errorf("squeue shows %d job(s) for this spec (%v); want only e2eres_wide's", len(jobs), jobs)
	}
}

func TestSlurmLocalRunRefusesKeyOfALiveJob(t *testing.T) {
	slurmtest.Require(t)
	t.Parallel()
	dir := t.TempDir()
	// The spec's executor is local; the cluster is chosen on the command line.
	writeFile(t, filepath.Join(dir, "race.yaml"), `name: slrace
stages:
  e2erace_w:
    uses: command
    with: {cmd: '`+eightLines("race")+`', outs: [lines]}
`)
	r := vox(t, dir, "run", "race.yaml", "--executor", "slurm", "--detach", "--plain")
	if r.code != 0 || !strings.Contains(r.stdout, "1 instance(s) submitted") {
		t.Fatalf("detached run:\n%s", r)
	}
	var id string
	for j := range dirJobs(t, dir) {
		id = j
	}
	r = vox(t, dir, "run", "race.yaml", "--plain")
	if r.code != 1 || !strings.Contains(r.stderr, "slurm job "+id) || !strings.Contains(r.stderr, "may still be computing this key") {
		t.Fatalf("a local run while slurm job %s runs must refuse, naming it:\n%s", id, r)
	}
	r = vox(t, dir, "run", "race.yaml", "--executor", "slurm", "--plain")
	if r.code != 0 || !strings.Contains(r.stdout, "1 executed") {
		t.Fatalf("adopting run:\n%s", r)
	}
	if got := slurmStoredFile(t, dir, "e2erace_w", "lines"); got != wantEight {
		t.Errorf("stored lines = %q; want one writer's 8 lines", got)
	}
	if n := len(dirJobs(t, dir)); n != 1 {
		t.Errorf("%d slurm jobs for the key; want 1", n)
	}
}

func TestSlurmSIGKILLBetweenSbatchAndRecording(t *testing.T) {
	slurmtest.Require(t)
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "k.yaml"), `name: slkill
executor: {type: slurm}
stages:
  e2ekill_w:
    uses: command
    with: {cmd: '`+eightLines("kill")+`', outs: [lines]}
`)
	// A slow controller: sbatch submits, then takes 3 s to answer.
	real, err := exec.LookPath("sbatch")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "slowbin")
	writeFile(t, filepath.Join(bin, "sbatch"), "#!/bin/sh\n'"+real+"' \"$@\"\nrc=$?\nsleep 3\nexit $rc\n")
	if err := os.Chmod(filepath.Join(bin, "sbatch"), 0o755); err != nil {
		t.Fatal(err)
	}
	var out lockedBuffer
	cmd := voxEnv(dir, []string{"PATH=" + bin + ":" + os.Getenv("PATH")}, &out, "run", "k.yaml", "--plain")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var id string
	waitFor(t, func() bool {
		for j := range dirJobs(t, dir) {
			id = j
		}
		return id != ""
	})
	// Killed before sbatch's answer was recorded.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	recs, _ := filepath.Glob(filepath.Join(dir, ".voxflow", "slurm", "*", "slurm.json"))
	if len(recs) != 1 {
		t.Fatalf("want one submission record; have %v", recs)
	}
	if sub, err := slurm.ReadSubmission(recs[0]); err != nil || sub.JobID != "" {
		t.Fatalf("record = %+v, %v; want one without a job id (engine killed while sbatch answered)", sub, err)
	}
	r := vox(t, dir, "run", "k.yaml", "--plain")
	if r.code != 0 || !strings.Contains(r.stdout, "1 executed") {
		t.Fatalf("rerun:\n%s\nkilled run:\n%s", r, out.String())
	}
	if got := slurmStoredFile(t, dir, "e2ekill_w", "lines"); got != wantEight {
		t.Errorf("stored lines = %q; want one writer's 8 lines", got)
	}
	if jobs := dirJobs(t, dir); len(jobs) != 1 {
		t.Errorf("slurm jobs for the key: %v; want only %s", jobs, id)
	}
	if r := vox(t, dir, "log", "e2ekill_w"); !strings.Contains(r.stdout, "adopting slurm job "+id) {
		t.Errorf("the rerun should adopt job %s:\n%s", id, r)
	}
}

func TestSlurmOrphanOnARetry(t *testing.T) {
	slurmtest.Require(t)
	t.Parallel()
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "orphan.pid")
	t.Cleanup(func() {
		if b, err := os.ReadFile(pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	// Attempt 1's job leaves a writer that ignores SIGTERM appending to its
	// output folder, and fails; the automatic retry writes three lines.
	writeFile(t, filepath.Join(dir, "o.yaml"), fmt.Sprintf(`name: slorphan
executor: {type: slurm}
stages:
  e2eorphan_w:
    uses: command
    retries: 1
    executor:
      prelude:
        - >-
          if [ ! -f %[1]s/m1 ]; then touch %[1]s/m1; setsid bash -c 'echo $$ > %[1]s/orphan.pid; trap "" TERM;
          while :; do echo orphan >> "$0/out/out.txt"; sleep 0.05; done' "$PWD" </dev/null >/dev/null 2>&1 & fi
    with:
      cmd: if [ -f %[1]s/m2 ]; then printf 'a\nb\nc\n' > out.txt; sleep 0.3; else touch %[1]s/m2; sleep 0.5; exit 1; fi
      outs: [out.txt]
`, dir))
	r := vox(t, dir, "run", "o.yaml", "--plain")
	if r.code != 0 || !strings.Contains(r.stdout, "1 executed") {
		t.Fatalf("run with one retry:\n%s", r)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); syscall.Kill(pid, 0) != nil {
		t.Fatalf("the orphan %d did not outlive its job; the test proves nothing", pid)
	}
	if got := slurmStoredFile(t, dir, "e2eorphan_w", "out.txt"); got != "a\nb\nc\n" {
		t.Errorf("stored out.txt = %q; want exactly the retry's 3 lines", got)
	}
	// Both attempts are kept, with files that exist.
	r = vox(t, dir, "log", "e2eorphan_w", "--attempt", "1")
	if r.code != 0 || !strings.Contains(r.stdout, "ended: FAILED") || !strings.Contains(r.stdout, "exit status 1") {
		t.Errorf("log --attempt 1:\n%s", r)
	}
	for _, ln := range strings.Split(r.stdout, "\n") {
		if p, ok := strings.CutPrefix(ln, "script: "); ok {
			if _, err := os.Stat(p); err != nil {
				t.Errorf("attempt 1's job script: %v", err)
			}
		}
	}
	if r := vox(t, dir, "log", "e2eorphan_w", "--attempt", "2"); r.code != 0 || !strings.Contains(r.stdout, "ended: COMPLETED") {
		t.Errorf("log --attempt 2:\n%s", r)
	}
}

func TestSlurmFailedDetachedJobIsNotResubmitted(t *testing.T) {
	slurmtest.Require(t)
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "fd.yaml"), `name: slfd
stages:
  e2efdet_w:
    uses: command
    retries: 0
    with: {cmd: 'echo detached-failure; exit 5', outs: []}
`)
	r := vox(t, dir, "run", "fd.yaml", "--executor", "slurm", "--detach", "--plain")
	if r.code != 0 || !strings.Contains(r.stdout, "1 instance(s) submitted") {
		t.Fatalf("detached run:\n%s", r)
	}
	var id string
	waitFor(t, func() bool {
		for j, st := range dirJobs(t, dir) {
			id = j
			return st == "FAILED"
		}
		return false
	})
	r = vox(t, dir, "run", "fd.yaml", "--executor", "slurm", "--plain")
	if r.code != 1 || !strings.Contains(r.stderr, "slurm job "+id+" (attempt 1) ended FAILED") || strings.Contains(r.stderr, "e2efdet_w: e2efdet_w") {
		t.Fatalf("the next run must report the detached job's failure once, without resubmitting:\n%s", r)
	}
	if jobs := dirJobs(t, dir); len(jobs) != 1 {
		t.Errorf("slurm jobs for the key: %v; want only %s (retries: 0)", jobs, id)
	}
	r = vox(t, dir, "show", "e2efdet_w", "--json")
	if !strings.Contains(r.stdout, `"status": "failed"`) || !strings.Contains(r.stdout, "ended FAILED") {
		t.Errorf("the failure should be recorded:\n%s", r)
	}
	if r := vox(t, dir, "log", "e2efdet_w", "--attempt", "1"); !strings.Contains(r.stdout, "detached-failure") || !strings.Contains(r.stdout, "slurm job "+id) {
		t.Errorf("log --attempt 1 should show the job's log:\n%s", r)
	}
}
