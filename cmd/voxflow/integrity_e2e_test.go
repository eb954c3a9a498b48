package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// gcSpec: b reads a's output after a nap, so a gc can run while a run has
// decided to reuse a and has not read it yet.
const gcSpec = `name: g
params: {nap: 0, v: 0}
stages:
  a:
    uses: command
    with: {cmd: 'echo a >> %[1]s; printf payload-%[3]d > a.txt', outs: [a.txt]}
  b:
    uses: command
    inputs: {deps: a}
    with: {cmd: 'echo b-${params.v} >> %[1]s; sleep ${params.nap}; cat "$IN_a/a.txt" > b.txt; cat "$IN_a/a.txt" > %[2]s', outs: [b.txt]}
`

// TestGCDuringRunKeepsWhatTheRunUses runs gc --keep-last 1 --grace 0 in
// another process while a run that reuses a's cached output sleeps before
// reading it. The run's own record is the newest of its spec, so before
// cache hits were linked as they were decided, gc deleted a's output under
// the run (3 of 3 trials failed).
func TestGCDuringRunKeepsWhatTheRunUses(t *testing.T) {
	const trials = 3
	for trial := range trials {
		dir := t.TempDir()
		trace, final := filepath.Join(dir, "trace"), filepath.Join(dir, "final")
		writeFile(t, filepath.Join(dir, "g.yaml"), fmt.Sprintf(gcSpec, trace, final, trial))
		if r := vox(t, dir, "run", "g.yaml"); r.code != 0 {
			t.Fatalf("trial %d: first run:\n%s", trial, r)
		}
		os.Remove(final)
		run := exec.Command(voxBin, "run", "g.yaml", "--plain", "--set", "params.v=1", "--set", "params.nap=1.5")
		run.Dir = dir
		run.Env = append(os.Environ(), "VOXFLOW_CACHE=")
		var out lockedBuffer
		run.Stdout, run.Stderr = &out, &out
		if err := run.Start(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { return countLines(t, trace, "b-1") == 1 })
		gc := vox(t, dir, "gc", "--keep-last", "1", "--grace", "0")
		if gc.code != 0 || strings.Contains(gc.stdout, "removed 0 object(s)") {
			t.Fatalf("trial %d: gc during the run should succeed and remove the first run's leftovers:\n%s", trial, gc)
		}
		err := run.Wait()
		if err != nil || !strings.Contains(out.String(), "1 executed, 1 cached") {
			t.Fatalf("trial %d: run during gc: %v\n%s", trial, err, out.String())
		}
		if got := readFile(t, final); got != fmt.Sprintf("payload-%d", trial) {
			t.Fatalf("trial %d: b read %q from its cached input", trial, got)
		}
		if r := vox(t, dir, "cache", "verify"); r.code != 0 {
			t.Fatalf("trial %d: verify after gc:\n%s", trial, r)
		}
		// gc kept everything the finished run used.
		if r := vox(t, dir, "run", "g.yaml", "--set", "params.v=1", "--set", "params.nap=1.5"); r.code != 0 || !strings.Contains(r.stdout, "0 executed, 2 cached") {
			t.Fatalf("trial %d: rerun after gc:\n%s", trial, r)
		}
		t.Logf("trial %d: right result, gc said %q", trial, strings.TrimSpace(gc.stdout))
	}
}

const cascadeSpec = `name: cc
stages:
  a:
    uses: command
    with: {cmd: 'echo a >> %[1]s; echo payload-a > a.txt', outs: [a.txt]}
  b:
    uses: command
    inputs: {deps: a}
    with: {cmd: 'echo b >> %[1]s; tr a-z A-Z < "$IN_a/a.txt" > b.txt', outs: [b.txt]}
  c:
    uses: command
    inputs: {deps: b}
    with: {cmd: 'echo c >> %[1]s; cat "$IN_b/b.txt" > c.txt; cat "$IN_b/b.txt" > %[2]s', outs: [c.txt]}
`

// findObject returns the path of the stored object holding content.
func findObject(t *testing.T, dir, content string) string {
	t.Helper()
	var found string
	filepath.WalkDir(filepath.Join(dir, ".voxflow", "objects"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, _ := os.ReadFile(p); string(b) == content {
				found = p
			}
		}
		return nil
	})
	if found == "" {
		t.Fatalf("no stored object holds %q", content)
	}
	return found
}

// TestCorruptObjectCascades corrupts the object a downstream stage reads
// and reruns without any change: the damage is found before the cached
// output is reused, the object is quarantined, and the producer and every
// consumer rerun in the same run, giving the right result.
func TestCorruptObjectCascades(t *testing.T) {
	const trials = 2
	for trial := range trials {
		dir := t.TempDir()
		trace, final := filepath.Join(dir, "trace"), filepath.Join(dir, "final")
		writeFile(t, filepath.Join(dir, "cc.yaml"), fmt.Sprintf(cascadeSpec, trace, final))
		if r := vox(t, dir, "run", "cc.yaml"); r.code != 0 {
			t.Fatalf("run:\n%s", r)
		}
		obj := findObject(t, dir, "payload-a\n")
		os.Chmod(obj, 0o644)
		fi, _ := os.Stat(obj)
		// Same size; the second trial also puts the mtime back, so only
		// ctime shows the write.
		writeFile(t, obj, "tampered!\n")
		if trial == 1 {
			os.Chtimes(obj, fi.ModTime(), fi.ModTime())
		}
		os.Remove(final)
		r := vox(t, dir, "run", "cc.yaml")
		if r.code != 0 || !strings.Contains(r.stdout, "3 executed, 0 cached") {
			t.Fatalf("trial %d: rerun after corruption should recompute a, b and c:\n%s", trial, r)
		}
		if !strings.Contains(r.stderr, "corrupt") || !strings.Contains(r.stderr, "a, b, c") {
			t.Errorf("trial %d: the run should say which object was corrupt and what it invalidated:\n%s", trial, r)
		}
		for _, s := range []string{"a", "b", "c"} {
			if n := countLines(t, trace, s); n != 2 {
				t.Errorf("trial %d: %s ran %d times, want 2", trial, s, n)
			}
		}
		if got := readFile(t, final); got != "PAYLOAD-A\n" {
			t.Fatalf("trial %d: result %q, want PAYLOAD-A", trial, got)
		}
		q, _ := filepath.Glob(filepath.Join(dir, ".voxflow", "quarantine", "*"))
		if len(q) != 1 || readFile(t, q[0]) != "tampered!\n" {
			t.Errorf("trial %d: quarantine holds %v", trial, q)
		}
		if r := vox(t, dir, "run", "cc.yaml"); r.code != 0 || !strings.Contains(r.stdout, "0 executed, 3 cached") {
			t.Fatalf("trial %d: third run:\n%s", trial, r)
		}
	}
}

// TestSwappedTreeFileIsDetected swaps a file inside a materialised input
// tree: verify reports it, and a stage reading the tree next gets the
// stored bytes, never the swapped ones.
func TestSwappedTreeFileIsDetected(t *testing.T) {
	dir := t.TempDir()
	trace, final := filepath.Join(dir, "trace"), filepath.Join(dir, "final")
	writeFile(t, filepath.Join(dir, "cc.yaml"), fmt.Sprintf(cascadeSpec, trace, final))
	if r := vox(t, dir, "run", "cc.yaml"); r.code != 0 {
		t.Fatalf("run:\n%s", r)
	}
	swap := func() {
		t.Helper()
		files, _ := filepath.Glob(filepath.Join(dir, ".voxflow", "trees", "*", "a.txt"))
		if len(files) != 1 {
			t.Fatalf("materialised a.txt: %v", files)
		}
		d := filepath.Dir(files[0])
		os.Chmod(d, 0o755)
		os.Remove(files[0])
		writeFile(t, files[0], "evil-data\n")
		os.Chmod(d, 0o555)
	}
	swap()
	r := vox(t, dir, "cache", "verify")
	if r.code != 1 || !strings.Contains(r.stdout, "1 damaged tree(s)") {
		t.Fatalf("verify should report the swapped file:\n%s", r)
	}
	// Verify invalidated b, which read the tree: it reruns, materialising
	// a fresh tree.
	if r := vox(t, dir, "run", "cc.yaml"); r.code != 0 || readFile(t, final) != "PAYLOAD-A\n" {
		t.Fatalf("run after verify:\n%s\nfinal %q", r, readFile(t, final))
	}
	swap()
	if r := vox(t, dir, "run", "cc.yaml", "--force", "b"); r.code != 0 || readFile(t, final) != "PAYLOAD-A\n" {
		t.Fatalf("a read after a swap must get the stored bytes:\n%s\nfinal %q", r, readFile(t, final))
	}
}

// TestHardlinkedOutputIsCopied: a stage whose output is a hard link to a
// user's file must not turn that file into an object.
func TestHardlinkedOutputIsCopied(t *testing.T) {
	dir := t.TempDir()
	user := filepath.Join(dir, "user.npy")
	writeFile(t, user, "user data\n")
	writeFile(t, filepath.Join(dir, "h.yaml"), fmt.Sprintf(`name: h
stages:
  link:
    uses: command
    with: {cmd: 'ln %s out.npy', outs: [out.npy]}
`, user))
	if r := vox(t, dir, "run", "h.yaml"); r.code != 0 {
		t.Fatalf("run:\n%s", r)
	}
	fi, err := os.Stat(user)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("user's file mode is %v, want it unchanged (0644)", fi.Mode().Perm())
	}
	obj := findObject(t, dir, "user data\n")
	ofi, _ := os.Stat(obj)
	if fi.Sys().(*syscall.Stat_t).Ino == ofi.Sys().(*syscall.Stat_t).Ino {
		t.Fatal("the object shares its inode with the user's file")
	}
	writeFile(t, user, "user edit\n")
	if r := vox(t, dir, "cache", "verify"); r.code != 0 || !strings.Contains(r.stdout, " 0 corrupt") {
		t.Fatalf("editing the user's file must not corrupt the cache:\n%s", r)
	}
}

// TestCommandCannotWriteIntoTheStore: a command stage, run as root, tries
// to write through $OUT/../.. into objects/ and into its input's tree;
// both fail with a read-only file system while its own $OUT stays
// writable, so nothing in the store changes. Needs mount namespaces
// (root, as CI runs); elsewhere the store's fingerprints are the guard.
func TestCommandCannotWriteIntoTheStore(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mount namespaces need root")
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "w.yaml"), `name: w
stages:
  a:
    uses: command
    with: {cmd: 'echo hello > a.txt', outs: [a.txt]}
  b:
    uses: command
    inputs: {deps: a}
    with:
      cmd: |
        cache="$(cd "$OUT/../../../.." && pwd)"
        test -d "$cache/objects" || { echo "no objects under $cache"; exit 3; }
        if { echo evil > "$cache/objects/evil"; } 2>err1; then echo "wrote into objects"; exit 4; fi
        if { echo evil >> "$IN_a/a.txt"; } 2>err2; then echo "wrote into an input"; exit 5; fi
        grep -q "Read-only file system" err1 || { cat err1; exit 6; }
        echo ok > b.txt
      outs: [b.txt]
`)
	r := vox(t, dir, "run", "w.yaml", "--plain")
	if r.code != 0 {
		t.Fatalf("the command could write into the store, or failed otherwise:\n%s\n%s", r, vox(t, dir, "log", "b").stdout)
	}
	if _, err := os.Stat(filepath.Join(dir, ".voxflow", "objects", "evil")); err == nil {
		t.Fatal("objects/evil exists")
	}
	if r := vox(t, dir, "cache", "verify", "--cache", filepath.Join(dir, ".voxflow")); r.code != 0 {
		t.Errorf("verify after the attempt:\n%s", r)
	}
}
