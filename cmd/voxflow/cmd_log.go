package main

import (
	"context"
	"fmt"
	"io"
	"os"
)

// cmdLog is `voxflow log INSTANCE`: the captured log of an instance's
// newest execution, or with --attempt one cluster attempt's record.
func cmdLog(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("log", "INSTANCE [flags]", stdout, stderr)
	var inf instanceFlags
	inf.register(fs)
	attempt := fs.Int("attempt", 0, "print attempt N of the instance as kept by the cluster executor that ran it (job, end state, script and log) instead of the captured log")
	store, e, err := inf.open(ctx, fs, args, "log")
	if err != nil {
		return err
	}
	defer store.Close()
	if *attempt != 0 {
		return printAttempt(stdout, store, e, *attempt)
	}
	if e.Log == "" {
		return fmt.Errorf("%s: no log was captured", e.Instance)
	}
	p, err := store.Path(ctx, e.Log)
	if err != nil {
		return err
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(stdout, f)
	return err
}
