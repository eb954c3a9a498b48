package engine

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/voxflow/voxflow/internal/procgroup"
)

// Every attempt at a key works in a directory of its own,
// work/<key>/<attempt>/ (out/ for the outputs, log), never in one an
// earlier attempt used: a process of a killed run, or of this run's failed
// try, that outlived its supervisor can then only write where nobody reads.
// Remote executors get one too; what they must find again across runs (a
// cluster job to adopt) they keep in a directory of their own.

// attemptDir is a fresh attempt directory, held until release.
type attemptDir struct {
	dir     string
	release func()
}

// newAttemptDir creates a fresh directory for one attempt under keyDir. Its
// name (time, pid, random) is unique across runs and hosts sharing the
// cache. A shared flock on it, held until release, tells other voxflow
// processes (cleanAttempts, gc) that it is in use; the command stage's
// supervisor holds out/ the same way until its last process is gone.
func newAttemptDir(keyDir string) (*attemptDir, error) {
	if err := os.MkdirAll(keyDir, 0o755); err != nil {
		return nil, fmt.Errorf("work dir: %w", err)
	}
	for range 10 {
		name := fmt.Sprintf("%x-%d-%08x", time.Now().UnixNano(), os.Getpid(), rand.Uint32())
		dir := filepath.Join(keyDir, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			if os.IsExist(err) {
				continue
			}
			return nil, fmt.Errorf("work dir: %w", err)
		}
		if err := os.Mkdir(filepath.Join(dir, "out"), 0o755); err != nil {
			return nil, fmt.Errorf("work dir: %w", err)
		}
		release, err := procgroup.HoldDir(dir)
		if err != nil {
			return nil, fmt.Errorf("work dir: %w", err)
		}
		return &attemptDir{dir: dir, release: release}, nil
	}
	return nil, fmt.Errorf("work dir: no unused attempt name under %s", keyDir)
}

// remove releases the attempt and deletes its directory unless a process
// still holds it (best effort: it is never read again).
func (a *attemptDir) remove() {
	a.release()
	removeUnheld(a.dir)
}

// cleanAttempts deletes what earlier attempts left under keyDir (killed
// runs, or the layout of older voxflow versions: out/ and log directly in
// keyDir), except what a live process still holds. The caller holds the
// key's lock, so no other run is starting an attempt here.
func cleanAttempts(keyDir string) {
	entries, err := os.ReadDir(keyDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		removeUnheld(filepath.Join(keyDir, e.Name()))
	}
}

// removeUnheld deletes path unless it, or its out/, is held by a live
// process (see newAttemptDir).
func removeUnheld(path string) {
	for _, d := range []string{path, filepath.Join(path, "out")} {
		if busy, err := procgroup.DirInUse(d); busy || err != nil {
			return
		}
	}
	_ = os.RemoveAll(path)
}
