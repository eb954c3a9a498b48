package cache

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// writeFiles creates files (path -> content) under root; a trailing slash
// makes an empty directory, a path ending in .sh is made executable.
func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(root, p)
		if strings.HasSuffix(p, "/") {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(p, ".sh") {
			mode = 0o755
		}
		if err := os.WriteFile(full, []byte(c), mode); err != nil {
			t.Fatal(err)
		}
	}
}

var sampleTree = map[string]string{
	"a.txt":            "alpha",
	"run.sh":           "#!/bin/sh\necho hi\n",
	"d1/b.txt":         "beta",
	"d1/d2/c.bin":      "\x00\x01\x02gamma",
	"d1/empty/":        "",
	"d1/dup.txt":       "alpha", // same content as a.txt: one object
	"z/manifest.json":  `{"kind":"nsd"}`,
	"z/roi/V1v.npy":    strings.Repeat("v", 3000),
	"z/roi/FFA-1.npy":  strings.Repeat("f", 5000),
	"z/roi/hV4.npy":    "",
	"z/noise_ceiling/": "",
}

func TestPutFileCopyMoveAndBytes(t *testing.T) {
	ctx := context.Background()
	o, err := OpenObjects(storeDir(t))
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "f.npy")
	content := bytes.Repeat([]byte("npy"), 100000)
	if err := os.WriteFile(src, content, 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := o.PutFile(ctx, src, false)
	if err != nil {
		t.Fatal(err)
	}
	if d != HashBytes(content) {
		t.Fatalf("PutFile digest %s, want %s", d, HashBytes(content))
	}
	p, err := o.Path(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p)
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("object content differs (err %v)", err)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o444 {
		t.Errorf("object mode %v, want 0444", fi.Mode().Perm())
	}
	if k, err := o.Kind(d); err != nil || k != KindFile {
		t.Errorf("Kind = %q, %v; want file", k, err)
	}
	// Idempotent: again by copy, by bytes, and by move of an equal file.
	if d2, err := o.PutFile(ctx, src, false); err != nil || d2 != d {
		t.Errorf("second PutFile = %s, %v", d2, err)
	}
	if d3, err := o.PutBytes(ctx, content); err != nil || d3 != d {
		t.Errorf("PutBytes = %s, %v", d3, err)
	}
	if d4, err := o.PutFile(ctx, src, true); err != nil || d4 != d {
		t.Errorf("PutFile move of a stored file = %s, %v", d4, err)
	}
	if _, err := os.Lstat(src); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("moved source still there: %v", err)
	}
	// Move of new content renames the very inode into the store.
	src2 := filepath.Join(t.TempDir(), "g.npy")
	if err := os.WriteFile(src2, []byte("fresh"), 0o644); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(src2)
	d5, err := o.PutFile(ctx, src2, true)
	if err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(o.objectPath(d5))
	if err != nil || !os.SameFile(before, after) || d5 != HashBytes([]byte("fresh")) {
		t.Errorf("move did not rename the source into objects/ (err %v)", err)
	}
	n := 0
	if err := o.List(ctx, func(ObjectInfo) error { n++; return nil }); err != nil || n != 2 {
		t.Errorf("List saw %d objects (err %v), want 2", n, err)
	}
	if left, _ := os.ReadDir(o.tmp); len(left) != 0 {
		t.Errorf("tmp/ not empty after puts: %v", left)
	}
	if _, err := o.Path(ctx, HashBytes([]byte("never stored"))); !errors.Is(err, ErrNotFound) {
		t.Errorf("Path of absent object: %v, want ErrNotFound", err)
	}
	if ok, err := o.Check(ctx, d); err != nil || !ok {
		t.Errorf("Check = %v, %v", ok, err)
	}
}

func TestPutTreeSubPathNested(t *testing.T) {
	ctx := context.Background()
	o, err := OpenObjects(storeDir(t))
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	writeFiles(t, src, sampleTree)
	tree, err := o.PutTree(ctx, src, false)
	if err != nil {
		t.Fatal(err)
	}
	if k, _ := o.Kind(tree); k != KindTree {
		t.Fatalf("Kind(tree) = %q", k)
	}

	// Same content elsewhere, stored by move, gives the same digest.
	src2 := t.TempDir()
	writeFiles(t, src2, sampleTree)
	tree2, err := o.PutTree(ctx, src2, true)
	if err != nil || tree2 != tree {
		t.Fatalf("PutTree move = %s, %v; want %s", tree2, err, tree)
	}
	if _, err := os.Stat(filepath.Join(src2, "d1", "d2", "c.bin")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("moved file still in source: %v", err)
	}

	m, err := o.ReadManifest(ctx, tree)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range m.Entries {
		names = append(names, e.Name+":"+e.Kind)
	}
	if strings.Join(names, " ") != "a.txt:file d1:dir run.sh:file z:dir" {
		t.Errorf("root entries %v", names)
	}
	if !m.Entries[2].Exec || m.Entries[0].Exec {
		t.Errorf("exec bits wrong: %+v", m.Entries)
	}
	if m.Entries[3].Size != 8000+int64(len(`{"kind":"nsd"}`)) {
		t.Errorf("dir size %d", m.Entries[3].Size)
	}

	if d, err := o.Sub(ctx, tree, ""); err != nil || d != tree {
		t.Errorf(`Sub("") = %s, %v`, d, err)
	}
	c, err := o.Sub(ctx, tree, "d1/d2/c.bin")
	if err != nil || c != HashBytes([]byte("\x00\x01\x02gamma")) {
		t.Errorf("Sub(d1/d2/c.bin) = %s, %v", c, err)
	}
	if d, err := o.Sub(ctx, tree, "./d1/./d2/c.bin"); err != nil || d != c {
		t.Errorf("Sub with dots = %s, %v", d, err)
	}
	if _, err := o.Sub(ctx, tree, "d1/nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Sub(d1/nope): %v, want ErrNotFound", err)
	}
	for _, bad := range []string{"a.txt/x", "../etc", "/a.txt", "d1/../../x"} {
		if _, err := o.Sub(ctx, tree, bad); err == nil {
			t.Errorf("Sub(%q) succeeded", bad)
		}
	}

	// Path of a subtree materialises just that directory.
	roi, err := o.Sub(ctx, tree, "z/roi")
	if err != nil {
		t.Fatal(err)
	}
	rp, err := o.Path(ctx, roi)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(rp, "FFA-1.npy")); err != nil || string(b) != strings.Repeat("f", 5000) {
		t.Errorf("materialised subtree file: %v", err)
	}

	// Path of the whole tree reproduces the source exactly.
	p, err := o.Path(ctx, tree)
	if err != nil {
		t.Fatal(err)
	}
	if p != filepath.Join(o.Dir(), "trees", string(tree)) {
		t.Errorf("Path = %s", p)
	}
	for rel, want := range sampleTree {
		full := filepath.Join(p, rel)
		fi, err := os.Stat(full)
		if err != nil {
			t.Errorf("materialised %s: %v", rel, err)
			continue
		}
		if strings.HasSuffix(rel, "/") {
			if !fi.IsDir() {
				t.Errorf("%s is not a directory", rel)
			}
			continue
		}
		if b, _ := os.ReadFile(full); string(b) != want {
			t.Errorf("materialised %s = %q, want %q", rel, b, want)
		}
		if exec := fi.Mode()&0o111 != 0; exec != strings.HasSuffix(rel, ".sh") {
			t.Errorf("%s exec bit %v", rel, exec)
		}
		if !strings.HasSuffix(rel, ".sh") {
			obj, _ := os.Stat(o.objectPath(HashBytes([]byte(want))))
			if !os.SameFile(fi, obj) {
				t.Errorf("%s is not a hardlink to its object", rel)
			}
		}
	}
	if fi, _ := os.Stat(filepath.Join(p, "d1")); fi.Mode().Perm() != 0o555 {
		t.Errorf("materialised dir mode %v, want 0555", fi.Mode().Perm())
	}
	if p2, err := o.Path(ctx, tree); err != nil || p2 != p {
		t.Errorf("second Path = %s, %v", p2, err)
	}

	// Walk reaches each distinct object once: 8 distinct file contents plus
	// 6 manifests (root, d1, d1/d2, z, z/roi, and one for both empty dirs).
	seen := map[Digest]string{}
	err = o.Walk(ctx, tree, func(d Digest, kind string) error {
		if _, dup := seen[d]; dup {
			t.Errorf("Walk visited %s twice", d.Short())
		}
		seen[d] = kind
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	files, trees := 0, 0
	for _, k := range seen {
		if k == KindFile {
			files++
		} else {
			trees++
		}
	}
	if files != 8 || trees != 6 {
		t.Errorf("Walk saw %d files and %d trees, want 8 and 6", files, trees)
	}

	// A plain file root is just that file.
	f := filepath.Join(t.TempDir(), "one")
	os.WriteFile(f, []byte("one"), 0o644)
	if d, err := o.PutTree(ctx, f, false); err != nil || d != HashBytes([]byte("one")) {
		t.Errorf("PutTree(file) = %s, %v", d, err)
	}
}

func TestPutTreeRejectsSymlinks(t *testing.T) {
	ctx := context.Background()
	o, err := OpenObjects(storeDir(t))
	if err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(outside, []byte("secret"), 0o644)
	src := t.TempDir()
	writeFiles(t, src, map[string]string{"ok.txt": "ok"})
	os.MkdirAll(filepath.Join(src, "sub"), 0o755)
	if err := os.Symlink(outside, filepath.Join(src, "sub", "link")); err != nil {
		t.Fatal(err)
	}
	_, err = o.PutTree(ctx, src, false)
	if err == nil || !strings.Contains(err.Error(), "sub/link is a symlink") {
		t.Fatalf("PutTree with symlink: %v", err)
	}
	if _, err := o.PutFile(ctx, filepath.Join(src, "sub", "link"), false); err == nil {
		t.Error("PutFile of a symlink succeeded")
	}
	if _, err := o.PutFile(ctx, src, false); err == nil {
		t.Error("PutFile of a directory succeeded")
	}
	bad := t.TempDir()
	writeFiles(t, bad, map[string]string{"ok\xff.npy": "x"})
	if _, err := o.PutTree(ctx, bad, false); err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Errorf("PutTree with a non-UTF-8 name: %v", err)
	}
}

func TestPutCancelled(t *testing.T) {
	o, err := OpenObjects(storeDir(t))
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "f")
	os.WriteFile(src, bytes.Repeat([]byte{1}, 4<<20), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := o.PutFile(ctx, src, false); !errors.Is(err, context.Canceled) {
		t.Errorf("PutFile with cancelled ctx: %v", err)
	}
	var objs []string
	o.List(context.Background(), func(oi ObjectInfo) error { objs = append(objs, string(oi.Digest)); return nil })
	left, _ := os.ReadDir(o.tmp)
	sort.Strings(objs)
	if len(objs) != 0 || len(left) != 0 {
		t.Errorf("cancelled put left objects %v, temp %v", objs, left)
	}
}

func TestPathConcurrentMaterialise(t *testing.T) {
	ctx := context.Background()
	dir := storeDir(t)
	o, err := OpenObjects(dir)
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	writeFiles(t, src, sampleTree)
	tree, err := o.PutTree(ctx, src, false)
	if err != nil {
		t.Fatal(err)
	}
	// Separate Objects values stand in for separate processes.
	paths := make(chan string, 8)
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			o2, err := OpenObjects(dir)
			if err != nil {
				errs <- err
				return
			}
			p, err := o2.Path(ctx, tree)
			errs <- err
			paths <- p
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		if p := <-paths; p != filepath.Join(o.Dir(), "trees", string(tree)) {
			t.Errorf("Path = %s", p)
		}
	}
	if left, _ := os.ReadDir(o.tmp); len(left) != 0 {
		t.Errorf("losers of the rename race left %d dirs in tmp/", len(left))
	}
	if b, err := os.ReadFile(filepath.Join(o.Dir(), "trees", string(tree), "d1", "d2", "c.bin")); err != nil || string(b) != "\x00\x01\x02gamma" {
		t.Errorf("materialised content %q, %v", b, err)
	}
}

// storeDir returns a fresh store directory. Materialised trees are read-only,
// which t.TempDir's cleanup cannot delete as a non-root user, so open them up
// first (cleanups run last-registered first).
func storeDir(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), ".voxflow")
	t.Cleanup(func() { removeTree(filepath.Join(dir, "trees")) })
	return dir
}
