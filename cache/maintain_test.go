package cache

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestVerifyDetectsCorruptionAndInvalidates(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t)
	treeA := putTestTree(t, s, map[string]string{"train/images.npy": "IMAGES", "train/roi/V1v.npy": "V1V-DATA", "manifest.json": "{}"})
	treeB := putTestTree(t, s, map[string]string{"features.json": `{"dim":3}`, "subj01/train.npy": "FEATURES"})
	logA, _ := s.PutBytes(ctx, []byte("log of A"))
	a := record(t, s, Execution{Key: HashBytes([]byte("a")), Instance: "data", Output: treeA, Log: logA})
	b := record(t, s, Execution{Key: HashBytes([]byte("b")), Instance: "features", Output: treeB})
	pathA, err := s.Path(ctx, treeA)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Path(ctx, treeB); err != nil {
		t.Fatal(err)
	}
	total := 0
	s.List(ctx, func(ObjectInfo) error { total++; return nil })

	// Flip bytes of one object in place (same size), as a stage writing
	// through a hardlink into its input would.
	v1v, err := s.Sub(ctx, treeA, "train/roi/V1v.npy")
	if err != nil {
		t.Fatal(err)
	}
	obj := s.objectPath(v1v)
	os.Chmod(obj, 0o644)
	if err := os.WriteFile(obj, []byte("V1V-D4TA"), 0o644); err != nil {
		t.Fatal(err)
	}

	var calls, lastDone, lastTotal int
	rep, err := s.Verify(ctx, func(done, total int) { calls++; lastDone, lastTotal = done, total })
	if err != nil {
		t.Fatal(err)
	}
	if rep.Checked != total || !slices.Equal(rep.Corrupt, []Digest{v1v}) || !slices.Equal(rep.Invalidated, []int64{a.ID}) || len(rep.Missing) != 0 {
		t.Fatalf("Verify = %+v (objects %d)", rep, total)
	}
	if calls != total || lastDone != total || lastTotal != total {
		t.Errorf("progress called %d times, last (%d, %d)", calls, lastDone, lastTotal)
	}
	if s.Has(v1v) {
		t.Error("corrupt object still present")
	}
	if _, err := os.Stat(pathA); !os.IsNotExist(err) {
		t.Errorf("materialised tree sharing the corrupt inode survived: %v", err)
	}
	if _, ok, _ := s.Lookup(ctx, a.Key); ok {
		t.Error("Lookup still hits the execution with a corrupt output")
	}
	if _, ok, _ := s.Lookup(ctx, b.Key); !ok {
		t.Error("Lookup lost the healthy execution")
	}
	if _, err := s.Object(ctx, v1v); err == nil {
		t.Error("corrupt object still indexed")
	}

	rep, err = s.Verify(ctx, nil)
	if err != nil || len(rep.Corrupt) != 0 || len(rep.Invalidated) != 0 || rep.Checked != total-1 {
		t.Fatalf("second Verify = %+v, %v", rep, err)
	}

	// A missing object (deleted behind the store's back) invalidates too.
	feat, _ := s.Sub(ctx, treeB, "subj01/train.npy")
	if err := os.Remove(s.objectPath(feat)); err != nil {
		t.Fatal(err)
	}
	rep, err = s.Verify(ctx, nil)
	if err != nil || !slices.Equal(rep.Missing, []Digest{feat}) || !slices.Equal(rep.Invalidated, []int64{b.ID}) {
		t.Fatalf("Verify after removal = %+v, %v", rep, err)
	}
}

func TestGCKeepsNewestRunsPerVariant(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t)
	old := time.Now().Add(-2 * time.Hour)
	run := func(variant, status string, files map[string]string) (*Run, *Execution, Digest) {
		r := &Run{Spec: "nsd-cl", Variant: variant, Start: old, Status: status}
		if _, err := s.BeginRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		out := putTestTree(t, s, files)
		e := record(t, s, Execution{Key: HashBytes([]byte(variant + status + string(out))), Instance: "ridge", RunID: r.ID,
			Output: out, Start: old, End: old})
		if err := s.LinkRun(ctx, r.ID, e.ID, false); err != nil {
			t.Fatal(err)
		}
		return r, e, out
	}
	// A run still in progress in this very process, oldest of all.
	_, eLive, treeLive := run("", StatusRunning, map[string]string{"live.npy": "LIVE"})
	_, e1, tree1 := run("", StatusSucceeded, map[string]string{"shared.npy": "SHARED", "old.npy": "OLD"})
	_, e2, tree2 := run("", StatusSucceeded, map[string]string{"shared.npy": "SHARED", "mid.npy": "MIDDLE"})
	r3, e3, tree3 := run("", StatusSucceeded, map[string]string{"shared.npy": "SHARED", "new.npy": "NEW"})
	_, eV, treeV := run("tau-0.05", StatusFailed, map[string]string{"v.npy": "VARIANT"})
	// The newest run reuses e1's output too.
	if err := s.LinkRun(ctx, r3.ID, e1.ID, true); err != nil {
		t.Fatal(err)
	}
	orphan, _ := s.PutBytes(ctx, []byte("orphan"))
	if _, err := s.Path(ctx, tree2); err != nil {
		t.Fatal(err)
	}
	// A half-built tree and a temp file left by a killed process.
	os.MkdirAll(filepath.Join(s.Dir(), "tmp", "tree-123", "sub"), 0o755)
	os.WriteFile(filepath.Join(s.Dir(), "tmp", "put-456"), []byte("partial"), 0o644)

	// Everything is young: with the default grace nothing goes.
	rep, err := s.GC(ctx, 1)
	if err != nil || rep.RemovedObjects != 0 || rep.RemovedTemp != 0 {
		t.Fatalf("GC within grace = %+v, %v", rep, err)
	}
	manifest2, err := os.Stat(s.objectPath(tree2))
	if err != nil {
		t.Fatal(err)
	}
	s.Grace = 0
	rep, err = s.GC(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Gone: tree2's manifest, mid.npy, the orphan. Kept: the live run, the
	// newest run of each variant, and e1, which the newest run reused.
	mid := HashBytes([]byte("MIDDLE"))
	wantBytes := int64(len("MIDDLE")+len("orphan")) + manifest2.Size()
	if rep.KeptRuns != 3 || rep.RemovedObjects != 3 || rep.RemovedBytes != wantBytes || rep.RemovedTemp != 2 || rep.RemovedTrees != 0 {
		t.Errorf("GC = %+v, want 3 kept runs, 3 objects, %d bytes, 2 temp", rep, wantBytes)
	}
	for _, d := range []Digest{tree2, mid, orphan} {
		if s.Has(d) {
			t.Errorf("%s survived GC", d.Short())
		}
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), "trees", string(tree2))); !os.IsNotExist(err) {
		t.Errorf("materialised tree of a removed object survived: %v", err)
	}
	for _, e := range []*Execution{eLive, e1, e3, eV} {
		if _, ok, _ := s.Lookup(ctx, e.Key); !ok {
			t.Errorf("execution %d (%s) lost its output", e.ID, e.Output.Short())
		}
	}
	if _, ok, _ := s.Lookup(ctx, e2.Key); ok {
		t.Error("execution of a collected run still hits")
	}
	for _, d := range []Digest{treeLive, tree1, tree3, treeV, HashBytes([]byte("SHARED"))} {
		if !s.Has(d) {
			t.Errorf("%s was collected", d.Short())
		}
	}
	if _, err := s.Object(ctx, mid); err == nil {
		t.Error("removed object still indexed")
	}
	if _, err := s.Object(ctx, tree3); err != nil {
		t.Errorf("kept object not indexed: %v", err)
	}

	// keepLast <= 0 keeps every object.
	s.PutBytes(ctx, []byte("another orphan"))
	os.Chtimes(s.objectPath(HashBytes([]byte("another orphan"))), old, old)
	if rep, err := s.GC(ctx, 0); err != nil || rep.RemovedObjects != 0 {
		t.Errorf("GC(0) = %+v, %v", rep, err)
	}
	// An execution recorded just now but not yet linked to a run is kept
	// while it is within grace, as is an old object re-put just now.
	s.Grace = time.Hour
	young := putTestTree(t, s, map[string]string{"fresh.npy": "FRESH"})
	record(t, s, Execution{Key: HashBytes([]byte("young")), Instance: "probe", Output: young, Start: time.Now(), End: time.Now()})
	for _, p := range []string{s.objectPath(young), s.objectPath(HashBytes([]byte("FRESH")))} {
		os.Chtimes(p, old, old)
	}
	s.PutBytes(ctx, []byte("another orphan")) // refreshes its mtime
	if rep, err := s.GC(ctx, 1); err != nil || rep.RemovedObjects != 0 || !s.Has(young) {
		t.Errorf("GC with young execution = %+v, %v", rep, err)
	}
}
