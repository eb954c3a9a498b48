package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"github.com/voxflow/voxflow/internal/jsonfile"
	"github.com/voxflow/voxflow/stages"
)

// jobFile is job.json: the job with its params and executor options in the
// plain-value codec's form (stages.EncodeValue), so that the stage on the
// node gets the values an inline stage would (int64 and float64 kept apart,
// -0 kept), the values the key hashed (indented here, so not its
// bytes). Its fields shadow the Job's own.
type jobFile struct {
	*Job
	Params   json.RawMessage `json:"params"`
	Executor json.RawMessage `json:"executor,omitempty"`
}

// WriteJobFile writes job to path atomically, params in the codec's form:
// the argument of `voxflow exec-job` (ExecJobFile) for any cluster executor.
func WriteJobFile(path string, job *Job) error {
	f := jobFile{Job: job}
	var err error
	if f.Params, err = stages.EncodeValue(job.Params); err != nil {
		return fmt.Errorf("write job %s: params: %w", path, err)
	}
	if job.Executor != nil {
		if f.Executor, err = stages.EncodeValue(job.Executor); err != nil {
			return fmt.Errorf("write job %s: executor: %w", path, err)
		}
	}
	// encoding/json would HTML-escape the codec's strings again ("<" as
	// \u003c); the file should hold them as the codec wrote them.
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(&f); err != nil {
		return fmt.Errorf("encode job %s: %w", path, err)
	}
	return jsonfile.WriteFileAtomic(path, b.Bytes())
}

// ReadJobFile reads a job file written by WriteJobFile.
func ReadJobFile(path string) (*Job, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read job %s: %w", path, err)
	}
	f := jobFile{Job: &Job{}}
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("parse job %s: %w", path, err)
	}
	job := f.Job
	if job.Params, err = plainMap(f.Params); err != nil {
		return nil, fmt.Errorf("job %s: field params: %w", path, err)
	}
	if job.Executor, err = plainMap(f.Executor); err != nil {
		return nil, fmt.Errorf("job %s: field executor: %w", path, err)
	}
	if job.OutDir == "" {
		return nil, fmt.Errorf("job %s: field out_dir is empty; want the directory the stage writes to", path)
	}
	return job, nil
}

// plainMap decodes a JSON object (or null, or nothing) of plain values.
func plainMap(raw json.RawMessage) (map[string]any, error) {
	v, err := stages.DecodeValue(raw)
	if err != nil || v == nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("have %T, want a JSON object", v)
	}
	return m, nil
}
