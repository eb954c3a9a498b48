package slurm

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voxflow/voxflow/engine"
	"github.com/voxflow/voxflow/internal/jsonfile"
)

func TestDriverRegistersOptionsAndExecutors(t *testing.T) {
	d := Driver()
	x := engine.NewExecutors(engine.LocalDriver(), d)
	if got, err := x.Lookup("slurm"); err != nil || got.Name() != "slurm" {
		t.Fatalf("Lookup(slurm) = %v, %v", got, err)
	}
	var oe *engine.OptionError
	if err := d.CheckOptions(map[string]any{"partition": "gpu", "partiton": "gpu"}); !errors.As(err, &oe) || oe.Key != "partiton" || !strings.Contains(err.Error(), "want one of partition") {
		t.Errorf("CheckOptions with a typo: %v", err)
	}
	if err := d.CheckOptions(map[string]any{"partition": "gpu", "time": "90m"}); err != nil {
		t.Errorf("CheckOptions of valid options: %v", err)
	}
	if err := d.CheckOptions(map[string]any{"partition": "gpu", "retries": 2}); !errors.As(err, &oe) || oe.Key != "retries" || !strings.Contains(err.Error(), "on the stage") {
		t.Errorf("CheckOptions with retries, which belong to the stage: %v", err)
	}
	dir := t.TempDir()
	exe, err := d.New(engine.ExecutorConfig{Bin: "/bin/vf", Dir: dir})
	if e, ok := exe.(*Executor); err != nil || !ok || e.Dir != dir || e.Bin != "/bin/vf" {
		t.Errorf("New = %#v, %v", exe, err)
	}
	if exe, err := d.New(engine.ExecutorConfig{Dir: dir, Detach: true}); err != nil {
		t.Error(err)
	} else if _, ok := exe.(Detached); !ok {
		t.Errorf("New with Detach = %T; want Detached", exe)
	}
	if g, ok := d.(engine.ExecutorGuard).Guard(engine.ExecutorConfig{Dir: dir}).(Guard); !ok || g.Slurm.Dir != dir {
		t.Errorf("Guard = %#v", g)
	}
}

func TestDriverPendingJobsAndAttempts(t *testing.T) {
	dir := t.TempDir()
	d := Driver()
	kd := KeyDir(filepath.Join(dir, "k1"))
	if err := os.MkdirAll(string(kd.Attempt(1).Dir), 0o755); err != nil {
		t.Fatal(err)
	}
	sub := Submission{JobID: "41", Key: "k1", Instance: "a[x]", Attempt: 1, Dir: kd.Attempt(1).Dir, Submitted: time.Now()}
	if err := jsonfile.WriteAtomic(kd.Submission(), sub); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kd.Attempt(1).Log("41"), []byte("hello from the node\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A key some run recorded is not pending, and needs no squeue.
	jobs, err := d.(engine.PendingLister).PendingJobs(context.Background(), dir, func(k string) bool { return k == "k1" })
	if err != nil || len(jobs) != 0 {
		t.Errorf("PendingJobs of a recorded key = %v, %v", jobs, err)
	}
	aw := d.(engine.AttemptWriter)
	var b bytes.Buffer
	if err := aw.WriteAttempt(&b, dir, "k1", "a[x]", 1); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"a[x] attempt 1: slurm job 41", "ended: not seen by an engine yet", "script: " + kd.Attempt(1).Script(), "hello from the node"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("attempt 1 lacks %q:\n%s", want, b.String())
		}
	}
	if err := aw.WriteAttempt(&b, dir, "k1", "a[x]", 3); err == nil || errors.Is(err, engine.ErrNoAttempts) || !strings.Contains(err.Error(), "kept Slurm attempts: 1") {
		t.Errorf("attempt 3: %v", err)
	}
	if err := aw.WriteAttempt(&b, dir, "k2", "b", 1); !errors.Is(err, engine.ErrNoAttempts) {
		t.Errorf("a key with no attempts: %v; want ErrNoAttempts", err)
	}
}
