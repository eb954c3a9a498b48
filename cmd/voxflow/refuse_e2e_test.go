package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// twoStages is a small spec: b reads a's output.
const twoStages = `name: two
stages:
  a:
    uses: command
    with: {cmd: 'echo a > a.txt', outs: [a.txt]%s}
  b:
    uses: command
    inputs: {deps: a}
    with: {cmd: 'cat $IN_a/a.txt > b.txt', outs: [b.txt]}
`

// Every bad value is refused with a clear message and a non-zero exit,
// before anything runs and without creating a cache.
func TestBadValuesAreRefused(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "two.yaml"), fmt.Sprintf(twoStages, ""))
	for i, env := range []string{`"A=B"`, `""`, `"A B"`, `"1X"`} {
		writeFile(t, filepath.Join(dir, fmt.Sprintf("env%d.yaml", i)), fmt.Sprintf(twoStages, ", env: {"+env+": x}"))
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"run", "two.yaml", "--force", "bb"}, 2, `--force "bb": no stage or instance of that name in spec two; did you mean b? (stages: a, b)`},
		{[]string{"plan", "two.yaml", "--force", "a", "--force", "aa"}, 2, `--force "aa"`},
		{[]string{"run", "two.yaml", "-j", "-3"}, 2, "-j -3: want a number >= 0"},
		{[]string{"run", "two.yaml", "--cpus", "-1"}, 2, "--cpus -1: want a number >= 0"},
		{[]string{"run", "two.yaml", "--gpus", "-1"}, 2, "--gpus -1: want a number >= 0"},
		{[]string{"run", "two.yaml", "--memory", "-1G"}, 2, "--memory: want a non-negative size"},
		{[]string{"run", "two.yaml", "--memory", "lots"}, 2, "--memory: want a size such as 512MiB"},
		{[]string{"run", "env0.yaml"}, 1, `param "env": key "A=B": want an environment variable name`},
		{[]string{"validate", "env1.yaml"}, 1, `param "env": key "": want an environment variable name`},
		{[]string{"plan", "env2.yaml"}, 1, `key "A B"`},
		{[]string{"run", "env3.yaml"}, 1, `key "1X"`},
		{[]string{"status", "--cache", "TYPO"}, 1, "no voxflow cache (the directory does not exist)"},
		{[]string{"show", "a", "--cache", "TYPO"}, 1, "no voxflow cache"},
		{[]string{"log", "a", "--cache", "TYPO"}, 1, "no voxflow cache"},
		{[]string{"gc", "--cache", "TYPO"}, 1, "no voxflow cache"},
		{[]string{"cache", "verify", "--cache", "TYPO"}, 1, "no voxflow cache"},
		{[]string{"compare", "1", "2", "--cache", "TYPO"}, 1, "no voxflow cache"},
		{[]string{"diff", "1", "2", "--cache", "TYPO"}, 1, "no voxflow cache"},
		{[]string{"report", "1", "--cache", "TYPO"}, 1, "no voxflow cache"},
		{[]string{"status"}, 1, "no voxflow cache"},                           // no ./.voxflow: nothing to report on
		{[]string{"gc", "TYPO"}, 2, `voxflow gc: unexpected argument "TYPO"`}, // not ./.voxflow in disguise
		{[]string{"stages", "ridg"}, 2, `unknown stage kind "ridg": expected one of`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := vox(t, dir, tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("want exit %d and %q:\n%s", tc.code, tc.want, r)
			}
			if n := strings.Count(strings.TrimSpace(r.stderr), "\n"); n > 0 {
				t.Errorf("want one line, got %d:\n%s", n+1, r.stderr)
			}
		})
	}
	for _, p := range []string{"TYPO", ".voxflow"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err == nil {
			t.Errorf("a refused command created %s", p)
		}
	}
}

// An index.db that is empty or not SQLite is refused, never replaced by a
// new cache.
func TestBadIndexIsRefused(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "two.yaml"), fmt.Sprintf(twoStages, ""))
	index := filepath.Join(dir, ".voxflow", "index.db")
	for _, content := range []string{"", "not a database\n"} {
		writeFile(t, index, content)
		for _, args := range [][]string{{"run", "two.yaml"}, {"plan", "two.yaml"}, {"status"}, {"gc"}} {
			r := vox(t, dir, args...)
			if r.code == 0 || !strings.Contains(r.stderr, index) || !strings.Contains(r.stderr, "refusing") {
				t.Errorf("%v on index.db %q:\n%s", args, content, r)
			}
		}
		if got := readFile(t, index); got != content {
			t.Fatalf("index.db was changed to %q", got)
		}
	}
}

// `resources: {memory: 16GB}` fits under `--memory 16GB`: the flag and the
// spec read sizes with one parser (binary units, as Slurm).
func TestMemoryFlagAndSpecAgree(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "m.yaml"), `name: m
stages:
  big:
    uses: command
    resources: {memory: 16GB}
    with: {cmd: 'echo ok > ok', outs: [ok]}
`)
	r := vox(t, dir, "run", "m.yaml", "--memory", "16GB")
	if r.code != 0 || !strings.Contains(r.stdout, "1 executed") {
		t.Fatalf("a 16GB stage under --memory 16GB:\n%s", r)
	}
	writeFile(t, filepath.Join(dir, "m.yaml"), strings.Replace(readFile(t, filepath.Join(dir, "m.yaml")), "16GB", "16.5GB", 1))
	r = vox(t, dir, "run", "m.yaml", "--memory", "16GiB", "--force", "big")
	if r.code != 1 || !strings.Contains(r.stderr, "needs 16896 MB of memory, this run allows 16384 MB") {
		t.Fatalf("a 16.5GB stage under --memory 16GiB:\n%s", r)
	}
}

// A plugin that fails to start is reported once, as itself: no "unknown
// stage kind" line before it and no "did you mean" naming the same kind.
func TestPluginStartErrorIsReportedOnce(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "broken"), "#!/bin/sh\necho 'cannot load libfit.so' >&2\nexit 3\n")
	if err := os.Chmod(filepath.Join(dir, "broken"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "p.yaml"), `name: p
plugins: {fit: ./broken}
stages:
  one: {uses: fit}
  two: {uses: fit}
`)
	r := vox(t, dir, "validate", "p.yaml")
	if r.code != 1 || !strings.Contains(r.stderr, "cannot load libfit.so") || !strings.Contains(r.stderr, "did not answer the plugin handshake") {
		t.Fatalf("want the plugin's start-up error:\n%s", r)
	}
	for _, bad := range []string{"unknown stage kind", "did you mean", "Unrecognized remote plugin message"} {
		if strings.Contains(r.stderr, bad) {
			t.Errorf("report contains %q:\n%s", bad, r.stderr)
		}
	}
	if n := strings.Count(r.stderr, "cannot load libfit.so"); n != 1 {
		t.Errorf("the plugin's error is printed %d times:\n%s", n, r.stderr)
	}
	if !strings.Contains(r.stderr, "stage two: its plugin did not start either (see stage one)") {
		t.Errorf("second stage not pointed at the first:\n%s", r.stderr)
	}
}

// A plugin stage's panic is one line for the user, in the failure summary;
// its stack trace is in the stage's log.
func TestPluginPanicIsOneLine(t *testing.T) {
	dir := t.TempDir()
	buildPlugin(t, "../../plugins/internal/testplugin", filepath.Join(dir, "testplugin"))
	writeFile(t, filepath.Join(dir, "p.yaml"), `name: p
plugins: {faults: ./testplugin}
stages:
  panics: {uses: panic}
`)
	r := vox(t, dir, "run", "p.yaml", "--plain")
	if r.code != 1 || !strings.Contains(r.stderr, "stage panicked: boom in Run (stack trace in the stage's log)") {
		t.Fatalf("want the panic's one line:\n%s", r)
	}
	if strings.Contains(r.stderr, "goroutine ") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 1 {
		t.Errorf("the failure summary should be two lines, without the stack:\n%s", r.stderr)
	}
	r = vox(t, dir, "log", "panics")
	if r.code != 0 || !strings.Contains(r.stdout, "stage panicked: boom in Run") || !strings.Contains(r.stdout, "teststages.go") {
		t.Fatalf("the stage's log should hold the stack:\n%s", r)
	}
	r = vox(t, dir, "show", "panics")
	if !strings.Contains(r.stdout, "(stack trace in the stage's log)") || strings.Contains(r.stdout, "teststages.go") {
		t.Errorf("the index should keep the one line, not the stack:\n%s", r)
	}
}

// A read-only cache (a lab's shared cache on a read-only mount) answers
// everything that only reads, and a fully cached run; what must write
// fails in one line naming the cache. It is simulated with a read-only
// bind mount of a real cache (the tests run as root, for whom chmod a-w
// changes nothing); where mounting is not allowed the test is skipped.
func TestReadOnlyCache(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "two.yaml"), fmt.Sprintf(twoStages, ""))
	if r := vox(t, dir, "run", "two.yaml"); r.code != 0 {
		t.Fatalf("first run:\n%s", r)
	}
	ro := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(ro, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "--bind", filepath.Join(dir, ".voxflow"), ro).CombinedOutput(); err != nil {
		t.Skipf("cannot bind-mount (not root?): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", ro).Run() })
	if out, err := exec.Command("mount", "-o", "remount,ro,bind", ro).CombinedOutput(); err != nil {
		t.Skipf("cannot remount read-only: %v %s", err, out)
	}
	if err := os.WriteFile(filepath.Join(ro, "probe"), nil, 0o644); err == nil {
		t.Fatal("the read-only mount is writable")
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"plan", "two.yaml"}, "0 to run, 2 cached"},
		{[]string{"run", "two.yaml"}, "run (not recorded: the cache " + ro + " is read-only) succeeded: 0 executed, 2 cached"},
		{[]string{"status"}, "succeeded"},
		{[]string{"show", "b"}, "status    succeeded"},
		{[]string{"log", "a"}, ""},
		{[]string{"compare", "1", "1"}, "instance"},
		{[]string{"report", "1", "-o", filepath.Join(dir, "r.html")}, ""},
	} {
		r := vox(t, dir, append(tc.args, "--cache", ro)...)
		if r.code != 0 || !strings.Contains(r.stdout, tc.want) {
			t.Errorf("%v on a read-only cache:\n%s", tc.args, r)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "two.yaml", "--force", "b"}, "voxflow run: the cache " + ro + " is read-only and 1 instance(s) are not cached (b): run with a writable --cache"},
		{[]string{"gc"}, "voxflow gc: the cache " + ro + " is read-only, and gc must write it"},
		{[]string{"cache", "verify"}, "is read-only, and cache verify must write it"},
	} {
		r := vox(t, dir, append(tc.args, "--cache", ro)...)
		if r.code != 1 || strings.TrimSpace(r.stderr) != strings.TrimSpace(r.stderr[strings.Index(r.stderr, "voxflow"):]) || !strings.Contains(r.stderr, tc.want) || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Errorf("%v on a read-only cache should fail in one line %q:\n%s", tc.args, tc.want, r)
		}
	}
	// Nothing was recorded: the writable view still has exactly one run.
	r := vox(t, dir, "status")
	if strings.Count(r.stdout, "two ") != 1 {
		t.Errorf("the read-only runs were recorded:\n%s", r)
	}
}
