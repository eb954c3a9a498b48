package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// voxBin is the voxflow binary under test, built once in TestMain: the
// reliability tests signal and kill real processes.
var voxBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "voxflow-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	voxBin = filepath.Join(dir, "voxflow")
	out, err := exec.Command("go", "build", "-o", voxBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build voxflow: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// vox runs the voxflow binary in dir.
func vox(t *testing.T, dir string, args ...string) result {
	t.Helper()
	cmd := exec.Command(voxBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "VOXFLOW_CACHE=")
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run voxflow: %v", err)
	}
	return result{so.String(), se.String(), code}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// countLines counts lines in a file that stages append to, to see how many
// times each stage really executed.
func countLines(t *testing.T, path, word string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if l == word {
			n++
		}
	}
	return n
}

const chainSpec = `name: chain
params: {greeting: hello}
stages:
  a:
    uses: command
    with:
      cmd: echo a >> "$TRACE"; echo ${params.greeting} > a.txt
      outs: [a.txt]
      env: {TRACE: %[1]s}
  b:
    uses: command
    inputs: {deps: a}
    with:
      cmd: echo b >> "$TRACE"; tr a-z A-Z < "$IN_a/a.txt" > b.txt
      outs: [b.txt]
      env: {TRACE: %[1]s}
  c:
    uses: command
    inputs: {deps: b}
    with:
      cmd: echo c >> "$TRACE"; wc -c < "$IN_b/b.txt" > c.txt
      outs: [c.txt]
      env: {TRACE: %[1]s}
variants:
  bye: {params.greeting: goodbye}
`

func TestRunCachePlanAndReuse(t *testing.T) {
	dir := t.TempDir()
	trace := filepath.Join(dir, "trace")
	specPath := filepath.Join(dir, "chain.yaml")
	writeFile(t, specPath, fmt.Sprintf(chainSpec, trace))

	r := vox(t, dir, "plan", "chain.yaml")
	if r.code != 0 || !strings.Contains(r.stdout, "never run") || !strings.Contains(r.stdout, "3 to run, 0 cached") {
		t.Fatalf("first plan:\n%s", r)
	}
	r = vox(t, dir, "run", "chain.yaml")
	if r.code != 0 || !strings.Contains(r.stdout, "3 executed, 0 cached") {
		t.Fatalf("first run:\n%s", r)
	}
	r = vox(t, dir, "run", "chain.yaml")
	if r.code != 0 || !strings.Contains(r.stdout, "0 executed, 3 cached") {
		t.Fatalf("second run should be fully cached:\n%s", r)
	}
	for _, s := range []string{"a", "b", "c"} {
		if n := countLines(t, trace, s); n != 1 {
			t.Errorf("stage %s executed %d times, want 1", s, n)
		}
	}

	// A variant changes a param of a: plan says why a reruns and that b
	// waits on it.
	r = vox(t, dir, "plan", "chain.yaml", "--variant", "bye")
	if r.code != 0 || !strings.Contains(r.stdout, `param cmd`) || !strings.Contains(r.stdout, "upstream a runs first") {
		t.Fatalf("plan with variant:\n%s", r)
	}
	r = vox(t, dir, "run", "chain.yaml", "--variant", "bye")
	if r.code != 0 || !strings.Contains(r.stdout, "3 executed") {
		t.Fatalf("variant run:\n%s", r)
	}
	// Same length output ("HELLO\n" vs "GOODBYE\n" differ): c reran too.
	// Now --set back to hello: everything is cached again.
	r = vox(t, dir, "run", "chain.yaml", "--set", "params.greeting=hello")
	if r.code != 0 || !strings.Contains(r.stdout, "0 executed, 3 cached") {
		t.Fatalf("--set back to the original value should reuse the first run:\n%s", r)
	}

	// Editing only c's command reruns c alone.
	edited := strings.Replace(fmt.Sprintf(chainSpec, trace), "wc -c <", "wc -c  <", 1)
	writeFile(t, specPath, edited)
	r = vox(t, dir, "plan", "chain.yaml", "--json")
	if r.code != 0 || strings.Count(r.stdout, `"action": "run"`) != 1 || !strings.Contains(r.stdout, `param cmd`) {
		t.Fatalf("plan after editing c:\n%s", r)
	}
	r = vox(t, dir, "run", "chain.yaml")
	if r.code != 0 || !strings.Contains(r.stdout, "1 executed, 2 cached") {
		t.Fatalf("run after editing c:\n%s", r)
	}

	// Inspection commands.
	r = vox(t, dir, "show", "c")
	if r.code != 0 || !strings.Contains(r.stdout, "c.txt") || !strings.Contains(r.stdout, "succeeded") {
		t.Fatalf("show:\n%s", r)
	}
	r = vox(t, dir, "status")
	if r.code != 0 || strings.Count(r.stdout, "chain") < 5 {
		t.Fatalf("status:\n%s", r)
	}
	r = vox(t, dir, "--force", "b")
	if r.code != 2 {
		t.Fatalf("unknown command should exit 2:\n%s", r)
	}
	r = vox(t, dir, "run", "chain.yaml", "--force", "b")
	if r.code != 0 || !strings.Contains(r.stdout, "1 executed, 2 cached") {
		t.Fatalf("--force b reruns b only (c's input is unchanged):\n%s", r)
	}
}

func TestValidateReportsPositions(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "bad.yaml"), `name: bad
stages:
  a:
    uses: comand
  b:
    uses: command
    inputs: {deps: nowhere}
    with: {cmd: "true", timeout_s: 3}
`)
	r := vox(t, dir, "validate", "bad.yaml")
	if r.code != 1 {
		t.Fatalf("validate should exit 1:\n%s", r)
	}
	for _, want := range []string{"bad.yaml:4:", "comand", "command", "bad.yaml:7:", "nowhere", "bad.yaml:8:", "timeout_s"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("validate output lacks %q:\n%s", want, r)
		}
	}
	writeFile(t, filepath.Join(dir, "good.yaml"), "name: good\nstages:\n  a: {uses: command, with: {cmd: 'true'}}\n")
	if r := vox(t, dir, "validate", "good.yaml"); r.code != 0 {
		t.Fatalf("valid spec:\n%s", r)
	}
}

func TestFailureKeepGoingAndLogTail(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "f.yaml"), `name: f
stages:
  bad:
    uses: command
    with: {cmd: 'for i in $(seq 1 30); do echo line$i; done; exit 3'}
  after_bad:
    uses: command
    inputs: {deps: bad}
    with: {cmd: 'echo never > x'}
  slow_ok:
    uses: command
    with: {cmd: 'sleep 1; echo ok > ok.txt', outs: [ok.txt]}
`)
	r := vox(t, dir, "run", "f.yaml", "-j", "1", "--plain")
	if r.code != 1 || !strings.Contains(r.stdout, "line30") || strings.Contains(r.stdout, "| line10") {
		t.Fatalf("failure should show the last 20 log lines only:\n%s", r)
	}
	r = vox(t, dir, "run", "f.yaml", "--keep-going", "--plain")
	if r.code != 1 || !strings.Contains(r.stdout, "1 failed, 1 skipped") {
		t.Fatalf("--keep-going should finish slow_ok and skip after_bad:\n%s", r)
	}
	if r := vox(t, dir, "log", "bad"); r.code != 0 || !strings.Contains(r.stdout, "line1\n") {
		t.Fatalf("log of a failed instance:\n%s", r)
	}
}

func TestTimeoutRetriesAndConfinement(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "marker")
	writeFile(t, filepath.Join(dir, "t.yaml"), fmt.Sprintf(`name: t
stages:
  hang:
    uses: command
    timeout: 1s
    with: {cmd: 'sleep 30'}
  flaky:
    uses: command
    retries: 1
    with: {cmd: 'if [ -e %[1]s ]; then echo ok > out; else touch %[1]s; exit 1; fi', outs: [out]}
  escape:
    uses: command
    with: {cmd: 'echo x > ../x', outs: ['../x']}
`, marker))
	start := time.Now()
	r := vox(t, dir, "run", "t.yaml", "--keep-going", "--plain")
	if time.Since(start) > 20*time.Second {
		t.Errorf("timeout did not stop the hanging stage")
	}
	if r.code != 1 || !strings.Contains(r.stdout+r.stderr, "timed out") {
		t.Fatalf("hang should time out:\n%s", r)
	}
	if !strings.Contains(r.stdout+r.stderr, "escapes the stage's output directory") {
		t.Fatalf("an output path with .. must be rejected:\n%s", r)
	}
	if strings.Contains(r.stderr, "flaky:") {
		t.Fatalf("flaky should succeed on its retry:\n%s", r)
	}
}

func TestSIGINTInterruptsAndResumes(t *testing.T) {
	dir := t.TempDir()
	trace := filepath.Join(dir, "trace")
	writeFile(t, filepath.Join(dir, "s.yaml"), fmt.Sprintf(`name: s
stages:
  quick:
    uses: command
    with: {cmd: 'echo quick >> %[1]s; echo q > q'}
  slow:
    uses: command
    with: {cmd: 'echo slow >> %[1]s; sleep 30; echo s > s'}
`, trace))
	cmd := exec.Command(voxBin, "run", "s.yaml", "--plain")
	cmd.Dir = dir
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		return countLines(t, trace, "slow") == 1 && strings.Contains(out.String(), "done     quick")
	})
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("SIGINT should exit 130, got %v\n%s", err, out.String())
	}
	// The totals line and the summary agree: interrupted, not failed.
	if o := out.String(); !strings.Contains(o, "0 failed, 1 interrupted") || !strings.Contains(o, "interrupted: 1 executed, 0 cached, 0 failed") {
		t.Fatalf("totals and summary should both say interrupted:\n%s", o)
	}
	r := vox(t, dir, "status")
	if !strings.Contains(r.stdout, "interrupted") {
		t.Fatalf("status should show the interrupted run:\n%s", r)
	}
	// The next run reuses quick and redoes slow (made fast now).
	writeFile(t, filepath.Join(dir, "s.yaml"), strings.Replace(readFile(t, filepath.Join(dir, "s.yaml")), "sleep 30", "sleep 0", 1))
	r = vox(t, dir, "run", "s.yaml")
	if r.code != 0 || !strings.Contains(r.stdout, "1 executed, 1 cached") {
		t.Fatalf("resume after SIGINT:\n%s", r)
	}
	if n := countLines(t, trace, "quick"); n != 1 {
		t.Fatalf("quick ran %d times", n)
	}
}

func TestSIGKILLLeavesCacheConsistent(t *testing.T) {
	dir := t.TempDir()
	trace := filepath.Join(dir, "trace")
	writeFile(t, filepath.Join(dir, "k.yaml"), fmt.Sprintf(`name: k
stages:
  done_first:
    uses: command
    with: {cmd: 'echo first >> %[1]s; echo 1 > one'}
  victim:
    uses: command
    inputs: {deps: done_first}
    with: {cmd: 'echo victim >> %[1]s; head -c 3000000 /dev/zero > big; sleep ${params.nap}; echo ok > ok', outs: [ok]}
params: {nap: 30}
`, trace))
	cmd := exec.Command(voxBin, "run", "k.yaml", "--plain")
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return countLines(t, trace, "victim") == 1 })
	time.Sleep(200 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	// The killed run's process is gone: status says died, not running.
	r := vox(t, dir, "status")
	if r.code != 0 || !strings.Contains(r.stdout, "died") || strings.Contains(r.stdout, "running") {
		t.Fatalf("status after SIGKILL should show the run as died:\n%s", r)
	}
	// No object holds the victim's partial output, and the store verifies.
	r = vox(t, dir, "cache", "verify")
	if r.code != 0 {
		t.Fatalf("cache verify after SIGKILL:\n%s", r)
	}
	r = vox(t, dir, "run", "k.yaml", "--set", "params.nap=0")
	if r.code != 0 || !strings.Contains(r.stdout, "1 executed, 1 cached") {
		t.Fatalf("rerun after SIGKILL should redo only the victim:\n%s", r)
	}
	if n := countLines(t, trace, "first"); n != 1 {
		t.Fatalf("completed stage ran %d times", n)
	}
}

func TestConcurrentRunsShareOneCache(t *testing.T) {
	dir := t.TempDir()
	trace := filepath.Join(dir, "trace")
	var b strings.Builder
	fmt.Fprintf(&b, "name: conc\nstages:\n")
	for i := 0; i < 6; i++ {
		fmt.Fprintf(&b, "  s%d:\n    uses: command\n    with: {cmd: 'echo s%d >> %s; sleep 0.3; echo %d > out', outs: [out]}\n", i, i, trace, i)
	}
	fmt.Fprintf(&b, "  join:\n    uses: command\n    inputs: {deps: [s0, s1, s2, s3, s4, s5]}\n    with: {cmd: 'echo join >> %s; cat $IN_s0/out $IN_s5/out > all'}\n", trace)
	writeFile(t, filepath.Join(dir, "c.yaml"), b.String())
	var wg sync.WaitGroup
	res := make([]result, 2)
	for i := range res {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = vox(t, dir, "run", "c.yaml", "--plain", "-j", "3")
		}()
	}
	wg.Wait()
	for i, r := range res {
		if r.code != 0 {
			t.Fatalf("run %d:\n%s", i, r)
		}
	}
	for i := 0; i < 6; i++ {
		if n := countLines(t, trace, fmt.Sprintf("s%d", i)); n != 1 {
			t.Errorf("s%d executed %d times across two concurrent runs, want 1", i, n)
		}
	}
	if n := countLines(t, trace, "join"); n != 1 {
		t.Errorf("join executed %d times, want 1", n)
	}
	if r := vox(t, dir, "cache", "verify"); r.code != 0 {
		t.Fatalf("verify:\n%s", r)
	}
}

func TestVerifyInvalidatesCorruptObjects(t *testing.T) {
	dir := t.TempDir()
	trace := filepath.Join(dir, "trace")
	writeFile(t, filepath.Join(dir, "v.yaml"), fmt.Sprintf(`name: v
stages:
  a:
    uses: command
    with: {cmd: 'echo a >> %s; echo payload-a > a.txt', outs: [a.txt]}
`, trace))
	if r := vox(t, dir, "run", "v.yaml"); r.code != 0 {
		t.Fatalf("run:\n%s", r)
	}
	// Corrupt the stored a.txt behind voxflow's back.
	var victim string
	filepath.WalkDir(filepath.Join(dir, ".voxflow", "objects"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, _ := os.ReadFile(p); string(b) == "payload-a\n" {
				victim = p
			}
		}
		return nil
	})
	if victim == "" {
		t.Fatal("stored object for a.txt not found")
	}
	os.Chmod(victim, 0o644)
	writeFile(t, victim, "tampered\n")
	r := vox(t, dir, "cache", "verify")
	if r.code != 1 || !strings.Contains(r.stdout, "1 corrupt") {
		t.Fatalf("verify should report the corrupt object:\n%s", r)
	}
	r = vox(t, dir, "run", "v.yaml")
	if r.code != 0 || !strings.Contains(r.stdout, "1 executed") {
		t.Fatalf("the next run recomputes the invalidated stage:\n%s", r)
	}
	if r := vox(t, dir, "gc", "--keep-last", "1"); r.code != 0 {
		t.Fatalf("gc:\n%s", r)
	}
	if r := vox(t, dir, "run", "v.yaml"); r.code != 0 || !strings.Contains(r.stdout, "0 executed, 1 cached") {
		t.Fatalf("gc must keep the newest run's objects:\n%s", r)
	}
}

// lockedBuffer is a bytes.Buffer safe for a process writing while the
// test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestResourcesBoundLocalRuns(t *testing.T) {
	dir := t.TempDir()
	trace := filepath.Join(dir, "trace")
	writeFile(t, filepath.Join(dir, "r.yaml"), fmt.Sprintf(`name: r
stages:
  gpu:
    uses: command
    resources: {gpus: 1}
    with: {cmd: 'true'}
  big1:
    uses: command
    resources: {cpus: 2, memory: 1GiB}
    with: {cmd: 'echo start >> %[1]s; sleep 0.5; echo end >> %[1]s'}
  big2:
    uses: command
    resources: {cpus: 2, memory: 1GiB}
    with: {cmd: 'echo start >> %[1]s; sleep 0.5; echo end >> %[1]s; echo 2 > two'}
`, trace))
	r := vox(t, dir, "run", "r.yaml", "--keep-going", "--plain", "--cpus", "2", "-j", "4")
	if r.code != 1 || !strings.Contains(r.stdout+r.stderr, "needs 1 GPU(s), this run has 0") {
		t.Fatalf("a GPU stage on a GPU-less run must fail clearly:\n%s", r)
	}
	// Two 2-CPU stages on a 2-CPU budget run one after the other.
	if got := readFile(t, trace); got != "start\nend\nstart\nend\n" {
		t.Fatalf("CPU budget not respected, trace:\n%s", got)
	}
	r = vox(t, dir, "run", "r.yaml", "--plain", "--gpus", "1", "--memory", "512MiB", "--force", "big1")
	if r.code != 1 || !strings.Contains(r.stdout+r.stderr, "needs 1024 MB of memory, this run allows 512 MB") {
		t.Fatalf("memory budget:\n%s", r)
	}
}
