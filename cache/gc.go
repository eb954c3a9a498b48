package cache

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// GCReport is what GC kept and removed.
type GCReport struct {
	KeptRuns       int
	RemovedObjects int
	RemovedBytes   int64
	RemovedTrees   int // materialised trees under trees/
	RemovedTemp    int // leftovers under tmp/
}

// GC removes objects no longer needed. With keepLast > 0 it keeps every
// object reachable from the outputs and logs of:
//
//   - executions linked to the newest keepLast runs of each (spec, variant);
//   - executions linked to runs still marked running whose process may be
//     alive (another host, or a live pid on this one);
//   - executions recorded within Grace, linked to a run or not (the engine
//     records an execution before it links it);
//
// plus every object modified within Grace (outputs being put right now; a
// re-put refreshes the mtime of an existing object). Everything else is
// removed. Rows in the index stay: history and "why did this rerun" still
// work, and Lookup sees that the outputs are gone.
//
// With keepLast <= 0 no object is removed. Either way GC removes materialised
// trees whose object is gone and temp files older than Grace.
//
// GC holds the gc lock exclusively throughout (see Protect), so a run
// never decides to reuse an output while GC decides what is live, and every
// output a live run reuses is linked before GC looks. Dead objects go in
// removalOrder, so a GC killed at any point leaves no present tree with a
// missing child.
func (s *Store) GC(ctx context.Context, keepLast int) (GCReport, error) {
	var rep GCReport
	// Exclusive against every run's Protect section: a run that decided to
	// reuse an output has linked it before gc can look, and no run can
	// decide to reuse an output while gc is deleting.
	release, err := s.exclusiveGC(ctx)
	if err != nil {
		return rep, fmt.Errorf("gc: %w", err)
	}
	defer release()
	cutoff := time.Now().Add(-s.Grace)
	if keepLast > 0 {
		if err := s.collect(ctx, keepLast, cutoff, &rep); err != nil {
			return rep, fmt.Errorf("gc: %w", err)
		}
	}
	if err := s.cleanTrees(&rep); err != nil {
		return rep, fmt.Errorf("gc: %w", err)
	}
	if err := s.cleanTmp(cutoff, &rep); err != nil {
		return rep, fmt.Errorf("gc: %w", err)
	}
	return rep, nil
}

func (s *Store) collect(ctx context.Context, keepLast int, cutoff time.Time, rep *GCReport) error {
	runs, err := s.keptRuns(ctx, keepLast)
	if err != nil {
		return err
	}
	rep.KeptRuns = len(runs)
	roots, err := s.keptRoots(ctx, runs, cutoff)
	if err != nil {
		return err
	}
	var all []ObjectInfo
	err = s.List(ctx, func(oi ObjectInfo) error {
		all = append(all, oi)
		if oi.ModTime.After(cutoff) {
			// A young tree keeps its children, however old: it may be the
			// output a stage is storing right now.
			roots = append(roots, oi.Digest)
		}
		return nil
	})
	if err != nil {
		return err
	}
	live := map[Digest]bool{}
	for _, d := range roots {
		if err := s.reach(ctx, d, live); err != nil {
			return err
		}
	}
	var dead []ObjectInfo
	for _, oi := range all {
		if !live[oi.Digest] {
			dead = append(dead, oi)
		}
	}
	var removed []Digest
	for _, oi := range s.removalOrder(ctx, dead) {
		if err := s.Objects.Remove(oi.Digest); err != nil {
			return err
		}
		removed = append(removed, oi.Digest)
		rep.RemovedObjects++
		rep.RemovedBytes += oi.Size
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, d := range removed {
			if err := unindexObject(ctx, tx, d); err != nil {
				return fmt.Errorf("unindex removed objects: %w", err)
			}
		}
		return nil
	})
}

// removalOrder orders dead objects so that a gc killed at any point leaves
// no present tree with a missing child: trees first, each before the trees
// it contains, then files. A dead object's parents are all dead too (a live
// parent would make it live), so every parent goes before its children and
// a tree that is still present is still complete; Reusable relies on that.
func (s *Store) removalOrder(ctx context.Context, dead []ObjectInfo) []ObjectInfo {
	byDigest := make(map[Digest]ObjectInfo, len(dead))
	for _, oi := range dead {
		byDigest[oi.Digest] = oi
	}
	var files, post []ObjectInfo
	seen := map[Digest]bool{}
	var visit func(oi ObjectInfo)
	visit = func(oi ObjectInfo) {
		if seen[oi.Digest] {
			return
		}
		seen[oi.Digest] = true
		if kind, err := s.Kind(oi.Digest); err != nil || kind != KindTree {
			files = append(files, oi)
			return
		}
		if m, err := s.ReadManifest(ctx, oi.Digest); err == nil {
			for _, e := range m.Entries {
				if c, ok := byDigest[e.Digest]; ok && e.Kind == EntryDir {
					visit(c)
				}
			}
		}
		post = append(post, oi) // after its subtrees
	}
	for _, oi := range dead {
		visit(oi)
	}
	out := make([]ObjectInfo, 0, len(dead))
	for i := len(post) - 1; i >= 0; i-- {
		out = append(out, post[i])
	}
	return append(out, files...)
}

// keptRuns returns the ids of the newest keepLast runs per (spec, variant)
// and of runs that may still be running.
func (s *Store) keptRuns(ctx context.Context, keepLast int) ([]int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, status, host, pid,
		ROW_NUMBER() OVER (PARTITION BY spec, variant ORDER BY id DESC) FROM runs`)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	defer rows.Close()
	host, _ := os.Hostname()
	var ids []int64
	for rows.Next() {
		var id int64
		var status, h string
		var pid, rank int
		if err := rows.Scan(&id, &status, &h, &pid, &rank); err != nil {
			return nil, fmt.Errorf("list runs: %w", err)
		}
		if rank <= keepLast || (status == StatusRunning && (h != host || processAlive(pid))) {
			ids = append(ids, id)
		}
	}
	return ids, rows.Err()
}

// processAlive reports whether pid exists on this host (EPERM: it exists but
// belongs to someone else).
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// keptRoots returns outputs and logs of executions linked to runs, or
// recorded under them, or recorded after cutoff.
func (s *Store) keptRoots(ctx context.Context, runs []int64, cutoff time.Time) ([]Digest, error) {
	// The temp table lives on one pooled connection, so fill and read it in
	// one transaction (which pins the connection).
	var roots []Digest
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TEMP TABLE IF NOT EXISTS gc_runs (id INTEGER PRIMARY KEY)`); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM gc_runs`); err != nil {
			return err
		}
		for _, id := range runs {
			if _, err := tx.ExecContext(ctx, `INSERT INTO gc_runs (id) VALUES (?)`, id); err != nil {
				return err
			}
		}
		rows, err := tx.QueryContext(ctx, `SELECT output, log FROM executions e
			WHERE e.id IN (SELECT exec_id FROM run_executions WHERE run_id IN (SELECT id FROM gc_runs))
			   OR e.run_id IN (SELECT id FROM gc_runs)
			   OR e.start > ? OR e."end" > ?`, cutoff.UnixNano(), cutoff.UnixNano())
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var out, log string
			if err := rows.Scan(&out, &log); err != nil {
				return err
			}
			for _, d := range []string{out, log} {
				if Digest(d).Valid() {
					roots = append(roots, Digest(d))
				}
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("kept executions: %w", err)
	}
	return roots, nil
}

// reach adds d and everything reachable from it to live. Missing objects are
// skipped: there is nothing to keep.
func (s *Store) reach(ctx context.Context, d Digest, live map[Digest]bool) error {
	if live[d] {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	live[d] = true
	kind, err := s.Kind(d)
	if err != nil || kind != KindTree {
		return nil
	}
	m, err := s.ReadManifest(ctx, d)
	if err != nil {
		return nil
	}
	for _, e := range m.Entries {
		if err := s.reach(ctx, e.Digest, live); err != nil {
			return err
		}
	}
	return nil
}

// cleanTrees removes materialised trees whose manifest object is gone, and
// strays (anything not a directory named by a digest, such as a symlink).
func (s *Store) cleanTrees(rep *GCReport) error {
	ents, err := os.ReadDir(s.trees)
	if err != nil {
		return fmt.Errorf("list %s: %w", s.trees, err)
	}
	for _, e := range ents {
		d := Digest(e.Name())
		if d.Valid() && e.IsDir() && s.Has(d) {
			continue
		}
		if err := s.Objects.discardTree(filepath.Join(s.trees, e.Name())); err != nil {
			return fmt.Errorf("remove stale tree %s: %w", e.Name(), err)
		}
		rep.RemovedTrees++
	}
	return nil
}

// cleanTmp removes temp files and half-built trees older than cutoff: what a
// killed process left behind. Younger ones may belong to a put in progress.
func (s *Store) cleanTmp(cutoff time.Time, rep *GCReport) error {
	ents, err := os.ReadDir(s.tmp)
	if err != nil {
		return fmt.Errorf("list %s: %w", s.tmp, err)
	}
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			continue // removed concurrently
		}
		if fi.ModTime().After(cutoff) {
			continue
		}
		if err := removeTree(filepath.Join(s.tmp, e.Name())); err != nil {
			return fmt.Errorf("remove temp %s: %w", e.Name(), err)
		}
		rep.RemovedTemp++
	}
	return nil
}
