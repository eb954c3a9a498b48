package slurm

import (
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/voxflow/voxflow/engine"
	"github.com/voxflow/voxflow/stages"
)

func TestJobFileKeepsParamTypes(t *testing.T) {
	dir := t.TempDir()
	job := &engine.Job{
		Key: "k", Instance: "ridge[subj01]", Kind: "ridge", WorkDir: dir, OutDir: filepath.Join(dir, "out"),
		Params: map[string]any{
			"seed": int64(9007199254740993), "alpha": 2.0, "tau": 0.05, "name": "x", "on": true,
			"alphas": []any{1.0, 10.0, 1e6}, "folds": []any{int64(1), int64(2)},
			"nested": map[string]any{"lr": 1.0, "steps": int64(3)},
		},
		Inputs:   map[string][]stages.Artifact{"data": {{Path: "/objects/ab", Stage: "data", Labels: map[string]string{"subject": "subj01"}, Digest: "ab"}}},
		Labels:   map[string]string{"subject": "subj01"},
		Timeout:  90 * time.Minute,
		Executor: map[string]any{"time": int64(5), "partition": "gpu"},
	}
	path := filepath.Join(dir, "job.json")
	if err := writeJob(path, job); err != nil {
		t.Fatal(err)
	}
	got, err := ReadJob(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, job) {
		t.Errorf("job after the round trip:\n%#v\nwant\n%#v", got, job)
	}
}
