package slurm

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voxflow/voxflow/engine"
	"github.com/voxflow/voxflow/stages"
)

func TestScript(t *testing.T) {
	work := "/shared/cache/work/ab12"
	job := &engine.Job{
		Key: "ab12", Spec: "nsd-cl", Instance: "tune_cl[subj01,FFA-1]", WorkDir: work, OutDir: work + "/out",
		Resources: stages.Resources{CPUs: 8, MemoryMB: 32000, GPUs: 2}, Timeout: 4 * time.Hour,
	}
	opts := Options{Partition: "gpu", Account: "lab", QOS: "normal", GPUType: "a100",
		Sbatch: []string{"--constraint=ib"}, Prelude: []string{"module load cuda/12"}}
	s, err := Script(job, opts, "/opt/vox flow/voxflow")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"#!/bin/bash\n",
		`#SBATCH --job-name="vf:tune_cl[subj01,FFA-1]"`,
		`#SBATCH --comment="voxflow:ab12"`,
		`#SBATCH --chdir="` + work + `"`,
		`#SBATCH --output="` + work + `/slurm-%j.log"`,
		`#SBATCH --cpus-per-task="8"`,
		`#SBATCH --mem="32000M"`,
		`#SBATCH --gres="gpu:a100:2"`,
		`#SBATCH --time="264"`, // 4 h + 10% grace, in minutes
		`#SBATCH --partition="gpu"`,
		`#SBATCH --account="lab"`,
		`#SBATCH --qos="normal"`,
		"#SBATCH --constraint=ib\n",
		"set -e\nmodule load cuda/12\nset +e\n",
		"export VOXFLOW_JOB_ID=\"$SLURM_JOB_ID\"\nexec '/opt/vox flow/voxflow' exec-job '" + work + "/job.json'\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("script lacks %q:\n%s", want, s)
		}
	}
	// The script is valid bash.
	if out, err := exec.Command("bash", "-n", "-c", s).CombinedOutput(); err != nil {
		t.Errorf("bash -n: %v: %s", err, out)
	}
}

func TestScriptGresOptionReplacesDerivedGres(t *testing.T) {
	job := &engine.Job{Key: "k", Instance: "a", WorkDir: "/w", OutDir: "/w/out", Resources: stages.Resources{GPUs: 1}}
	s, err := Script(job, Options{Gres: "gpu:h100:1,lscratch:50", Constraint: "ib"}, "/bin/voxflow")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(s, `#SBATCH --gres="gpu:h100:1,lscratch:50"`) || strings.Contains(s, `--gres="gpu:1"`) || !strings.Contains(s, `#SBATCH --constraint="ib"`) {
		t.Errorf("script:\n%s\nwant the gres option verbatim, no derived gres, and the constraint", s)
	}
}

func TestScriptOmitsUndeclaredResources(t *testing.T) {
	job := &engine.Job{Key: "k", Instance: "a", WorkDir: "/w", OutDir: "/w/out"}
	s, err := Script(job, Options{}, "/bin/voxflow")
	if err != nil {
		t.Fatal(err)
	}
	for _, absent := range []string{"--cpus-per-task", "--mem", "--gres", "--time", "--partition", "set -e"} {
		if strings.Contains(s, absent) {
			t.Errorf("script has %s though nothing asked for it:\n%s", absent, s)
		}
	}
}

func TestScriptRejects(t *testing.T) {
	job := &engine.Job{Key: "k", Instance: "a", WorkDir: "/w\"x", OutDir: "/w/out"}
	if _, err := Script(job, Options{}, "/bin/voxflow"); err == nil || !strings.Contains(err.Error(), "double quote") {
		t.Errorf("Script with a quote in the work dir = %v; want an error", err)
	}
	job.WorkDir = filepath.Join(t.TempDir(), "w")
	if _, err := Script(job, Options{Sbatch: []string{"constraint=a100"}}, "/bin/voxflow"); err == nil || !strings.Contains(err.Error(), "not a flag") {
		t.Errorf("Script with a bare sbatch word = %v; want an error", err)
	}
}
