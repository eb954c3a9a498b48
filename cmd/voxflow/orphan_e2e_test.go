package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// orphanTrials is how many times the orphaned-writer trial of issue 13 runs.
const orphanTrials = 5

// orphanSpec is a command stage whose work runs in a background subshell,
// as most tools' does: 20 lines, one per 50 ms, into $OUT/out.txt (by
// absolute path, as tools write, so a leftover writer reaches a directory
// that a rerun recreates at the same path). The subshell's pid is appended
// to %[1]s. A second stage copies the stored out.txt, as its consumers get
// it, to %[2]s.
const orphanSpec = `name: orphan
stages:
  writer:
    uses: command
    with:
      cmd: '(for i in $(seq 1 20); do echo $i >> "$OUT/out.txt"; sleep 0.05; done) & echo $! >> %[1]s; wait'
      outs: [out.txt]
  reader:
    uses: command
    inputs: {deps: writer}
    with: {cmd: 'cp "$IN_writer/out.txt" %[2]s'}
`

// TestKilledRunLeavesNoWriter is the orphan trial: SIGKILL voxflow while
// the subshell writes, rerun at once, and the stored out.txt must be exactly
// the rerun's 20 lines, while the killed run's subshell must be gone.
func TestKilledRunLeavesNoWriter(t *testing.T) {
	want := ""
	for i := 1; i <= 20; i++ {
		want += strconv.Itoa(i) + "\n"
	}
	for trial := range orphanTrials {
		dir := t.TempDir()
		pids := filepath.Join(dir, "pids")
		stored := filepath.Join(dir, "stored.txt")
		writeFile(t, filepath.Join(dir, "o.yaml"), fmt.Sprintf(orphanSpec, pids, stored))
		cmd := exec.Command(voxBin, "run", "o.yaml", "--plain")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "VOXFLOW_CACHE=")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		orphan := waitPidLine(t, pids, 0)
		time.Sleep(150 * time.Millisecond) // a few lines in
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		// No waiting for the orphan: the rerun starts while it may still run.
		if r := vox(t, dir, "run", "o.yaml", "--plain"); r.code != 0 || !strings.Contains(r.stdout, "2 executed") {
			t.Fatalf("trial %d: rerun:\n%s", trial, r)
		}
		if got := readFile(t, stored); got != want {
			t.Errorf("trial %d: stored out.txt has %d lines, want the rerun's 20:\n%s", trial, strings.Count(got, "\n"), got)
		}
		if pidRunning(orphan) {
			t.Errorf("trial %d: the killed run's writer (pid %d) still runs", trial, orphan)
		}
		// The rerun removed its own attempt's directory. The killed one's
		// may remain, when its supervisor was still stopping the writer as
		// the rerun started (attempt names carry the creator's pid).
		left, _ := filepath.Glob(filepath.Join(dir, ".voxflow", "work", "*", "*"))
		for _, l := range left {
			if !strings.Contains(filepath.Base(l), fmt.Sprintf("-%d-", cmd.Process.Pid)) {
				t.Errorf("trial %d: the rerun left its work directory %s", trial, l)
			}
		}
	}
	t.Logf("%d orphan trials run", orphanTrials)
}

// TestInterruptAndTimeoutKillBackgroundChildren: Ctrl-C and a stage's
// timeout take down what the command left running in the background,
// before voxflow exits.
func TestInterruptAndTimeoutKillBackgroundChildren(t *testing.T) {
	dir := t.TempDir()
	pids := filepath.Join(dir, "pids")
	writeFile(t, filepath.Join(dir, "bg.yaml"), fmt.Sprintf(`name: bg
stages:
  slow:
    uses: command
    with: {cmd: 'sleep 30 & echo $! >> %[1]s; wait'}
  capped:
    uses: command
    timeout: 1s
    with: {cmd: '(sleep 30; echo late > late.txt) & echo $! >> %[1]s; wait'}
`, pids))
	cmd := exec.Command(voxBin, "run", "bg.yaml", "--plain", "--keep-going", "-j", "2")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "VOXFLOW_CACHE=")
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	first, second := waitPidLine(t, pids, 0), waitPidLine(t, pids, 1)
	// The timeout fires after 1 s; Ctrl-C the other stage after that.
	waitFor(t, func() bool { return strings.Contains(out.String(), "timed out") })
	capped := first
	slow := second
	if !pidRunning(slow) {
		capped, slow = second, first
	}
	if pidRunning(capped) {
		t.Errorf("the timed-out stage's background child (pid %d) still runs", capped)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("SIGINT should exit 130, got %v\n%s", err, out.String())
	}
	if pidRunning(slow) {
		t.Errorf("the interrupted stage's background child (pid %d) outlived voxflow", slow)
	}
}

// waitPidLine waits for the i-th line of a pid file and returns it.
func waitPidLine(t *testing.T, path string, i int) int {
	t.Helper()
	var pid int
	waitFor(t, func() bool {
		b, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		lines := strings.Split(string(b), "\n")
		if len(lines) <= i+1 { // the i-th line is complete once a newline follows
			return false
		}
		pid, err = strconv.Atoi(lines[i])
		return err == nil
	})
	return pid
}

// pidRunning reports whether pid runs: it exists and is not a zombie.
func pidRunning(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// TestKilledRunLeavesNoWriterInPluginProcess: with `isolate: process` the
// command runs inside a plugin process (voxflow plugin-serve) under its own
// supervisor; SIGKILLing voxflow takes down the plugin's group, whose
// death takes down the command's.
func TestKilledRunLeavesNoWriterInPluginProcess(t *testing.T) {
	dir := t.TempDir()
	pids := filepath.Join(dir, "pids")
	writeFile(t, filepath.Join(dir, "p.yaml"), fmt.Sprintf(`name: iso
stages:
  writer:
    uses: command
    isolate: process
    with: {cmd: 'sleep 30 & echo $! >> %[1]s; wait'}
`, pids))
	cmd := exec.Command(voxBin, "run", "p.yaml", "--plain")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "VOXFLOW_CACHE=")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	child := waitPidLine(t, pids, 0)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for pidRunning(child) {
		if time.Now().After(deadline) {
			t.Fatalf("the command's background child (pid %d) outlived voxflow and its plugin process", child)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
