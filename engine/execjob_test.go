package engine

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voxflow/voxflow/stages"
)

// fixtureStage reports progress, logs, and writes its param n to out.txt;
// n < 0 fails.
type fixtureStage struct{}

func (fixtureStage) Describe() stages.Description {
	return stages.Description{Kind: "fixture", Params: []stages.ParamSpec{{Name: "n", Type: stages.TypeInt}}}
}

func (fixtureStage) Run(ctx context.Context, req *stages.Request) error {
	n, ok := req.Params["n"].(int64)
	if !ok {
		return errors.New("param n is not an int64 after the job file")
	}
	req.Progress.Update(stages.Update{Phase: "work", Done: 1, Total: 2})
	req.Progress.Update(stages.Update{Phase: "work", Done: 2, Total: 2})
	req.Log.Write([]byte("fixture ran\n"))
	if n < 0 {
		return errors.New("n is negative")
	}
	return os.WriteFile(filepath.Join(req.OutDir, "out.txt"), []byte(strings.Repeat("x", int(n))), 0o644)
}

func TestExecJobFileRunsAJobAndRecordsItsResult(t *testing.T) {
	t.Setenv(JobIDEnv, "77")
	exe := StagesExecutor([]stages.Stage{fixtureStage{}})
	for _, c := range []struct {
		n      int64
		status string
	}{{3, JobOK}, {-1, JobFailed}} {
		dir := t.TempDir()
		jobPath := filepath.Join(dir, "job.json")
		job := &Job{Key: "k", Instance: "f", Kind: "fixture", WorkDir: dir, OutDir: filepath.Join(dir, "out"), Params: map[string]any{"n": c.n}}
		if err := WriteJobFile(jobPath, job); err != nil {
			t.Fatal(err)
		}
		var log bytes.Buffer
		err := ExecJobFile(context.Background(), jobPath, exe, &log)
		if (err == nil) != (c.status == JobOK) {
			t.Errorf("n=%d: ExecJobFile = %v", c.n, err)
		}
		res, rerr := ReadJobResult(filepath.Join(dir, JobResultFile))
		if rerr != nil || res.Status != c.status || res.Key != "k" || res.JobID != "77" || res.End.Before(res.Start) {
			t.Errorf("n=%d: result %+v, %v; want status %s for key k, job 77", c.n, res, rerr, c.status)
		}
		if !strings.Contains(log.String(), "fixture ran") || !strings.Contains(log.String(), "job 77") {
			t.Errorf("n=%d: log lacks the stage's output or the job id:\n%s", c.n, log.String())
		}
		prog, _ := os.ReadFile(filepath.Join(dir, JobProgressFile))
		var got []stages.Update
		ForwardProgress(prog, stages.ProgressFunc(func(u stages.Update) { got = append(got, u) }))
		if len(got) != 2 || got[1].Done != 2 {
			t.Errorf("n=%d: progress %+v; want both updates (the last completes the phase)", c.n, got)
		}
		if c.status == JobOK {
			if b, err := os.ReadFile(filepath.Join(dir, "out", "out.txt")); err != nil || string(b) != "xxx" {
				t.Errorf("output %q, %v", b, err)
			}
		}
	}
}

func TestExecJobFileRecordsAnUnreadableJob(t *testing.T) {
	dir := t.TempDir()
	jobPath := filepath.Join(dir, "job.json")
	if err := os.WriteFile(jobPath, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := ExecJobFile(context.Background(), jobPath, StagesExecutor(nil), &bytes.Buffer{})
	res, rerr := ReadJobResult(filepath.Join(dir, JobResultFile))
	if err == nil || rerr != nil || res.Status != JobFailed || !strings.Contains(res.Error, "parse job") {
		t.Errorf("ExecJobFile = %v; result %+v, %v", err, res, rerr)
	}
}

func TestProgressWriterThinsWithinAPhaseAndFlushesTheLast(t *testing.T) {
	var buf bytes.Buffer
	w := newProgressWriter(&buf, time.Hour)
	w.Update(stages.Update{Phase: "epoch 1", Done: 0, Total: 100})
	for i := 1; i < 50; i++ {
		w.Update(stages.Update{Phase: "epoch 1", Done: float64(i), Total: 100})
	}
	w.Update(stages.Update{Phase: "epoch 2", Done: 0, Total: 100, Message: "loss 0.4"})
	w.Update(stages.Update{Phase: "epoch 2", Done: 7, Total: 100})
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}
	var got []stages.Update
	ForwardProgress(buf.Bytes(), stages.ProgressFunc(func(u stages.Update) { got = append(got, u) }))
	want := []stages.Update{
		{Phase: "epoch 1", Done: 0, Total: 100},
		{Phase: "epoch 2", Done: 0, Total: 100, Message: "loss 0.4"},
		{Phase: "epoch 2", Done: 7, Total: 100},
	}
	if len(got) != len(want) {
		t.Fatalf("forwarded %d updates %+v; want %+v", len(got), got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("update %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}
