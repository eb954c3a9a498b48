package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/voxflow/voxflow/engine/spec"
	"github.com/voxflow/voxflow/stages"
)

// batchDriver is a second cluster executor that exists only in this test:
// registering it is all it takes for specs, Open, status and log to use it.
type batchDriver struct {
	checked []map[string]any // every map CheckOptions saw
	made    []ExecutorConfig // every config New got
	guarded []ExecutorConfig // every config Guard got
}

func (*batchDriver) Name() string { return "batch" }
func (*batchDriver) Doc() string  { return "a test batch queue" }

func (d *batchDriver) CheckOptions(opts map[string]any) error {
	d.checked = append(d.checked, opts)
	for k := range opts {
		if k != "queue" {
			return &OptionError{Key: k, Err: fmt.Errorf("batch option %q: unknown; want queue", k)}
		}
	}
	return nil
}

func (d *batchDriver) New(cfg ExecutorConfig) (Executor, error) {
	d.made = append(d.made, cfg)
	return batchExecutor{detach: cfg.Detach}, nil
}

func (d *batchDriver) Guard(cfg ExecutorConfig) Executor {
	d.guarded = append(d.guarded, cfg)
	return batchGuard{next: cfg.Local}
}

func (d *batchDriver) PendingJobs(ctx context.Context, dir string, recorded func(string) bool) ([]PendingJob, error) {
	var out []PendingJob
	for _, k := range []string{"k1", "k2"} {
		if !recorded(k) {
			out = append(out, PendingJob{Key: k, Instance: "i-" + k, JobID: "7", State: "QUEUED " + dir})
		}
	}
	return out, nil
}

func (d *batchDriver) WriteAttempt(w io.Writer, dir, key, instance string, n int) error {
	if key != "kept" {
		return fmt.Errorf("%s: %w", instance, ErrNoAttempts)
	}
	_, err := fmt.Fprintf(w, "%s attempt %d in %s\n", instance, n, dir)
	return err
}

type batchExecutor struct{ detach bool }

func (batchExecutor) Remote() bool { return true }
func (batchExecutor) Execute(context.Context, *Job, stages.Progress, io.Writer) error {
	return nil
}

// batchGuard refuses key "busy" and runs everything else with next.
type batchGuard struct{ next Executor }

func (g batchGuard) Execute(ctx context.Context, job *Job, p stages.Progress, log io.Writer) error {
	if job.Key == "busy" {
		return errors.New("a batch job may still compute this key")
	}
	return g.next.Execute(ctx, job, p, log)
}

// countingLocal stands in for the local executor.
type countingLocal struct{ n *int }

func (c countingLocal) Execute(context.Context, *Job, stages.Progress, io.Writer) error {
	*c.n++
	return nil
}

func parseSpec(t *testing.T, src string) *spec.Spec {
	t.Helper()
	s, err := spec.Parse("x.yaml", []byte(src), spec.Options{})
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return s
}

func TestExecutorsLookup(t *testing.T) {
	x := NewExecutors(LocalDriver(), &batchDriver{})
	if got := x.Names(); !reflect.DeepEqual(got, []string{"batch", "local"}) {
		t.Errorf("Names() = %v", got)
	}
	if d, err := x.Lookup("batch"); err != nil || d.Name() != "batch" {
		t.Errorf("Lookup(batch) = %v, %v", d, err)
	}
	_, err := x.Lookup("bacth")
	if err == nil || !strings.Contains(err.Error(), `unknown executor "bacth": want one of batch, local`) || !strings.Contains(err.Error(), "did you mean batch?") {
		t.Errorf("Lookup(bacth) error = %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("registering local twice did not panic")
		}
	}()
	NewExecutors(LocalDriver(), LocalDriver())
}

func TestExecutorsOpenSecondDriver(t *testing.T) {
	d := &batchDriver{}
	x := NewExecutors(LocalDriver(), d)
	s := parseSpec(t, "name: x\nexecutor: {type: batch, queue: short}\nstages:\n  a:\n    uses: gen\n    executor: {queue: long}\n  b: {uses: gen}\n")
	exe, err := x.Open(s, ExecutorChoice{Bin: "/bin/vf", StoreDir: "/c/.voxflow", Detach: true})
	if err != nil {
		t.Fatal(err)
	}
	if be, ok := exe.(batchExecutor); !ok || !be.detach {
		t.Fatalf("Open gave %#v; want the batch executor, detached", exe)
	}
	// The spec's options lose their type; the stage's are checked too.
	want := []map[string]any{{"queue": "short"}, {"queue": "long"}}
	if !reflect.DeepEqual(d.checked, want) {
		t.Errorf("CheckOptions saw %v; want %v", d.checked, want)
	}
	if len(d.made) != 1 || d.made[0].Dir != filepath.Join("/c/.voxflow", "batch") || d.made[0].Bin != "/bin/vf" || !reflect.DeepEqual(d.made[0].Options, map[string]any{"queue": "short"}) {
		t.Errorf("New got %+v", d.made)
	}
	if len(d.guarded) != 0 {
		t.Errorf("a remote executor was guarded: %+v", d.guarded)
	}
}

func TestExecutorsOpenErrorsNameTheSpec(t *testing.T) {
	x := NewExecutors(LocalDriver(), &batchDriver{})
	cases := []struct {
		name, src, flag string
		want            []string
	}{
		{"unknown type", "name: x\nexecutor: {type: bacth}\nstages:\n  a: {uses: gen}\n", "",
			[]string{"x.yaml:2:18: executor type: unknown executor \"bacth\"", "want one of batch, local", "did you mean batch?"}},
		{"unknown flag", "name: x\nstages:\n  a: {uses: gen}\n", "lcoal",
			[]string{"--executor: unknown executor \"lcoal\"", "did you mean local?"}},
		{"bad spec option", "name: x\nexecutor: {type: batch, qeue: a}\nstages:\n  a: {uses: gen}\n", "",
			[]string{"x.yaml:2:31: executor: batch: batch option \"qeue\": unknown"}},
		{"bad stage option", "name: x\nstages:\n  a:\n    uses: gen\n    executor:\n      qeue: long\n", "batch",
			[]string{"x.yaml:6:13: stage a: executor: batch: batch option \"qeue\""}},
		{"local detach", "name: x\nstages:\n  a: {uses: gen}\n", "",
			[]string{"executor local: --detach"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := 0
			_, err := x.Open(parseSpec(t, c.src), ExecutorChoice{Name: c.flag, Detach: c.name == "local detach", Local: countingLocal{&n}})
			if err == nil {
				t.Fatal("Open succeeded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestExecutorsLocalIsGuardedAndIgnoresClusterOptions(t *testing.T) {
	d := &batchDriver{}
	x := NewExecutors(LocalDriver(), d)
	// Options written for the cluster do not stop a local run.
	s := parseSpec(t, "name: x\nstages:\n  a:\n    uses: gen\n    executor: {partition: gpu}\n")
	n := 0
	exe, err := x.Open(s, ExecutorChoice{StoreDir: "/c", Local: countingLocal{&n}})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.guarded) != 1 || d.guarded[0].Dir != filepath.Join("/c", "batch") || len(d.checked) != 0 {
		t.Fatalf("guard configs %+v, batch checked %v", d.guarded, d.checked)
	}
	if err := exe.Execute(context.Background(), &Job{Key: "free"}, nil, nil); err != nil || n != 1 {
		t.Errorf("free key: err %v, local ran %d times", err, n)
	}
	if err := exe.Execute(context.Background(), &Job{Key: "busy"}, nil, nil); err == nil || n != 1 {
		t.Errorf("busy key: err %v, local ran %d times; want refused", err, n)
	}
}

func TestExecutorsPendingJobsAndAttempts(t *testing.T) {
	x := NewExecutors(LocalDriver(), &batchDriver{})
	jobs, errs := x.PendingJobs(context.Background(), "/c", func(k string) bool { return k == "k1" })
	if len(errs) != 0 || len(jobs) != 1 || len(jobs["batch"]) != 1 || jobs["batch"][0].Key != "k2" || jobs["batch"][0].State != "QUEUED "+filepath.Join("/c", "batch") {
		t.Errorf("PendingJobs = %+v, %v", jobs, errs)
	}
	var b bytes.Buffer
	if err := x.WriteAttempt(&b, "/c", "kept", "a", 2); err != nil || b.String() != "a attempt 2 in "+filepath.Join("/c", "batch")+"\n" {
		t.Errorf("WriteAttempt kept: %q, %v", b.String(), err)
	}
	err := x.WriteAttempt(&b, "/c", "other", "a", 1)
	if err == nil || !strings.Contains(err.Error(), "a: no attempts are kept for key other") {
		t.Errorf("WriteAttempt of a key no executor keeps: %v", err)
	}
}
