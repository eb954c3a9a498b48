package cache

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
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
	// readOnly is set when the index was opened read-only (see ReadOnly).
	readOnly bool
	// privMu guards privTrees, a temporary directory outside the cache
	// where a read-only store materialises trees it cannot put under
	// trees/ (see privateTree); Close removes it.
	privMu    sync.Mutex
	privTrees string
}

// ErrReadOnly is wrapped by errors of writes to a store opened read-only.
var ErrReadOnly = errors.New("the cache is read-only")

// ErrNoCache is wrapped by OpenReadOnly's error when dir holds no cache.
var ErrNoCache = errors.New("no voxflow cache")

// sqliteHeader starts every SQLite database file.
const sqliteHeader = "SQLite format 3\x00"

// Open opens (creating if needed) the store rooted at dir, usually a
// project's .voxflow directory, and migrates its index to the current
// schema. When the cache exists but cannot be written (a read-only mount,
// or no write permission on the directory or index.db), it is opened
// read-only instead, as OpenReadOnly does: what only reads works, and
// every write fails with ErrReadOnly.
//
// Pragmas: WAL so readers and the writer do not block each other; a 15 s
// busy timeout so a second process waits for the write lock instead of
// failing; foreign keys on; synchronous=NORMAL. Under WAL, NORMAL never
// corrupts the database; a power cut may lose the last few commits, which
// only means those stages run again. Objects are fsynced before the index
// records them, so the index never points at an object that a power cut
// could take away. FULL would add an fsync per commit for nothing more.
func Open(ctx context.Context, dir string) (*Store, error) {
	abs, path, exists, err := locateIndex(dir)
	if err != nil {
		return nil, err
	}
	if exists && (!writable(abs) || !writable(path)) {
		return openReadOnly(ctx, abs, path)
	}
	o, err := OpenObjects(abs)
	if err != nil {
		return nil, err
	}
	if !exists {
		if err := createIndex(ctx, path); err != nil {
			return nil, err
		}
	}
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

// locateIndex returns the cache directory dir made absolute, its
// index.db and whether that exists (a file there that is not a voxflow
// index is an error; see checkIndexFile).
func locateIndex(dir string) (abs, path string, exists bool, err error) {
	abs, err = filepath.Abs(dir)
	if err != nil {
		return "", "", false, fmt.Errorf("open cache %s: %w", dir, err)
	}
	path = filepath.Join(abs, "index.db")
	exists, err = checkIndexFile(path)
	return abs, path, exists, err
}

// OpenReadOnly opens the existing store rooted at dir for reading only:
// commands that only read (status, show, log, plan, compare, report) use it,
// so they work on a cache they may not write (a lab's shared cache mounted
// read-only) and never create a cache where there was none (a mistyped
// --cache fails with ErrNoCache instead of reporting on an empty one).
// Every write to the returned store fails with ErrReadOnly.
func OpenReadOnly(ctx context.Context, dir string) (*Store, error) {
	abs, path, exists, err := locateIndex(dir)
	if err != nil {
		return nil, err
	}
	if !exists {
		if _, err := os.Stat(abs); err != nil {
			return nil, fmt.Errorf("open cache %s: %w (the directory does not exist)", abs, ErrNoCache)
		}
		return nil, fmt.Errorf("open cache %s: %w (no index.db there; `voxflow run` creates one)", abs, ErrNoCache)
	}
	if writable(abs) && writable(path) {
		// An index from an older voxflow is migrated first; reading it with
		// this build's queries would fail on the columns it lacks.
		db, err := openDBRetry(ctx, path)
		if err != nil {
			return nil, err
		}
		err = migrate(ctx, db, SchemaVersion)
		db.Close()
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
	}
	return openReadOnly(ctx, abs, path)
}

// openReadOnly opens the index at path with mode=ro. When the directory
// itself cannot be written, SQLite could not create the -shm file that WAL
// readers need, so the database is also declared immutable: nothing can
// change it while it lies on a read-only mount (no locks are taken then).
func openReadOnly(ctx context.Context, dir, path string) (*Store, error) {
	o := newObjects(dir)
	q := url.Values{}
	q.Set("mode", "ro")
	if !writable(dir) {
		q.Set("immutable", "1")
	}
	q.Set("_busy_timeout", "15000")
	q.Set("_foreign_keys", "on")
	db, err := openDSN(ctx, path, q)
	if err != nil {
		return nil, err
	}
	v, err := schemaVersion(ctx, db)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if v > SchemaVersion {
		db.Close()
		return nil, fmt.Errorf("open %s (read-only): schema version %d is newer than this voxflow understands (%d); upgrade voxflow", path, v, SchemaVersion)
	}
	if v < SchemaVersion {
		db.Close()
		return nil, fmt.Errorf("open %s (read-only): schema version %d is older than this voxflow reads (%d), and a read-only cache cannot be upgraded; open it once where it is writable", path, v, SchemaVersion)
	}
	return &Store{Objects: o, db: db, Grace: DefaultGrace, readOnly: true}, nil
}

// ReadOnly reports whether the store was opened read-only: its index and
// objects are read, never written.
func (s *Store) ReadOnly() bool { return s.readOnly }

// Protect takes the gc lock shared (see Objects.Protect). On a read-only
// store no gc can run, and the lock file could not be opened for writing,
// so there is nothing to take.
func (s *Store) Protect(ctx context.Context) (release func(), err error) {
	if s.readOnly {
		return func() {}, nil
	}
	return s.Objects.Protect(ctx)
}

// errReadOnly is the error of a write attempted on a read-only store.
func (s *Store) errReadOnly(what string) error {
	return fmt.Errorf("%s: %w (%s)", what, ErrReadOnly, s.Dir())
}

// writable reports whether this process may write path (access(2) W_OK,
// which also answers EROFS on a read-only mount, even for root).
func writable(path string) bool {
	return syscall.Access(path, 2 /* W_OK */) == nil
}

// checkIndexFile reports whether index.db exists, and refuses one that is
// not an SQLite database: SQLite would treat a zero-byte file as a new empty
// database and voxflow would silently start a new cache over a damaged one.
// A cache's index is created whole (see createIndex), so a valid one is
// never empty.
func checkIndexFile(path string) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	head := make([]byte, len(sqliteHeader))
	n, err := io.ReadFull(f, head)
	switch {
	case n == 0 && (err == io.EOF || err == nil):
		return false, fmt.Errorf("%s is empty (0 bytes), not a cache index; refusing to start a new cache over it: move it away to start afresh, or restore it", path)
	case err != nil && err != io.ErrUnexpectedEOF:
		return false, fmt.Errorf("read %s: %w", path, err)
	case string(head[:n]) != sqliteHeader:
		return false, fmt.Errorf("%s is not an SQLite database (it does not start with %q); refusing to use it as the cache index: move it away to start afresh, or restore it", path, strings.TrimSuffix(sqliteHeader, "\x00"))
	}
	return true, nil
}

// createIndex creates a new index at path whole: it builds the database
// under a temporary name and links it into place, so no process ever sees
// a zero-byte index.db (which checkIndexFile refuses). When another process
// links its own first, that one is kept.
func createIndex(ctx context.Context, path string) error {
	tmp := fmt.Sprintf("%s.new-%d-%d", path, os.Getpid(), time.Now().UnixNano())
	defer func() {
		for _, suf := range []string{"", "-wal", "-shm", "-journal"} {
			os.Remove(tmp + suf)
		}
	}()
	db, err := openDB(ctx, tmp)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	err = migrate(ctx, db, SchemaVersion)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if err := os.Link(tmp, path); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create %s: %w", path, err)
	}
	return nil
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
	return openDSN(ctx, path, q)
}

// openDSN opens the database at path with the URI parameters q.
func openDSN(ctx context.Context, path string, q url.Values) (*sql.DB, error) {
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

// privateTree materialises tree d for a read-only store, which cannot
// write trees/: under a temporary directory of this process, outside the
// cache, removed by Close. Files are copied there when the cache's
// filesystem refuses hard links (a read-only mount does).
func (s *Store) privateTree(ctx context.Context, d Digest) (string, error) {
	s.privMu.Lock()
	defer s.privMu.Unlock()
	if s.privTrees == "" {
		dir, err := os.MkdirTemp("", "voxflow-readonly-trees-")
		if err != nil {
			return "", fmt.Errorf("materialise tree %s of read-only cache %s: %w", d.Short(), s.Dir(), err)
		}
		s.privTrees = dir
	}
	p, err := s.Objects.materialiseIn(ctx, d, s.privTrees, s.privTrees)
	if err != nil {
		return "", fmt.Errorf("read-only cache %s: %w", s.Dir(), err)
	}
	return p, nil
}

// Close closes the index and removes the trees a read-only store
// materialised for this process. Objects stay usable.
func (s *Store) Close() error {
	s.privMu.Lock()
	if s.privTrees != "" {
		removeTree(s.privTrees)
		s.privTrees = ""
	}
	s.privMu.Unlock()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close index: %w", err)
	}
	return nil
}

// tx runs fn in one short BEGIN IMMEDIATE transaction.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	if s.readOnly {
		return s.errReadOnly("write index")
	}
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
	if s.readOnly {
		return "", s.errReadOnly("store " + path)
	}
	var recs []objectRec
	d, err := s.Objects.putFile(ctx, path, move, collect(&recs))
	if err != nil {
		return "", err
	}
	return d, s.indexObjects(ctx, recs)
}

// PutBytes stores b (see Objects.PutBytes) and records it in the index.
func (s *Store) PutBytes(ctx context.Context, b []byte) (Digest, error) {
	if s.readOnly {
		return "", s.errReadOnly("store bytes")
	}
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
	if s.readOnly {
		return "", s.errReadOnly("store " + root)
	}
	var recs []objectRec
	d, _, err := s.Objects.putTree(ctx, root, move, collect(&recs))
	if err != nil {
		return "", err
	}
	return d, s.indexObjects(ctx, recs)
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
	return s.recordNewObjectStats(ctx, recs)
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
	if s.readOnly {
		return s.errReadOnly("remove object " + d.Short())
	}
	if err := s.Objects.Remove(d); err != nil {
		return err
	}
	if err := unindexObject(ctx, s.db, d); err != nil {
		return fmt.Errorf("unindex object %s: %w", d.Short(), err)
	}
	return nil
}
