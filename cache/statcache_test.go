package cache

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ageStatCache makes every stat cache row look recorded long after its
// file last changed, as it is for a data set written days before: the rows
// leave the racy window without the test sleeping through it.
func ageStatCache(t testing.TB, s *Store) {
	t.Helper()
	if _, err := s.db.Exec(`UPDATE stat_cache SET recorded_ns = recorded_ns + ?`, int64(time.Hour)); err != nil {
		t.Fatal(err)
	}
}

func fpPath(t *testing.T, s *Store, p string) (*PathManifest, FingerprintStats) {
	t.Helper()
	m, st, err := s.FingerprintPath(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	return m, st
}

func TestFingerprintStatCache(t *testing.T) {
	s := openTestStore(t)
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"subj01/training_split/training_fmri/lh_training_fmri.npy": "left",
		"subj01/training_split/training_fmri/rh_training_fmri.npy": "right",
		"subj02/img.png": "png",
	})
	m1, st := fpPath(t, s, root)
	if m1.Type != PathDir || len(m1.Files) != 3 || st.Hashed != 3 {
		t.Fatalf("first fingerprint: %+v, %+v", m1, st)
	}
	if m1.Files[0].Path != "subj01/training_split/training_fmri/lh_training_fmri.npy" || m1.Files[0].Digest != HashBytes([]byte("left")) {
		t.Fatalf("first entry %+v", m1.Files[0])
	}
	// Just written: the racy rule rehashes instead of trusting the rows.
	if _, st := fpPath(t, s, root); st.Hashed != 3 {
		t.Fatalf("racy files trusted: %+v", st)
	}
	ageStatCache(t, s)
	m2, st := fpPath(t, s, root)
	if st.Hashed != 0 || string(m2.Encode()) != string(m1.Encode()) {
		t.Fatalf("unchanged tree: hashed %d files, manifest equal %v", st.Hashed, string(m2.Encode()) == string(m1.Encode()))
	}

	// touch: reread, same manifest.
	lh := filepath.Join(root, "subj01/training_split/training_fmri/lh_training_fmri.npy")
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(lh, later, later); err != nil {
		t.Fatal(err)
	}
	m3, st := fpPath(t, s, root)
	if st.Hashed != 1 || string(m3.Encode()) != string(m1.Encode()) {
		t.Fatalf("touch: hashed %d, manifest changed %v", st.Hashed, string(m3.Encode()) != string(m1.Encode()))
	}

	// Same size, mtime set back: ctime still tells.
	ageStatCache(t, s)
	fi, err := os.Stat(lh)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lh, []byte("LEFT"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(lh, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	m4, st := fpPath(t, s, root)
	c := m4.Diff(m1)
	if st.Hashed != 1 || strings.Join(c.Changed, ",") != "subj01/training_split/training_fmri/lh_training_fmri.npy" || len(c.Added)+len(c.Removed) != 0 {
		t.Fatalf("edit with mtime restored: hashed %d, diff %+v", st.Hashed, c)
	}

	// Rename: one removed, one added, nothing reread but the moved file
	// (its path is new to the stat cache).
	ageStatCache(t, s)
	if err := os.Rename(filepath.Join(root, "subj02/img.png"), filepath.Join(root, "subj02/img2.png")); err != nil {
		t.Fatal(err)
	}
	m5, st := fpPath(t, s, root)
	c = m5.Diff(m4)
	if st.Hashed != 1 || fmt.Sprint(c.Added, c.Removed, c.Changed) != "[subj02/img2.png] [subj02/img.png] []" {
		t.Fatalf("rename: hashed %d, diff %+v", st.Hashed, c)
	}
	var rows int
	if err := s.db.QueryRow(`SELECT COUNT(*) FROM stat_cache WHERE path LIKE ?`, root+"/%").Scan(&rows); err != nil || rows != 3 {
		t.Fatalf("stat cache keeps %d rows for 3 files (%v): the renamed file's row must go", rows, err)
	}

	// A single file and a missing path.
	mf, _ := fpPath(t, s, lh)
	if mf.Type != PathFile || mf.Digest != HashBytes([]byte("LEFT")) || mf.Size != 4 {
		t.Fatalf("file manifest %+v", mf)
	}
	mm, _ := fpPath(t, s, filepath.Join(root, "nope"))
	if mm.Type != PathMissing {
		t.Fatalf("missing path manifest %+v", mm)
	}
	back, err := DecodePathManifest(m5.Encode())
	if err != nil || string(back.Encode()) != string(m5.Encode()) {
		t.Fatalf("manifest round trip: %v", err)
	}
}

func TestFingerprintFollowsSymlinks(t *testing.T) {
	s := openTestStore(t)
	data := t.TempDir()
	writeFiles(t, data, map[string]string{"a/x.npy": "x", "w.bin": "weights"})
	root := t.TempDir()
	if err := os.Symlink(filepath.Join(data, "a"), filepath.Join(root, "subj01")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(data, "w.bin"), filepath.Join(root, "w.bin")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(data, "gone"), filepath.Join(root, "dangling")); err != nil {
		t.Fatal(err)
	}
	m, _ := fpPath(t, s, root)
	if len(m.Files) != 2 || m.Files[0].Path != "subj01/x.npy" || m.Files[1].Path != "w.bin" || m.Files[1].Digest != HashBytes([]byte("weights")) {
		t.Fatalf("manifest through symlinks: %+v", m.Files)
	}
	// An edit behind a symlinked directory is seen.
	if err := os.WriteFile(filepath.Join(data, "a/x.npy"), []byte("y"), 0o644); err != nil {
		t.Fatal(err)
	}
	m2, _ := fpPath(t, s, root)
	if c := m2.Diff(m); fmt.Sprint(c.Changed) != "[subj01/x.npy]" {
		t.Fatalf("edit behind a symlink: %+v", c)
	}
	if err := os.Symlink(root, filepath.Join(root, "loop")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.FingerprintPath(context.Background(), root); err == nil || !strings.Contains(err.Error(), "symlink cycle") {
		t.Fatalf("cycle: %v", err)
	}
}

// TestFingerprintReadOnlyCache fingerprints through a cache opened
// read-only: the stat cache is read, never written, and an edit is still
// seen.
func TestFingerprintReadOnlyCache(t *testing.T) {
	ctx := context.Background()
	dir := storeDir(t)
	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	writeFiles(t, root, map[string]string{"a.npy": "a"})
	m1, _ := fpPath(t, s, root)
	ageStatCache(t, s)
	s.Close()
	ro, err := OpenReadOnly(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, st := fpPath(t, ro, root); st.Hashed != 0 {
		t.Fatalf("read-only cache: hashed %d files, want the stat cache to answer", st.Hashed)
	}
	writeFiles(t, root, map[string]string{"a.npy": "A", "b.npy": "b"})
	m2, st := fpPath(t, ro, root)
	if c := m2.Diff(m1); st.Hashed != 2 || fmt.Sprint(c.Changed, c.Added) != "[a.npy] [b.npy]" {
		t.Fatalf("read-only cache after an edit: hashed %d, diff %+v", st.Hashed, c)
	}
}

// cpuTime is the user plus system CPU time of this process so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkFingerprint fingerprints a tree of VOXFLOW_BENCH_FP_FILES files
// holding VOXFLOW_BENCH_FP_MB MiB in all (default 2,000 files, 200 MiB;
// with VOXFLOW_BENCH_FULL=1, NSD's size: 100,000 files, 10 GiB, which
// needs 10 GiB free under $TMPDIR and about as much page cache to measure
// hashing rather than the disk). It reports the first fingerprint's
// throughput per core (every file hashed) and the time of a second,
// unchanged fingerprint (every file answered by the stat cache).
func BenchmarkFingerprint(b *testing.B) {
	files, mb := 2000, 200
	if os.Getenv("VOXFLOW_BENCH_FULL") == "1" {
		files, mb = 100000, 10240
	}
	for name, v := range map[string]*int{"VOXFLOW_BENCH_FP_FILES": &files, "VOXFLOW_BENCH_FP_MB": &mb} {
		if s := os.Getenv(name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n <= 0 {
				b.Fatalf("%s=%q: want a positive integer", name, s)
			}
			*v = n
		}
	}
	root := b.TempDir()
	size := int64(mb) << 20 / int64(files)
	buf := make([]byte, size)
	if _, err := rand.Read(buf); err != nil {
		b.Fatal(err)
	}
	for i := range files {
		// 100 files a directory, as NSD's per-subject image folders.
		p := filepath.Join(root, fmt.Sprintf("d%04d", i/100), fmt.Sprintf("f%06d.npy", i))
		if i%100 == 0 {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				b.Fatal(err)
			}
		}
		buf[0], buf[1], buf[2] = byte(i), byte(i>>8), byte(i>>16)
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	// Flush the tree to disk first: the first fingerprint should measure
	// hashing from the page cache, not the writeback of its own data set.
	syscall.Sync()
	dir, err := os.MkdirTemp("", "voxflow-fp-cache-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	s, err := Open(context.Background(), dir)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	total := size * int64(files)
	b.ResetTimer()
	var first, second, firstCPU, secondCPU time.Duration
	for range b.N {
		if _, err := s.db.Exec(`DELETE FROM stat_cache`); err != nil {
			b.Fatal(err)
		}
		t0, c0 := time.Now(), cpuTime(b)
		_, st, err := s.FingerprintPath(ctx, root)
		if err != nil {
			b.Fatal(err)
		}
		first += time.Since(t0)
		firstCPU += cpuTime(b) - c0
		if st.Hashed != files {
			b.Fatalf("first fingerprint hashed %d of %d files", st.Hashed, files)
		}
		ageStatCache(b, s) // the data set was written long ago
		t0, c0 = time.Now(), cpuTime(b)
		_, st, err = s.FingerprintPath(ctx, root)
		if err != nil {
			b.Fatal(err)
		}
		second += time.Since(t0)
		secondCPU += cpuTime(b) - c0
		if st.Hashed != 0 {
			b.Fatalf("unchanged fingerprint hashed %d files", st.Hashed)
		}
	}
	cores := runtime.GOMAXPROCS(0)
	b.ReportMetric(float64(total)*float64(b.N)/first.Seconds()/1e9/float64(cores), "first-GB/s/core")
	// Per CPU second this process spent: the per-core rate even when other
	// processes share the cores.
	b.ReportMetric(float64(total)*float64(b.N)/firstCPU.Seconds()/1e9, "first-GB/cpu-s")
	b.ReportMetric(second.Seconds()/float64(b.N), "unchanged-s")
	b.ReportMetric(secondCPU.Seconds()/float64(b.N), "unchanged-cpu-s")
	b.ReportMetric(float64(files), "files")
	b.ReportMetric(float64(total)/1e9, "GB")
}
