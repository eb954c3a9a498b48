package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/voxflow/voxflow/cache"
	"github.com/voxflow/voxflow/cmd/voxflow/internal/compare"
	"github.com/voxflow/voxflow/engine"
	"github.com/voxflow/voxflow/engine/spec"
)

// baseVariant names a run without a variant in tables and flags.
const baseVariant = "base"

// resolveRuns turns command-line arguments into runs: run IDs, or a spec
// path with variant names (all variants that have runs when none given).
func resolveRuns(ctx context.Context, store *cache.Store, pos []string, variants string) ([]cache.Run, []string, error) {
	if len(pos) == 0 {
		return nil, nil, &exitError{code: 2, err: fmt.Errorf("want a SPEC or RUN IDs")}
	}
	if _, err := strconv.ParseInt(pos[0], 10, 64); err == nil {
		var runs []cache.Run
		var cols []string
		for _, a := range pos {
			id, err := strconv.ParseInt(a, 10, 64)
			if err != nil {
				return nil, nil, &exitError{code: 2, err: fmt.Errorf("%q: want a run ID (see voxflow status)", a)}
			}
			r, err := store.Run(ctx, id)
			if err != nil {
				return nil, nil, fmt.Errorf("run %d: %w", id, err)
			}
			runs = append(runs, *r)
			label := fmt.Sprintf("run %d", id)
			if r.Variant != "" {
				label += " (" + r.Variant + ")"
			}
			cols = append(cols, label)
		}
		return runs, cols, nil
	}
	s, err := spec.Load(pos[0], spec.Options{})
	if err != nil {
		return nil, nil, &exitError{code: 1, err: err}
	}
	var names []string
	if variants != "" {
		names = strings.Split(variants, ",")
	} else {
		names = append(names, baseVariant)
		names = append(names, sortedVariantNames(s)...)
	}
	if len(pos) > 1 {
		names = append(names, pos[1:]...)
	}
	var runs []cache.Run
	var cols []string
	for _, n := range names {
		v := n
		if n == baseVariant {
			v = ""
		} else if _, ok := s.Variants[n]; !ok {
			return nil, nil, &exitError{code: 2, err: fmt.Errorf("%s has no variant %q (variants: %s)", pos[0], n, strings.Join(sortedVariantNames(s), ", "))}
		}
		r, ok, err := store.LatestRun(ctx, s.Name, v)
		if err != nil {
			return nil, nil, err
		}
		if !ok {
			if variants != "" {
				return nil, nil, fmt.Errorf("variant %s of %s has not run yet: voxflow run %s --variant %s", n, s.Name, pos[0], n)
			}
			continue
		}
		runs = append(runs, *r)
		cols = append(cols, n)
	}
	if len(runs) == 0 {
		return nil, nil, fmt.Errorf("%s has no runs in this cache yet", s.Name)
	}
	return runs, cols, nil
}

// sortedVariantNames lists the variants a spec defines, sorted.
func sortedVariantNames(s *spec.Spec) []string {
	out := make([]string, 0, len(s.Variants))
	for k := range s.Variants {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// cmdCompare is `voxflow compare`: variants of a spec, or runs, side by
// side in a table (or markdown, csv, json).
func cmdCompare(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("compare", "SPEC [--variants a,b] | RUN RUN...", stdout, stderr)
	cacheDir := fs.String("cache", "", cacheUsage(".voxflow beside SPEC, or ./.voxflow for run IDs"))
	variants := fs.String("variants", "", "comma-separated variants to compare (base = no variant); default all that ran")
	format := fs.String("format", "table", "table | markdown | csv | json")
	filter := fs.String("metric", "", "only metrics matching this pattern (path.Match on METRIC or INSTANCE:METRIC)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	specPath := ""
	if len(pos) > 0 {
		if _, err := strconv.ParseInt(pos[0], 10, 64); err != nil {
			specPath = pos[0]
		}
	}
	store, err := openExistingStore(ctx, *cacheDir, specPath, false, "compare")
	if err != nil {
		return err
	}
	defer store.Close()
	runs, cols, err := resolveRuns(ctx, store, pos, *variants)
	if err != nil {
		return err
	}
	c, err := compare.Runs(ctx, store, runs, cols, *filter)
	if err != nil {
		return err
	}
	chosen, err := chosenRows(ctx, store, runs)
	if err != nil {
		return err
	}
	return writeComparison(stdout, c, chosen, *format)
}

// ChosenRow is one selecting foreach key (spec.Selection) across runs: the
// values each run ran its stage for, comma-separated ("" where the run has
// no such stage).
type ChosenRow struct {
	Stage  string   `json:"stage"`
	Key    string   `json:"key"`
	Values []string `json:"values"`
}

// chosenRows lists what each run's selections chose. A run's spec is
// re-read from its recorded path with its variant and --set flags, to know
// which stages select; a run whose spec is gone or no longer parses shows
// nothing rather than fail the comparison.
func chosenRows(ctx context.Context, store *cache.Store, runs []cache.Run) ([]ChosenRow, error) {
	type rowKey struct{ stage, key string }
	vals := map[rowKey][]string{}
	var order []rowKey
	for i, r := range runs {
		if r.SpecPath == "" {
			continue
		}
		s, err := spec.Load(r.SpecPath, spec.Options{Variant: r.Variant, Sets: r.Overrides})
		if s == nil || err != nil {
			continue
		}
		exs, err := store.RunExecutions(ctx, r.ID)
		if err != nil {
			return nil, err
		}
		ids := make([]string, len(exs))
		for j, e := range exs {
			ids[j] = e.Instance
		}
		for stage, keys := range engine.Chosen(s, ids) {
			for key, vs := range keys {
				k := rowKey{stage, key}
				if vals[k] == nil {
					vals[k] = make([]string, len(runs))
					order = append(order, k)
				}
				vals[k][i] = strings.Join(vs, ",")
			}
		}
	}
	sort.Slice(order, func(a, b int) bool {
		if order[a].stage != order[b].stage {
			return order[a].stage < order[b].stage
		}
		return order[a].key < order[b].key
	})
	out := make([]ChosenRow, len(order))
	for i, k := range order {
		out[i] = ChosenRow{Stage: k.stage, Key: k.key, Values: vals[k]}
	}
	return out, nil
}

// writeComparison prints a comparison; the first column is the baseline
// and every other metric column carries its delta.
func writeComparison(w io.Writer, c *compare.Comparison, chosen []ChosenRow, format string) error {
	header := []string{"instance", "name"}
	for i, col := range c.Columns {
		header = append(header, col)
		if i > 0 {
			header = append(header, "Δ "+col)
		}
	}
	// textRow is a row of text values, which have no delta: its delta
	// cells stay empty.
	textRow := func(instance, name string, vals []string) []string {
		row := []string{instance, name}
		for i, v := range vals {
			row = append(row, orDefault(v, "-"))
			if i > 0 {
				row = append(row, "")
			}
		}
		return row
	}
	var rows [][]string
	for _, ch := range chosen {
		rows = append(rows, textRow(ch.Stage, "chosen "+ch.Key, ch.Values))
	}
	for _, p := range c.Params {
		rows = append(rows, textRow(p.Instance, "param "+p.Param, p.Values))
	}
	for _, m := range c.Metrics {
		row := []string{m.Instance, m.Metric}
		for i, v := range m.Values {
			row = append(row, compare.FormatMetric(v))
			if i > 0 {
				row = append(row, compare.FormatDelta(v, m.Values[0]))
			}
		}
		rows = append(rows, row)
	}
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			*compare.Comparison
			Chosen []ChosenRow `json:"chosen,omitempty"`
		}{c, chosen})
	case "csv":
		cw := csv.NewWriter(w)
		cw.Write(header)
		cw.WriteAll(rows)
		return cw.Error()
	case "markdown", "md":
		fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(header, " | "), strings.Repeat(" --- |", len(header)))
		for _, r := range rows {
			for i := range r {
				r[i] = strings.ReplaceAll(r[i], "|", `\|`)
			}
			fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
		}
		return nil
	case "table", "":
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, strings.Join(header, "\t"))
		for _, r := range rows {
			fmt.Fprintln(tw, strings.Join(r, "\t"))
		}
		return tw.Flush()
	}
	return &exitError{code: 2, err: fmt.Errorf("--format %q: want table, markdown, csv or json", format)}
}
