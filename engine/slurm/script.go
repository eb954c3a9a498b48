package slurm

import (
	"fmt"
	"strings"

	"github.com/voxflow/voxflow/engine"
)

// commentPrefix marks voxflow's jobs in Slurm's comment field; the key after
// it lets adoption tell our job from an unrelated one that reuses the id
// (job ids restart when a controller loses its state).
const commentPrefix = "voxflow:"

// Script renders the sbatch script for job: #SBATCH lines for the resources
// and options, the prelude, the job id for exec-job (engine.JobIDEnv), then
// `exec BIN exec-job WORKDIR/job.json`. It is a plain file so a user can
// read it or resubmit it by hand.
func Script(job *engine.Job, opts Options, bin string) (string, error) {
	l := Layout{Dir: job.WorkDir}
	for name, p := range map[string]string{"work dir": job.WorkDir, "voxflow binary": bin} {
		if p == "" {
			return "", fmt.Errorf("sbatch script for %s: %s is empty", job.Instance, name)
		}
		if strings.ContainsAny(p, "\n\"") {
			return "", fmt.Errorf("sbatch script for %s: %s %q contains a newline or a double quote", job.Instance, name, p)
		}
	}
	var b strings.Builder
	b.WriteString("#!/bin/bash\n")
	b.WriteString("# voxflow job " + oneLine(job.Instance) + " (spec " + oneLine(job.Spec) + ", key " + job.Key + ")\n")
	opt := func(flag, val string) {
		if val != "" {
			fmt.Fprintf(&b, "#SBATCH --%s=\"%s\"\n", flag, val)
		}
	}
	opt("job-name", jobName(job))
	opt("comment", commentPrefix+job.Key)
	opt("chdir", job.WorkDir)
	opt("output", l.logPattern())
	b.WriteString("#SBATCH --nodes=1\n#SBATCH --ntasks=1\n")
	if c := job.Resources.CPUs; c > 0 {
		opt("cpus-per-task", fmt.Sprint(c))
	}
	if m := job.Resources.MemoryMB; m > 0 {
		opt("mem", fmt.Sprintf("%dM", m))
	}
	if g := job.Resources.GPUs; opts.Gres != "" {
		opt("gres", opts.Gres)
	} else if g > 0 {
		if opts.GPUType != "" {
			opt("gres", fmt.Sprintf("gpu:%s:%d", opts.GPUType, g))
		} else {
			opt("gres", fmt.Sprintf("gpu:%d", g))
		}
	}
	opt("time", timeLimit(opts.Time, job.Timeout))
	opt("partition", opts.Partition)
	opt("account", opts.Account)
	opt("qos", opts.QOS)
	opt("constraint", opts.Constraint)
	for _, f := range opts.Sbatch {
		if !strings.HasPrefix(f, "-") {
			return "", fmt.Errorf("sbatch script for %s: executor option \"sbatch\": %q is not a flag; want e.g. --constraint=a100", job.Instance, f)
		}
		b.WriteString("#SBATCH " + f + "\n")
	}
	if len(opts.Prelude) > 0 {
		// A failing `module load` should fail the job here, visibly, rather
		// than let the stage run in the wrong environment.
		b.WriteString("set -e\n")
		for _, ln := range opts.Prelude {
			b.WriteString(ln + "\n")
		}
		b.WriteString("set +e\n")
	}
	// exec-job is the engine's far end for any cluster; this is how it
	// learns the cluster's name for the job, for its result record.
	fmt.Fprintf(&b, "export %s=\"$SLURM_JOB_ID\"\n", engine.JobIDEnv)
	fmt.Fprintf(&b, "exec %s exec-job %s\n", shellQuote(bin), shellQuote(l.Job()))
	return b.String(), nil
}

// jobName is what squeue shows: the instance's display name.
func jobName(job *engine.Job) string {
	n := job.Instance
	if n == "" {
		n = job.Stage
	}
	return "vf:" + strings.ReplaceAll(oneLine(n), `"`, "'")
}

func oneLine(s string) string { return strings.NewReplacer("\n", " ", "\r", " ").Replace(s) }

// shellQuote quotes s for bash.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
