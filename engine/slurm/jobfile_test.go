package slurm

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/voxflow/voxflow/engine"
	"github.com/voxflow/voxflow/internal/valuetest"
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
	if err := engine.WriteJobFile(path, job); err != nil {
		t.Fatal(err)
	}
	got, err := engine.ReadJobFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, job) {
		t.Errorf("job after the round trip:\n%#v\nwant\n%#v", got, job)
	}
}

// job.json holds params in the codec's bytes (only indented) and reads back
// as the same plain values; what the codec refuses is not written.
func TestJobFileUsesTheCodec(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "job.json")
	for _, c := range valuetest.Cases() {
		job := &engine.Job{Key: "k", OutDir: dir, Params: map[string]any{"v": c.Value}, Executor: map[string]any{"v": c.Value}}
		if err := engine.WriteJobFile(path, job); err != nil {
			t.Errorf("%s: %v", c.Name, err)
			continue
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var file struct{ Params json.RawMessage }
		var compact bytes.Buffer
		if err := json.Unmarshal(raw, &file); err != nil || json.Compact(&compact, file.Params) != nil {
			t.Fatalf("%s: job file %s: %v", c.Name, raw, err)
		}
		if want := `{"v":` + c.JSON + `}`; compact.String() != want {
			t.Errorf("%s: job file params %s, want %s", c.Name, compact.String(), want)
		}
		got, err := engine.ReadJobFile(path)
		if err != nil || !valuetest.Same(got.Params, job.Params) || !valuetest.Same(got.Executor, job.Executor) {
			t.Errorf("%s: read back %#v, %v; want %#v", c.Name, got, err, job.Params)
		}
	}
	for _, c := range valuetest.Bads() {
		job := &engine.Job{Key: "k", OutDir: dir, Params: c.Value.(map[string]any)}
		if err := engine.WriteJobFile(filepath.Join(dir, "bad.json"), job); err == nil || !strings.Contains(err.Error(), c.Path+":") {
			t.Errorf("%s: want an error naming %s, got %v", c.Name, c.Path, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "bad.json")); !os.IsNotExist(err) {
		t.Errorf("a refused job was written: %v", err)
	}
}
