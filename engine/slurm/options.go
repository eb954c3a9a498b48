package slurm

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/voxflow/voxflow/engine"
	"github.com/voxflow/voxflow/engine/spec"
)

// Options are the per-spec and per-stage Slurm settings, read from
// engine.Job.Executor (the spec's top-level `executor:` map merged with the
// stage's own `executor:` map). Keys in YAML:
//
//	partition: gpu              # sbatch --partition
//	account: lab123             # sbatch --account
//	qos: normal                 # sbatch --qos
//	time: "2:00:00"             # sbatch --time: Slurm syntax, minutes (number) or a Go duration ("90m")
//	gpu_type: a100              # --gres=gpu:a100:N instead of --gres=gpu:N
//	gres: "gpu:a100:2,lscratch:10"  # sbatch --gres verbatim, instead of the one derived from resources.gpus
//	constraint: "a100|h100"     # sbatch --constraint
//	sbatch: ["--constraint=v100", "--exclude=node7"]   # extra flags, verbatim
//	prelude: ["module load cuda/12.2", "source ~/venv/bin/activate"]  # shell lines run before voxflow
//	voxflow_bin: /shared/bin/voxflow   # the voxflow binary as the compute nodes see it
type Options struct {
	Partition string
	Account   string
	QOS       string
	// Time is the --time value. Empty means derived from the job's timeout
	// (with a grace period so voxflow's own timeout fires first and leaves a
	// result record), or no limit when the job has none.
	Time    string
	GPUType string
	// Gres replaces the --gres derived from the job's GPU count.
	Gres       string
	Constraint string
	Sbatch     []string
	Prelude    []string
	Bin        string
}

// engineKey explains executor-map keys that belong to the spec, not to the
// Slurm executor: type picks the executor (the engine strips it), and a
// retry count written here would be silently lost, so it is refused with
// the place it belongs.
func engineKey(k string) (ignore bool, err error) {
	switch k {
	case "type":
		return true, nil
	case "retries", "retry":
		return false, fmt.Errorf("executor option %q: retries are the stage's, not the executor's: write retries: N on the stage", k)
	}
	return false, nil
}

// optionKeys lists the keys ParseOptions accepts, in the order its
// "unknown option" error lists them.
func optionKeys() []string {
	return []string{"partition", "account", "qos", "time", "gpu_type", "gres", "constraint", "sbatch", "prelude", "voxflow_bin"}
}

// ParseOptions reads Slurm options from an executor map. Unknown keys are an
// error naming the key and the accepted ones, so a typo like `partiton`
// fails at validation instead of silently landing on the default partition.
func ParseOptions(m map[string]any) (Options, error) {
	var o Options
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := m[k]
		var err error
		switch k {
		case "partition":
			o.Partition, err = str(k, v)
		case "account":
			o.Account, err = str(k, v)
		case "qos":
			o.QOS, err = str(k, v)
		case "gpu_type":
			o.GPUType, err = str(k, v)
		case "gres":
			o.Gres, err = str(k, v)
		case "constraint":
			o.Constraint, err = str(k, v)
		case "voxflow_bin":
			o.Bin, err = str(k, v)
		case "time":
			o.Time, err = timeOption(v)
		case "sbatch":
			o.Sbatch, err = strList(k, v, false)
		case "prelude":
			o.Prelude, err = strList(k, v, true)
		default:
			ignore, kerr := engineKey(k)
			if ignore {
				continue
			}
			if kerr != nil {
				err = kerr
				break
			}
			err = fmt.Errorf("executor option %q: unknown; want one of %s%s", k, strings.Join(optionKeys(), ", "), spec.DidYouMean(k, optionKeys()))
		}
		if err != nil {
			return Options{}, &engine.OptionError{Key: k, Err: err}
		}
	}
	return o, nil
}

// merge returns o with empty fields taken from def.
func (o Options) merge(def Options) Options {
	pick := func(a, b string) string {
		if a != "" {
			return a
		}
		return b
	}
	o.Partition = pick(o.Partition, def.Partition)
	o.Account = pick(o.Account, def.Account)
	o.QOS = pick(o.QOS, def.QOS)
	o.Time = pick(o.Time, def.Time)
	o.GPUType = pick(o.GPUType, def.GPUType)
	o.Gres = pick(o.Gres, def.Gres)
	o.Constraint = pick(o.Constraint, def.Constraint)
	o.Bin = pick(o.Bin, def.Bin)
	if o.Sbatch == nil {
		o.Sbatch = def.Sbatch
	}
	if o.Prelude == nil {
		o.Prelude = def.Prelude
	}
	return o
}

func str(key string, v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("executor option %q: have %T %v; want a string", key, v, v)
	}
	if strings.ContainsAny(s, "\n\"") {
		return "", fmt.Errorf("executor option %q: %q contains a newline or a double quote; want a single-line value", key, s)
	}
	return s, nil
}

// strList accepts a list of strings or one string; with lines set, a string
// is split into lines (a YAML block scalar for the prelude).
func strList(key string, v any, lines bool) ([]string, error) {
	switch x := v.(type) {
	case string:
		if lines {
			return strings.Split(strings.TrimRight(x, "\n"), "\n"), nil
		}
		return strings.Fields(x), nil
	case []string:
		return x, nil
	case []any:
		out := make([]string, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("executor option %q[%d]: have %T %v; want a string", key, i, e, e)
			}
			if strings.Contains(s, "\n") {
				return nil, fmt.Errorf("executor option %q[%d]: contains a newline; want one line per element", key, i)
			}
			out[i] = s
		}
		return out, nil
	}
	return nil, fmt.Errorf("executor option %q: have %T; want a list of strings", key, v)
}

// timeOption normalises `time`: numbers are minutes, Go durations are
// rounded up to whole minutes (Slurm's resolution), anything else is passed
// to sbatch as written ("1-12:00:00").
func timeOption(v any) (string, error) {
	switch x := v.(type) {
	case int, int64, float64:
		f := 0.0
		switch n := x.(type) {
		case int:
			f = float64(n)
		case int64:
			f = float64(n)
		case float64:
			f = n
		}
		if f <= 0 {
			return "", fmt.Errorf("executor option \"time\": %v minutes; want a positive number", f)
		}
		return fmt.Sprint(int64(math.Ceil(f))), nil
	case string:
		if d, err := time.ParseDuration(x); err == nil {
			if d <= 0 {
				return "", fmt.Errorf("executor option \"time\": %q; want a positive duration", x)
			}
			return fmt.Sprint(minutesCeil(d)), nil
		}
		if x == "" || strings.ContainsAny(x, " \n\"") {
			return "", fmt.Errorf("executor option \"time\": %q; want minutes, a duration like 90m, or Slurm syntax like 1-12:00:00", x)
		}
		return x, nil
	}
	return "", fmt.Errorf("executor option \"time\": have %T; want minutes, a duration like 90m, or Slurm syntax like 1-12:00:00", v)
}

func minutesCeil(d time.Duration) int64 {
	return int64(math.Ceil(d.Minutes()))
}

// timeLimit is the --time value for a job: the explicit option, else the
// job's own timeout plus a grace period (so voxflow's in-process timeout
// ends the stage first and records why), else "" (the partition's default).
func timeLimit(opt string, timeout time.Duration) string {
	if opt != "" {
		return opt
	}
	if timeout <= 0 {
		return ""
	}
	grace := timeout / 10
	if grace < 2*time.Minute {
		grace = 2 * time.Minute
	}
	return fmt.Sprint(minutesCeil(timeout + grace))
}
