package cache

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
)

// VerifyReport is what Verify found and repaired.
type VerifyReport struct {
	Checked     int      // objects rehashed
	Corrupt     []Digest // content no longer matched the name; removed
	Missing     []Digest // referenced by an execution but absent
	Invalidated []int64  // executions that can no longer be reused
}

// Verify rehashes every object on disk. A corrupt object is removed, and
// every succeeded execution whose output tree or log reaches a corrupt or
// missing object is invalidated, so the next run recomputes it. Materialised
// trees that reach a bad object are removed too: they hardlink the same
// damaged inode. progress, if not nil, is called after each object from the
// calling goroutine.
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
	bad := map[Digest]bool{}
	for _, d := range corrupt {
		if err := s.Objects.Remove(d); err != nil {
			return rep, fmt.Errorf("verify: %w", err)
		}
		bad[d] = true
	}
	rep.Corrupt = corrupt

	execs, err := s.queryExecutions(ctx, `SELECT `+execCols+` FROM executions
		WHERE status = 'succeeded' AND invalid = 0 AND (output != '' OR log != '') ORDER BY id`)
	if err != nil {
		return rep, fmt.Errorf("verify: list executions: %w", err)
	}
	c := newReachCheck(s.Objects, bad)
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
			rep.Invalidated = append(rep.Invalidated, e.ID)
		}
	}
	for d := range c.missing {
		if !bad[d] {
			rep.Missing = append(rep.Missing, d)
		}
	}
	sort.Slice(rep.Missing, func(i, j int) bool { return rep.Missing[i] < rep.Missing[j] })

	if err := s.removeBadTrees(ctx, c); err != nil {
		return rep, fmt.Errorf("verify: %w", err)
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		for _, id := range rep.Invalidated {
			if _, err := tx.ExecContext(ctx, `UPDATE executions SET invalid = 1 WHERE id = ?`, id); err != nil {
				return err
			}
		}
		for _, d := range append(append([]Digest{}, rep.Corrupt...), rep.Missing...) {
			if _, err := tx.ExecContext(ctx, `DELETE FROM objects WHERE digest = ?`, string(d)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("verify: record invalidations: %w", err)
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

// removeBadTrees drops materialised trees that reach a bad or missing object,
// and anything in trees/ that is not named by a digest.
func (s *Store) removeBadTrees(ctx context.Context, c *reachCheck) error {
	ents, err := os.ReadDir(s.trees)
	if err != nil {
		return fmt.Errorf("list %s: %w", s.trees, err)
	}
	for _, e := range ents {
		d := Digest(e.Name())
		ok := d.Valid() && !strings.HasPrefix(e.Name(), ".")
		if ok {
			if ok, err = c.ok(ctx, d); err != nil {
				return err
			}
		}
		if !ok {
			if err := removeTree(filepath.Join(s.trees, e.Name())); err != nil {
				return fmt.Errorf("remove stale tree %s: %w", e.Name(), err)
			}
		}
	}
	return nil
}
