package cache

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations returns the schema steps: element i takes the schema from
// version i to i+1. Append only: a released migration is never edited, since
// databases in the field have already run it.
func migrations() []string {
	return []string{
		// v1: objects, runs, executions, run links, metrics.
		`CREATE TABLE objects (
		digest  TEXT PRIMARY KEY,
		kind    TEXT NOT NULL,
		size    INTEGER NOT NULL,
		created INTEGER NOT NULL
	) WITHOUT ROWID;
	CREATE TABLE runs (
		id          INTEGER PRIMARY KEY,
		spec        TEXT NOT NULL,
		spec_path   TEXT NOT NULL DEFAULT '',
		spec_digest TEXT NOT NULL DEFAULT '',
		variant     TEXT NOT NULL DEFAULT '',
		overrides   TEXT NOT NULL DEFAULT '[]',
		status      TEXT NOT NULL,
		start       INTEGER NOT NULL,
		"end"       INTEGER NOT NULL DEFAULT 0,
		host        TEXT NOT NULL DEFAULT '',
		pid         INTEGER NOT NULL DEFAULT 0
	);
	CREATE INDEX runs_spec ON runs (spec, variant, id);
	CREATE TABLE executions (
		id       INTEGER PRIMARY KEY,
		key      TEXT NOT NULL,
		run_id   INTEGER REFERENCES runs (id) ON DELETE SET NULL,
		spec     TEXT NOT NULL,
		instance TEXT NOT NULL,
		stage    TEXT NOT NULL DEFAULT '',
		kind     TEXT NOT NULL DEFAULT '',
		impl     TEXT NOT NULL DEFAULT '',
		params   TEXT NOT NULL DEFAULT '{}',
		inputs   TEXT NOT NULL DEFAULT '{}',
		output   TEXT NOT NULL DEFAULT '',
		status   TEXT NOT NULL,
		error    TEXT NOT NULL DEFAULT '',
		start    INTEGER NOT NULL DEFAULT 0,
		"end"    INTEGER NOT NULL DEFAULT 0,
		host     TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX executions_key ON executions (key, id);
	CREATE TABLE run_executions (
		run_id  INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
		exec_id INTEGER NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
		cached  INTEGER NOT NULL,
		PRIMARY KEY (run_id, exec_id)
	) WITHOUT ROWID;
	CREATE TABLE metrics (
		exec_id INTEGER NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
		name    TEXT NOT NULL,
		value   REAL,
		PRIMARY KEY (exec_id, name)
	) WITHOUT ROWID;`,

		// v2: execution logs, invalidation by Verify, lookups by instance
		// name ("why does this rerun") and by execution (GC).
		`ALTER TABLE executions ADD COLUMN log TEXT NOT NULL DEFAULT '';
	ALTER TABLE executions ADD COLUMN invalid INTEGER NOT NULL DEFAULT 0;
	CREATE INDEX executions_instance ON executions (spec, instance, id);
	CREATE INDEX run_executions_exec ON run_executions (exec_id);`,

		// v3: the stat cache of files outside the store (data roots,
		// weights, a command's declared files): a file whose stat matches
		// its row is not reread (see statcache.go).
		`CREATE TABLE stat_cache (
		path        TEXT PRIMARY KEY,
		size        INTEGER NOT NULL,
		mtime_ns    INTEGER NOT NULL,
		ctime_ns    INTEGER NOT NULL,
		inode       INTEGER NOT NULL,
		dev         INTEGER NOT NULL,
		digest      TEXT NOT NULL,
		recorded_ns INTEGER NOT NULL
	) WITHOUT ROWID;`,

		// v4: the start time of a run's process (clock ticks after boot,
		// /proc/<pid>/stat field 22), so that a run whose pid was reused by
		// a later process is still seen to have died (see Run.Died).
		`ALTER TABLE runs ADD COLUMN pid_start INTEGER NOT NULL DEFAULT 0;`,

		// v5: stat fingerprints of stored objects and of the entries of
		// materialised trees, compared before every read (rehash on
		// mismatch; see fingerprint.go). tree_stats.path is slash-separated
		// under trees/<tree>, '' for the tree's own directory.
		`CREATE TABLE object_stats (
		digest   TEXT PRIMARY KEY,
		size     INTEGER NOT NULL,
		mtime_ns INTEGER NOT NULL,
		ctime_ns INTEGER NOT NULL,
		inode    INTEGER NOT NULL
	) WITHOUT ROWID;
	CREATE TABLE tree_stats (
		tree     TEXT NOT NULL,
		path     TEXT NOT NULL,
		kind     TEXT NOT NULL,
		digest   TEXT NOT NULL,
		size     INTEGER NOT NULL,
		mtime_ns INTEGER NOT NULL,
		ctime_ns INTEGER NOT NULL,
		inode    INTEGER NOT NULL,
		PRIMARY KEY (tree, path)
	) WITHOUT ROWID;
	CREATE INDEX tree_stats_digest ON tree_stats (digest);`,
	}
}

// SchemaVersion is the index schema this build writes.
const SchemaVersion = 5

// migrate brings db to version target, one transaction per step, so that two
// processes opening a fresh store at once apply each step exactly once.
func migrate(ctx context.Context, db *sql.DB, target int) error {
	steps := migrations()
	if len(steps) != SchemaVersion {
		return fmt.Errorf("migrate: %d migrations for schema version %d", len(steps), SchemaVersion)
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("migrate: create schema_version: %w", err)
	}
	for {
		done, err := migrateStep(ctx, db, steps, target)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
	}
}

func migrateStep(ctx context.Context, db *sql.DB, steps []string, target int) (done bool, err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback()
	v, err := schemaVersion(ctx, tx)
	if err != nil {
		return false, err
	}
	if v > len(steps) {
		return false, fmt.Errorf("migrate: schema version %d is newer than this voxflow understands (%d); upgrade voxflow", v, len(steps))
	}
	if v >= target {
		return true, nil
	}
	if _, err := tx.ExecContext(ctx, steps[v]); err != nil {
		return false, fmt.Errorf("migrate to schema version %d: %w", v+1, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM schema_version`); err != nil {
		return false, fmt.Errorf("migrate to schema version %d: %w", v+1, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (?)`, v+1); err != nil {
		return false, fmt.Errorf("migrate to schema version %d: %w", v+1, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("migrate to schema version %d: %w", v+1, err)
	}
	return false, nil
}

func schemaVersion(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (int, error) {
	var v int
	err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// Version returns the schema version of the open index.
func (s *Store) Version(ctx context.Context) (int, error) {
	return schemaVersion(ctx, s.db)
}
