package slurm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/voxflow/voxflow/engine"
)

// Params cross job.json with their types intact: stages get int64 for ints
// and float64 for floats, as in-process. encoding/json alone would turn
// every number into float64 and write 1.0 as 1, so floats are written with a
// decimal point and numbers are read back by their spelling.

// writeJob writes job to path atomically, params typed (see above).
func writeJob(path string, job *engine.Job) error {
	cp := *job
	params, err := typedValue(map[string]any(job.Params), "params")
	if err != nil {
		return fmt.Errorf("write job %s: %w", path, err)
	}
	cp.Params, _ = params.(map[string]any)
	exe, err := typedValue(job.Executor, "executor")
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
	p, err := plainValue(map[string]any(job.Params))
	if err != nil {
		return nil, fmt.Errorf("job %s: params: %w", path, err)
	}
	job.Params, _ = p.(map[string]any)
	x, err := plainValue(job.Executor)
	if err != nil {
		return nil, fmt.Errorf("job %s: executor: %w", path, err)
	}
	job.Executor, _ = x.(map[string]any)
	if job.OutDir == "" {
		return nil, fmt.Errorf("job %s: field out_dir is empty; want the directory the stage writes to", path)
	}
	return &job, nil
}

// typedValue copies v, spelling floats so that they read back as floats.
func typedValue(v any, path string) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("%s: %v cannot be written to JSON; want a finite number", path, x)
		}
		s := strconv.FormatFloat(x, 'g', -1, 64)
		if !strings.ContainsAny(s, ".eE") {
			s += ".0"
		}
		return json.Number(s), nil
	case float32:
		return typedValue(float64(x), path)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			t, err := typedValue(e, path+"."+k)
			if err != nil {
				return nil, err
			}
			out[k] = t
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			t, err := typedValue(e, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			out[i] = t
		}
		return out, nil
	case []float64:
		out := make([]any, len(x))
		for i, e := range x {
			t, err := typedValue(e, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			out[i] = t
		}
		return out, nil
	}
	return v, nil
}

// plainValue turns decoded json.Numbers into int64 or float64 by spelling.
func plainValue(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		s := x.String()
		if strings.ContainsAny(s, ".eE") {
			f, err := x.Float64()
			if err != nil {
				return nil, fmt.Errorf("number %s: %w", s, err)
			}
			return f, nil
		}
		i, err := x.Int64()
		if err != nil {
			return nil, fmt.Errorf("integer %s: %w", s, err)
		}
		return i, nil
	case []any:
		for i, e := range x {
			n, err := plainValue(e)
			if err != nil {
				return nil, err
			}
			x[i] = n
		}
		return x, nil
	case map[string]any:
		for k, e := range x {
			n, err := plainValue(e)
			if err != nil {
				return nil, err
			}
			x[k] = n
		}
		return x, nil
	}
	return v, nil
}
