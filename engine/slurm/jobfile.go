package slurm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"github.com/voxflow/voxflow/engine"
	"github.com/voxflow/voxflow/stages"
)

// Params cross job.json with their types intact: stages get int64 for ints
// and float64 for floats, as in-process. encoding/json alone would turn
// every number into float64 and write 1.0 as 1, so floats are written with a
// decimal point and numbers are read back by their spelling.

// writeJob writes job to path atomically, params typed (see above).
func writeJob(path string, job *engine.Job) error {
	cp := *job
	params, err := stages.TypedNumbers(map[string]any(job.Params), "params")
	if err != nil {
		return fmt.Errorf("write job %s: %w", path, err)
	}
	cp.Params, _ = params.(map[string]any)
	exe, err := stages.TypedNumbers(job.Executor, "executor")
	if err != nil {
		return fmt.Errorf("write job %s: %w", path, err)
	}
	cp.Executor, _ = exe.(map[string]any)
	return writeJSONAtomic(path, &cp)
}

// ReadJob reads a job file written by the executor.
func ReadJob(path string) (*engine.Job, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read job %s: %w", path, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var job engine.Job
	if err := dec.Decode(&job); err != nil {
		return nil, fmt.Errorf("parse job %s: %w", path, err)
	}
	p, err := stages.PlainNumbers(map[string]any(job.Params))
	if err != nil {
		return nil, fmt.Errorf("job %s: params: %w", path, err)
	}
	job.Params, _ = p.(map[string]any)
	x, err := stages.PlainNumbers(job.Executor)
	if err != nil {
		return nil, fmt.Errorf("job %s: executor: %w", path, err)
	}
	job.Executor, _ = x.(map[string]any)
	if job.OutDir == "" {
		return nil, fmt.Errorf("job %s: field out_dir is empty; want the directory the stage writes to", path)
	}
	return &job, nil
}
