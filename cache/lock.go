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

// Lock takes the inter-process exclusive lock named key, waiting until it is
// free or ctx is done. The lock is flock(2) on locks/<key>: the kernel drops
// it when the holder's file descriptor closes, including when the process is
// SIGKILLed, so a crashed `voxflow run` never leaves a stale lock. Locks are
// per open file, so two Lock calls in one process also exclude each other.
//
// Lock files are never deleted: unlinking a lock file races with a process
// that has opened but not yet locked it.
func (o *Objects) Lock(ctx context.Context, key Digest) (unlock func(), err error) {
	// flock cannot be interrupted by a context, so poll with a
	// non-blocking attempt and back off up to a quarter second.
	wait := 5 * time.Millisecond
	for {
		unlock, ok, err := o.TryLock(key)
		if err != nil {
			return nil, err
		}
		if ok {
			return unlock, nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("lock %s: %w", key.Short(), ctx.Err())
		case <-t.C:
		}
		if wait < 250*time.Millisecond {
			wait *= 2
		}
	}
}

// TryLock takes the lock named key if it is free and reports whether it did.
func (o *Objects) TryLock(key Digest) (unlock func(), ok bool, err error) {
	if _, err := ParseDigest(string(key)); err != nil {
		return nil, false, fmt.Errorf("lock: %w", err)
	}
	p := filepath.Join(o.locks, string(key))
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, false, fmt.Errorf("lock %s: %w", p, err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if errors.Is(err, syscall.EWOULDBLOCK) {
		f.Close()
		return nil, false, nil
	}
	if err != nil {
		f.Close()
		return nil, false, fmt.Errorf("lock %s: flock: %w", p, err)
	}
	// Write the holder's pid for humans debugging a wait; the lock itself is
	// the flock, not this content.
	f.Truncate(0)
	fmt.Fprintf(f, "%d\n", os.Getpid())
	released := false
	return func() {
		if released {
			return
		}
		released = true
		f.Close() // closing the descriptor releases the flock
	}, true, nil
}
