package main

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// cacheCommands are the subcommands of `voxflow cache`.
func cacheCommands() map[string]command {
	return map[string]command{
		"verify": {run: cmdCacheVerify, help: "rehash every object and materialised tree; quarantine what is corrupt and invalidate what used it"},
	}
}

// cmdCacheVerify is `voxflow cache verify`: a whole-store integrity check.
// It exits 1 when it found damage, after repairing what it can.
func cmdCacheVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("cache verify", "[flags]", stdout, stderr)
	cacheDir := cacheFlag(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := noPositional(pos); err != nil {
		return err
	}
	store, err := openExistingStore(ctx, *cacheDir, "", true, "cache verify")
	if err != nil {
		return err
	}
	defer store.Close()
	rep, err := store.Verify(ctx, nil)
	if err != nil {
		return err
	}
	for _, d := range rep.Corrupt {
		fmt.Fprintf(stdout, "corrupt object %s moved to quarantine/\n", d)
	}
	for _, d := range rep.DamagedTrees {
		fmt.Fprintf(stdout, "materialised tree trees/%s did not match its manifest; removed (rebuilt on next use)\n", d)
	}
	if len(rep.Instances) > 0 {
		fmt.Fprintf(stdout, "invalidated (the next run recomputes them): %s\n", strings.Join(rep.Instances, ", "))
	}
	fmt.Fprintf(stdout, "verify: %d object(s) checked, %d corrupt, %d damaged tree(s), %d execution(s) invalidated\n",
		rep.Checked, len(rep.Corrupt), len(rep.DamagedTrees), len(rep.Invalidated))
	if n := len(rep.Corrupt) + len(rep.DamagedTrees); n > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d corrupt object(s), %d damaged tree(s); the next run recomputes what they held", len(rep.Corrupt), len(rep.DamagedTrees))}
	}
	return nil
}
