package slurm

import "github.com/voxflow/voxflow/engine"

// The job file is engine's (engine.WriteJobFile): exec-job, the far end,
// reads it for any cluster executor. These keep the package's names.

// writeJob writes job to path atomically, params in the codec's form.
func writeJob(path string, job *engine.Job) error { return engine.WriteJobFile(path, job) }

// ReadJob reads a job file written by the executor.
func ReadJob(path string) (*engine.Job, error) { return engine.ReadJobFile(path) }
