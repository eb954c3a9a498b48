package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// cmdStatus is `voxflow status`: the recent runs of a cache, then the
// cluster jobs still in flight.
func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("status", "[flags]", stdout, stderr)
	cacheDir := cacheFlag(fs)
	limit := fs.Int("n", 20, "how many runs")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := noPositional(pos); err != nil {
		return err
	}
	store, err := openExistingStore(ctx, *cacheDir, "", false, "status")
	if err != nil {
		return err
	}
	defer store.Close()
	runs, err := store.Runs(ctx, *limit)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tSPEC\tVARIANT\tSTATUS\tSTARTED\tDURATION\tEXECUTED\tCACHED")
	for _, r := range runs {
		ex, err := store.RunExecutions(ctx, r.ID)
		if err != nil {
			return err
		}
		executed, cached := 0, 0
		for _, e := range ex {
			if e.Cached {
				cached++
			} else {
				executed++
			}
		}
		dur := "-"
		if !r.End.IsZero() {
			dur = r.End.Sub(r.Start).Round(time.Millisecond).String()
		}
		// A run whose process died (SIGKILL, OOM) still reads "running" in
		// the index; CurrentStatus tells it apart.
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%d\n", r.ID, r.Spec, orDefault(r.Variant, "-"), r.CurrentStatus(),
			r.Start.Local().Format("2006-01-02 15:04:05"), dur, executed, cached)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return clusterJobs(ctx, store, stdout)
}
