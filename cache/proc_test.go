package cache

import (
	"bufio"
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
)

// Tests that need a second process re-exec this test binary with
// helperEnv=<name>; TestMain then runs the helper instead of the tests.
const helperEnv = "VOXFLOW_CACHE_TEST_HELPER"

func TestMain(m *testing.M) {
	if name := os.Getenv(helperEnv); name != "" {
		if err := runHelper(name, os.Args[len(os.Args)-2:]); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// helper starts this binary as helper name with two arguments.
func helper(t *testing.T, name, a, b string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$", a, b)
	cmd.Env = append(os.Environ(), helperEnv+"="+name)
	cmd.Stderr = os.Stderr
	return cmd
}

func runHelper(name string, args []string) error {
	ctx := context.Background()
	dir, arg := args[0], args[1]
	switch name {
	case "put":
		// Put arg (a FIFO the test feeds and never closes) into dir.
		o, err := OpenObjects(dir)
		if err != nil {
			return err
		}
		_, err = o.PutFile(ctx, arg, false)
		return err
	case "lock":
		// Take lock arg, say so, then hold it until killed.
		o, err := OpenObjects(dir)
		if err != nil {
			return err
		}
		if _, err := o.Lock(ctx, Digest(arg)); err != nil {
			return err
		}
		fmt.Println("locked")
		select {}
	case "write":
		// Wait for the start file, then write arg executions with runs,
		// links, metrics and objects, each a separate transaction.
		n, err := strconv.Atoi(arg)
		if err != nil {
			return err
		}
		fmt.Println("ready")
		for {
			if _, err := os.Stat(filepath.Join(dir, "..", "go")); err == nil {
				break
			}
			time.Sleep(time.Millisecond)
		}
		s, err := Open(ctx, dir)
		if err != nil {
			return err
		}
		defer s.Close()
		run := &Run{Spec: "concurrent", Variant: strconv.Itoa(os.Getpid())}
		if _, err := s.BeginRun(ctx, run); err != nil {
			return err
		}
		for i := range n {
			out, err := s.PutBytes(ctx, fmt.Appendf(nil, "%d-%d", os.Getpid(), i))
			if err != nil {
				return err
			}
			e := &Execution{Key: HashBytes(fmt.Appendf(nil, "key %d", i)), RunID: run.ID, Spec: "concurrent",
				Instance: fmt.Sprintf("s[%d]", i), Status: StatusSucceeded, Output: out, Start: time.Now(), End: time.Now()}
			if _, err := s.RecordExecution(ctx, e); err != nil {
				return err
			}
			if err := s.LinkRun(ctx, run.ID, e.ID, false); err != nil {
				return err
			}
			if err := s.RecordMetrics(ctx, e.ID, map[string]float64{"i": float64(i), "pid": float64(os.Getpid())}); err != nil {
				return err
			}
			if _, ok, err := s.Lookup(ctx, e.Key); err != nil || !ok {
				return fmt.Errorf("lookup own execution: %v %v", ok, err)
			}
		}
		return s.EndRun(ctx, run.ID, StatusSucceeded)
	}
	return fmt.Errorf("unknown helper %q", name)
}

func TestPutKilledMidWriteLeavesNoObject(t *testing.T) {
	ctx := context.Background()
	dir := storeDir(t)
	fifo := filepath.Join(t.TempDir(), "big.npy")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	child := helper(t, "put", dir, fifo)
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer child.Process.Kill()
	// O_RDWR never blocks on a FIFO, and keeping it open means the child
	// never sees EOF: it is guaranteed to be mid-copy when killed.
	w, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i * 7)
	}
	const total = 48
	for range total {
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	// Wait until the temp file holds most of what was sent.
	deadline := time.Now().Add(30 * time.Second)
	var partial int64
	for partial < (total-2)<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("temp file only reached %d bytes", partial)
		}
		time.Sleep(5 * time.Millisecond)
		ents, _ := os.ReadDir(filepath.Join(dir, "tmp"))
		for _, e := range ents {
			if fi, err := e.Info(); err == nil {
				partial = fi.Size()
			}
		}
	}
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = child.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v", err)
	}

	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := 0
	s.List(ctx, func(ObjectInfo) error { n++; return nil })
	if n != 0 {
		t.Fatalf("%d objects visible after a killed put", n)
	}
	rep, err := s.Verify(ctx, nil)
	if err != nil || rep.Checked != 0 || len(rep.Corrupt) != 0 || len(rep.Invalidated) != 0 {
		t.Fatalf("Verify after killed put = %+v, %v", rep, err)
	}
	// The partial temp file is young: GC keeps it within Grace, removes it
	// after.
	if g, err := s.GC(ctx, 0); err != nil || g.RemovedTemp != 0 {
		t.Fatalf("GC within grace = %+v, %v", g, err)
	}
	s.Grace = 0
	if g, err := s.GC(ctx, 0); err != nil || g.RemovedTemp != 1 {
		t.Fatalf("GC after grace = %+v, %v", g, err)
	}
	// The same content put whole now lands under the right name.
	full := filepath.Join(t.TempDir(), "full.npy")
	f, _ := os.Create(full)
	for range total {
		f.Write(chunk)
	}
	f.Close()
	d, err := s.PutFile(ctx, full, false)
	if err != nil {
		t.Fatal(err)
	}
	if want, _, _ := HashFile(full); d != want {
		t.Fatalf("digest %s, want %s", d, want)
	}
}

func TestLockReleasedWhenHolderKilled(t *testing.T) {
	dir := storeDir(t)
	o, err := OpenObjects(dir)
	if err != nil {
		t.Fatal(err)
	}
	key := HashBytes([]byte("tune_cl[subj01,FFA-1]"))
	child := helper(t, "lock", dir, string(key))
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer child.Process.Kill()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "locked" {
		t.Fatalf("child said %q, %v", line, err)
	}

	if _, ok, err := o.TryLock(key); err != nil || ok {
		t.Fatalf("TryLock while held elsewhere = %v, %v", ok, err)
	}
	// Another key is independent.
	if unlock, ok, err := o.TryLock(HashBytes([]byte("other"))); err != nil || !ok {
		t.Fatalf("TryLock other key = %v, %v", ok, err)
	} else {
		unlock()
	}
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	_, err = o.Lock(short, key)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock with expiring ctx: %v", err)
	}

	type result struct {
		unlock func()
		err    error
	}
	got := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		u, err := o.Lock(ctx, key)
		got <- result{u, err}
	}()
	select {
	case r := <-got:
		t.Fatalf("Lock returned while the holder lives: %v", r.err)
	default:
	}
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	r := <-got
	if r.err != nil {
		t.Fatalf("Lock after holder died: %v", r.err)
	}
	// Held by this process now: a second descriptor is refused too.
	if _, ok, _ := o.TryLock(key); ok {
		t.Fatal("TryLock succeeded while this process holds the lock")
	}
	r.unlock()
	r.unlock() // idempotent
	unlock, ok, err := o.TryLock(key)
	if err != nil || !ok {
		t.Fatalf("TryLock after unlock = %v, %v", ok, err)
	}
	unlock()
	if _, _, err := o.TryLock("../../etc/passwd"); err == nil {
		t.Error("TryLock accepted a non-digest key")
	}
}

func TestTwoProcessesWriteConcurrently(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	dir := filepath.Join(base, ".voxflow")
	t.Cleanup(func() { removeTree(filepath.Join(dir, "trees")) })
	const n = 300
	var kids []*exec.Cmd
	for range 2 {
		c := helper(t, "write", dir, strconv.Itoa(n))
		out, err := c.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		defer c.Process.Kill()
		if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
			t.Fatalf("helper said %q, %v", line, err)
		}
		kids = append(kids, c)
	}
	// Both start at once, on a fresh directory: they race on creating and
	// migrating index.db too.
	if err := os.WriteFile(filepath.Join(base, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for i, c := range kids {
		if err := c.Wait(); err != nil {
			t.Fatalf("writer %d: %v", i, err)
		}
	}
	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	runs, err := s.Runs(ctx, 0)
	if err != nil || len(runs) != 2 {
		t.Fatalf("Runs = %d, %v", len(runs), err)
	}
	for _, r := range runs {
		if r.Status != StatusSucceeded {
			t.Errorf("run %d status %s", r.ID, r.Status)
		}
		res, err := s.RunExecutions(ctx, r.ID)
		if err != nil || len(res) != n {
			t.Fatalf("run %d has %d executions, %v", r.ID, len(res), err)
		}
		t.Logf("run %d: executions %d..%d", r.ID, res[0].ID, res[n-1].ID)
		m, err := s.Metrics(ctx, res[n-1].ID)
		if err != nil || m["i"] != n-1 || m["pid"] != float64(r.PID) {
			t.Errorf("metrics of last execution of run %d = %v, %v", r.ID, m, err)
		}
	}
	all, err := s.FindExecutions(ctx, "concurrent", "s[", 0)
	if err != nil || len(all) != 2*n {
		t.Fatalf("FindExecutions = %d, %v", len(all), err)
	}
	if v, err := s.Version(ctx); err != nil || v != SchemaVersion {
		t.Errorf("schema version %d, %v", v, err)
	}
}
