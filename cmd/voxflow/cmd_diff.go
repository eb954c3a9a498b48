package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/voxflow/voxflow/cache"
	"github.com/voxflow/voxflow/cmd/voxflow/internal/compare"
)

// cmdDiff is `voxflow diff A B`: the params and metrics that differ
// between two runs or two variants of a spec.
func cmdDiff(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("diff", "A B [--spec SPEC]  (run IDs, or variant names with --spec)", stdout, stderr)
	cacheDir := fs.String("cache", "", cacheUsage(".voxflow beside --spec, or ./.voxflow for run IDs"))
	specPath := fs.String("spec", "", "spec whose variants A and B name (base = no variant)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return &exitError{code: 2, err: fmt.Errorf("expected two run IDs or variant names, got %d arguments", len(pos))}
	}
	store, err := openExistingStore(ctx, *cacheDir, *specPath, false, "diff")
	if err != nil {
		return err
	}
	defer store.Close()
	var runs []cache.Run
	var cols []string
	if *specPath != "" {
		runs, cols, err = resolveRuns(ctx, store, []string{*specPath}, strings.Join(pos, ","))
	} else {
		runs, cols, err = resolveRuns(ctx, store, pos, "")
	}
	if err != nil {
		return err
	}
	c, err := compare.Runs(ctx, store, runs, cols, "")
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "--- %s\n+++ %s\n", cols[0], cols[1])
	for _, p := range c.Params {
		fmt.Fprintf(stdout, "param   %s %s: %s -> %s\n", p.Instance, p.Param, orDefault(p.Values[0], "(absent)"), orDefault(p.Values[1], "(absent)"))
	}
	changed := 0
	for _, m := range c.Metrics {
		a, b := m.Values[0], m.Values[1]
		if a == b || math.IsNaN(a) && math.IsNaN(b) {
			continue
		}
		changed++
		fmt.Fprintf(stdout, "metric  %s %s: %s -> %s (%s)\n", m.Instance, m.Metric, compare.FormatMetric(a), compare.FormatMetric(b), compare.FormatDelta(b, a))
	}
	fmt.Fprintf(stdout, "%d param(s) and %d metric(s) differ\n", len(c.Params), changed)
	return nil
}
