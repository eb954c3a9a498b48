package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pythonPlugins is the Python SDK's folder, from this package.
func pythonPlugins(t *testing.T) string {
	t.Helper()
	abs, err := filepath.Abs("../../plugins/python")
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// TestPythonSDKExample runs the SDK's example, a lab's function wrapped as
// a stage kind, in a spec: its output feeds a downstream stage that checks
// it, its log and progress reach voxflow, and a rerun is served from the
// cache.
func TestPythonSDKExample(t *testing.T) {
	dir := t.TempDir()
	py := pythonPlugins(t)
	writeFile(t, filepath.Join(dir, "z.yaml"), `name: z
plugins: {fixtures: `+py+`/testdata/fixtures.py}
stages:
  make: {uses: responses}
  z:
    uses: "plugin:`+py+`/examples/lab_zscore.py"
    inputs: {responses: make.responses}
    with: {clip: 1.5}
  check:
    uses: command
    inputs: {deps: z.zscored}
    with:
      cmd: /usr/bin/python3 -c 'import numpy as np, os; z = np.load(os.environ["IN_deps"]); assert z.shape == (12, 5) and z.dtype == np.float32, z; assert abs(z.mean()) < 0.2 and abs(z).max() <= 1.5 + 1e-6, z; print("ok")' > ok.txt
      outs: [ok.txt]
`)
	r := vox(t, dir, "run", "z.yaml", "--plain")
	if r.code != 0 || !strings.Contains(r.stdout, "3 executed") {
		t.Fatalf("run with the Python example plugin:\n%s", r)
	}
	if r := vox(t, dir, "log", "z"); r.code != 0 || !strings.Contains(r.stdout, "z-scored 12 images x 5 voxels") {
		t.Errorf("the plugin's log did not reach voxflow:\n%s", r)
	}
	if r := vox(t, dir, "run", "z.yaml", "--plain"); r.code != 0 || !strings.Contains(r.stdout, "0 executed, 3 cached") {
		t.Errorf("rerun not served from the cache:\n%s", r)
	}
	// The declared schema is voxflow's: a bad value is refused before
	// anything runs, naming the param.
	if r := vox(t, dir, "run", "z.yaml", "--plain", "--set", "z.with.clip=-1"); r.code == 0 || !strings.Contains(r.stdout+r.stderr, "clip") {
		t.Errorf("clip -1 accepted against the plugin's min 0:\n%s", r)
	}
}

// TestPythonSDKFaults: a Python exception is one line naming the stage,
// the traceback in the stage's log; stdout and typed params cross the
// wire; a hanging stage is cancelled by voxflow's timeout and the plugin
// process does not outlive the run.
func TestPythonSDKFaults(t *testing.T) {
	dir := t.TempDir()
	py := pythonPlugins(t)
	writeFile(t, filepath.Join(dir, "f.yaml"), `name: f
plugins: {fixtures: `+py+`/testdata/fixtures.py}
stages:
  raises: {uses: raise}
  prints: {uses: printer, with: {n: 4, scale: 2.0}}
  checks:
    uses: command
    inputs: {deps: prints}
    with: {cmd: 'cp "$IN_prints/params.txt" got.txt && grep -qx "int 4 float 2.0" got.txt', outs: [got.txt]}
  hangs: {uses: hang, timeout: 2s}
`)
	t.Setenv("HANG_PID_DIR", dir)
	r := vox(t, dir, "run", "f.yaml", "--plain", "--keep-going")
	if r.code == 0 || !strings.Contains(r.stdout, "2 executed, 0 cached, 2 failed") {
		t.Fatalf("want the two good stages done and two failed:\n%s", r)
	}
	all := r.stdout + r.stderr
	want := "ValueError: bad threshold 42: expected a number in [0, 1] (traceback in the stage's log)"
	if !strings.Contains(all, want) {
		t.Errorf("failure report lacks the one-line error %q:\n%s", want, r)
	}
	for _, l := range strings.Split(all, "\n") {
		if strings.Contains(l, "failed") && strings.Contains(l, "raises") && !strings.Contains(l, want) {
			t.Errorf("failure line of raises %q lacks the one-line error", l)
		}
	}
	lg := vox(t, dir, "log", "raises")
	for _, w := range []string{"about to parse", "Traceback (most recent call last)", "in parse_threshold"} {
		if !strings.Contains(lg.stdout, w) {
			t.Errorf("log of raises lacks %q:\n%s", w, lg)
		}
	}
	if !strings.Contains(all, "timed out") {
		t.Errorf("hang was not reported as timed out:\n%s", r)
	}
	b, err := os.ReadFile(filepath.Join(dir, "pid"))
	if err != nil {
		t.Fatalf("the hanging stage never started: %v", err)
	}
	pid := 0
	for _, c := range strings.TrimSpace(string(b)) {
		pid = pid*10 + int(c-'0')
	}
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("plugin process %d still alive after the run ended", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPythonSDKProtoCurrent: the SDK's generated protocol modules match
// plugins/pluginpb/stage.proto, the file the Go side is generated from.
func TestPythonSDKProtoCurrent(t *testing.T) {
	out, err := exec.Command("/usr/bin/python3", filepath.Join(pythonPlugins(t), "gen_proto.py"), "--check").CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

// TestTorchPluginDeviceErrors: voxflow-torch asked for CUDA on a machine
// without it fails at start with one line that says what torch sees and
// what to do; device: auto on the same machine runs on the CPU.
func TestTorchPluginDeviceErrors(t *testing.T) {
	if out, err := exec.Command("/usr/bin/python3", "-c", "import torch; print(torch.cuda.is_available())").Output(); err != nil || strings.TrimSpace(string(out)) != "False" {
		t.Skipf("needs torch without a CUDA device (have: %s %v)", out, err)
	}
	dir := t.TempDir()
	torchPlugin := filepath.Join(pythonPlugins(t), "voxflow-torch")
	writeFile(t, filepath.Join(dir, "d.yaml"), `name: d
stages:
  gpu: {uses: "plugin:`+torchPlugin+`#pretrain", with: {epochs: 0, device: cuda}}
  auto: {uses: "plugin:`+torchPlugin+`#pretrain", with: {epochs: 0, device: auto}}
`)
	r := vox(t, dir, "run", "d.yaml", "--plain", "--keep-going")
	if r.code == 0 || !strings.Contains(r.stdout, "1 executed, 0 cached, 1 failed") {
		t.Fatalf("want auto done and cuda failed:\n%s", r)
	}
	for _, want := range []string{"RuntimeError: param device: cuda requested, but torch", "sees no CUDA device", "use device: auto or cpu"} {
		if !strings.Contains(r.stdout+r.stderr, want) {
			t.Errorf("failure lacks %q:\n%s", want, r)
		}
	}
	if lg := vox(t, dir, "log", "auto"); !strings.Contains(lg.stdout, "epochs 0: exporting random") {
		t.Errorf("auto did not export the network:\n%s", lg)
	}
}

// TestTorchAndGoAgreeOnTheDemo runs specs/torch-vs-go.yaml, the demo's
// fine-tunes by the Go kinds and by voxflow-torch from one pretrained
// control, and checks that the mean test r over every (subject, ROI
// group) agrees within 0.01 for CL and for MSE, and that the control
// network's features score the same through either implementation.
func TestTorchAndGoAgreeOnTheDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo's fine-tunes twice (minutes)")
	}
	dir := t.TempDir()
	b, err := os.ReadFile("../../specs/torch-vs-go.yaml")
	if err != nil {
		t.Fatal(err)
	}
	spec := strings.ReplaceAll(string(b), "plugin:../plugins/python/voxflow-torch", "plugin:"+filepath.Join(pythonPlugins(t), "voxflow-torch"))
	writeFile(t, filepath.Join(dir, "p.yaml"), spec)
	if r := vox(t, dir, "run", "p.yaml", "--plain"); r.code != 0 {
		t.Fatalf("run:\n%s", r)
	}
	r := vox(t, dir, "compare", "p.yaml", "--metric", "group.*.mean_r", "--format", "json")
	if r.code != 0 {
		t.Fatalf("compare:\n%s", r)
	}
	var out struct {
		Metrics []struct {
			Instance, Metric string
			Values           []float64
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("compare output: %v\n%s", err, r.stdout)
	}
	// metric: group.<group>.<network>.mean_r
	sums, counts := map[string]float64{}, map[string]int{}
	for _, m := range out.Metrics {
		parts := strings.Split(m.Metric, ".")
		if len(parts) != 4 || len(m.Values) != 1 {
			continue
		}
		sums[parts[2]] += m.Values[0]
		counts[parts[2]]++
	}
	mean := func(net string) float64 {
		if counts[net] == 0 {
			t.Fatalf("no group scores of %s in %s", net, r.stdout)
		}
		return sums[net] / float64(counts[net])
	}
	for _, pair := range [][2]string{{"feat_cl", "feat_cl_torch"}, {"feat_mse", "feat_mse_torch"}, {"feat_control", "feat_control_torch"}} {
		g, tr := mean(pair[0]), mean(pair[1])
		tol := 0.01
		if pair[0] == "feat_control" {
			tol = 1e-3 // one network, two forward passes
		}
		t.Logf("mean test r over %d (subject, group): %s %.4f, %s %.4f (difference %+.4f)", counts[pair[0]], pair[0], g, pair[1], tr, tr-g)
		if d := tr - g; d > tol || d < -tol {
			t.Errorf("%s %.4f vs %s %.4f: difference %+.4f, want within %g", pair[0], g, pair[1], tr, d, tol)
		}
	}
}
