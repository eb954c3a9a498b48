package cache

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"time"

	"github.com/mattn/go-sqlite3" // also registers the "sqlite3" driver
)

// DefaultGrace is how long GC leaves alone objects, temp files and executions
// that are too young to be linked to a run: a stage that is putting its
// outputs right now must not lose them.
const DefaultGrace = time.Hour

// Store is the object store plus its SQLite index (index.db) of objects,
// runs, stage executions and metrics. One engine process writes it; a second
// one (two `voxflow run`s side by side) is safe too: every write is a short
// BEGIN IMMEDIATE transaction and readers never block writers under WAL.
type Store struct {
	*Objects
	db *sql.DB
	// Grace protects young objects, temp files and unlinked executions from
	// GC. Open sets DefaultGrace.
	Grace time.Duration
}

// Open opens (creating if needed) the store rooted at dir, usually a
// project's .voxflow directory, and migrates its index to the current
// schema.
//
// Pragmas: WAL so readers and the writer do not block each other; a 15 s
// busy timeout so a second process waits for the write lock instead of
// failing; foreign keys on; synchronous=NORMAL. Under WAL, NORMAL never
// corrupts the database; a power cut may lose the last few commits, which
// only means those stages run again. Objects are fsynced before the index
// records them, so the index never points at an object that a power cut
// could take away. FULL would add an fsync per commit for nothing more.
func Open(ctx context.Context, dir string) (*Store, error) {
	o, err := OpenObjects(dir)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(o.dir, "index.db")
	db, err := openDBRetry(ctx, path)
	if err != nil {
		return nil, err
	}
	if err := migrate(ctx, db, SchemaVersion); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return &Store{Objects: o, db: db, Grace: DefaultGrace}, nil
}

// openDBRetry opens index.db, waiting out another process that holds the
// database while it switches a fresh file to WAL mode: that switch needs an
// exclusive lock and SQLite reports SQLITE_BUSY for it at once, without the
// busy handler, so two `voxflow run`s starting on a new cache would
// otherwise collide.
func openDBRetry(ctx context.Context, path string) (*sql.DB, error) {
	deadline := time.Now().Add(15 * time.Second)
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 500*time.Millisecond) {
		db, err := openDB(ctx, path)
		var se sqlite3.Error
		if err == nil || !errors.As(err, &se) || (se.Code != sqlite3.ErrBusy && se.Code != sqlite3.ErrLocked) || time.Now().After(deadline) {
			return db, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// openDB opens index.db with the pragmas described at Open, applied by the
// driver to every pooled connection.
func openDB(ctx context.Context, path string) (*sql.DB, error) {
	q := url.Values{}
	q.Set("_busy_timeout", "15000")
	q.Set("_journal_mode", "WAL")
	q.Set("_foreign_keys", "on")
	q.Set("_synchronous", "NORMAL")
	// Take the write lock at BEGIN: a deferred transaction that upgrades
	// from read to write can fail with SQLITE_BUSY without waiting.
	q.Set("_txlock", "immediate")
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// A few connections let reads proceed while a write transaction is open;
	// SQLite serialises the writers anyway.
	db.SetMaxOpenConns(4)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
}

// Close closes the index. Objects stay usable.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close index: %w", err)
	}
	return nil
}

// tx runs fn in one short BEGIN IMMEDIATE transaction.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// PutFile stores a file (see Objects.PutFile) and records it in the index.
func (s *Store) PutFile(ctx context.Context, path string, move bool) (Digest, error) {
	var recs []objectRec
	d, err := s.Objects.putFile(ctx, path, move, collect(&recs))
	if err != nil {
		return "", err
	}
	return d, s.indexObjects(ctx, recs)
}

// PutBytes stores b (see Objects.PutBytes) and records it in the index.
func (s *Store) PutBytes(ctx context.Context, b []byte) (Digest, error) {
	var recs []objectRec
	d, err := s.Objects.putBytes(ctx, b, KindFile, collect(&recs))
	if err != nil {
		return "", err
	}
	return d, s.indexObjects(ctx, recs)
}

// PutTree stores a directory (see Objects.PutTree) and records every object
// of it in the index.
func (s *Store) PutTree(ctx context.Context, root string, move bool) (Digest, error) {
	var recs []objectRec
	d, _, err := s.Objects.putTree(ctx, root, move, collect(&recs))
	if err != nil {
		return "", err
	}
	return d, s.indexObjects(ctx, recs)
}

// Index records in the index every present object reachable from d; the
// engine calls it for outputs that workers put without a database.
func (s *Store) Index(ctx context.Context, d Digest) error {
	var recs []objectRec
	err := s.Walk(ctx, d, func(x Digest, kind string) error {
		size, err := s.objectSize(x)
		if err != nil {
			return err
		}
		recs = append(recs, objectRec{x, kind, size})
		return nil
	})
	if err != nil {
		return fmt.Errorf("index %s: %w", d.Short(), err)
	}
	return s.indexObjects(ctx, recs)
}

// ObjectRecord is one row of the objects table.
type ObjectRecord struct {
	Digest  Digest
	Kind    string
	Size    int64
	Created time.Time
}

// Object returns the index row of d.
func (s *Store) Object(ctx context.Context, d Digest) (*ObjectRecord, error) {
	var r ObjectRecord
	var created int64
	err := s.db.QueryRowContext(ctx, `SELECT digest, kind, size, created FROM objects WHERE digest = ?`, string(d)).
		Scan(&r.Digest, &r.Kind, &r.Size, &created)
	if err == sql.ErrNoRows {
		return nil, fmt.Errorf("object %s: %w", d.Short(), ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("object %s: %w", d.Short(), err)
	}
	r.Created = fromNanos(created)
	return &r, nil
}

type objectRec struct {
	d    Digest
	kind string
	size int64
}

func collect(recs *[]objectRec) putHook {
	return func(d Digest, kind string, size int64) {
		*recs = append(*recs, objectRec{d, kind, size})
	}
}

func (s *Store) indexObjects(ctx context.Context, recs []objectRec) error {
	if len(recs) == 0 {
		return nil
	}
	now := time.Now().UnixNano()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `INSERT INTO objects (digest, kind, size, created) VALUES (?, ?, ?, ?) ON CONFLICT (digest) DO NOTHING`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, r := range recs {
			if _, err := st.ExecContext(ctx, string(r.d), r.kind, r.size, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("index %d objects: %w", len(recs), err)
	}
	return nil
}

func toNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// Remove deletes the object d (see Objects.Remove) and its index row.
func (s *Store) Remove(ctx context.Context, d Digest) error {
	if err := s.Objects.Remove(d); err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM objects WHERE digest = ?`, string(d)); err != nil {
		return fmt.Errorf("unindex object %s: %w", d.Short(), err)
	}
	return nil
}
