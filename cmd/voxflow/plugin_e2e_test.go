package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildPlugin builds a plugin main package into dir.
func buildPlugin(t *testing.T, pkg, out string, ldflags ...string) {
	t.Helper()
	args := []string{"build", "-o", out}
	if len(ldflags) > 0 {
		args = append(args, "-ldflags", strings.Join(ldflags, " "))
	}
	args = append(args, pkg)
	if b, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
}

// runGo runs the go command.
func runGo(args ...string) ([]byte, error) {
	return exec.Command("go", args...).CombinedOutput()
}

// pidsOf lists running processes whose executable is path.
func pidsOf(path string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err == nil && exe == path {
			if b, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); !strings.Contains(string(b), ") Z ") {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

func TestPluginFaultsFailOnlyTheirStage(t *testing.T) {
	dir := t.TempDir()
	buildPlugin(t, "../../plugins/internal/testplugin", filepath.Join(dir, "testplugin"))
	writeFile(t, filepath.Join(dir, "p.yaml"), `name: p
plugins: {faults: ./testplugin}
stages:
  ok: {uses: echo, with: {n: 3}}
  after_ok:
    uses: command
    inputs: {deps: ok}
    with: {cmd: 'cat $IN_ok/request.json > copy.json', outs: [copy.json]}
  crashes: {uses: crash}
  exits: {uses: exit}
  panics: {uses: panic}
  hangs: {uses: hang, timeout: 2s}
  isolated:
    uses: command
    isolate: process
    with: {cmd: 'echo "pid $PPID" > who', outs: [who]}
`)
	r := vox(t, dir, "run", "p.yaml", "--keep-going", "--plain")
	if r.code != 1 || !strings.Contains(r.stdout, "3 executed, 0 cached, 4 failed") {
		t.Fatalf("plugin faults should fail only their own stages:\n%s", r)
	}
	all := r.stdout + r.stderr
	for _, want := range []string{"boom in a goroutine", "exit: giving up with status 7", "boom in Run", "timed out"} {
		if !strings.Contains(all, want) {
			t.Errorf("failure report lacks %q (stderr tail of the plugin)", want)
		}
	}
	if pids := pidsOf(filepath.Join(dir, "testplugin")); len(pids) > 0 {
		t.Errorf("plugin processes outlived the run: %v", pids)
	}
	// The next run retries exactly the failed instances.
	r = vox(t, dir, "run", "p.yaml", "--keep-going", "--plain")
	if !strings.Contains(r.stdout, "0 executed, 3 cached, 4 failed") {
		t.Fatalf("rerun should retry the failed instances only:\n%s", r)
	}
}

func TestPluginKeyFollowsTheBinary(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "voxflow-test")
	buildPlugin(t, "../../plugins/internal/testplugin", bin)
	writeFile(t, filepath.Join(dir, "k.yaml"), `name: k
stages:
  up:
    uses: command
    with: {cmd: 'echo hi > hi.txt', outs: [hi.txt]}
  echo:
    uses: plugin:./voxflow-test#echo
    inputs: {in: up}
  down:
    uses: command
    inputs: {deps: echo}
    with: {cmd: 'wc -c < $IN_echo/request.json > n'}
`)
	if r := vox(t, dir, "run", "k.yaml"); r.code != 0 {
		t.Fatalf("run:\n%s", r)
	}
	if r := vox(t, dir, "plugins", bin); r.code != 0 || !strings.Contains(r.stdout, "echo") {
		t.Fatalf("voxflow plugins:\n%s", r)
	}
	// Same code rebuilt: same digest, nothing reruns.
	buildPlugin(t, "../../plugins/internal/testplugin", bin)
	if r := vox(t, dir, "plan", "k.yaml"); !strings.Contains(r.stdout, "0 to run, 3 cached") {
		t.Fatalf("an identical rebuild must not invalidate:\n%s", r)
	}
	// Changed code (a different embedded string): the plugin's instance and
	// its dependents rerun, its upstream does not.
	buildPlugin(t, "../../plugins/internal/testplugin", bin, "-X main.buildNote=changed")
	r := vox(t, dir, "plan", "k.yaml")
	if r.code != 0 || !strings.Contains(r.stdout, "implementation changed") || !strings.Contains(r.stdout, "cached  up") {
		t.Fatalf("plan after rebuilding the plugin:\n%s", r)
	}
	if r := vox(t, dir, "run", "k.yaml"); r.code != 0 || !strings.Contains(r.stdout, "executed, 1 cached") {
		t.Fatalf("run after rebuilding the plugin:\n%s", r)
	}
}

func TestKilledVoxflowTakesItsPluginsDown(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			plugin := filepath.Join(dir, "testplugin")
			buildPlugin(t, "../../plugins/internal/testplugin", plugin)
			writeFile(t, filepath.Join(dir, "h.yaml"), "name: h\nplugins: {t: ./testplugin}\nstages:\n  hang: {uses: hang}\n")
			cmd := exec.Command(voxBin, "run", "h.yaml", "--plain")
			cmd.Dir = dir
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, func() bool { return len(pidsOf(plugin)) > 0 })
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			deadline := time.Now().Add(10 * time.Second)
			for len(pidsOf(plugin)) > 0 {
				if time.Now().After(deadline) {
					t.Fatalf("plugin %v outlived voxflow after %s", pidsOf(plugin), sig)
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}
