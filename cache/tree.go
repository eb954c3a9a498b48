package cache

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// treeMagic starts every manifest object. Kind tells trees from files by it
// rather than by a sidecar registry, so the distinction travels with the
// bytes (a worker on another host, a copied object directory, Verify's
// rehash all see it) and needs no second write to stay consistent. The NUL
// byte keeps it out of any text file; a binary file that starts with these 16
// bytes and then parses as a manifest is the one (deliberate) way to fool it.
// The digest of a tree is the plain BLAKE3 of the whole object, header
// included, so every object verifies the same way.
const treeMagic = "voxflow-tree v1\x00"

// Entry kinds inside a manifest.
const (
	EntryFile = "file"
	EntryDir  = "dir"
)

// Manifest is the content of a tree object: one directory level.
type Manifest struct {
	Entries []Entry `json:"entries"` // sorted by Name (bytewise)
}

// Entry is one child of a directory. Size is the file size, or for a
// directory the total size of the files below it.
type Entry struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"` // "file" or "dir"
	Digest Digest `json:"digest"`
	Size   int64  `json:"size"`
	Exec   bool   `json:"exec,omitempty"`
}

// encodeManifest is the canonical form: magic, then compact JSON with
// entries in name order. Changing it changes every tree digest.
func encodeManifest(m *Manifest) ([]byte, error) {
	sort.Slice(m.Entries, func(i, j int) bool { return m.Entries[i].Name < m.Entries[j].Name })
	if m.Entries == nil {
		m.Entries = []Entry{}
	}
	js, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return append([]byte(treeMagic), js...), nil
}

// ReadManifest reads and decodes the tree object d.
func (o *Objects) ReadManifest(ctx context.Context, d Digest) (*Manifest, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if _, err := ParseDigest(string(d)); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(o.objectPath(d))
	if err != nil {
		return nil, notFound("read manifest "+d.Short(), err)
	}
	if !bytes.HasPrefix(b, []byte(treeMagic)) {
		return nil, fmt.Errorf("read manifest %s: object is a file, not a tree", d.Short())
	}
	var m Manifest
	if err := json.Unmarshal(b[len(treeMagic):], &m); err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", d.Short(), err)
	}
	for _, e := range m.Entries {
		if !validName(e.Name) || !e.Digest.Valid() || (e.Kind != EntryFile && e.Kind != EntryDir) {
			return nil, fmt.Errorf("read manifest %s: bad entry %+v", d.Short(), e)
		}
	}
	return &m, nil
}

// PutTree stores the directory root as a tree: every regular file becomes a
// file object, every directory a manifest object, recursively. A root that is
// a plain file gives that file's digest. Symlinks and special files are
// rejected, so a tree can never point outside root. With move set the files
// are moved into the store (see PutFile); the emptied directories stay.
func (o *Objects) PutTree(ctx context.Context, root string, move bool) (Digest, error) {
	d, _, err := o.putTree(ctx, root, move, nil)
	return d, err
}

func (o *Objects) putTree(ctx context.Context, root string, move bool, hook putHook) (Digest, int64, error) {
	fi, err := os.Lstat(root)
	if err != nil {
		return "", 0, fmt.Errorf("put tree %s: %w", root, err)
	}
	if fi.Mode().IsRegular() {
		var size int64
		d, err := o.putFile(ctx, root, move, func(d Digest, kind string, n int64) {
			size = n
			if hook != nil {
				hook(d, kind, n)
			}
		})
		return d, size, err
	}
	if !fi.IsDir() {
		return "", 0, fmt.Errorf("put tree %s: %s is a %s; only regular files and directories can be stored", root, root, fi.Mode().Type())
	}
	return o.putDir(ctx, root, root, move, hook)
}

func (o *Objects) putDir(ctx context.Context, root, dir string, move bool, hook putHook) (Digest, int64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", 0, fmt.Errorf("put tree %s: %w", root, err)
	}
	m := &Manifest{Entries: make([]Entry, 0, len(ents))}
	var total int64
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		rel, _ := filepath.Rel(root, p)
		if !utf8.ValidString(e.Name()) {
			// JSON would replace the bad bytes and two names could collide.
			return "", 0, fmt.Errorf("put tree %s: name %q is not valid UTF-8", root, rel)
		}
		switch t := e.Type(); {
		case t&fs.ModeSymlink != 0:
			return "", 0, fmt.Errorf("put tree %s: %s is a symlink; outputs must be regular files and directories", root, rel)
		case t.IsDir():
			d, size, err := o.putDir(ctx, root, p, move, hook)
			if err != nil {
				return "", 0, err
			}
			m.Entries = append(m.Entries, Entry{Name: e.Name(), Kind: EntryDir, Digest: d, Size: size})
			total += size
		case t.IsRegular():
			fi, err := e.Info()
			if err != nil {
				return "", 0, fmt.Errorf("put tree %s: %w", root, err)
			}
			var size int64
			d, err := o.putFile(ctx, p, move, func(d Digest, kind string, n int64) {
				size = n
				if hook != nil {
					hook(d, kind, n)
				}
			})
			if err != nil {
				return "", 0, err
			}
			m.Entries = append(m.Entries, Entry{Name: e.Name(), Kind: EntryFile, Digest: d, Size: size, Exec: fi.Mode()&0o111 != 0})
			total += size
		default:
			return "", 0, fmt.Errorf("put tree %s: %s is a %s; only regular files and directories can be stored", root, rel, t)
		}
	}
	b, err := encodeManifest(m)
	if err != nil {
		return "", 0, fmt.Errorf("put tree %s: encode manifest: %w", root, err)
	}
	d, err := o.putBytes(ctx, b, KindTree, hook)
	if err != nil {
		return "", 0, fmt.Errorf("put tree %s: %w", root, err)
	}
	return d, total, nil
}

// Sub returns the digest of the slash-separated path rel inside tree. An
// empty rel (or ".") returns tree itself.
func (o *Objects) Sub(ctx context.Context, tree Digest, rel string) (Digest, error) {
	clean := path.Clean(rel)
	if path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("sub %q of tree %s: want a relative path inside the tree", rel, tree.Short())
	}
	cur := tree
	if clean == "." {
		return cur, nil
	}
	parts := strings.Split(clean, "/")
	for i, name := range parts {
		m, err := o.ReadManifest(ctx, cur)
		if err != nil {
			return "", fmt.Errorf("sub %s of tree %s: %w", rel, tree.Short(), err)
		}
		k := sort.Search(len(m.Entries), func(j int) bool { return m.Entries[j].Name >= name })
		if k == len(m.Entries) || m.Entries[k].Name != name {
			return "", fmt.Errorf("sub %s of tree %s: no entry %q: %w", rel, tree.Short(), strings.Join(parts[:i+1], "/"), ErrNotFound)
		}
		e := m.Entries[k]
		if i < len(parts)-1 && e.Kind != EntryDir {
			return "", fmt.Errorf("sub %s of tree %s: %s is a file, not a directory", rel, tree.Short(), strings.Join(parts[:i+1], "/"))
		}
		cur = e.Digest
	}
	return cur, nil
}

// Walk calls fn once for root and once for every distinct object reachable
// from it, with its kind. Manifests are read as they are reached; file
// objects are not opened, so fn sees digests of files that may be missing
// (Verify and GC check presence themselves). A missing or unreadable
// manifest stops the walk with its error.
func (o *Objects) Walk(ctx context.Context, root Digest, fn func(d Digest, kind string) error) error {
	kind, err := o.Kind(root)
	if err != nil {
		return fmt.Errorf("walk %s: %w", root.Short(), err)
	}
	seen := map[Digest]bool{}
	var walk func(d Digest, kind string) error
	walk = func(d Digest, kind string) error {
		if seen[d] {
			return nil
		}
		seen[d] = true
		if err := fn(d, kind); err != nil {
			return err
		}
		if kind != KindTree {
			return nil
		}
		m, err := o.ReadManifest(ctx, d)
		if err != nil {
			return err
		}
		for _, e := range m.Entries {
			k := KindFile
			if e.Kind == EntryDir {
				k = KindTree
			}
			if err := walk(e.Digest, k); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(root, kind); err != nil {
		return fmt.Errorf("walk %s: %w", root.Short(), err)
	}
	return nil
}

// materialise builds trees/<d> from the manifest: directories are created in
// tmp/, files hardlinked to their objects (executables copied, since one
// object may be stored both with and without the exec bit), directories made
// read-only, then the whole tree is renamed into place. Another process
// materialising the same tree at once loses the rename race harmlessly.
func (o *Objects) materialise(ctx context.Context, d Digest) (string, error) {
	return o.materialiseIn(ctx, d, o.trees, o.tmp)
}

// materialiseIn builds the tree d as parent/<d>, assembled in a new
// directory under tmpDir (on parent's filesystem); see materialise.
func (o *Objects) materialiseIn(ctx context.Context, d Digest, parent, tmpDir string) (string, error) {
	dst := filepath.Join(parent, string(d))
	if fi, err := os.Lstat(dst); err == nil {
		if fi.IsDir() {
			return dst, nil
		}
		// A symlink (or anything else) put in place of the tree could lead
		// a stage out of the cache: replace it.
		if err := o.discardTree(dst); err != nil {
			return "", fmt.Errorf("materialise tree %s: %w", d.Short(), err)
		}
	}
	tmp, err := os.MkdirTemp(tmpDir, "tree-*")
	if err != nil {
		return "", fmt.Errorf("materialise tree %s: %w", d.Short(), err)
	}
	if err := o.build(ctx, d, tmp); err != nil {
		removeTree(tmp)
		return "", fmt.Errorf("materialise tree %s: %w", d.Short(), err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		removeTree(tmp)
		if fi, serr := os.Lstat(dst); serr == nil && fi.IsDir() {
			return dst, nil
		}
		return "", fmt.Errorf("materialise tree %s: %w", d.Short(), err)
	}
	// Made read-only only now: moving a directory to another parent needs
	// write permission on it (to update "..").
	if err := os.Chmod(dst, 0o555); err != nil {
		return "", fmt.Errorf("materialise tree %s: %w", d.Short(), err)
	}
	return dst, nil
}

func (o *Objects) build(ctx context.Context, d Digest, dir string) error {
	m, err := o.ReadManifest(ctx, d)
	if err != nil {
		return err
	}
	for _, e := range m.Entries {
		p := filepath.Join(dir, e.Name)
		if e.Kind == EntryDir {
			if err := os.Mkdir(p, 0o755); err != nil {
				return err
			}
			if err := o.build(ctx, e.Digest, p); err != nil {
				return err
			}
			if err := os.Chmod(p, 0o555); err != nil {
				return err
			}
			continue
		}
		src := o.objectPath(e.Digest)
		if e.Exec {
			err = copyFile(src, p, 0o555)
		} else if err = os.Link(src, p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			// Filesystems without hardlinks still get a usable tree.
			err = copyFile(src, p, 0o444)
		}
		if err != nil {
			return notFound("object "+e.Digest.Short()+" for "+e.Name, err)
		}
	}
	return nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.CopyBuffer(out, in, make([]byte, hashBufSize)); err != nil {
		out.Close()
		return err
	}
	if err := out.Chmod(mode); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// discardTree removes the materialised tree (or whatever else) at p. A
// directory is first renamed into tmp/ and deleted there, so a process
// killed half-way leaves either the whole tree in trees/ or none of it, and
// never a partly deleted one that materialise would take as complete.
func (o *Objects) discardTree(p string) error {
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	// Moving a directory to another parent needs write permission on it
	// (to update its ".." entry).
	_ = os.Chmod(p, 0o755)
	dead := filepath.Join(o.tmp, fmt.Sprintf("dead-%s-%d", filepath.Base(p), time.Now().UnixNano()))
	if err := os.Rename(p, dead); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // discarded concurrently
		}
		return err
	}
	return removeTree(dead)
}

// removeTree deletes a possibly read-only directory tree.
func removeTree(dir string) error {
	err := os.RemoveAll(dir)
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	// Read-only directories refuse unlinks for non-root users: open them up
	// and retry.
	filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err == nil && e.IsDir() {
			os.Chmod(p, 0o755)
		}
		return nil
	})
	return os.RemoveAll(dir)
}

// validName rejects entry names that could escape their directory.
func validName(n string) bool {
	return n != "" && n != "." && n != ".." && !strings.ContainsAny(n, "/\x00")
}
