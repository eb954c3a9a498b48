package cache

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Run statuses (StatusSucceeded, StatusFailed and StatusInterrupted apply
// too).
const StatusRunning = "running"

// StatusDetached ends a run that handed its ready instances to a cluster
// and returned without waiting (`voxflow run --detach`).
const StatusDetached = "detached"

// StatusDied is never stored: Run.CurrentStatus shows it for a run still
// recorded as running whose process is gone (SIGKILL, OOM kill, power cut).
const StatusDied = "died"

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
	// PIDStart is the start time of process PID on Host, in clock ticks
	// after boot (/proc/<pid>/stat field 22); 0 when unknown. With it a
	// recycled pid is not taken for the run's process.
	PIDStart int64
}

const runCols = `id, spec, spec_path, spec_digest, variant, overrides, status, start, "end", host, pid, pid_start`

func scanRun(r scanner) (*Run, error) {
	var x Run
	var overrides string
	var start, end int64
	if err := r.Scan(&x.ID, &x.Spec, &x.SpecPath, &x.SpecDigest, &x.Variant, &overrides, &x.Status, &start, &end, &x.Host, &x.PID, &x.PIDStart); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(overrides), &x.Overrides); err != nil {
		return nil, fmt.Errorf("run %d: overrides column: %w", x.ID, err)
	}
	x.Start, x.End = fromNanos(start), fromNanos(end)
	return &x, nil
}

// BeginRun records a new run, sets r.ID and returns it. Zero fields get
// defaults: Status running, Start now, Host this machine, PID this process,
// PIDStart that process's start time.
//
// On a read-only store nothing is recorded: BeginRun returns 0, and EndRun,
// LinkRun and LinkRuns accept run 0 there and do nothing, so a run that the
// cache answers fully still works on a read-only cache. Anything else it
// would write fails with ErrReadOnly.
func (s *Store) BeginRun(ctx context.Context, r *Run) (int64, error) {
	if s.readOnly {
		r.ID = 0
		return 0, nil
	}
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
	if r.PIDStart == 0 {
		r.PIDStart, _ = ProcessStart(r.PID)
	}
	ov := r.Overrides
	if ov == nil {
		ov = []string{}
	}
	js, err := json.Marshal(ov)
	if err != nil {
		return 0, fmt.Errorf("begin run of %s: %w", r.Spec, err)
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO runs (spec, spec_path, spec_digest, variant, overrides, status, start, "end", host, pid, pid_start)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.Spec, r.SpecPath, r.SpecDigest, r.Variant, string(js), r.Status, toNanos(r.Start), toNanos(r.End), r.Host, r.PID, r.PIDStart)
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
	if s.readOnly {
		if id == 0 {
			return nil
		}
		return s.errReadOnly(fmt.Sprintf("end run %d", id))
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
	if s.readOnly {
		if runID == 0 {
			return nil
		}
		return s.errReadOnly(fmt.Sprintf("link run %d", runID))
	}
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
	if len(execIDs) == 0 || s.readOnly && runID == 0 {
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

// CurrentStatus is the run's status as a person should read it: the stored
// status, except StatusDied for a run recorded as running on this host
// whose process is gone, or whose pid now belongs to a process that started
// later (pids are recycled). A run on another host cannot be checked from
// here and stays running.
func (r *Run) CurrentStatus() string {
	if r.Status == StatusRunning && r.Died() {
		return StatusDied
	}
	return r.Status
}

// Died reports whether the process that recorded r ran on this host and is
// gone: no process has its pid, or the one that has it started at another
// time than the run's (a recycled pid). It says nothing of the run's
// status; CurrentStatus combines both.
func (r *Run) Died() bool {
	if r.PID <= 0 || r.Host == "" {
		return false
	}
	if host, err := os.Hostname(); err != nil || host != r.Host {
		return false
	}
	state, start, err := procStat(r.PID)
	if err != nil {
		// No /proc entry: the process is gone (or /proc is not mounted, in
		// which case signal 0 still tells whether the pid exists).
		if errors.Is(err, os.ErrNotExist) {
			return !pidExists(r.PID)
		}
		return false
	}
	// A zombie has exited; only its parent has not collected it yet.
	return state == "Z" || state == "X" || r.PIDStart != 0 && start != r.PIDStart
}

// ProcessStart returns when process pid started, in clock ticks after boot:
// field 22 of /proc/<pid>/stat. Together with the pid and the host it names
// one process, even after the pid is reused.
func ProcessStart(pid int) (int64, error) {
	_, start, err := procStat(pid)
	return start, err
}

// procStat reads the state (field 3) and start time (field 22) of process
// pid from /proc/<pid>/stat.
func procStat(pid int) (state string, start int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0, fmt.Errorf("process %d: %w", pid, err)
	}
	// The command name (field 2) is in parentheses and may itself hold
	// spaces and parentheses: the fields that follow start after the last
	// ')'. The first of them is field 3 (state).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return "", 0, fmt.Errorf("process %d: /proc/%d/stat: no ')' after the command name", pid, pid)
	}
	f := strings.Fields(string(b[i+1:]))
	const field = 22 - 3
	if len(f) <= field {
		return "", 0, fmt.Errorf("process %d: /proc/%d/stat: %d fields after the command name, want more than %d", pid, pid, len(f), field)
	}
	start, err = strconv.ParseInt(f[field], 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("process %d: /proc/%d/stat field 22: %w", pid, pid, err)
	}
	return f[0], start, nil
}

// pidExists reports whether a process with pid exists (EPERM: it does, but
// belongs to another user).
func pidExists(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
