package data

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/voxflow/voxflow/stages"
)

// runStage runs the data stage with params over the declared defaults, the
// way the engine would, and returns the dataset directory.
func runStage(t *testing.T, params map[string]any) (string, error) {
	t.Helper()
	return runStageWith(t, params, nil)
}

// runStageWith is runStage with input artifacts (the join's parts).
func runStageWith(t *testing.T, params map[string]any, inputs map[string][]stages.Artifact) (string, error) {
	t.Helper()
	p := stages.Params{}
	for _, ps := range New().Describe().Params {
		p[ps.Name] = ps.Default
	}
	for k, v := range params {
		if _, ok := p[k]; !ok {
			t.Fatalf("undeclared param %q", k)
		}
		p[k] = v
	}
	out := t.TempDir()
	var log bytes.Buffer
	err := New().Run(context.Background(), &stages.Request{
		Instance: "data", Params: p, Inputs: inputs, OutDir: out,
		Progress: stages.NopProgress{}, Log: &log,
		Resources: stages.Resources{CPUs: 2},
	})
	if testing.Verbose() && log.Len() > 0 {
		t.Logf("stage log:\n%s", log.String())
	}
	return filepath.Join(out, OutputPort), err
}
