// Command testexec is a stand-in voxflow binary for the slurm package's
// tests: `testexec exec-job JOBFILE` runs engine.ExecJobFile exactly as
// `voxflow exec-job` does, with the command stage and a fixture stage that
// reports progress and checks that params keep their types across job.json.
// It keeps the tests independent of the CLI and of the heavy builtin stages.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/voxflow/voxflow/engine"
	"github.com/voxflow/voxflow/stages"
	"github.com/voxflow/voxflow/stages/command"
)

func main() {
	if len(os.Args) != 3 || os.Args[1] != "exec-job" {
		fmt.Fprintln(os.Stderr, "usage: testexec exec-job JOBFILE")
		os.Exit(2)
	}
	exe := engine.StagesExecutor([]stages.Stage{command.New(), counter{}})
	if err := engine.ExecJobFile(context.Background(), os.Args[2], exe, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "testexec exec-job:", err)
		os.Exit(1)
	}
}

// counter counts to n, one progress update per step, and writes the count
// to OutDir/count.txt.
type counter struct{}

func (counter) Describe() stages.Description {
	return stages.Description{
		Kind:    "test-counter",
		Version: "1",
		Params: []stages.ParamSpec{
			{Name: "n", Type: stages.TypeInt},
			{Name: "scale", Type: stages.TypeFloat},
			{Name: "step_ms", Type: stages.TypeInt},
		},
		Outputs: []stages.PortSpec{{Name: "count.txt"}},
	}
}

func (counter) Run(ctx context.Context, req *stages.Request) error {
	// The engine hands stages int64 ints and float64 floats; so must a job
	// that crossed a JSON file.
	n, ok := req.Params["n"].(int64)
	if !ok {
		return fmt.Errorf("param n: have %T, want int64", req.Params["n"])
	}
	scale, ok := req.Params["scale"].(float64)
	if !ok {
		return fmt.Errorf("param scale: have %T, want float64", req.Params["scale"])
	}
	step := time.Duration(req.Params.Int("step_ms")) * time.Millisecond
	for i := int64(1); i <= n; i++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(step):
		}
		req.Progress.Update(stages.Update{Phase: "count", Done: float64(i), Total: float64(n), Unit: "step"})
		fmt.Fprintf(req.Log, "counted %d\n", i)
	}
	return os.WriteFile(filepath.Join(req.OutDir, "count.txt"), []byte(fmt.Sprintf("%d %g %s\n", n, scale*float64(n), req.Labels["roi"])), 0o644)
}
