package cache

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tamper rewrites the object d in place, as a stage writing through a
// hardlink into its input (or root) would.
func tamper(t *testing.T, s *Store, d Digest, content string) {
	t.Helper()
	p := s.objectPath(d)
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(content)
	f.Close()
	os.Chmod(p, 0o444)
}

func inputsOf(ds ...Digest) string {
	var parts []string
	for _, d := range ds {
		parts = append(parts, fmt.Sprintf(`{"digest":%q,"stage":"x"}`, d))
	}
	return `{"in":[` + strings.Join(parts, ",") + `]}`
}

func TestPathChecksObjectsAndCascades(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t)
	treeA := putTestTree(t, s, map[string]string{"roi/V1.npy": "V1-DATA", "other.npy": "OTHER"})
	v1, _ := s.Sub(ctx, treeA, "roi/V1.npy")
	roi, _ := s.Sub(ctx, treeA, "roi")
	other, _ := s.Sub(ctx, treeA, "other.npy")
	treeB := putTestTree(t, s, map[string]string{"feat.npy": "FEATURES-FROM-V1"})
	treeC := putTestTree(t, s, map[string]string{"score.json": "0.5"})
	treeD := putTestTree(t, s, map[string]string{"d.npy": "FROM-OTHER"})
	a := record(t, s, Execution{Key: HashBytes([]byte("a")), Instance: "data", Output: treeA})
	b := record(t, s, Execution{Key: HashBytes([]byte("b")), Instance: "features[V1]", Output: treeB, Inputs: inputsOf(roi)})
	c := record(t, s, Execution{Key: HashBytes([]byte("c")), Instance: "score[V1]", Output: treeC, Inputs: inputsOf(treeB)})
	d := record(t, s, Execution{Key: HashBytes([]byte("d")), Instance: "unrelated", Output: treeD, Inputs: inputsOf(other)})

	// Intact and Path pass while nothing changed (and record fingerprints).
	if err := s.Intact(ctx, treeA); err != nil {
		t.Fatal(err)
	}
	dir, err := s.Path(ctx, roi)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "V1.npy")); string(b) != "V1-DATA" {
		t.Fatalf("materialised V1.npy = %q", b)
	}
	fi, _ := os.Stat(dir)
	if fi.Mode().Perm() != 0o555 {
		t.Errorf("materialised tree mode %v, want read-only 0555", fi.Mode().Perm())
	}

	// Same size, same mtime restored: only ctime (and content) tell.
	ofi, _ := os.Stat(s.objectPath(v1))
	tamper(t, s, v1, "V1-EVIL")
	os.Chtimes(s.objectPath(v1), ofi.ModTime(), ofi.ModTime())

	_, err = s.Path(ctx, roi)
	var ce *CorruptError
	if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) || ce.Object != v1 {
		t.Fatalf("Path of a tree with a corrupt object: %v, want a CorruptError for %s", err, v1.Short())
	}
	for _, name := range []string{"data", "features[V1]", "score[V1]"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name invalidated instance %s: %v", name, err)
		}
	}
	if strings.Contains(err.Error(), "unrelated") {
		t.Errorf("error names an execution that never read the object: %v", err)
	}
	for _, e := range []*Execution{a, b, c} {
		if got, _ := s.Execution(ctx, e.ID); !got.Invalid {
			t.Errorf("%s not invalidated", e.Instance)
		}
	}
	if got, _ := s.Execution(ctx, d.ID); got.Invalid {
		t.Error("an execution that read another part of the tree was invalidated")
	}
	if s.Has(v1) {
		t.Error("corrupt object still in objects/")
	}
	q, _ := filepath.Glob(filepath.Join(s.Dir(), "quarantine", string(v1)+".*"))
	if len(q) != 1 || ce.Quarantine != q[0] {
		t.Errorf("quarantine holds %v, error says %q", q, ce.Quarantine)
	}
	if _, err := os.Lstat(dir); !os.IsNotExist(err) {
		t.Errorf("materialised tree holding the corrupt inode survived: %v", err)
	}
	if _, ok, _ := s.Lookup(ctx, a.Key); ok {
		t.Error("Lookup still serves the producer")
	}
}

func TestPathRehashesOnlyOnMismatch(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t)
	f, err := s.PutBytes(ctx, []byte("weights"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.objectStat(ctx, f); !ok {
		t.Fatal("put recorded no fingerprint")
	}
	// A metadata-only change (touch) is rehashed once, found right and
	// recorded; the object is served.
	later := time.Now().Add(time.Minute)
	os.Chtimes(s.objectPath(f), later, later)
	if p, err := s.Path(ctx, f); err != nil || p != s.objectPath(f) {
		t.Fatalf("Path after touch = %q, %v", p, err)
	}
	fp, _, _ := s.objectStat(ctx, f)
	if fp.MtimeNs != later.UnixNano() {
		t.Errorf("fingerprint not refreshed after a rehash: %+v", fp)
	}
	// An object replaced by a symlink is corrupt, whatever it points at.
	outside := filepath.Join(t.TempDir(), "weights")
	os.WriteFile(outside, []byte("weights"), 0o644)
	os.Remove(s.objectPath(f))
	os.Symlink(outside, s.objectPath(f))
	if _, err := s.Path(ctx, f); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Path of a symlinked object: %v, want ErrCorrupt", err)
	}
}

func TestSwappedOrSymlinkedTreeIsRebuilt(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t)
	tree := putTestTree(t, s, map[string]string{"sub/x.npy": "X", "run.sh": "#!/bin/sh\n"})
	consumer := record(t, s, Execution{Key: HashBytes([]byte("c")), Instance: "consumer", Output: putTestTree(t, s, map[string]string{"o": "o"}), Inputs: inputsOf(tree)})
	dir, err := s.Path(ctx, tree)
	if err != nil {
		t.Fatal(err)
	}
	// Swap a file inside trees/<d> for another one (a new inode).
	sub := filepath.Join(dir, "sub")
	os.Chmod(sub, 0o755)
	os.Remove(filepath.Join(sub, "x.npy"))
	os.WriteFile(filepath.Join(sub, "x.npy"), []byte("Y"), 0o444)
	os.Chmod(sub, 0o555)

	rep, err := s.Verify(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.DamagedTrees, []Digest{tree}) || len(rep.Corrupt) != 0 || !slices.Equal(rep.Invalidated, []int64{consumer.ID}) {
		t.Fatalf("Verify = %+v, want tree %s damaged and its consumer invalidated", rep, tree.Short())
	}
	if _, err := os.Lstat(dir); !os.IsNotExist(err) {
		t.Fatalf("damaged tree still in trees/: %v", err)
	}

	// The next read detects the same swap on its own and rebuilds.
	if dir, err = s.Path(ctx, tree); err != nil {
		t.Fatal(err)
	}
	os.Chmod(sub, 0o755)
	os.Remove(filepath.Join(sub, "x.npy"))
	os.WriteFile(filepath.Join(sub, "x.npy"), []byte("Y"), 0o444)
	os.Chmod(sub, 0o555)
	if dir, err = s.Path(ctx, tree); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "sub", "x.npy")); string(b) != "X" {
		t.Fatalf("read after a swap got %q, want the stored X", b)
	}

	// An added file is caught too.
	os.Chmod(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "extra"), []byte("e"), 0o644)
	os.Chmod(dir, 0o555)
	if dir, err = s.Path(ctx, tree); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "extra")); !os.IsNotExist(err) {
		t.Fatal("a file added to a materialised tree was served")
	}

	// trees/<d> replaced by a symlink out of the cache: rebuilt as a
	// directory.
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "run.sh"), []byte("evil"), 0o644)
	if err := s.Objects.discardTree(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, dir); err != nil {
		t.Fatal(err)
	}
	if dir, err = s.Path(ctx, tree); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("trees/<d> after a symlink swap: %v, %v", fi, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "run.sh")); string(b) != "#!/bin/sh\n" {
		t.Fatalf("served %q through a symlinked tree", b)
	}
	// Verify also removes a symlink standing in for a tree.
	if err := s.Objects.discardTree(dir); err != nil {
		t.Fatal(err)
	}
	os.Symlink(outside, dir)
	if _, err := s.Verify(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(dir); !os.IsNotExist(err) {
		t.Fatalf("verify left a symlink in trees/: %v", err)
	}
}

func TestMoveNeverAliasesOutsideFiles(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t)
	user := filepath.Join(t.TempDir(), "users-data.npy")
	if err := os.WriteFile(user, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if err := os.Link(user, filepath.Join(out, "linked.npy")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(out, "open.npy"), []byte("still open"), 0o644)
	held, err := os.Open(filepath.Join(out, "open.npy"))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	os.WriteFile(filepath.Join(out, "plain.npy"), []byte("plain"), 0o644)
	plainIno := inodeOf(t, filepath.Join(out, "plain.npy"))

	tree, err := s.PutTree(ctx, out, true)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(user)
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("user's file mode changed to %v", fi.Mode().Perm())
	}
	for name, ino := range map[string]uint64{"linked.npy": inodeOf(t, user), "open.npy": inodeOf(t, filepath.Join(out, "open.npy"))} {
		d, err := s.Sub(ctx, tree, name)
		if err != nil {
			t.Fatal(err)
		}
		if inodeOf(t, s.objectPath(d)) == ino {
			t.Errorf("%s: the object shares its inode with a file outside the cache", name)
		}
	}
	// A file only the stage had is still moved, not copied.
	d, _ := s.Sub(ctx, tree, "plain.npy")
	if inodeOf(t, s.objectPath(d)) != plainIno {
		t.Error("a private output was copied instead of moved")
	}
	// Editing the user's file later leaves the cache intact.
	os.WriteFile(user, []byte("edited!!"), 0o644)
	if rep, err := s.Verify(ctx, nil); err != nil || len(rep.Corrupt) != 0 {
		t.Fatalf("verify after editing the user's file: %+v, %v", rep, err)
	}
}

func inodeOf(t *testing.T, p string) uint64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

func TestGCRemovalOrderKeepsPresentTreesComplete(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t)
	for i := range 3 {
		putTestTree(t, s, map[string]string{
			"a/b/c.npy": fmt.Sprint("deep", i), "a/shared.npy": "shared", "top.npy": fmt.Sprint("top", i%2),
		})
	}
	var dead []ObjectInfo
	s.List(ctx, func(oi ObjectInfo) error { dead = append(dead, oi); return nil })
	order := s.removalOrder(ctx, dead)
	if len(order) != len(dead) {
		t.Fatalf("removal order has %d objects, want %d", len(order), len(dead))
	}
	// Remove one object at a time, as a gc killed after any step would
	// leave it: every tree still present must be complete.
	for i, oi := range order {
		if err := s.Objects.Remove(oi.Digest); err != nil {
			t.Fatal(err)
		}
		s.List(ctx, func(left ObjectInfo) error {
			if k, _ := s.Kind(left.Digest); k == KindTree {
				if ok, _ := s.complete(ctx, left.Digest); !ok {
					t.Fatalf("after %d removals tree %s is present but incomplete", i+1, left.Digest.Short())
				}
			}
			return nil
		})
	}
}

func TestGCWaitsForProtectedRuns(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t)
	release, err := s.Protect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.GC(ctx, 1)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("gc ran while a run held the gc lock shared: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	// A second run section is not blocked by the first.
	r2, err := s.Protect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r2()
	release()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("gc did not run after the run released the lock")
	}
}

func TestUnrecordedTreeIsCheckedNotDiscarded(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t)
	tree := putTestTree(t, s, map[string]string{"sub/x.npy": "X"})
	consumer := record(t, s, Execution{Key: HashBytes([]byte("c")), Instance: "consumer", Output: putTestTree(t, s, map[string]string{"o": "o"}), Inputs: inputsOf(tree)})
	// Materialised without fingerprints, as by a voxflow before them.
	dir, err := s.Objects.Path(ctx, tree)
	if err != nil {
		t.Fatal(err)
	}
	ino := inodeOf(t, dir)
	got, err := s.Path(ctx, tree)
	if err != nil || got != dir || inodeOf(t, got) != ino {
		t.Fatalf("Path of an unrecorded intact tree = %q, %v: want it checked and kept", got, err)
	}
	if e, _ := s.Execution(ctx, consumer.ID); e.Invalid {
		t.Error("checking an unrecorded tree invalidated its consumer")
	}
	if rows, _ := s.treeRows(ctx, tree); len(rows) != 3 {
		t.Errorf("recorded %d entries, want 3 (the root, sub, sub/x.npy)", len(rows))
	}
}
