package procgroup_test

import (
	"context"
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

	"github.com/voxflow/voxflow/internal/procgroup"
)

// parentEnv makes the test binary play a caller that the test SIGKILLs:
// it runs the variable's script under a supervisor and never returns.
const parentEnv = "PROCGROUP_TEST_PARENT_SCRIPT"

func TestMain(m *testing.M) {
	if script := os.Getenv(parentEnv); script != "" {
		err := procgroup.Run(context.Background(), exec.Command("sh", "-c", script), procgroup.Options{Grace: 200 * time.Millisecond})
		fmt.Fprintln(os.Stderr, "parent: Run returned:", err)
		os.Exit(3)
	}
	os.Exit(m.Run())
}

// writer is a background subshell that appends a line every 50 ms to
// $1/lines and ignores SIGTERM, as a careless tool would; its pid goes to
// $1/bg.pid.
const writer = `(trap '' TERM; while :; do echo x >> "$D/lines"; sleep 0.05; done) & echo $! > "$D/bg.pid"; `

func command(dir, script string) *exec.Cmd {
	cmd := exec.Command("sh", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "D="+dir)
	return cmd
}

// readPid waits (bounded) for a pid file and returns its pid.
func readPid(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err == nil && strings.HasSuffix(string(b), "\n") {
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never written", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// alive reports whether pid is a process that can still run: not gone and
// not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// lines counts the lines the background writer wrote so far.
func lines(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "lines"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

// assertSilent checks that nothing writes dir/lines any more.
func assertSilent(t *testing.T, dir string) {
	t.Helper()
	n := lines(t, dir)
	time.Sleep(200 * time.Millisecond)
	if m := lines(t, dir); m != n {
		t.Fatalf("the background writer still writes: %d lines, then %d", n, m)
	}
}

func TestLeftoversDieBeforeRunReturns(t *testing.T) {
	dir := t.TempDir()
	// One member ignores SIGTERM; another leaves the group with setsid
	// (its parent exits, so it is reparented to the supervisor).
	script := writer + `setsid sleep 30 & echo $! > "$D/esc.pid"; sleep 0.2; exit 0`
	start := time.Now()
	grace := 300 * time.Millisecond
	if err := procgroup.Run(context.Background(), command(dir, script), procgroup.Options{Grace: grace}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	took := time.Since(start)
	for _, f := range []string{"bg.pid", "esc.pid"} {
		if pid := readPid(t, filepath.Join(dir, f)); alive(pid) {
			t.Errorf("%s: process %d outlived Run", f, pid)
		}
	}
	if took < grace || took > grace+3*time.Second {
		t.Errorf("Run took %s; want the grace period (%s) plus a little, as one member ignores SIGTERM", took, grace)
	}
	assertSilent(t, dir)
}

func TestCancelTakesTheGroupDown(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- procgroup.Run(ctx, command(dir, writer+`sleep 30 & echo $! > "$D/fg.pid"; wait`), procgroup.Options{Grace: 200 * time.Millisecond})
	}()
	bg, fg := readPid(t, filepath.Join(dir, "bg.pid")), readPid(t, filepath.Join(dir, "fg.pid"))
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancellation")
	}
	for _, pid := range []int{bg, fg} {
		if alive(pid) {
			t.Errorf("process %d outlived cancellation", pid)
		}
	}
	assertSilent(t, dir)
}

func TestCallerSIGKILLTakesTheGroupDown(t *testing.T) {
	dir := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	parent := exec.Command(self, "-test.run=^$")
	parent.Env = append(os.Environ(), "D="+dir, parentEnv+"="+writer+`sleep 30`)
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	bg := readPid(t, filepath.Join(dir, "bg.pid"))
	if err := parent.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = parent.Wait()
	deadline := time.Now().Add(procgroup.DefaultGrace + 5*time.Second)
	for alive(bg) {
		if time.Now().After(deadline) {
			t.Fatalf("background process %d outlived its SIGKILLed caller", bg)
		}
		time.Sleep(20 * time.Millisecond)
	}
	assertSilent(t, dir)
}

func TestExitStatusIsTheCommands(t *testing.T) {
	dir := t.TempDir()
	err := procgroup.Run(context.Background(), command(dir, "exit 7"), procgroup.Options{})
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Fatalf("Run = %v, want exit status 7", err)
	}
	err = procgroup.Run(context.Background(), command(dir, "kill -TERM $$"), procgroup.Options{})
	if !errors.As(err, &ee) {
		t.Fatalf("Run = %v, want death by SIGTERM", err)
	}
	if ws := ee.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Fatalf("Run = %v, want death by SIGTERM", err)
	}
	if err := procgroup.Run(context.Background(), exec.Command("/nonexistent/tool"), procgroup.Options{}); err == nil {
		t.Fatal("a missing program ran")
	}
}

func TestDirInUseWhileAMemberLives(t *testing.T) {
	dir := t.TempDir()
	if busy, err := procgroup.DirInUse(dir); err != nil || busy {
		t.Fatalf("fresh dir in use: %v %v", busy, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- procgroup.Run(ctx, command(dir, writer+"sleep 30"), procgroup.Options{Grace: 100 * time.Millisecond, HoldDir: true})
	}()
	readPid(t, filepath.Join(dir, "bg.pid"))
	if busy, err := procgroup.DirInUse(dir); err != nil || !busy {
		t.Fatalf("dir of a running command not in use: %v %v", busy, err)
	}
	cancel()
	<-done
	if busy, err := procgroup.DirInUse(dir); err != nil || busy {
		t.Fatalf("dir still in use after Run returned: %v %v", busy, err)
	}
	if busy, err := procgroup.DirInUse(filepath.Join(dir, "missing")); err != nil || busy {
		t.Fatalf("missing dir: %v %v", busy, err)
	}
}

// BenchmarkRun measures what the supervisor adds to a trivial command
// (compare BenchmarkPlainExec).
func BenchmarkRun(b *testing.B) {
	for b.Loop() {
		if err := procgroup.Run(context.Background(), exec.Command("true"), procgroup.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPlainExec is the same command without a supervisor.
func BenchmarkPlainExec(b *testing.B) {
	for b.Loop() {
		if err := exec.Command("true").Run(); err != nil {
			b.Fatal(err)
		}
	}
}
