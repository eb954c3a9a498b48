package cache

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// Run statuses (StatusSucceeded, StatusFailed and StatusInterrupted apply
// too).
const StatusRunning = "running"

// StatusDetached ends a run that handed its ready instances to a cluster
// and returned without waiting (`voxflow run --detach`).
const StatusDetached = "detached"

// Run is one invocation of the engine on one spec and variant.
type Run struct {
	ID         int64
	Spec       string
	SpecPath   string
	SpecDigest string
	Variant    string
	Overrides  []string // --set arguments, in order
	Status     string   // running | succeeded | failed | interrupted
	Start      time.Time
	End        time.Time
	Host       string
	PID        int
}

const runCols = `id, spec, spec_path, spec_digest, variant, overrides, status, start, "end", host, pid`

func scanRun(r scanner) (*Run, error) {
	var x Run
	var overrides string
	var start, end int64
	if err := r.Scan(&x.ID, &x.Spec, &x.SpecPath, &x.SpecDigest, &x.Variant, &overrides, &x.Status, &start, &end, &x.Host, &x.PID); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(overrides), &x.Overrides); err != nil {
		return nil, fmt.Errorf("run %d: overrides column: %w", x.ID, err)
	}
	x.Start, x.End = fromNanos(start), fromNanos(end)
	return &x, nil
}

// BeginRun records a new run, sets r.ID and returns it. Zero fields get
// defaults: Status running, Start now, Host this machine, PID this process.
func (s *Store) BeginRun(ctx context.Context, r *Run) (int64, error) {
	if r.Status == "" {
		r.Status = StatusRunning
	}
	if r.Start.IsZero() {
		r.Start = time.Now().UTC()
	}
	if r.Host == "" {
		r.Host, _ = os.Hostname()
	}
	if r.PID == 0 {
		r.PID = os.Getpid()
	}
	ov := r.Overrides
	if ov == nil {
		ov = []string{}
	}
	js, err := json.Marshal(ov)
	if err != nil {
		return 0, fmt.Errorf("begin run of %s: %w", r.Spec, err)
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO runs (spec, spec_path, spec_digest, variant, overrides, status, start, "end", host, pid)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.Spec, r.SpecPath, r.SpecDigest, r.Variant, string(js), r.Status, toNanos(r.Start), toNanos(r.End), r.Host, r.PID)
	if err != nil {
		return 0, fmt.Errorf("begin run of %s: %w", r.Spec, err)
	}
	if r.ID, err = res.LastInsertId(); err != nil {
		return 0, fmt.Errorf("begin run of %s: %w", r.Spec, err)
	}
	return r.ID, nil
}

// EndRun sets a run's final status and end time.
func (s *Store) EndRun(ctx context.Context, id int64, status string) error {
	switch status {
	case StatusSucceeded, StatusFailed, StatusInterrupted, StatusDetached:
	default:
		return fmt.Errorf("end run %d: status %q: want succeeded, failed, interrupted or detached", id, status)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE runs SET status = ?, "end" = ? WHERE id = ?`, status, time.Now().UnixNano(), id)
	if err != nil {
		return fmt.Errorf("end run %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("end run %d: %w", id, ErrNotFound)
	}
	return nil
}

// Runs returns the newest runs first, at most limit (all when limit <= 0).
func (s *Store) Runs(ctx context.Context, limit int) ([]Run, error) {
	q := `SELECT ` + runCols + ` FROM runs ORDER BY id DESC`
	var args []any
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	defer rows.Close()
	var out []Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("list runs: %w", err)
		}
		out = append(out, *r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return out, nil
}

// Run returns the run with id.
func (s *Store) Run(ctx context.Context, id int64) (*Run, error) {
	r, err := scanRun(s.db.QueryRowContext(ctx, `SELECT `+runCols+` FROM runs WHERE id = ?`, id))
	if err == sql.ErrNoRows {
		return nil, fmt.Errorf("run %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("run %d: %w", id, err)
	}
	return r, nil
}

// LatestRun returns the newest run of spec and variant ("" is the base
// spec), whatever its status.
func (s *Store) LatestRun(ctx context.Context, spec, variant string) (*Run, bool, error) {
	r, err := scanRun(s.db.QueryRowContext(ctx, `SELECT `+runCols+` FROM runs
		WHERE spec = ? AND variant = ? ORDER BY id DESC LIMIT 1`, spec, variant))
	if err == sql.ErrNoRows {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("latest run of %s variant %q: %w", spec, variant, err)
	}
	return r, true, nil
}

// LinkRun records that run runID used execution execID, executing it or
// (cached) reusing it. Linking again updates cached.
func (s *Store) LinkRun(ctx context.Context, runID, execID int64, cached bool) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO run_executions (run_id, exec_id, cached) VALUES (?, ?, ?)
		ON CONFLICT (run_id, exec_id) DO UPDATE SET cached = excluded.cached`, runID, execID, cached)
	if err != nil {
		return fmt.Errorf("link run %d to execution %d: %w", runID, execID, err)
	}
	return nil
}

// RunExecutions returns the executions run runID used, in the order they
// were recorded.
func (s *Store) RunExecutions(ctx context.Context, runID int64) ([]RunExecution, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+execColsOf("e")+`, re.cached
		FROM run_executions re JOIN executions e ON e.id = re.exec_id
		WHERE re.run_id = ? ORDER BY e.id`, runID)
	if err != nil {
		return nil, fmt.Errorf("executions of run %d: %w", runID, err)
	}
	defer rows.Close()
	var out []RunExecution
	for rows.Next() {
		var cached bool
		e, err := scanExecution(rows, &cached)
		if err != nil {
			return nil, fmt.Errorf("executions of run %d: %w", runID, err)
		}
		out = append(out, RunExecution{Execution: *e, Cached: cached})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("executions of run %d: %w", runID, err)
	}
	return out, nil
}

// LinkRuns links many executions to a run in one transaction: a fully
// cached rerun of a large DAG links thousands at once.
func (s *Store) LinkRuns(ctx context.Context, runID int64, execIDs []int64, cached bool) error {
	if len(execIDs) == 0 {
		return nil
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `INSERT INTO run_executions (run_id, exec_id, cached) VALUES (?, ?, ?)
			ON CONFLICT (run_id, exec_id) DO UPDATE SET cached = excluded.cached`)
		if err != nil {
			return fmt.Errorf("link run %d: %w", runID, err)
		}
		defer st.Close()
		for _, id := range execIDs {
			if _, err := st.ExecContext(ctx, runID, id, cached); err != nil {
				return fmt.Errorf("link run %d to execution %d: %w", runID, id, err)
			}
		}
		return nil
	})
}
