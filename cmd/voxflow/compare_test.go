package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

const metricsSpec = `name: m
params: {scale: 2}
stages:
  score:
    uses: command
    foreach: {roi: [V1v, FFA-1]}
    with:
      cmd: 'echo "{\"mean_r\": $(( ${params.scale} * 10 ))e-2, \"roi\": \"${each.roi}\"}" > metrics.json'
variants:
  double: {params.scale: 4}
`

func TestCompareAndDiffVariants(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "m.yaml"), metricsSpec)
	for _, args := range [][]string{{"run", "m.yaml"}, {"run", "m.yaml", "--variant", "double"}} {
		if r := vox(t, dir, args...); r.code != 0 {
			t.Fatalf("%v:\n%s", args, r)
		}
	}
	r := vox(t, dir, "compare", "m.yaml")
	if r.code != 0 {
		t.Fatalf("compare:\n%s", r)
	}
	// Only the param that differs is shown, and metrics carry deltas.
	for _, want := range []string{"base", "double", "param cmd", "score[FFA-1]", "mean_r", "0.2", "0.4", "+0.2"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("compare table lacks %q:\n%s", want, r.stdout)
		}
	}
	r = vox(t, dir, "compare", "m.yaml", "--format", "json", "--metric", "mean_r")
	var c struct {
		Columns []string
		Metrics []struct {
			Instance string
			Metric   string
			Values   []float64
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &c); err != nil {
		t.Fatalf("compare json: %v\n%s", err, r)
	}
	if len(c.Metrics) != 2 || c.Metrics[0].Values[0] != 0.2 || c.Metrics[0].Values[1] != 0.4 {
		t.Fatalf("compare json metrics: %+v", c.Metrics)
	}
	r = vox(t, dir, "compare", "m.yaml", "--format", "markdown", "--variants", "double,base")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "| instance | name | double | base | Δ base |") || !strings.Contains(r.stdout, "-0.2") {
		t.Fatalf("markdown:\n%s", r)
	}
	r = vox(t, dir, "compare", "m.yaml", "--format", "csv")
	if r.code != 0 || !strings.Contains(r.stdout, "score[V1v],mean_r,0.2,0.4,+0.2") {
		t.Fatalf("csv:\n%s", r)
	}
	r = vox(t, dir, "diff", "base", "double", "--spec", "m.yaml")
	if r.code != 0 || !strings.Contains(r.stdout, "metric  score[V1v] mean_r: 0.2 -> 0.4 (+0.2)") {
		t.Fatalf("diff:\n%s", r)
	}
	r = vox(t, dir, "diff", "1", "2")
	if r.code != 0 || !strings.Contains(r.stdout, "2 metric(s) differ") {
		t.Fatalf("diff by run id:\n%s", r)
	}
	r = vox(t, dir, "compare", "m.yaml", "--variants", "nope")
	if r.code != 2 || !strings.Contains(r.stderr, `no variant "nope"`) {
		t.Fatalf("unknown variant:\n%s", r)
	}
}
