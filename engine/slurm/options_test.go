package slurm

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseOptions(t *testing.T) {
	o, err := ParseOptions(map[string]any{
		"type":        "slurm", // the engine's key, ignored here
		"partition":   "gpu",
		"account":     "lab",
		"qos":         "high",
		"time":        "90m",
		"gpu_type":    "a100",
		"gres":        "gpu:2,lscratch:10",
		"constraint":  "a100|h100",
		"sbatch":      []any{"--constraint=a100", "--exclude=n7"},
		"prelude":     "module load cuda\nsource /opt/venv/bin/activate\n",
		"voxflow_bin": "/shared/bin/voxflow",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Options{Partition: "gpu", Account: "lab", QOS: "high", Time: "90", GPUType: "a100", Gres: "gpu:2,lscratch:10", Constraint: "a100|h100",
		Sbatch: []string{"--constraint=a100", "--exclude=n7"}, Prelude: []string{"module load cuda", "source /opt/venv/bin/activate"},
		Bin: "/shared/bin/voxflow"}
	if !reflect.DeepEqual(o, want) {
		t.Errorf("ParseOptions = %+v\nwant %+v", o, want)
	}
}

func TestParseOptionsRejects(t *testing.T) {
	for _, c := range []struct {
		m    map[string]any
		want string
	}{
		{map[string]any{"partiton": "gpu"}, `"partiton": unknown; want one of partition`},
		{map[string]any{"partiton": "gpu"}, "; did you mean partition?"},
		{map[string]any{"partition": int64(3)}, `"partition": have int64 3; want a string`},
		{map[string]any{"time": int64(0)}, "want a positive number"},
		{map[string]any{"time": "1 day"}, "want minutes"},
		{map[string]any{"sbatch": []any{"--x", int64(1)}}, `"sbatch"[1]`},
		{map[string]any{"account": "a\"b"}, "double quote"},
		{map[string]any{"retries": int64(3)}, "write retries: N on the stage"},
		{map[string]any{"name": "x"}, `"name": unknown`},
	} {
		_, err := ParseOptions(c.m)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseOptions(%v) = %v; want an error containing %q", c.m, err, c.want)
		}
	}
}

func TestTimeOptionForms(t *testing.T) {
	for in, want := range map[any]string{int64(5): "5", 2.5: "3", "90s": "2", "1-12:00:00": "1-12:00:00", "30": "30"} {
		got, err := timeOption(in)
		if err != nil || got != want {
			t.Errorf("timeOption(%v) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestTimeLimitLeavesGraceAfterTheJobTimeout(t *testing.T) {
	for _, c := range []struct {
		opt     string
		timeout time.Duration
		want    string
	}{
		{"", 0, ""},
		{"", 10 * time.Minute, "12"}, // 2 min grace at least
		{"", 10 * time.Hour, "660"},  // 10% grace
		{"45", 10 * time.Hour, "45"}, // explicit option wins
		{"", 30 * time.Second, "3"},  // rounded up to whole minutes
	} {
		if got := timeLimit(c.opt, c.timeout); got != c.want {
			t.Errorf("timeLimit(%q, %s) = %q, want %q", c.opt, c.timeout, got, c.want)
		}
	}
}

func TestOptionsMergeKeepsJobValues(t *testing.T) {
	def := Options{Partition: "cpu", Account: "lab", Prelude: []string{"module load x"}}
	got := Options{Partition: "gpu"}.merge(def)
	want := Options{Partition: "gpu", Account: "lab", Prelude: []string{"module load x"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("merge = %+v, want %+v", got, want)
	}
}

func TestParseGresCountsGPUsPerType(t *testing.T) {
	for in, want := range map[string]map[string]int{
		"(null)":                             {},
		"gpu:2":                              {"": 2},
		"gpu:a100:4(S:0-1)":                  {"": 4, "a100": 4},
		"gpu:a100:2,gpu:v100:1,lscratch:100": {"": 3, "a100": 2, "v100": 1},
	} {
		got := parseGres(in)
		if len(got) != len(want) {
			t.Errorf("parseGres(%q) = %v; want %v", in, got, want)
			continue
		}
		for k, n := range want {
			if got[k] != n {
				t.Errorf("parseGres(%q) = %v; want %v", in, got, want)
			}
		}
	}
}

func TestNeverClearsKnowsWaitingFromHopeless(t *testing.T) {
	for _, r := range []string{"PartitionConfig", "PartitionTimeLimit", "BadConstraints", "InvalidQOS"} {
		if !neverClears(r) {
			t.Errorf("neverClears(%q) = false; want true", r)
		}
	}
	for _, r := range []string{"Resources", "Priority", "Dependency", "BeginTime", "None", "ReqNodeNotAvail"} {
		if neverClears(r) {
			t.Errorf("neverClears(%q) = true; a job pending for it may still start", r)
		}
	}
}
