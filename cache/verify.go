package cache

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
)

// VerifyReport is what Verify found and repaired.
type VerifyReport struct {
	Checked int      // objects rehashed
	Corrupt []Digest // content no longer matched the name; moved to quarantine/
	Missing []Digest // referenced by an execution but absent
	// DamagedTrees are materialisations under trees/ that no longer matched
	// their manifest (a file swapped, added or removed, a symlink); they
	// were removed and are rebuilt from the objects on next use.
	DamagedTrees []Digest
	Invalidated  []int64  // executions that can no longer be reused
	Instances    []string // their instance names as InstanceList gives them (sorted, at most ten, then "and N more")
}

// Verify rehashes every object on disk and checks every materialised tree
// under trees/ against its manifest. What it finds is repaired the way a
// read that finds it is (see Path): every succeeded execution whose output
// tree or log reaches a corrupt or missing object is invalidated, and so is
// every execution that consumed a corrupt object or a damaged tree,
// transitively (see cascade); then corrupt objects are moved to
// quarantine/ and bad materialised trees removed. Invalidation comes first,
// so a verify killed half-way never leaves a reusable execution whose
// output is gone. progress, if not nil, is called after each object from
// the calling goroutine.
func (s *Store) Verify(ctx context.Context, progress func(done, total int)) (VerifyReport, error) {
	var rep VerifyReport
	var all []Digest
	err := s.List(ctx, func(oi ObjectInfo) error {
		all = append(all, oi.Digest)
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("verify: %w", err)
	}
	corrupt, err := s.rehash(ctx, all, progress)
	if err != nil {
		return rep, fmt.Errorf("verify: %w", err)
	}
	rep.Checked = len(all)
	rep.Corrupt = corrupt
	bad := map[Digest]bool{}
	for _, d := range corrupt {
		bad[d] = true
	}

	execs, err := s.queryExecutions(ctx, `SELECT `+execCols+` FROM executions
		WHERE status = 'succeeded' AND invalid = 0 AND (output != '' OR log != '') ORDER BY id`)
	if err != nil {
		return rep, fmt.Errorf("verify: list executions: %w", err)
	}
	c := newReachCheck(s.Objects, bad)
	var invalid []Execution
	for _, e := range execs {
		okOut, err := c.ok(ctx, e.Output)
		if err != nil {
			return rep, fmt.Errorf("verify: execution %d: %w", e.ID, err)
		}
		okLog, err := c.ok(ctx, e.Log)
		if err != nil {
			return rep, fmt.Errorf("verify: execution %d: %w", e.ID, err)
		}
		if !okOut || !okLog {
			invalid = append(invalid, e)
		}
	}
	for d := range c.missing {
		if !bad[d] {
			rep.Missing = append(rep.Missing, d)
		}
	}
	sort.Slice(rep.Missing, func(i, j int) bool { return rep.Missing[i] < rep.Missing[j] })
	err = s.tx(ctx, func(tx *sql.Tx) error {
		for _, e := range invalid {
			if _, err := tx.ExecContext(ctx, `UPDATE executions SET invalid = 1 WHERE id = ?`, e.ID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("verify: record invalidations: %w", err)
	}
	if len(bad) > 0 {
		consumers, err := s.cascade(ctx, bad, nil)
		if err != nil {
			return rep, fmt.Errorf("verify: %w", err)
		}
		invalid = append(invalid, consumers...)
	}

	damaged, discard, err := s.checkTrees(ctx, c)
	if err != nil {
		return rep, fmt.Errorf("verify: %w", err)
	}
	rep.DamagedTrees = damaged
	if len(damaged) > 0 {
		taint := map[Digest]bool{}
		for _, d := range damaged {
			taint[d] = true
		}
		consumers, err := s.cascade(ctx, nil, taint)
		if err != nil {
			return rep, fmt.Errorf("verify: %w", err)
		}
		invalid = append(invalid, consumers...)
	}
	// Only now, with what read a damaged tree invalidated, does the
	// evidence go: a verify killed before this point finds it again.
	for _, d := range discard {
		// discardTree takes any name: a stray is removed the same way.
		if err := s.discardTree(ctx, d); err != nil {
			return rep, fmt.Errorf("verify: remove stale tree %s: %w", d, err)
		}
	}
	for _, d := range corrupt {
		if _, err := s.quarantine(ctx, d); err != nil {
			return rep, fmt.Errorf("verify: %w", err)
		}
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		for _, d := range rep.Missing {
			if err := unindexObject(ctx, tx, d); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("verify: unindex missing objects: %w", err)
	}
	seen := map[int64]bool{}
	var uniq []Execution
	for _, e := range invalid {
		if !seen[e.ID] {
			seen[e.ID] = true
			uniq = append(uniq, e)
			rep.Invalidated = append(rep.Invalidated, e.ID)
		}
	}
	sort.Slice(rep.Invalidated, func(i, j int) bool { return rep.Invalidated[i] < rep.Invalidated[j] })
	if list := InstanceList(uniq); list != "" {
		rep.Instances = strings.Split(list, ", ")
	}
	return rep, nil
}

// rehash checks objects on all cores and returns the corrupt ones, sorted.
func (s *Store) rehash(ctx context.Context, all []Digest, progress func(done, total int)) ([]Digest, error) {
	type result struct {
		d   Digest
		ok  bool
		err error
	}
	work := make(chan Digest)
	results := make(chan result, len(all)) // never blocks a worker, so none leaks
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers := min(runtime.GOMAXPROCS(0), max(len(all), 1))
	for range workers {
		go func() {
			for d := range work {
				ok, err := s.Check(ctx, d)
				if errors.Is(err, ErrNotFound) {
					ok, err = true, nil // removed concurrently (GC): nothing to verify
				}
				results <- result{d, ok, err}
			}
		}()
	}
	go func() {
		defer close(work)
		for _, d := range all {
			select {
			case work <- d:
			case <-ctx.Done():
				return
			}
		}
	}()
	var corrupt []Digest
	var firstErr error
	for done := 1; done <= len(all); done++ {
		var r result
		select {
		case r = <-results:
		case <-ctx.Done():
			if firstErr != nil {
				return nil, firstErr
			}
			return nil, ctx.Err()
		}
		if r.err != nil && firstErr == nil {
			firstErr = r.err
			cancel()
		}
		if r.err == nil && !r.ok {
			corrupt = append(corrupt, r.d)
		}
		if progress != nil {
			progress(done, len(all))
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	sort.Slice(corrupt, func(i, j int) bool { return corrupt[i] < corrupt[j] })
	return corrupt, nil
}

// reachCheck memoises whether everything reachable from a digest is present
// and not known bad; executions share most of their subtrees.
type reachCheck struct {
	o       *Objects
	bad     map[Digest]bool
	memo    map[Digest]bool
	missing map[Digest]bool
}

func newReachCheck(o *Objects, bad map[Digest]bool) *reachCheck {
	return &reachCheck{o: o, bad: bad, memo: map[Digest]bool{}, missing: map[Digest]bool{}}
}

func (c *reachCheck) ok(ctx context.Context, d Digest) (bool, error) {
	if d == "" {
		return true, nil
	}
	if v, seen := c.memo[d]; seen {
		return v, nil
	}
	kind, err := c.o.Kind(d)
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			return false, err
		}
		c.missing[d] = true
	}
	v, err := c.check(ctx, d, kind, err == nil)
	if err != nil {
		return false, err
	}
	c.memo[d] = v
	return v, nil
}

func (c *reachCheck) check(ctx context.Context, d Digest, kind string, present bool) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if c.bad[d] || !present {
		return false, nil
	}
	if kind != KindTree {
		return true, nil
	}
	m, err := c.o.ReadManifest(ctx, d)
	if err != nil {
		if ctx.Err() != nil {
			return false, err
		}
		return false, nil // unreadable manifest: as good as missing
	}
	all := true
	for _, e := range m.Entries {
		v, err := c.ok(ctx, e.Digest)
		if err != nil {
			return false, err
		}
		all = all && v
	}
	return all, nil
}

// checkTrees finds what Verify must remove from trees/: materialised trees
// that reach a bad or missing object, anything that is not a directory
// named by a digest (a symlink put there could lead a stage out of the
// cache), and trees whose files no longer match their manifest. damaged
// lists the last kind (the objects are fine, but whatever read those trees
// may not have read them); discard lists all of them. It removes nothing,
// so that Verify can invalidate the readers first.
func (s *Store) checkTrees(ctx context.Context, c *reachCheck) (damaged, discard []Digest, err error) {
	ents, err := os.ReadDir(s.trees)
	if err != nil {
		return nil, nil, fmt.Errorf("list %s: %w", s.trees, err)
	}
	for _, e := range ents {
		d := Digest(e.Name())
		p := filepath.Join(s.trees, e.Name())
		ok := d.Valid() && e.IsDir()
		if ok {
			if ok, err = c.ok(ctx, d); err != nil {
				return nil, nil, err
			}
		}
		if ok {
			intact, err := s.treeMatches(ctx, d, p)
			if err != nil {
				return nil, nil, err
			}
			if !intact {
				damaged = append(damaged, d)
				ok = false
			}
		}
		if !ok {
			discard = append(discard, d)
		}
	}
	return damaged, discard, nil
}

// treeMatches reports whether the materialisation of d at dir holds exactly
// the entries of its manifest, each file with the right bytes: a hardlink to
// its object (which Verify has just rehashed), or a copy that hashes to the
// entry's digest.
func (s *Store) treeMatches(ctx context.Context, d Digest, dir string) (bool, error) {
	ents, err := s.treeEntries(ctx, d)
	if err != nil {
		if ctx.Err() != nil {
			return false, err
		}
		return false, nil
	}
	seen, ok := 0, true
	err = filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			rel = ""
		}
		e, known := ents[filepath.ToSlash(rel)]
		fi, lerr := de.Info() // the lstat WalkDir made of the root, else one lstat
		switch {
		case !known, lerr != nil, fi.Mode()&fs.ModeSymlink != 0:
			ok = false
		case e.Kind == EntryDir:
			ok = fi.IsDir()
		case !fi.Mode().IsRegular():
			ok = false
		default:
			ok, err = s.sameContent(ctx, p, fi, e.Digest)
			if err != nil {
				return err
			}
		}
		if !ok {
			return filepath.SkipAll
		}
		seen++
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("check materialised tree %s: %w", d.Short(), err)
	}
	return ok && seen == len(ents), nil
}

// sameContent reports whether the file p (with lstat fi) holds the bytes d
// names.
func (s *Store) sameContent(ctx context.Context, p string, fi fs.FileInfo, d Digest) (bool, error) {
	if ofi, err := os.Lstat(s.objectPath(d)); err == nil && os.SameFile(fi, ofi) {
		return true, nil // the object itself, rehashed already
	}
	f, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	got, _, err := hashReader(ctxReader{ctx, f}, make([]byte, hashBufSize))
	if err != nil {
		return false, fmt.Errorf("hash %s: %w", p, err)
	}
	return got == d, nil
}
