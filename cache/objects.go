package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/zeebo/blake3"
)

// Object kinds as returned by Kind.
const (
	KindFile = "file"
	KindTree = "tree"
)

// Objects is the filesystem half of the cache. It holds no database handle
// and no in-memory state beyond paths, so any number of processes on any
// number of hosts sharing the directory may use it at once: every visible
// change is a rename of a fully written, fsynced file or directory.
//
// Layout under the root directory:
//
//	objects/ab/cdef...  object bytes, named by digest, mode 0444
//	tmp/                temp files and half-built trees (same filesystem)
//	trees/<digest>/     materialised read-only directory trees (hardlinks)
//	locks/<key>         flock(2) files for Lock/TryLock
type Objects struct {
	dir     string
	objects string
	tmp     string
	trees   string
	locks   string
}

// OpenObjects opens (creating if needed) the object store rooted at dir,
// usually a project's .voxflow directory.
func OpenObjects(dir string) (*Objects, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open objects %s: %w", dir, err)
	}
	o := newObjects(abs)
	for _, d := range []string{o.objects, o.tmp, o.trees, o.locks} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("open objects %s: %w", dir, err)
		}
	}
	return o, nil
}

// newObjects lays out the store rooted at the absolute path abs without
// creating anything: a read-only store must not try.
func newObjects(abs string) *Objects {
	return &Objects{
		dir:     abs,
		objects: filepath.Join(abs, "objects"),
		tmp:     filepath.Join(abs, "tmp"),
		trees:   filepath.Join(abs, "trees"),
		locks:   filepath.Join(abs, "locks"),
	}
}

// Dir returns the absolute root directory of the store.
func (o *Objects) Dir() string { return o.dir }

// objectPath is where the bytes of d live. Callers must have validated d.
func (o *Objects) objectPath(d Digest) string {
	return filepath.Join(o.objects, string(d[:2]), string(d[2:]))
}

// putHook is told about every object a put stores or finds already stored,
// so the Store can index them.
type putHook func(d Digest, kind string, size int64)

// Has reports whether the object d is present.
func (o *Objects) Has(d Digest) bool {
	if !d.Valid() {
		return false
	}
	_, err := os.Lstat(o.objectPath(d))
	return err == nil
}

// Kind says whether d is a plain file ("file") or a directory manifest
// ("tree"). Manifests are told apart by a magic header (see manifest.go).
func (o *Objects) Kind(d Digest) (string, error) {
	if _, err := ParseDigest(string(d)); err != nil {
		return "", err
	}
	f, err := os.Open(o.objectPath(d))
	if err != nil {
		return "", notFound("kind of object "+d.Short(), err)
	}
	defer f.Close()
	head := make([]byte, len(treeMagic))
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return "", fmt.Errorf("kind of object %s: %w", d.Short(), err)
	}
	if n == len(treeMagic) && bytes.Equal(head, []byte(treeMagic)) {
		return KindTree, nil
	}
	return KindFile, nil
}

// Path returns a path on disk holding the content of d: the object file itself
// for a file, or a read-only directory under trees/ for a tree, materialised
// on first use. Never write through the returned path: files are hardlinks to
// the objects.
func (o *Objects) Path(ctx context.Context, d Digest) (string, error) {
	kind, err := o.Kind(d)
	if err != nil {
		return "", err
	}
	if kind == KindFile {
		return o.objectPath(d), nil
	}
	return o.materialise(ctx, d)
}

// PutFile stores the regular file at path and returns its digest. The object
// is written to a temp file in tmp/, fsynced and renamed into objects/, so a
// crash at any point leaves either no object or a complete one. With move set
// the source itself is fsynced and renamed into the store (it must be on the
// same filesystem; otherwise it is copied); the source path is then gone.
// Storing an object that already exists is a no-op apart from refreshing its
// mtime, which GC's grace period relies on.
func (o *Objects) PutFile(ctx context.Context, path string, move bool) (Digest, error) {
	return o.putFile(ctx, path, move, nil)
}

func (o *Objects) putFile(ctx context.Context, path string, move bool, hook putHook) (Digest, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("put %s: %w", path, err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return "", fmt.Errorf("put %s: %w", path, err)
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return "", fmt.Errorf("put %s: is a symlink; store the target file instead", path)
	case fi.IsDir():
		return "", fmt.Errorf("put %s: is a directory; use PutTree", path)
	}
	if move && fi.Mode().IsRegular() {
		d, size, err := o.moveIn(ctx, path)
		if err == nil {
			if hook != nil {
				hook(d, KindFile, size)
			}
			return d, nil
		}
		if !errors.Is(err, syscall.EXDEV) && !errors.Is(err, errCopyInstead) {
			return "", err
		}
		// Different filesystem, or a file that must not become an object
		// itself: fall through to a copy.
	}
	src, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("put %s: %w", path, err)
	}
	defer src.Close()
	d, size, err := o.putReader(ctx, src)
	if err != nil {
		return "", fmt.Errorf("put %s: %w", path, err)
	}
	if hook != nil {
		hook(d, KindFile, size)
	}
	return d, nil
}

// linkCount is the number of hard links to the file fi describes (1 when
// the platform does not say).
func linkCount(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 1
}

// ownedByMe reports whether this process's effective user owns fi.
func ownedByMe(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return !ok || int(st.Uid) == syscall.Geteuid()
}

// errCopyInstead tells putFile that moveIn declined to move a file.
var errCopyInstead = errors.New("copy instead of move")

// moveIn hashes path, fsyncs it and renames it into objects/. It declines
// (errCopyInstead) a file that is not exclusively the stage's: one with
// other hard links (a link to a user's file: renaming and chmodding it would
// make the user's file an object, so editing it would corrupt the cache),
// one owned by another user (never chmod someone else's file), or one that
// another process still holds open (it could write into the object after
// it was hashed; see openElsewhere). Those are copied.
func (o *Objects) moveIn(ctx context.Context, path string) (Digest, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("put %s: %w", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return "", 0, fmt.Errorf("put %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() || linkCount(fi) > 1 || !ownedByMe(fi) || openElsewhere(f) {
		f.Close()
		return "", 0, errCopyInstead
	}
	d, size, err := hashReader(ctxReader{ctx, f}, make([]byte, hashBufSize))
	if err == nil {
		// The stage may never have synced its output; the object must be
		// durable before the index can point at it.
		err = f.Sync()
	}
	f.Close()
	if err != nil {
		return "", 0, fmt.Errorf("put %s: %w", path, err)
	}
	if o.Has(d) {
		o.touch(d)
		if err := os.Remove(path); err != nil {
			return "", 0, fmt.Errorf("put %s: remove moved source: %w", path, err)
		}
		return d, size, nil
	}
	if err := os.Chmod(path, 0o444); err != nil {
		return "", 0, fmt.Errorf("put %s: %w", path, err)
	}
	if err := o.commit(path, d); err != nil {
		return "", 0, fmt.Errorf("put %s: %w", path, err)
	}
	// The moved file keeps the mtime the stage gave it, which may be older
	// than GC's grace period: the object must look as new as it is.
	o.touch(d)
	return d, size, nil
}

// PutBytes stores b as a file object.
func (o *Objects) PutBytes(ctx context.Context, b []byte) (Digest, error) {
	return o.putBytes(ctx, b, KindFile, nil)
}

func (o *Objects) putBytes(ctx context.Context, b []byte, kind string, hook putHook) (Digest, error) {
	d := HashBytes(b)
	if o.Has(d) {
		o.touch(d)
	} else if _, _, err := o.putReader(ctx, bytes.NewReader(b)); err != nil {
		return "", fmt.Errorf("put %d bytes: %w", len(b), err)
	}
	if hook != nil {
		hook(d, kind, int64(len(b)))
	}
	return d, nil
}

// putReader copies r into a temp file while hashing it, then commits it.
func (o *Objects) putReader(ctx context.Context, r io.Reader) (Digest, int64, error) {
	tmp, err := os.CreateTemp(o.tmp, "put-*")
	if err != nil {
		return "", 0, err
	}
	tmpPath := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmpPath)
		}
	}()
	h := blake3.New()
	buf := make([]byte, hashBufSize)
	n, err := io.CopyBuffer(io.MultiWriter(h, tmp), ctxReader{ctx, r}, buf)
	if err != nil {
		return "", n, err
	}
	if err := tmp.Sync(); err != nil {
		return "", n, err
	}
	if err := tmp.Chmod(0o444); err != nil {
		return "", n, err
	}
	if err := tmp.Close(); err != nil {
		return "", n, err
	}
	d := digestOf(h)
	if o.Has(d) {
		o.touch(d)
		ok = true
		os.Remove(tmpPath)
		return d, n, nil
	}
	if err := o.commit(tmpPath, d); err != nil {
		return "", n, err
	}
	ok = true
	return d, n, nil
}

// commit renames a complete, synced file into its object path and syncs the
// directory so that the rename itself survives a power cut.
func (o *Objects) commit(src string, d Digest) error {
	dst := o.objectPath(d)
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.Rename(src, dst); err != nil {
		return err
	}
	return syncDir(dir)
}

// touch refreshes an existing object's mtime so GC's grace period protects an
// object that a running stage has just re-put but not yet recorded. Failure
// only weakens that protection, so it is ignored.
func (o *Objects) touch(d Digest) {
	now := time.Now()
	_ = os.Chtimes(o.objectPath(d), now, now)
}

// Remove deletes the object d (and its materialised tree, if any). Removing an
// absent object is not an error.
func (o *Objects) Remove(d Digest) error {
	if _, err := ParseDigest(string(d)); err != nil {
		return err
	}
	if err := o.discardTree(filepath.Join(o.trees, string(d))); err != nil {
		return fmt.Errorf("remove tree %s: %w", d.Short(), err)
	}
	if err := os.Remove(o.objectPath(d)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove object %s: %w", d.Short(), err)
	}
	return nil
}

// ObjectInfo describes one object file on disk.
type ObjectInfo struct {
	Digest  Digest
	Size    int64
	ModTime time.Time
}

// List calls fn for every object on disk, in digest order. Names that are not
// digests (stray files) are skipped.
func (o *Objects) List(ctx context.Context, fn func(ObjectInfo) error) error {
	prefixes, err := os.ReadDir(o.objects)
	if err != nil {
		return fmt.Errorf("list objects in %s: %w", o.objects, err)
	}
	for _, p := range prefixes {
		if !p.IsDir() || len(p.Name()) != 2 {
			continue
		}
		dir := filepath.Join(o.objects, p.Name())
		ents, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("list objects in %s: %w", dir, err)
		}
		for _, e := range ents {
			if err := ctx.Err(); err != nil {
				return err
			}
			d := Digest(p.Name() + e.Name())
			if !d.Valid() || !e.Type().IsRegular() {
				continue
			}
			fi, err := e.Info()
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue // removed concurrently
				}
				return fmt.Errorf("list objects: %w", err)
			}
			if err := fn(ObjectInfo{Digest: d, Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Check rehashes the object d and reports whether its content still matches
// its name.
func (o *Objects) Check(ctx context.Context, d Digest) (bool, error) {
	if _, err := ParseDigest(string(d)); err != nil {
		return false, err
	}
	f, err := os.Open(o.objectPath(d))
	if err != nil {
		return false, notFound("check object "+d.Short(), err)
	}
	defer f.Close()
	got, _, err := hashReader(ctxReader{ctx, f}, make([]byte, hashBufSize))
	if err != nil {
		return false, fmt.Errorf("check object %s: %w", d.Short(), err)
	}
	return got == d, nil
}

// ctxReader makes long copies and hashes stop when ctx is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// notFound wraps a filesystem error so that callers can test for ErrNotFound.
func notFound(what string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return fmt.Errorf("%s: %w", what, err)
}
