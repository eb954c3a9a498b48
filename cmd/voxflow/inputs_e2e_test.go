package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// inputsSpec reads a data root, and a weights file and a glob of configs,
// from outside the cache, all relative to the spec's directory.
const inputsSpec = `name: inputs
stages:
  nsd:
    uses: command
    with:
      cmd: echo nsd >> "$TRACE"; find "$ROOT" -type f | sort > list.txt
      files: [data]
      outs: [list.txt]
      env: {TRACE: %[1]s, ROOT: %[2]s}
  cfg:
    uses: command
    with:
      cmd: echo cfg >> "$TRACE"; echo configured > c.txt
      files: [w.bin, "conf/*.cfg"]
      outs: [c.txt]
      env: {TRACE: %[1]s}
  after:
    uses: command
    inputs: {deps: nsd}
    with:
      cmd: echo after >> "$TRACE"; wc -l < "$IN_nsd/list.txt" > n.txt
      outs: [n.txt]
      env: {TRACE: %[1]s}
`

// TestOutsideInputsAreContent edits, touches, adds, removes and renames
// files that a command stage declares in files:, and replaces a weights
// file under the same path: every content change reruns the stage and plan
// names the file; touch reruns nothing.
func TestOutsideInputsAreContent(t *testing.T) {
	dir := t.TempDir()
	trace := filepath.Join(dir, "trace")
	root := filepath.Join(dir, "data")
	lh := filepath.Join(root, "subj01/training_split/training_fmri/lh_training_fmri.npy")
	writeFile(t, filepath.Join(dir, "inputs.yaml"), fmt.Sprintf(inputsSpec, trace, root))
	writeFile(t, lh, "left hemisphere")
	writeFile(t, filepath.Join(root, "subj01/training_split/training_images/0001.png"), "png 1")
	writeFile(t, filepath.Join(dir, "w.bin"), "weights v1")
	writeFile(t, filepath.Join(dir, "conf/a.cfg"), "a=1")
	// Run from elsewhere: relative files: resolve against the spec's
	// directory, not the working directory.
	cwd := t.TempDir()
	spec := filepath.Join(dir, "inputs.yaml")
	run := func(what string, wantExecuted int) {
		t.Helper()
		r := vox(t, cwd, "run", spec)
		if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf(" %d executed", wantExecuted)) {
			t.Fatalf("%s: want %d executed:\n%s", what, wantExecuted, r)
		}
	}
	plan := func(what string, want ...string) {
		t.Helper()
		r := vox(t, cwd, "plan", spec)
		// Column padding aside: "run nsd input file changed: ...".
		table := regexp.MustCompile(`[ \t]+`).ReplaceAllString(r.stdout, " ")
		for _, w := range want {
			if r.code != 0 || !strings.Contains(table, w) {
				t.Fatalf("%s: plan lacks %q:\n%s", what, w, r)
			}
		}
	}

	run("first run", 3)
	run("second run", 0)

	// touch (a newer mtime and ctime, same bytes): nothing reruns.
	later := time.Now().Add(time.Minute)
	for _, p := range []string{lh, filepath.Join(dir, "w.bin"), filepath.Join(dir, "conf/a.cfg")} {
		if err := os.Chtimes(p, later, later); err != nil {
			t.Fatal(err)
		}
	}
	plan("after touch", "0 to run, 3 cached")
	run("after touch", 0)

	// Edit one file under the root, same size.
	writeFile(t, lh, "LEFT hemisphere")
	plan("after an edit", "run nsd input file changed: subj01/training_split/training_fmri/lh_training_fmri.npy")
	run("after an edit", 1) // list.txt names the same files: after is cached
	// Its old content back: the first run's result is reused.
	writeFile(t, lh, "left hemisphere")
	plan("after undoing the edit", "0 to run, 3 cached")
	run("after undoing the edit", 0)

	// Add, then rename, then remove a file.
	img2 := filepath.Join(root, "subj01/training_split/training_images/0002.png")
	writeFile(t, img2, "png 2")
	plan("after adding a file", "input file added: subj01/training_split/training_images/0002.png")
	run("after adding a file", 2)
	img3 := filepath.Join(root, "subj01/training_split/training_images/0003.png")
	if err := os.Rename(img2, img3); err != nil {
		t.Fatal(err)
	}
	plan("after a rename", "input file added: subj01/training_split/training_images/0003.png",
		"input file removed: subj01/training_split/training_images/0002.png")
	run("after a rename", 2)
	if err := os.Remove(img3); err != nil {
		t.Fatal(err)
	}
	plan("after removing a file", "0 to run, 3 cached") // back to the first run's tree
	run("after removing a file", 0)

	// Replace the weights file under the same path (a new inode, same size).
	tmp := filepath.Join(dir, "w.bin.tmp")
	writeFile(t, tmp, "weights v2")
	if err := os.Rename(tmp, filepath.Join(dir, "w.bin")); err != nil {
		t.Fatal(err)
	}
	plan("after replacing the weights", "input file changed: "+filepath.Join(dir, "w.bin"))
	run("after replacing the weights", 1)

	// The glob: a new match reruns.
	writeFile(t, filepath.Join(dir, "conf/b.cfg"), "b=2")
	writeFile(t, filepath.Join(dir, "conf/ignored.txt"), "not a match")
	plan("after a new glob match", "input file added: "+filepath.Join(dir, "conf/b.cfg"))
	run("after a new glob match", 1)
	writeFile(t, filepath.Join(dir, "conf/ignored.txt"), "still not a match")
	run("after editing a file the glob does not match", 0)
	if n, c := countLines(t, trace, "nsd"), countLines(t, trace, "cfg"); n != 4 || c != 3 {
		t.Errorf("nsd executed %d times, cfg %d; want 4 (first, edit, add, rename) and 3 (first, weights, glob)", n, c)
	}
}
