package main

import (
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
