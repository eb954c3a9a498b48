package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExecutorChoiceErrorsNameTheSpec: the spec language knows no executor,
// so a wrong type or option is caught when run or plan picks the executor,
// before anything runs, at its line in the spec.
func TestExecutorChoiceErrorsNameTheSpec(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "ty.yaml"), "name: ty\nexecutor: {type: slrum}\nstages:\n  a: {uses: command, with: {cmd: 'true'}}\n")
	writeFile(t, filepath.Join(dir, "op.yaml"), "name: op\nstages:\n  a:\n    uses: command\n    with: {cmd: 'touch ran'}\n    executor: {partiton: gpu}\n")
	writeFile(t, filepath.Join(dir, "old.yaml"), "name: old\nstages:\n  a:\n    uses: command\n    with: {cmd: 'true'}\n    slurm: {partition: gpu}\n")
	// A wrong spec fails (1), as validate says; a wrong flag is a usage
	// error (2).
	cases := []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"run", "ty.yaml", "--plain"}, 1, []string{"ty.yaml:2:18: executor type: unknown executor \"slrum\": want one of local, slurm; did you mean slurm?"}},
		{[]string{"plan", "ty.yaml"}, 1, []string{"ty.yaml:2:18: executor type: unknown executor \"slrum\""}},
		{[]string{"validate", "ty.yaml"}, 1, []string{"ty.yaml:2:18: executor type: unknown executor \"slrum\""}},
		{[]string{"run", "op.yaml", "--executor", "slurm", "--plain"}, 1, []string{"op.yaml:6:26: stage a: executor: slurm: executor option \"partiton\": unknown"}},
		{[]string{"run", "op.yaml", "--executor", "sge", "--plain"}, 2, []string{"--executor: unknown executor \"sge\": want one of local, slurm"}},
		{[]string{"plan", "op.yaml", "--executor", "sge"}, 2, []string{"--executor: unknown executor \"sge\""}},
		{[]string{"run", "op.yaml", "--detach", "--plain"}, 2, []string{"--detach: the local executor waits"}},
		{[]string{"run", "old.yaml", "--plain"}, 1, []string{"old.yaml:6:5: stage a: slurm: moved to executor:"}},
	}
	for _, c := range cases {
		r := vox(t, dir, c.args...)
		if r.code != c.code {
			t.Errorf("voxflow %s: exit %d, want %d:\n%s", strings.Join(c.args, " "), r.code, c.code, r)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("voxflow %s: stderr lacks %q:\n%s", strings.Join(c.args, " "), w, r)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
		t.Error("a stage ran although its executor options were wrong")
	}
	// Locally, options addressed to a cluster are ignored.
	if r := vox(t, dir, "run", "op.yaml", "--plain"); r.code != 0 {
		t.Errorf("local run with cluster options:\n%s", r)
	}
}
