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
func (s *Store) GC(ctx context.Context, keepLast int) (GCReport, error) {
	var rep GCReport
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
	live := map[Digest]bool{}
	for _, d := range roots {
		if err := s.reach(ctx, d, live); err != nil {
			return err
		}
	}
	var removed []Digest
	err = s.List(ctx, func(oi ObjectInfo) error {
		if live[oi.Digest] || oi.ModTime.After(cutoff) {
			return nil
		}
		if err := s.Objects.Remove(oi.Digest); err != nil {
			return err
		}
		removed = append(removed, oi.Digest)
		rep.RemovedObjects++
		rep.RemovedBytes += oi.Size
		return nil
	})
	if err != nil {
		return err
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, d := range removed {
			if _, err := tx.ExecContext(ctx, `DELETE FROM objects WHERE digest = ?`, string(d)); err != nil {
				return fmt.Errorf("unindex removed objects: %w", err)
			}
		}
		return nil
	})
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
// strays.
func (s *Store) cleanTrees(rep *GCReport) error {
	ents, err := os.ReadDir(s.trees)
	if err != nil {
		return fmt.Errorf("list %s: %w", s.trees, err)
	}
	for _, e := range ents {
		d := Digest(e.Name())
		if d.Valid() && s.Has(d) {
			continue
		}
		if err := removeTree(filepath.Join(s.trees, e.Name())); err != nil {
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
