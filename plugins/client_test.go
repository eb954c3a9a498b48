package plugins_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/voxflow/voxflow/plugins"
	"github.com/voxflow/voxflow/plugins/internal/teststages"
	"github.com/voxflow/voxflow/stages"
)

func open(t *testing.T) *plugins.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := plugins.Open(ctx, filepath.Join(bin, "testplugin"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func stage(t *testing.T, c *plugins.Client, kind string) stages.Stage {
	t.Helper()
	return stageOf(t, c, kind)
}

// recorder collects a run's progress and log.
type recorder struct {
	mu      sync.Mutex
	updates []stages.Update
	log     strings.Builder
	started chan struct{}
	once    sync.Once
}

func newRecorder() *recorder { return &recorder{started: make(chan struct{})} }

func (r *recorder) Update(u stages.Update) {
	r.mu.Lock()
	r.updates = append(r.updates, u)
	r.mu.Unlock()
	r.once.Do(func() { close(r.started) })
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.log.Write(p)
}

func (r *recorder) request(t *testing.T, params stages.Params) *stages.Request {
	return &stages.Request{Instance: t.Name(), OutDir: t.TempDir(), Params: params, Progress: r, Log: r}
}

func TestDescribeMatchesTheStagesServed(t *testing.T) {
	descs, digest, err := plugins.Describe(context.Background(), filepath.Join(bin, "testplugin"))
	if err != nil {
		t.Fatal(err)
	}
	var want []stages.Description
	for _, s := range teststages.All() {
		want = append(want, s.Describe())
	}
	if !reflect.DeepEqual(descs, want) {
		t.Errorf("descriptions over the wire:\n got %+v\nwant %+v", descs, want)
	}
	fileDigest, err := plugins.FileDigest(filepath.Join(bin, "testplugin"))
	if err != nil {
		t.Fatal(err)
	}
	if digest != fileDigest || !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(digest) {
		t.Errorf("digest %q, want the file's hex BLAKE3 %q", digest, fileDigest)
	}
	other, _ := plugins.FileDigest(filepath.Join(bin, "oldplugin"))
	if other == digest {
		t.Error("two different binaries have one digest")
	}
}

func TestRunCarriesTheRequestAndStreamsProgressAndLog(t *testing.T) {
	c := open(t)
	rec := newRecorder()
	req := rec.request(t, stages.Params{
		"n": int64(3), "x": 2.0, "s": "b", "fail": false,
		"xs": []any{0.5, 1.0}, "m": map[string]any{"k": int64(1)}, "opt": nil,
	})
	req.Inputs = map[string][]stages.Artifact{"in": {
		{Path: "/store/a", Stage: "features", Output: "features", Labels: map[string]string{"roi": "FFA-1"}, Digest: "d1"},
		{Path: "/store/b", Stage: "tune_cl"},
	}}
	req.Labels = map[string]string{"subject": "subj01"}
	req.Resources = stages.Resources{CPUs: 2, MemoryMB: 512, GPUs: 1}
	if err := stage(t, c, "echo").Run(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(req.OutDir, "request.json"))
	if err != nil {
		t.Fatal(err)
	}
	var seen teststages.Seen
	if err := json.Unmarshal(b, &seen); err != nil {
		t.Fatal(err)
	}
	wantTypes := map[string]string{
		"n": "int64", "x": "float64", "s": "string", "fail": "bool",
		"xs": "[]interface {}", "m": "map[string]interface {}", "opt": "<nil>",
	}
	if !reflect.DeepEqual(seen.ParamTypes, wantTypes) {
		t.Errorf("param types in the plugin: got %v, want %v", seen.ParamTypes, wantTypes)
	}
	if seen.Instance != req.Instance || seen.OutDir != req.OutDir || seen.Resources != req.Resources ||
		!reflect.DeepEqual(seen.Labels, req.Labels) {
		t.Errorf("plugin saw %+v", seen)
	}
	if len(seen.Inputs["in"]) != 2 || !reflect.DeepEqual(seen.Inputs["in"][0], req.Inputs["in"][0]) ||
		seen.Inputs["in"][1].Path != "/store/b" || seen.Inputs["in"][1].Stage != "tune_cl" {
		t.Errorf("plugin saw inputs %+v, want %+v", seen.Inputs, req.Inputs)
	}
	if len(rec.updates) != 3 || rec.updates[2] != (stages.Update{Phase: "echo", Done: 3, Total: 3, Unit: "step", Message: "step 3"}) {
		t.Errorf("progress updates %+v", rec.updates)
	}
	if !strings.Contains(rec.log.String(), "log line 1\nlog line 2\nlog line 3\n") {
		t.Errorf("log %q lacks the stage's lines", rec.log.String())
	}
}

func TestStageErrorIsNotAFault(t *testing.T) {
	c := open(t)
	rec := newRecorder()
	err := stage(t, c, "echo").Run(context.Background(), rec.request(t, stages.Params{"n": int64(0), "fail": true}))
	var se *plugins.StageError
	if !errors.As(err, &se) || se.Message != "echo failed as asked" || se.Kind != "echo" {
		t.Fatalf("want a StageError with the stage's message, got %v", err)
	}
}

func TestConcurrentRunsInOneProcess(t *testing.T) {
	c := open(t)
	echo := stage(t, c, "echo")
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := newRecorder()
			req := rec.request(t, stages.Params{"n": int64(i), "fail": false})
			errs[i] = echo.Run(context.Background(), req)
			if errs[i] == nil && len(rec.updates) != i {
				errs[i] = errors.New("run " + strconv.Itoa(i) + " got another run's progress")
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("run %d: %v", i, err)
		}
	}
}

func TestPanicInRunFailsTheRunOnly(t *testing.T) {
	c := open(t)
	rec := newRecorder()
	err := stage(t, c, "panic").Run(context.Background(), rec.request(t, stages.Params{}))
	var se *plugins.StageError
	if !errors.As(err, &se) || !strings.Contains(se.Message, "stage panicked: boom in Run") ||
		strings.Contains(se.Message, "\n") {
		t.Fatalf("want a one-line StageError naming the panic, got %v", err)
	}
	// The stack is in the stage's log, not in the error.
	rec.mu.Lock()
	logText := rec.log.String()
	rec.mu.Unlock()
	if !strings.Contains(logText, "stage panicked: boom in Run") || !strings.Contains(logText, "teststages.go") {
		t.Fatalf("the stage's log lacks the panic's stack:\n%s", logText)
	}
	if err := stage(t, c, "noop").Run(context.Background(), newRecorder().request(t, nil)); err != nil {
		t.Fatalf("plugin unusable after a recovered panic: %v", err)
	}
}

// fault runs kind and returns its FaultError, checking the common shape.
func fault(t *testing.T, c *plugins.Client, ctx context.Context, kind string, during func()) *plugins.FaultError {
	t.Helper()
	rec := newRecorder()
	done := make(chan error, 1)
	go func() { done <- stage(t, c, kind).Run(ctx, rec.request(t, stages.Params{})) }()
	if during != nil {
		select {
		case <-rec.started:
		case <-time.After(20 * time.Second):
			t.Fatal("stage never started")
		}
		during()
	}
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return")
	}
	var fe *plugins.FaultError
	if !errors.As(err, &fe) {
		t.Fatalf("want a FaultError, got %T %v", err, err)
	}
	if fe.Pid != c.Pid() || !strings.Contains(err.Error(), "testplugin (pid "+strconv.Itoa(c.Pid())+"): run "+kind) {
		t.Errorf("error does not name the plugin, pid and kind: %v", err)
	}
	// The plugin's stderr is in the stage's log; the error is one line.
	if strings.Contains(err.Error(), "\n") || len(err.Error()) > 4<<10 {
		t.Errorf("a run's fault is not one readable line: %v", err)
	}
	rec.mu.Lock()
	logText := rec.log.String()
	rec.mu.Unlock()
	if !strings.Contains(logText, kind+": starting "+t.Name()) {
		t.Errorf("the stage's log lacks the plugin's stderr line; log:\n%s", logText)
	}
	return fe
}

func TestPluginCrashInGoroutine(t *testing.T) {
	c := open(t)
	fe := fault(t, c, context.Background(), "crash", nil)
	if fe.Exit != "exit status 2" {
		t.Errorf("exit %q, want exit status 2 (Go's panic exit)", fe.Exit)
	}
	if !strings.Contains(fe.Error(), "panic: boom in a goroutine") {
		t.Errorf("tail lacks the panic line: %v", fe)
	}
}

func TestPluginExitsMidRun(t *testing.T) {
	c := open(t)
	fe := fault(t, c, context.Background(), "exit", nil)
	if fe.Exit != "exit status 7" || !strings.Contains(fe.Error(), "plugin process ended (exit status 7)") {
		t.Errorf("exit %q; error %v", fe.Exit, fe)
	}
	if !strings.Contains(fe.Error(), "exit: giving up with status 7") {
		t.Errorf("tail lacks the last line before exit: %v", fe)
	}
}

func TestPluginSIGKILLed(t *testing.T) {
	c := open(t)
	fe := fault(t, c, context.Background(), "hang", func() {
		if err := syscall.Kill(c.Pid(), syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	})
	if fe.Exit != "signal: killed" {
		t.Errorf("exit %q, want signal: killed; error %v", fe.Exit, fe)
	}
}

func TestPluginHangsPastTimeout(t *testing.T) {
	c := open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	fe := fault(t, c, ctx, "hang", nil)
	if !errors.Is(fe, context.DeadlineExceeded) || !strings.Contains(fe.Error(), "timed out") {
		t.Errorf("want a timeout naming context.DeadlineExceeded, got %v", fe)
	}
	if fe.Exit != "" || c.Exited() {
		t.Errorf("plugin ended on a timeout: %q", fe.Exit)
	}
	pid := c.Pid()
	c.Close()
	waitGone(t, pid)
}

func TestCancelReachesTheStageInThePlugin(t *testing.T) {
	c := open(t)
	ctx, cancel := context.WithCancel(context.Background())
	rec := newRecorder()
	req := rec.request(t, stages.Params{})
	done := make(chan error, 1)
	go func() { done <- stage(t, c, "sleep").Run(ctx, req) }()
	<-rec.started
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(req.OutDir, "cancelled"))
		if err == nil {
			if string(b) != context.Canceled.Error() {
				t.Errorf("stage saw %q", b)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the stage in the plugin never saw its context cancelled")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestOtherProtocolVersionIsRefused(t *testing.T) {
	_, err := plugins.Open(context.Background(), filepath.Join(bin, "oldplugin"))
	if err == nil {
		t.Fatal("a plugin of protocol 99 was accepted")
	}
	for _, want := range []string{"oldplugin", "Plugin version: 99", "(protocol 1)", "rebuild"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

func TestNotAPlugin(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "voxflow-fake")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho 'no handshake here' >&2\nexit 4\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := plugins.Open(context.Background(), script)
	if err == nil || !strings.Contains(err.Error(), "no handshake here") {
		t.Fatalf("want a start error with the stderr tail, got %v", err)
	}
}

// waitGone waits until pid is no process or a zombie (reparented zombies
// wait on a reaper the test does not control).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return
		}
		// The state follows the parenthesised command name.
		if f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:])); len(f) > 0 && f[0] == "Z" {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("plugin process %d still alive", pid)
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

func TestPluginDiesWithHost(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			host := exec.Command(filepath.Join(bin, "testhost"), filepath.Join(bin, "testplugin"), t.TempDir())
			host.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
			var stderr strings.Builder
			host.Stderr = &stderr
			out, err := host.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := host.Start(); err != nil {
				t.Fatal(err)
			}
			lines := bufio.NewScanner(out)
			pidc := make(chan int, 1)
			go func() {
				if lines.Scan() {
					var pid int
					if _, err := fmtSscanf(lines.Text(), &pid); err == nil {
						pidc <- pid
					}
				}
				close(pidc)
			}()
			var pid int
			select {
			case pid = <-pidc:
			case <-time.After(30 * time.Second):
			}
			if pid == 0 {
				_ = host.Process.Kill()
				_ = host.Wait()
				t.Fatalf("host printed no plugin pid; stderr:\n%s", stderr.String())
			}
			if err := host.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			_ = host.Wait()
			waitGone(t, pid)
			if sig == syscall.SIGINT && host.ProcessState.ExitCode() != 0 {
				t.Errorf("host did not shut down cleanly on SIGINT: %v\n%s", host.ProcessState, stderr.String())
			}
		})
	}
}

func fmtSscanf(s string, pid *int) (int, error) {
	v, err := strconv.Atoi(strings.TrimPrefix(s, "pid "))
	*pid = v
	return 1, err
}

func TestOpenHonoursItsContext(t *testing.T) {
	dir := t.TempDir()
	slow := filepath.Join(dir, "voxflow-slow")
	// A plugin that never answers the handshake.
	if err := os.WriteFile(slow, []byte("#!/bin/sh\necho 'starting slowly' >&2\nexec sleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := plugins.Open(ctx, slow)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want a deadline error, got %v", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("Open returned %v after its context expired", time.Since(start))
	}
}
