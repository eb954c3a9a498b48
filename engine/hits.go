package engine

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/voxflow/voxflow/cache"
)

// hitBatch links the cache hits of one scheduling round to the run while
// the round holds the gc lock shared (cache.Store.Protect): gc cannot run
// between a run deciding to reuse an output and the link that makes gc
// keep it for as long as the run lives. Linking per round rather than per
// hit keeps a fully cached run of a large DAG to one transaction per round.
type hitBatch struct {
	store   *cache.Store
	runID   int64
	release func()
	ids     []int64
}

// openHits takes the gc lock shared for one scheduling round. When ctx is
// already cancelled nothing is taken: the round starts nothing anyway.
func openHits(ctx context.Context, store *cache.Store, runID int64) (*hitBatch, error) {
	b := &hitBatch{store: store, runID: runID, release: func() {}}
	if ctx.Err() != nil {
		return b, nil
	}
	release, err := store.Protect(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return b, nil
		}
		return nil, fmt.Errorf("protect run %d from gc: %w", runID, err)
	}
	b.release = release
	return b, nil
}

// add records that the round reuses execution id.
func (b *hitBatch) add(id int64) { b.ids = append(b.ids, id) }

// close links the round's hits to the run, then lets gc in again. The link
// is written even when ctx is cancelled: the run's record must say what it
// used.
func (b *hitBatch) close(ctx context.Context) error {
	defer b.release()
	err := b.store.LinkRuns(context.WithoutCancel(ctx), b.runID, b.ids, true)
	b.ids = nil
	if err != nil {
		return fmt.Errorf("record run %d: %w", b.runID, err)
	}
	return nil
}

// cachedHit finds a reusable execution for key, from the run's reusable
// map (nil: none) or the index, and makes sure its output is intact before
// it is handed to anything: every object it reaches is checked by
// fingerprint (rehashed on mismatch). A corrupt output is quarantined and
// its producers and consumers invalidated by the store, which is said on
// stderr; the key is then a miss, unless an older execution is intact. The
// caller holds the gc lock shared, so nothing it finds here is deleted
// before the caller links it.
func cachedHit(ctx context.Context, store *cache.Store, instance string, key cache.Digest, reusable map[cache.Digest]*cache.Execution) (*cache.Execution, bool, error) {
	ex, ok := reusable[key]
	if ok {
		// The map was read when the run began; a corruption found since
		// (by this run or another process) may have invalidated the entry.
		cur, err := store.Execution(ctx, ex.ID)
		if err != nil {
			return nil, false, fmt.Errorf("check cached execution: %w", err)
		}
		ok = !cur.Invalid
	}
	for attempt := 0; attempt < 3; attempt++ {
		if !ok || attempt > 0 {
			var err error
			ex, ok, err = store.Lookup(ctx, key)
			if err != nil || !ok {
				return nil, false, err
			}
		}
		err := store.Intact(ctx, ex.Output)
		switch {
		case err == nil:
			return ex, true, nil
		case errors.Is(err, cache.ErrCorrupt):
			fmt.Fprintf(os.Stderr, "voxflow: %s: cached output not reused: %v\n", instance, err)
		case errors.Is(err, cache.ErrNotFound):
			// Removed since the run listed it (gc before this round):
			// look for another execution of the key.
		default:
			return nil, false, fmt.Errorf("check cached output: %w", err)
		}
	}
	return nil, false, nil
}
