package cache

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Checking objects before they are read.
//
// Every object has a stat fingerprint in object_stats, and every entry of a
// materialised tree one in tree_stats. Before a consumer gets a path (Path)
// or a run reuses an output (Intact), the fingerprint is compared with a
// fresh lstat: a match costs one stat; a mismatch (or no row yet) rehashes
// the file, and either records the new fingerprint (the content is right:
// only the metadata moved, e.g. a new hardlink) or declares the object
// corrupt. A corrupt object is moved to quarantine/ (kept for a post-mortem,
// never served), and every execution that produced it or consumed it,
// transitively through the inputs the executions recorded, is invalidated
// so the next run recomputes them (see cascade).
//
// Hardlinked tree entries share the object's inode, so they are compared
// with the object's own row: linking an object into a second tree moves its
// ctime, and the tree that linked it updates that one row for all trees.

// fingerprint is what a stat says about a file's content: size, mtime,
// ctime and inode (see fingerprintOf).
type fingerprint struct {
	Size    int64
	MtimeNs int64
	CtimeNs int64
	Inode   uint64
}

// ErrCorrupt is wrapped by the error of a read that found an object whose
// bytes no longer match its digest.
var ErrCorrupt = errors.New("corrupt object")

// CorruptError reports a corrupt object found before a read and what was
// done about it. It wraps ErrCorrupt.
type CorruptError struct {
	Object Digest
	// Quarantine is where the bytes were moved; empty on a read-only store,
	// which can neither move nor invalidate anything.
	Quarantine string
	// Invalidated are the executions that produced the object or consumed
	// it, directly or through other invalidated executions' outputs.
	Invalidated []Execution
}

// Error names the object, where it went and the instances to recompute.
func (e *CorruptError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "object %s is corrupt (its content no longer matches its digest)", e.Object.Short())
	if e.Quarantine != "" {
		fmt.Fprintf(&b, "; moved to %s", e.Quarantine)
	}
	if len(e.Invalidated) > 0 {
		fmt.Fprintf(&b, "; invalidated %d execution(s), recomputed by the next run: %s", len(e.Invalidated), InstanceList(e.Invalidated))
	}
	return b.String()
}

// Unwrap makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// InstanceList names the distinct instances of execs, sorted, at most ten
// (then "and N more"), for one line of output.
func InstanceList(execs []Execution) string {
	seen := map[string]bool{}
	var names []string
	for _, e := range execs {
		if !seen[e.Instance] {
			seen[e.Instance] = true
			names = append(names, e.Instance)
		}
	}
	sort.Strings(names)
	if len(names) > 10 {
		return strings.Join(names[:10], ", ") + fmt.Sprintf(" and %d more", len(names)-10)
	}
	return strings.Join(names, ", ")
}

// Path returns a path on disk holding the content of d (see Objects.Path),
// after making sure it is what d names: a file object's fingerprint is
// compared (rehashed on mismatch), and a materialised tree is checked entry
// by entry against the fingerprints recorded when it was built. A damaged
// or replaced materialisation (a swapped file, a symlink in place of
// trees/<d>) is rebuilt from the objects; a corrupt object fails with a
// *CorruptError after the cascade.
func (s *Store) Path(ctx context.Context, d Digest) (string, error) {
	kind, err := s.Kind(d)
	if err != nil {
		return "", err
	}
	if kind == KindFile {
		if err := s.checkObject(ctx, d); err != nil {
			return "", err
		}
		return s.objectPath(d), nil
	}
	return s.treePath(ctx, d)
}

// Intact checks every object reachable from d (a run's cached output) by
// fingerprint, rehashing on mismatch, and returns nil when all are present
// and intact, a *CorruptError (after quarantine and cascade) when one is
// corrupt, or an ErrNotFound error when one is missing. An empty d is
// intact.
func (s *Store) Intact(ctx context.Context, d Digest) error {
	if d == "" {
		return nil
	}
	// Walk reads a manifest only after fn has checked its object.
	return s.Walk(ctx, d, func(x Digest, _ string) error {
		return s.checkObject(ctx, x)
	})
}

// checkObject compares the object d with its fingerprint and rehashes it
// on mismatch; see Path.
func (s *Store) checkObject(ctx context.Context, d Digest) error {
	p := s.objectPath(d)
	fi, err := os.Lstat(p)
	if err != nil {
		return notFound("check object "+d.Short(), err)
	}
	if !fi.Mode().IsRegular() {
		// A symlink or other file put in place of the object: whatever it
		// leads to is not what d names.
		return s.corrupt(ctx, d)
	}
	fp := fingerprintOf(fi)
	rec, ok, err := s.objectStat(ctx, d)
	if err != nil {
		return err
	}
	if ok && rec == fp {
		return nil
	}
	good, err := s.Check(ctx, d)
	if err != nil {
		return err
	}
	if !good {
		return s.corrupt(ctx, d)
	}
	return s.setObjectStat(ctx, d, fp)
}

// corrupt handles a corrupt object d found by a read: invalidate what
// produced or consumed it, then quarantine it (in that order, so that a
// process killed in between leaves no reusable execution pointing at a
// missing object).
func (s *Store) corrupt(ctx context.Context, d Digest) error {
	ce := &CorruptError{Object: d}
	if s.readOnly {
		return ce
	}
	// The repair must finish even if the caller is being cancelled.
	ctx = context.WithoutCancel(ctx)
	inv, err := s.cascade(ctx, map[Digest]bool{d: true}, nil)
	ce.Invalidated = inv
	if err != nil {
		return errors.Join(ce, err)
	}
	q, err := s.quarantine(ctx, d)
	ce.Quarantine = q
	if err != nil {
		return errors.Join(ce, err)
	}
	return ce
}

// quarantine moves the object d to quarantine/ and forgets it: its index
// rows go, and so do the materialised trees that hardlink the same inode.
// It returns where the bytes went ("" when the object was already gone).
func (s *Store) quarantine(ctx context.Context, d Digest) (string, error) {
	trees := []Digest{d}
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT tree FROM tree_stats WHERE digest = ?`, string(d))
	if err != nil {
		return "", fmt.Errorf("quarantine %s: trees holding it: %w", d.Short(), err)
	}
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return "", fmt.Errorf("quarantine %s: trees holding it: %w", d.Short(), err)
		}
		trees = append(trees, Digest(t))
	}
	rows.Close()
	for _, t := range trees {
		if err := s.discardTree(ctx, t); err != nil {
			return "", fmt.Errorf("quarantine %s: %w", d.Short(), err)
		}
	}
	qdir := filepath.Join(s.dir, "quarantine")
	if err := os.MkdirAll(qdir, 0o755); err != nil {
		return "", fmt.Errorf("quarantine %s: %w", d.Short(), err)
	}
	dst := filepath.Join(qdir, fmt.Sprintf("%s.%d", d, time.Now().UnixNano()))
	err = os.Rename(s.objectPath(d), dst)
	if errors.Is(err, fs.ErrNotExist) {
		dst = "" // another process quarantined it first
	} else if err != nil {
		return "", fmt.Errorf("quarantine %s: %w", d.Short(), err)
	}
	err = s.tx(ctx, func(tx *sql.Tx) error { return unindexObject(ctx, tx, d) })
	if err != nil {
		return dst, fmt.Errorf("quarantine %s: unindex: %w", d.Short(), err)
	}
	return dst, nil
}

// discardTree removes the materialisation trees/<d> and its rows. The
// directory is first renamed into tmp/, so a process killed while deleting a
// large tree never leaves a half-deleted trees/<d> that looks usable.
func (s *Store) discardTree(ctx context.Context, d Digest) error {
	if err := s.Objects.discardTree(filepath.Join(s.trees, string(d))); err != nil {
		return fmt.Errorf("remove materialised tree %s: %w", d.Short(), err)
	}
	if s.readOnly {
		return nil
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM tree_stats WHERE tree = ?`, string(d)); err != nil {
		return fmt.Errorf("remove materialised tree %s: %w", d.Short(), err)
	}
	return nil
}

// execer is what unindexObject needs of a transaction.
type execer interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}

// unindexObject deletes every index row about the object d.
func unindexObject(ctx context.Context, tx execer, d Digest) error {
	for _, q := range []string{
		`DELETE FROM objects WHERE digest = ?`,
		`DELETE FROM object_stats WHERE digest = ?`,
		`DELETE FROM tree_stats WHERE tree = ?`,
	} {
		if _, err := tx.ExecContext(ctx, q, string(d)); err != nil {
			return fmt.Errorf("unindex %s: %w", d.Short(), err)
		}
	}
	return nil
}

// objectStat returns the recorded fingerprint of d.
func (s *Store) objectStat(ctx context.Context, d Digest) (fingerprint, bool, error) {
	var fp fingerprint
	var ino int64
	err := s.db.QueryRowContext(ctx, `SELECT size, mtime_ns, ctime_ns, inode FROM object_stats WHERE digest = ?`, string(d)).
		Scan(&fp.Size, &fp.MtimeNs, &fp.CtimeNs, &ino)
	if err == sql.ErrNoRows {
		return fp, false, nil
	}
	if err != nil {
		return fp, false, fmt.Errorf("fingerprint of object %s: %w", d.Short(), err)
	}
	fp.Inode = uint64(ino)
	return fp, true, nil
}

// setObjectStat records fp as the fingerprint of the verified object d. A
// read-only store records nothing: it rehashes again next time.
func (s *Store) setObjectStat(ctx context.Context, d Digest, fp fingerprint) error {
	if s.readOnly {
		return nil
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO object_stats (digest, size, mtime_ns, ctime_ns, inode) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (digest) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns, ctime_ns = excluded.ctime_ns, inode = excluded.inode`,
		string(d), fp.Size, fp.MtimeNs, fp.CtimeNs, int64(fp.Inode))
	if err != nil {
		return fmt.Errorf("record fingerprint of object %s: %w", d.Short(), err)
	}
	return nil
}

// recordNewObjectStats records the fingerprints of objects just stored. An
// object that already had a row keeps it: a put that found the object
// already present did not verify the old bytes, so blessing their stat now
// could hide an earlier corruption; the stale row only costs a rehash on
// the next read.
func (s *Store) recordNewObjectStats(ctx context.Context, recs []objectRec) error {
	if len(recs) == 0 || s.readOnly {
		return nil
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `INSERT INTO object_stats (digest, size, mtime_ns, ctime_ns, inode) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (digest) DO NOTHING`)
		if err != nil {
			return fmt.Errorf("record fingerprints: %w", err)
		}
		defer st.Close()
		for _, r := range recs {
			fi, err := os.Lstat(s.objectPath(r.d))
			if err != nil || !fi.Mode().IsRegular() {
				continue // checked, and rehashed, on first read instead
			}
			fp := fingerprintOf(fi)
			if _, err := st.ExecContext(ctx, string(r.d), fp.Size, fp.MtimeNs, fp.CtimeNs, int64(fp.Inode)); err != nil {
				return fmt.Errorf("record fingerprint of object %s: %w", r.d.Short(), err)
			}
		}
		return nil
	})
}

// treeRow is one recorded entry of a materialised tree, with the row of the
// object it names (hasObj false when the object has none).
type treeRow struct {
	kind   string
	digest Digest
	own    fingerprint
	obj    fingerprint
	hasObj bool
}

// treePath returns trees/<d>, checked or (re)built; see Path.
func (s *Store) treePath(ctx context.Context, d Digest) (string, error) {
	dst := filepath.Join(s.trees, string(d))
	if fi, err := os.Lstat(dst); err == nil {
		if fi.IsDir() {
			state, err := s.checkTree(ctx, d, dst)
			if err != nil {
				return "", err
			}
			if state == treeUnrecorded {
				// Built before fingerprints were kept (or by a read-only
				// open): check it the slow way once, then record it.
				if s.readOnly {
					return dst, nil
				}
				if err := s.Intact(ctx, d); err != nil {
					return "", err
				}
				ok, err := s.treeMatches(ctx, d, dst)
				if err != nil {
					return "", err
				}
				if ok {
					state = treeOK
					if err := s.recordTree(ctx, d, dst); err != nil {
						return "", err
					}
				}
			}
			if state == treeOK {
				return dst, nil
			}
		}
		if s.readOnly {
			return "", fmt.Errorf("materialised tree %s does not match its fingerprints, and the cache is read-only so it cannot be rebuilt: %w", dst, ErrReadOnly)
		}
		// Whatever read the damaged materialisation before may have read
		// wrong bytes: its consumers are invalidated as for a corrupt
		// object, the objects themselves being fine.
		inv, err := s.cascade(context.WithoutCancel(ctx), nil, map[Digest]bool{d: true})
		if err != nil {
			return "", err
		}
		if len(inv) > 0 {
			fmt.Fprintf(os.Stderr, "voxflow: materialised tree %s was modified; rebuilt it and invalidated %d execution(s) that read it: %s\n",
				d.Short(), len(inv), InstanceList(inv))
		}
		if err := s.discardTree(ctx, d); err != nil {
			return "", err
		}
	}
	if err := s.Intact(ctx, d); err != nil {
		return "", err
	}
	if s.readOnly {
		return s.privateTree(ctx, d)
	}
	p, err := s.Objects.materialise(ctx, d)
	if err != nil {
		return "", err
	}
	if err := s.recordTree(ctx, d, p); err != nil {
		return "", err
	}
	return p, nil
}

// treeEntries lists every entry under the tree d as slash-separated paths
// ("" for the root itself) with kinds and digests.
func (s *Store) treeEntries(ctx context.Context, d Digest) (map[string]Entry, error) {
	out := map[string]Entry{"": {Kind: EntryDir, Digest: d}}
	var walk func(prefix string, d Digest) error
	walk = func(prefix string, d Digest) error {
		m, err := s.ReadManifest(ctx, d)
		if err != nil {
			return err
		}
		for _, e := range m.Entries {
			rel := e.Name
			if prefix != "" {
				rel = prefix + "/" + e.Name
			}
			out[rel] = e
			if e.Kind == EntryDir {
				if err := walk(rel, e.Digest); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return out, walk("", d)
}

// recordTree records the fingerprints of the freshly materialised tree d at
// dir. Hardlinking moved the linked objects' ctime; their rows are updated
// when nothing else about them changed since Intact checked them.
func (s *Store) recordTree(ctx context.Context, d Digest, dir string) error {
	if s.readOnly {
		return nil
	}
	ents, err := s.treeEntries(ctx, d)
	if err != nil {
		return fmt.Errorf("record materialised tree %s: %w", d.Short(), err)
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM tree_stats WHERE tree = ?`, string(d)); err != nil {
			return err
		}
		ins, err := tx.PrepareContext(ctx, `INSERT INTO tree_stats (tree, path, kind, digest, size, mtime_ns, ctime_ns, inode) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer ins.Close()
		for rel, e := range ents {
			fi, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(rel)))
			if err != nil {
				return fmt.Errorf("record materialised tree %s: %w", d.Short(), err)
			}
			fp := fingerprintOf(fi)
			if _, err := ins.ExecContext(ctx, string(d), rel, e.Kind, string(e.Digest), fp.Size, fp.MtimeNs, fp.CtimeNs, int64(fp.Inode)); err != nil {
				return err
			}
			if e.Kind != EntryFile {
				continue
			}
			var old fingerprint
			var ino int64
			err = tx.QueryRowContext(ctx, `SELECT size, mtime_ns, ctime_ns, inode FROM object_stats WHERE digest = ?`, string(e.Digest)).
				Scan(&old.Size, &old.MtimeNs, &old.CtimeNs, &ino)
			old.Inode = uint64(ino)
			if err == nil && old.Inode == fp.Inode && old.Size == fp.Size && old.MtimeNs == fp.MtimeNs && old.CtimeNs != fp.CtimeNs {
				if _, err := tx.ExecContext(ctx, `UPDATE object_stats SET ctime_ns = ? WHERE digest = ?`, fp.CtimeNs, string(e.Digest)); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// States of a materialised tree, as checkTree finds it.
const (
	treeOK         = iota // matches its fingerprints
	treeDamaged           // an entry added, removed, replaced or a symlink
	treeUnrecorded        // no fingerprints recorded for it
)

// checkTree compares the materialisation of d at dir with its recorded
// fingerprints. It returns an error when an object the tree hardlinks is
// corrupt.
func (s *Store) checkTree(ctx context.Context, d Digest, dir string) (int, error) {
	rows, err := s.treeRows(ctx, d)
	if err != nil {
		return treeDamaged, err
	}
	if len(rows) == 0 {
		return treeUnrecorded, nil
	}
	seen, damaged := 0, false
	err = filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			// Discarded under us (another process found it damaged):
			// rebuild.
			damaged = true
			return filepath.SkipAll
		}
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			rel = ""
		}
		r, ok := rows[filepath.ToSlash(rel)]
		if !ok {
			damaged = true
			return filepath.SkipAll
		}
		seen++
		fi, err := de.Info() // the lstat WalkDir made of the root, else one lstat
		if errors.Is(err, fs.ErrNotExist) {
			damaged = true
			return filepath.SkipAll
		}
		if err != nil {
			return err
		}
		fp := fingerprintOf(fi)
		switch {
		case fi.Mode()&fs.ModeSymlink != 0,
			r.kind == EntryDir && !fi.IsDir(),
			r.kind == EntryFile && !fi.Mode().IsRegular():
			damaged = true
		case r.kind == EntryDir:
			damaged = fp.Inode != r.own.Inode
		case r.hasObj && fp.Inode == r.obj.Inode:
			// A hardlink to the object: the object's row is the truth.
			if fp != r.obj {
				if err := s.checkObject(ctx, r.digest); err != nil {
					return err
				}
			}
		default:
			damaged = fp != r.own
		}
		if damaged {
			return filepath.SkipAll
		}
		return nil
	})
	if err != nil {
		return treeDamaged, fmt.Errorf("check materialised tree %s: %w", d.Short(), err)
	}
	if damaged || seen != len(rows) {
		return treeDamaged, nil
	}
	return treeOK, nil
}

func (s *Store) treeRows(ctx context.Context, d Digest) (map[string]treeRow, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT t.path, t.kind, t.digest, t.size, t.mtime_ns, t.ctime_ns, t.inode,
		o.size IS NOT NULL, COALESCE(o.size, 0), COALESCE(o.mtime_ns, 0), COALESCE(o.ctime_ns, 0), COALESCE(o.inode, 0)
		FROM tree_stats t LEFT JOIN object_stats o ON o.digest = t.digest WHERE t.tree = ?`, string(d))
	if err != nil {
		return nil, fmt.Errorf("fingerprints of tree %s: %w", d.Short(), err)
	}
	defer rows.Close()
	out := map[string]treeRow{}
	for rows.Next() {
		var rel string
		var r treeRow
		var ino, oino int64
		if err := rows.Scan(&rel, &r.kind, &r.digest, &r.own.Size, &r.own.MtimeNs, &r.own.CtimeNs, &ino,
			&r.hasObj, &r.obj.Size, &r.obj.MtimeNs, &r.obj.CtimeNs, &oino); err != nil {
			return nil, fmt.Errorf("fingerprints of tree %s: %w", d.Short(), err)
		}
		r.own.Inode, r.obj.Inode = uint64(ino), uint64(oino)
		out[rel] = r
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("fingerprints of tree %s: %w", d.Short(), err)
	}
	return out, nil
}

// cascade invalidates every succeeded execution that produced an object in
// bad (its output tree or log reaches one) or consumed one (an input of it
// reaches one), and, transitively, every execution that consumed anything
// in the output of an invalidated consumer. tainted names digests (such as
// a damaged materialisation) whose consumers are suspect though no object
// is bad. It returns the executions it invalidated, in id order.
//
// Missing objects are not bad here: gc removes old inputs as a matter of
// course, and what consumed them was right when it ran.
func (s *Store) cascade(ctx context.Context, bad, tainted map[Digest]bool) ([]Execution, error) {
	execs, err := s.queryExecutions(ctx, `SELECT `+execCols+` FROM executions WHERE status = 'succeeded' AND invalid = 0 ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("invalidate users of a corrupt object: %w", err)
	}
	taint := map[Digest]bool{}
	for d := range tainted {
		taint[d] = true
	}
	memo := map[Digest]bool{}
	var reaches func(d Digest) bool
	reaches = func(d Digest) bool {
		if v, ok := memo[d]; ok {
			return v
		}
		memo[d] = false // cycles cannot happen in a content-addressed DAG; this only stops re-entry
		v := bad[d]
		if !v {
			if m, err := s.ReadManifest(ctx, d); err == nil {
				for _, e := range m.Entries {
					if reaches(e.Digest) {
						v = true
						break
					}
				}
			}
		}
		memo[d] = v
		return v
	}
	inputs := make([][]Digest, len(execs))
	for i, e := range execs {
		inputs[i] = inputDigests(e.Inputs)
	}
	invalid := make([]bool, len(execs))
	for changed := true; changed; {
		changed = false
		for i, e := range execs {
			if invalid[i] {
				continue
			}
			producer := len(bad) > 0 && (bad[e.Log] || e.Output != "" && reaches(e.Output))
			consumer := false
			for _, in := range inputs[i] {
				if taint[in] || len(bad) > 0 && reaches(in) {
					consumer = true
					break
				}
			}
			if !producer && !consumer {
				continue
			}
			invalid[i], changed = true, true
			if consumer && e.Output != "" {
				// Everything a wrong input computed is suspect, down to
				// the subtrees its own consumers picked.
				_ = s.Walk(ctx, e.Output, func(x Digest, _ string) error {
					taint[x] = true
					return nil
				})
				taint[e.Output] = true
			}
		}
	}
	var out []Execution
	for i, e := range execs {
		if invalid[i] {
			e.Invalid = true
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		for _, e := range out {
			if _, err := tx.ExecContext(ctx, `UPDATE executions SET invalid = 1 WHERE id = ?`, e.ID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("invalidate users of a corrupt object: %w", err)
	}
	return out, nil
}

// inputDigests returns every digest named in an execution's recorded
// inputs (canonical JSON: port -> [{"digest": ..., ...}]); any "digest"
// field at any depth counts, so kinds of input added later are covered.
func inputDigests(js string) []Digest {
	var v any
	if json.Unmarshal([]byte(js), &v) != nil {
		return nil
	}
	var out []Digest
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				if s, ok := c.(string); ok && k == "digest" && Digest(s).Valid() {
					out = append(out, Digest(s))
				} else {
					walk(c)
				}
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(v)
	return out
}
