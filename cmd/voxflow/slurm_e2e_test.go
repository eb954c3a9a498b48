package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

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
