package cache

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// Execution statuses.
const (
	StatusSucceeded   = "succeeded"
	StatusFailed      = "failed"
	StatusInterrupted = "interrupted"
)

// Execution is one recorded run of one stage instance.
type Execution struct {
	ID       int64
	Key      Digest
	RunID    int64 // 0: not recorded under a run
	Spec     string
	Instance string // e.g. tune_cl[subj01,FFA-1]
	Stage    string // the spec's stage name
	Kind     string
	Impl     string // implementation digest
	Params   string // canonical JSON
	Inputs   string // canonical JSON
	Output   Digest // tree (or file) of the instance's OutDir
	Status   string // succeeded | failed | interrupted
	Error    string
	Start    time.Time
	End      time.Time
	Host     string
	Log      Digest
	Invalid  bool // set by Invalidate or Verify: never reuse
}

// RunExecution is an execution as used by one run.
type RunExecution struct {
	Execution
	Cached bool // reused from the cache rather than executed by this run
}

// execCols is the column list scanExecution reads.
const execCols = `id, key, COALESCE(run_id, 0), spec, instance, stage, kind, impl, params, inputs, output, status, error, start, "end", host, log, invalid`

// execColsOf is execCols qualified by a table alias, for joins.
func execColsOf(alias string) string {
	a := alias + "."
	return a + `id, ` + a + `key, COALESCE(` + a + `run_id, 0), ` + a + `spec, ` + a + `instance, ` + a + `stage, ` +
		a + `kind, ` + a + `impl, ` + a + `params, ` + a + `inputs, ` + a + `output, ` + a + `status, ` + a + `error, ` +
		a + `start, ` + a + `"end", ` + a + `host, ` + a + `log, ` + a + `invalid`
}

type scanner interface{ Scan(...any) error }

func scanExecution(r scanner, extra ...any) (*Execution, error) {
	var e Execution
	var start, end int64
	dest := []any{&e.ID, &e.Key, &e.RunID, &e.Spec, &e.Instance, &e.Stage, &e.Kind, &e.Impl, &e.Params, &e.Inputs,
		&e.Output, &e.Status, &e.Error, &start, &end, &e.Host, &e.Log, &e.Invalid}
	if err := r.Scan(append(dest, extra...)...); err != nil {
		return nil, err
	}
	e.Start, e.End = fromNanos(start), fromNanos(end)
	return &e, nil
}

// RecordExecution inserts e, sets e.ID and returns it. An empty Host is
// filled with this machine's name.
func (s *Store) RecordExecution(ctx context.Context, e *Execution) (int64, error) {
	switch e.Status {
	case StatusSucceeded, StatusFailed, StatusInterrupted:
	default:
		return 0, fmt.Errorf("record execution %s: status %q: want succeeded, failed or interrupted", e.Instance, e.Status)
	}
	if !e.Key.Valid() {
		return 0, fmt.Errorf("record execution %s: key %q: want a digest", e.Instance, e.Key)
	}
	for name, d := range map[string]Digest{"output": e.Output, "log": e.Log} {
		if d != "" && !d.Valid() {
			return 0, fmt.Errorf("record execution %s: %s %q: want a digest or empty", e.Instance, name, d)
		}
	}
	if e.Host == "" {
		e.Host, _ = os.Hostname()
	}
	var runID any
	if e.RunID != 0 {
		runID = e.RunID
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO executions
		(key, run_id, spec, instance, stage, kind, impl, params, inputs, output, status, error, start, "end", host, log, invalid)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		string(e.Key), runID, e.Spec, e.Instance, e.Stage, e.Kind, e.Impl, e.Params, e.Inputs, string(e.Output),
		e.Status, e.Error, toNanos(e.Start), toNanos(e.End), e.Host, string(e.Log), e.Invalid)
	if err != nil {
		return 0, fmt.Errorf("record execution %s: %w", e.Instance, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("record execution %s: %w", e.Instance, err)
	}
	e.ID = id
	return id, nil
}

// Lookup returns the newest succeeded, not invalidated execution with key
// whose output is still complete on disk (every object reachable from it is
// present), or false.
func (s *Store) Lookup(ctx context.Context, key Digest) (*Execution, bool, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+execCols+` FROM executions
		WHERE key = ? AND status = 'succeeded' AND invalid = 0 ORDER BY id DESC`, string(key))
	if err != nil {
		return nil, false, fmt.Errorf("lookup %s: %w", key.Short(), err)
	}
	var cands []*Execution
	for rows.Next() {
		e, err := scanExecution(rows)
		if err != nil {
			rows.Close()
			return nil, false, fmt.Errorf("lookup %s: %w", key.Short(), err)
		}
		cands = append(cands, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("lookup %s: %w", key.Short(), err)
	}
	// Checked after the rows are closed: walking trees can take a while and
	// must not hold a pooled connection.
	for _, e := range cands {
		ok, err := s.complete(ctx, e.Output)
		if err != nil {
			return nil, false, fmt.Errorf("lookup %s: %w", key.Short(), err)
		}
		if ok {
			return e, true, nil
		}
	}
	return nil, false, nil
}

// complete reports whether d and everything reachable from it is on disk.
func (s *Store) complete(ctx context.Context, d Digest) (bool, error) {
	if d == "" {
		return true, nil
	}
	missing := false
	err := s.Walk(ctx, d, func(x Digest, _ string) error {
		if !s.Has(x) {
			missing = true
		}
		return nil
	})
	if errors.Is(err, ErrNotFound) || missing {
		return false, nil
	}
	if err != nil {
		if ctx.Err() != nil {
			return false, err
		}
		// A manifest that does not parse is as good as missing; Verify
		// will remove it.
		return false, nil
	}
	return true, nil
}

// LastForInstance returns the newest succeeded execution of instance in spec,
// whatever its key (invalidated ones included), so the engine can explain
// what changed since.
func (s *Store) LastForInstance(ctx context.Context, spec, instance string) (*Execution, bool, error) {
	row := s.db.QueryRowContext(ctx, `SELECT `+execCols+` FROM executions
		WHERE spec = ? AND instance = ? AND status = 'succeeded' ORDER BY id DESC LIMIT 1`, spec, instance)
	e, err := scanExecution(row)
	if err == sql.ErrNoRows {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("last execution of %s in %s: %w", instance, spec, err)
	}
	return e, true, nil
}

// Execution returns the execution with id.
func (s *Store) Execution(ctx context.Context, id int64) (*Execution, error) {
	row := s.db.QueryRowContext(ctx, `SELECT `+execCols+` FROM executions WHERE id = ?`, id)
	e, err := scanExecution(row)
	if err == sql.ErrNoRows {
		return nil, fmt.Errorf("execution %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("execution %d: %w", id, err)
	}
	return e, nil
}

// FindExecutions returns executions of spec (any spec when empty) whose
// instance matches pattern, newest first, at most limit (all when
// limit <= 0). A pattern with * or ? is a glob over the whole name; without
// them it is a prefix ("tune_cl" finds tune_cl[subj01,FFA-1]). Brackets are
// literal, since instance names contain them.
func (s *Store) FindExecutions(ctx context.Context, spec, instancePattern string, limit int) ([]Execution, error) {
	q := `SELECT ` + execCols + ` FROM executions WHERE instance GLOB ?`
	args := []any{instanceGlob(instancePattern)}
	if spec != "" {
		q += ` AND spec = ?`
		args = append(args, spec)
	}
	q += ` ORDER BY id DESC`
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	out, err := s.queryExecutions(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("find executions %q in %q: %w", instancePattern, spec, err)
	}
	return out, nil
}

// instanceGlob turns a user pattern into an SQLite GLOB with literal
// brackets.
func instanceGlob(p string) string {
	if !strings.ContainsAny(p, "*?") {
		p += "*"
	}
	return strings.ReplaceAll(p, "[", "[[]")
}

func (s *Store) queryExecutions(ctx context.Context, q string, args ...any) ([]Execution, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Execution
	for rows.Next() {
		e, err := scanExecution(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *e)
	}
	return out, rows.Err()
}

// Invalidate marks every execution with key as not reusable.
func (s *Store) Invalidate(ctx context.Context, key Digest) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE executions SET invalid = 1 WHERE key = ?`, string(key)); err != nil {
		return fmt.Errorf("invalidate %s: %w", key.Short(), err)
	}
	return nil
}

// Reusable returns, per key, the newest succeeded and valid execution of
// spec whose output root object is present: the engine's fast path for
// answering a mostly cached run with one query instead of one per
// instance. A present root implies a complete tree, because gc removes a
// tree before the objects it contains (see removalOrder) and verify and
// reads invalidate executions that reach a damaged object before moving it
// away; Lookup remains the thorough check for keys not found here, and the
// engine checks a hit's objects (Intact) before reusing it.
func (s *Store) Reusable(ctx context.Context, spec string) (map[Digest]*Execution, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+execCols+` FROM executions
		WHERE spec = ? AND status = 'succeeded' AND invalid = 0 ORDER BY id`, spec)
	if err != nil {
		return nil, fmt.Errorf("executions of %s: %w", spec, err)
	}
	defer rows.Close()
	out := map[Digest]*Execution{}
	for rows.Next() {
		e, err := scanExecution(rows)
		if err != nil {
			return nil, fmt.Errorf("executions of %s: %w", spec, err)
		}
		out[e.Key] = e // ordered by id: the newest wins
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("executions of %s: %w", spec, err)
	}
	for k, e := range out {
		if e.Output != "" && !s.Has(e.Output) {
			delete(out, k)
		}
	}
	return out, nil
}
