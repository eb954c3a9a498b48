package cache

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// gcLockName is the flock(2) file under locks/ that orders gc against runs.
// It is not a digest, so it can never collide with a key lock.
const gcLockName = "gc.lock"

// Protect takes the gc lock shared: while it is held no gc can be computing
// what is live or deleting objects. A run holds it from the moment it decides
// to use a cached output (or stores a new one) until the execution is linked
// to the run in the index; after that gc sees the link and keeps the objects
// for as long as the run lives. Many runs hold it at once; a gc in progress
// makes Protect wait (polling, so ctx can cancel it). Holding it is cheap:
// one open file, released by the kernel if the process dies.
func (o *Objects) Protect(ctx context.Context) (release func(), err error) {
	return o.gcLock(ctx, syscall.LOCK_SH)
}

// exclusiveGC takes the gc lock exclusively, waiting for every run's
// Protect section to end.
func (o *Objects) exclusiveGC(ctx context.Context) (release func(), err error) {
	return o.gcLock(ctx, syscall.LOCK_EX)
}

func (o *Objects) gcLock(ctx context.Context, how int) (func(), error) {
	p := filepath.Join(o.locks, gcLockName)
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("gc lock %s: %w", p, err)
	}
	wait := 2 * time.Millisecond
	for {
		err = syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("gc lock %s: flock: %w", p, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, fmt.Errorf("gc lock %s: %w", p, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
	released := false
	return func() {
		if !released {
			released = true
			f.Close() // closing the descriptor releases the flock
		}
	}, nil
}
