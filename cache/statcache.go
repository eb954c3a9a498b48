package cache

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mattn/go-sqlite3"
)

// Fingerprinting of files outside the store (a data stage's root, a weights
// file, a command's declared files), made cheap the way git's index and
// DVC's state database do: the stat_cache table maps a file's path to the
// stat it had (size, mtime, ctime, inode, device) and the BLAKE3 digest of
// its content then. A file whose stat still matches its row is not reread.
//
// The racy-git rule: a file changed again within the timestamp granularity
// of its recorded stat keeps that stat, so a row is trusted only when the
// file's ctime is older than the moment its hashing began by more than
// racyWindow. ctime, unlike mtime, cannot be set back by a user (touch -d,
// rsync -t, tar), so every content change moves it. A younger file is
// rehashed on every fingerprint until it has aged.

// racyWindow covers coarse file timestamps: ext4 and xfs tick with the
// kernel's coarse clock (milliseconds), FAT and some network filesystems
// by the second or two.
const racyWindow = 2 * time.Second

// Path manifest types.
const (
	PathFile    = "file"
	PathDir     = "dir"
	PathMissing = "missing"
)

// PathManifest is the content of a file or directory outside the store: a
// file's size and digest, or a directory's sorted list of regular files
// (relative path with "/" separators, size, digest). Symlinks are
// followed, to files and to directories (a cycle is an error); dangling
// symlinks, sockets, devices and empty directories do not count. Its
// canonical encoding (Encode) is what a cache key hashes, so adding,
// removing, renaming or editing a file changes it, and `touch` does not.
type PathManifest struct {
	Type   string      `json:"type"`
	Size   int64       `json:"size,omitempty"`
	Digest Digest      `json:"digest,omitempty"`
	Files  []FileEntry `json:"files,omitempty"`
}

// FileEntry is one regular file of a directory manifest.
type FileEntry struct {
	Path   string `json:"p"` // relative to the directory, "/"-separated
	Size   int64  `json:"s"`
	Digest Digest `json:"d"`
}

// Encode returns the manifest's canonical JSON: fields in a fixed order,
// files sorted by path.
func (m *PathManifest) Encode() []byte {
	b, err := json.Marshal(m)
	if err != nil {
		// Only strings, ints and a slice of them: Marshal cannot fail.
		panic(fmt.Sprintf("encode path manifest: %v", err))
	}
	return b
}

// DecodePathManifest parses a manifest written by Encode.
func DecodePathManifest(b []byte) (*PathManifest, error) {
	var m PathManifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode path manifest: %w", err)
	}
	switch m.Type {
	case PathFile, PathDir, PathMissing:
	default:
		return nil, fmt.Errorf("decode path manifest: unknown type %q; want file, dir or missing", m.Type)
	}
	return &m, nil
}

// ManifestChanges lists how a directory's files differ between two
// manifests, each list sorted by path.
type ManifestChanges struct {
	Changed, Added, Removed []string
}

// Diff compares m with an older manifest of the same path. Both must be
// directory manifests; other types have no files to name.
func (m *PathManifest) Diff(old *PathManifest) ManifestChanges {
	var c ManifestChanges
	i, j := 0, 0
	for i < len(old.Files) || j < len(m.Files) {
		switch {
		case j == len(m.Files) || i < len(old.Files) && old.Files[i].Path < m.Files[j].Path:
			c.Removed = append(c.Removed, old.Files[i].Path)
			i++
		case i == len(old.Files) || m.Files[j].Path < old.Files[i].Path:
			c.Added = append(c.Added, m.Files[j].Path)
			j++
		default:
			if old.Files[i].Digest != m.Files[j].Digest || old.Files[i].Size != m.Files[j].Size {
				c.Changed = append(c.Changed, m.Files[j].Path)
			}
			i++
			j++
		}
	}
	return c
}

// FingerprintStats says how much work a fingerprint took.
type FingerprintStats struct {
	Files       int   // regular files seen
	Hashed      int   // files read because the stat cache could not answer
	HashedBytes int64 // bytes read
}

// fileStat is the part of a stat that the stat cache compares.
type fileStat struct {
	size, mtime, ctime int64
	ino, dev           uint64
}

// statOf is fingerprintOf plus the device. Where fingerprintOf cannot read
// ctime (off Linux) the mtime stands in for it, so the racy rule still holds
// back rows of recently written files.
func statOf(fi fs.FileInfo) (fileStat, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileStat{}, false
	}
	fp := fingerprintOf(fi)
	if fp.CtimeNs == 0 {
		fp.CtimeNs = fp.MtimeNs
	}
	return fileStat{
		size:  fp.Size,
		mtime: fp.MtimeNs,
		ctime: fp.CtimeNs,
		ino:   fp.Inode,
		dev:   uint64(st.Dev),
	}, true
}

// statRow is one stat_cache row.
type statRow struct {
	st       fileStat
	digest   Digest
	recorded int64
}

// trusted reports whether the row answers for a file that has stat st now.
func (r statRow) trusted(st fileStat) bool {
	return r.st == st && st.ctime < r.recorded-int64(racyWindow)
}

// walkFile is one regular file found under a fingerprinted path.
type walkFile struct {
	rel, abs string
	st       fileStat
}

// FingerprintPath returns the manifest of path, a file or directory outside
// the store, reading only the files whose stat the stat cache cannot
// vouch for; those are hashed in parallel, one file per core at a time.
// A path that does not exist has a "missing" manifest. The stat cache is
// updated (best effort: a read-only cache is only read).
func (s *Store) FingerprintPath(ctx context.Context, p string) (*PathManifest, FingerprintStats, error) {
	var stats FingerprintStats
	abs, err := filepath.Abs(p)
	if err != nil {
		return nil, stats, fmt.Errorf("fingerprint %s: %w", p, err)
	}
	fi, err := os.Stat(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return &PathManifest{Type: PathMissing}, stats, nil
	}
	if err != nil {
		return nil, stats, fmt.Errorf("fingerprint %s: %w", abs, err)
	}
	var files []walkFile
	switch {
	case fi.Mode().IsRegular():
		st, ok := statOf(fi)
		if !ok {
			return nil, stats, fmt.Errorf("fingerprint %s: no stat_t on this platform", abs)
		}
		files = []walkFile{{abs: abs, st: st}}
	case fi.IsDir():
		files, err = walkTree(ctx, abs, fi)
		if err != nil {
			return nil, stats, err
		}
	default:
		return nil, stats, fmt.Errorf("fingerprint %s: %s is neither a regular file nor a directory", abs, fi.Mode().Type())
	}
	stats.Files = len(files)

	rows, err := s.statRows(ctx, abs, fi.IsDir())
	if err != nil {
		return nil, stats, err
	}
	digests := make([]Digest, len(files))
	sizes := make([]int64, len(files))
	var miss []int
	for i, f := range files {
		if r, ok := rows[f.abs]; ok && r.trusted(f.st) {
			digests[i], sizes[i] = r.digest, f.st.size
			continue
		}
		miss = append(miss, i)
	}
	fresh, err := hashFiles(ctx, files, miss, digests, sizes)
	if err != nil {
		return nil, stats, err
	}
	stats.Hashed = len(miss)
	for _, i := range miss {
		stats.HashedBytes += sizes[i]
	}
	if err := s.updateStatRows(ctx, abs, fi.IsDir(), rows, files, digests, fresh); err != nil {
		return nil, stats, err
	}

	if !fi.IsDir() {
		return &PathManifest{Type: PathFile, Size: sizes[0], Digest: digests[0]}, stats, nil
	}
	m := &PathManifest{Type: PathDir, Files: make([]FileEntry, len(files))}
	for i, f := range files {
		m.Files[i] = FileEntry{Path: f.rel, Size: sizes[i], Digest: digests[i]}
	}
	return m, stats, nil
}

// walkTree lists the regular files under root, sorted by relative path,
// following symlinks and refusing cycles. Directories are read in
// parallel, one per core at a time: stat calls dominate an unchanged
// fingerprint.
func walkTree(ctx context.Context, root string, rootInfo fs.FileInfo) ([]walkFile, error) {
	w := &treeWalk{ctx: ctx, sem: make(chan struct{}, runtime.GOMAXPROCS(0))}
	w.dir(root, "", rootInfo, nil)
	w.wg.Wait()
	if w.err != nil {
		return nil, w.err
	}
	sort.Slice(w.files, func(i, j int) bool { return w.files[i].rel < w.files[j].rel })
	return w.files, nil
}

// dirID names a directory for cycle detection.
type dirID struct{ dev, ino uint64 }

// ancestors is the chain of directories above one being walked.
type ancestors struct {
	id     dirID
	parent *ancestors
}

func (a *ancestors) has(id dirID) bool {
	for ; a != nil; a = a.parent {
		if a.id == id {
			return true
		}
	}
	return false
}

// treeWalk is one parallel walk: subdirectories go to a new goroutine
// while a slot of sem is free, else they are walked inline.
type treeWalk struct {
	ctx   context.Context
	sem   chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	files []walkFile
	err   error
}

func (w *treeWalk) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
}

func (w *treeWalk) failed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err != nil
}

func (w *treeWalk) dir(dir, rel string, fi fs.FileInfo, up *ancestors) {
	if err := w.ctx.Err(); err != nil {
		w.fail(err)
		return
	}
	if w.failed() {
		return
	}
	st, ok := statOf(fi)
	if !ok {
		w.fail(fmt.Errorf("fingerprint %s: no stat_t on this platform", dir))
		return
	}
	id := dirID{st.dev, st.ino}
	if up.has(id) {
		w.fail(fmt.Errorf("fingerprint %s: symlink cycle (the directory contains itself)", dir))
		return
	}
	here := &ancestors{id: id, parent: up}
	entries, err := os.ReadDir(dir)
	if err != nil {
		w.fail(fmt.Errorf("fingerprint %s: %w", dir, err))
		return
	}
	var files []walkFile
	for _, e := range entries {
		abs := filepath.Join(dir, e.Name())
		r := path.Join(rel, e.Name())
		var info fs.FileInfo
		if e.Type()&fs.ModeSymlink != 0 {
			info, err = os.Stat(abs)
			if errors.Is(err, fs.ErrNotExist) {
				continue // dangling: names no content
			}
		} else {
			info, err = e.Info()
		}
		if err != nil {
			w.fail(fmt.Errorf("fingerprint %s: %w", abs, err))
			return
		}
		switch {
		case info.IsDir():
			select {
			case w.sem <- struct{}{}:
				w.wg.Add(1)
				go func() {
					defer func() { <-w.sem; w.wg.Done() }()
					w.dir(abs, r, info, here)
				}()
			default:
				w.dir(abs, r, info, here)
			}
		case info.Mode().IsRegular():
			fst, _ := statOf(info)
			files = append(files, walkFile{rel: r, abs: abs, st: fst})
		}
	}
	w.mu.Lock()
	w.files = append(w.files, files...)
	w.mu.Unlock()
}

// hashedFile is a file just hashed, with the stat to record for it, or
// !record when the file changed while it was read.
type hashedFile struct {
	idx      int
	st       fileStat
	recorded int64
	record   bool
}

// hashFiles hashes files[i] for each i in idx into digests and sizes, on
// every core, and returns what the stat cache may record.
func hashFiles(ctx context.Context, files []walkFile, idx []int, digests []Digest, sizes []int64) ([]hashedFile, error) {
	if len(idx) == 0 {
		return nil, nil
	}
	workers := min(runtime.GOMAXPROCS(0), len(idx))
	jobs := make(chan int)
	out := make([]hashedFile, len(idx))
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, hashBufSize)
			for k := range jobs {
				i := idx[k]
				h, d, n, err := hashStable(files[i].abs, buf)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					continue
				}
				h.idx = i
				digests[i], sizes[i] = d, n
				out[k] = h
			}
		}()
	}
feed:
	for k := range idx {
		select {
		case jobs <- k:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// hashStable hashes the file at p and returns the stat to record with its
// digest. A file that changes while it is read (its fstat differs after
// the read) is read again, up to three times; the last reading is
// returned but not recorded.
func hashStable(p string, buf []byte) (hashedFile, Digest, int64, error) {
	var (
		d   Digest
		n   int64
		err error
	)
	for try := 0; try < 3; try++ {
		var h hashedFile
		h, d, n, err = hashOnce(p, buf)
		if err != nil || h.record {
			return h, d, n, err
		}
	}
	return hashedFile{}, d, n, nil
}

func hashOnce(p string, buf []byte) (hashedFile, Digest, int64, error) {
	// The recording time is taken before the read: a change made during
	// the read within the same timestamp tick must leave the row racy.
	start := time.Now().UnixNano()
	f, err := os.Open(p)
	if err != nil {
		return hashedFile{}, "", 0, fmt.Errorf("fingerprint %s: %w", p, err)
	}
	defer f.Close()
	before, err := f.Stat()
	if err != nil {
		return hashedFile{}, "", 0, fmt.Errorf("fingerprint %s: %w", p, err)
	}
	d, n, err := hashReader(f, buf)
	if err != nil {
		return hashedFile{}, "", 0, fmt.Errorf("fingerprint %s: %w", p, err)
	}
	after, err := f.Stat()
	if err != nil {
		return hashedFile{}, "", 0, fmt.Errorf("fingerprint %s: %w", p, err)
	}
	sb, ok1 := statOf(before)
	sa, ok2 := statOf(after)
	return hashedFile{st: sb, recorded: start, record: ok1 && ok2 && sa == sb && n == sb.size}, d, n, nil
}

// statRows loads the stat cache rows for abs, or for every file under it
// when it is a directory (a range scan of the primary key).
func (s *Store) statRows(ctx context.Context, abs string, dir bool) (map[string]statRow, error) {
	q := `SELECT path, size, mtime_ns, ctime_ns, inode, dev, digest, recorded_ns FROM stat_cache WHERE path = ?`
	args := []any{abs}
	if dir {
		// Every path under abs/ sorts between "abs/" and "abs0" ('0' follows '/').
		prefix := strings.TrimSuffix(abs, "/") + "/"
		q = `SELECT path, size, mtime_ns, ctime_ns, inode, dev, digest, recorded_ns FROM stat_cache WHERE path > ? AND path < ?`
		args = []any{prefix, prefix[:len(prefix)-1] + "0"}
	}
	rs, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read stat cache for %s: %w", abs, err)
	}
	defer rs.Close()
	out := map[string]statRow{}
	for rs.Next() {
		var (
			p        string
			r        statRow
			ino, dev int64
		)
		if err := rs.Scan(&p, &r.st.size, &r.st.mtime, &r.st.ctime, &ino, &dev, &r.digest, &r.recorded); err != nil {
			return nil, fmt.Errorf("read stat cache for %s: %w", abs, err)
		}
		// SQLite integers are signed; inode and device numbers round-trip
		// through int64 bit for bit.
		r.st.ino, r.st.dev = uint64(ino), uint64(dev)
		out[p] = r
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("read stat cache for %s: %w", abs, err)
	}
	return out, nil
}

// updateStatRows records the freshly hashed files and, for a directory,
// forgets the rows of files no longer under it. A read-only cache is left
// alone: the stat cache only saves work.
func (s *Store) updateStatRows(ctx context.Context, abs string, dir bool, rows map[string]statRow, files []walkFile, digests []Digest, fresh []hashedFile) error {
	var gone []string
	if dir {
		seen := make(map[string]bool, len(files))
		for _, f := range files {
			seen[f.abs] = true
		}
		for p := range rows {
			if !seen[p] {
				gone = append(gone, p)
			}
		}
	}
	n := 0
	for _, h := range fresh {
		if h.record {
			n++
		}
	}
	if n == 0 && len(gone) == 0 || s.ReadOnly() {
		return nil
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if len(gone) > 0 {
			del, err := tx.PrepareContext(ctx, `DELETE FROM stat_cache WHERE path = ?`)
			if err != nil {
				return err
			}
			defer del.Close()
			for _, p := range gone {
				if _, err := del.ExecContext(ctx, p); err != nil {
					return err
				}
			}
		}
		ins, err := tx.PrepareContext(ctx, `INSERT OR REPLACE INTO stat_cache (path, size, mtime_ns, ctime_ns, inode, dev, digest, recorded_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer ins.Close()
		for _, h := range fresh {
			if !h.record {
				continue
			}
			f := files[h.idx]
			if _, err := ins.ExecContext(ctx, f.abs, h.st.size, h.st.mtime, h.st.ctime, int64(h.st.ino), int64(h.st.dev), string(digests[h.idx]), h.recorded); err != nil {
				return err
			}
		}
		return nil
	})
	var se sqlite3.Error
	if errors.As(err, &se) && se.Code == sqlite3.ErrReadonly || errors.Is(err, ErrReadOnly) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("update stat cache for %s: %w", abs, err)
	}
	return nil
}
