package main

import (
	"context"
	"fmt"
	"io"

	"github.com/voxflow/voxflow/cache"
)

// cmdGC is `voxflow gc`: drop cached objects that no kept run references.
func cmdGC(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("gc", "[flags]", stdout, stderr)
	cacheDir := cacheFlag(fs)
	keep := fs.Int("keep-last", 1, "keep the objects of the newest N runs of each spec and variant (0 keeps all)")
	grace := fs.Duration("grace", cache.DefaultGrace, "keep objects, temp files and executions younger than this (outputs being stored right now)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := noPositional(pos); err != nil {
		return err
	}
	if *grace < 0 {
		return &exitError{code: 2, err: fmt.Errorf("--grace %s: want a duration >= 0", *grace)}
	}
	store, err := openExistingStore(ctx, *cacheDir, "", true, "gc")
	if err != nil {
		return err
	}
	defer store.Close()
	store.Grace = *grace
	rep, err := store.GC(ctx, *keep)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "gc: kept %d run(s); removed %d object(s), %.1f MB\n", rep.KeptRuns, rep.RemovedObjects, float64(rep.RemovedBytes)/1e6)
	return nil
}
