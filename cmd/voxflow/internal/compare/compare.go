// Package compare lines up runs side by side for `voxflow compare` and
// `voxflow diff`: the params that differ between them and their metrics,
// per stage instance, with the number formats the tables print.
package compare

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"path"
	"slices"
	"sort"
	"strconv"

	"github.com/voxflow/voxflow/cache"
	"github.com/voxflow/voxflow/engine"
)

// Comparison lines up runs side by side: the params that differ between
// them and their metrics, per stage instance. Column 0 is the baseline.
type Comparison struct {
	Columns []string    `json:"columns"` // variant names, or "run N"
	Runs    []cache.Run `json:"runs"`
	Params  []ParamRow  `json:"params"`  // only params whose values differ
	Metrics []MetricRow `json:"metrics"` // metrics present in at least one run
}

// ParamRow is one param of one instance across runs ("" where absent).
type ParamRow struct {
	Instance string   `json:"instance"`
	Param    string   `json:"param"`
	Values   []string `json:"values"`
}

// MetricRow is one metric of one instance across runs (NaN where absent).
type MetricRow struct {
	Instance string    `json:"instance"`
	Metric   string    `json:"metric"`
	Values   []float64 `json:"values"`
}

// MarshalJSON writes NaN as null, which JSON lacks.
func (m MetricRow) MarshalJSON() ([]byte, error) {
	vals := make([]any, len(m.Values))
	for i, v := range m.Values {
		if !math.IsNaN(v) {
			vals[i] = v
		}
	}
	return json.Marshal(map[string]any{"instance": m.Instance, "metric": m.Metric, "values": vals})
}

// Runs gathers params and metrics of runs; columns names them, in the same
// order. filter, when non-empty, is a path.Match pattern on
// "instance:metric" (or just the metric name).
func Runs(ctx context.Context, store *cache.Store, runs []cache.Run, columns []string, filter string) (*Comparison, error) {
	c := &Comparison{Columns: columns, Runs: runs}
	type cell struct {
		params  map[string]string
		metrics map[string]float64
	}
	perRun := make([]map[string]cell, len(runs))
	instances := map[string]bool{}
	for i, r := range runs {
		exs, err := store.RunExecutions(ctx, r.ID)
		if err != nil {
			return nil, err
		}
		perRun[i] = map[string]cell{}
		for _, e := range exs {
			var params map[string]any
			if err := json.Unmarshal([]byte(e.Params), &params); err != nil {
				return nil, fmt.Errorf("run %d, %s: params: %w", r.ID, e.Instance, err)
			}
			ps := map[string]string{}
			for k, v := range params {
				ps[k] = engine.ShortValue(v)
			}
			m, err := store.Metrics(ctx, e.ID)
			if err != nil {
				return nil, err
			}
			perRun[i][e.Instance] = cell{params: ps, metrics: m}
			instances[e.Instance] = true
		}
	}
	names := make([]string, 0, len(instances))
	for n := range instances {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, inst := range names {
		pnames, mnames := map[string]bool{}, map[string]bool{}
		for i := range runs {
			for k := range perRun[i][inst].params {
				pnames[k] = true
			}
			for k := range perRun[i][inst].metrics {
				if filter == "" || match(filter, inst+":"+k) || match(filter, k) {
					mnames[k] = true
				}
			}
		}
		for _, p := range slices.Sorted(maps.Keys(pnames)) {
			row := ParamRow{Instance: inst, Param: p, Values: make([]string, len(runs))}
			differ := false
			for i := range runs {
				row.Values[i] = perRun[i][inst].params[p]
				if row.Values[i] != row.Values[0] {
					differ = true
				}
			}
			if differ {
				c.Params = append(c.Params, row)
			}
		}
		for _, m := range slices.Sorted(maps.Keys(mnames)) {
			row := MetricRow{Instance: inst, Metric: m, Values: make([]float64, len(runs))}
			for i := range runs {
				v, ok := perRun[i][inst].metrics[m]
				if !ok {
					v = math.NaN()
				}
				row.Values[i] = v
			}
			c.Metrics = append(c.Metrics, row)
		}
	}
	return c, nil
}

// match reports whether s matches pattern; a malformed pattern matches
// nothing.
func match(pattern, s string) bool {
	ok, err := path.Match(pattern, s)
	return err == nil && ok
}

// FormatMetric renders a metric value compactly ("-" when absent).
func FormatMetric(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

// FormatDelta renders v - base with a sign ("" when either is absent).
func FormatDelta(v, base float64) string {
	if math.IsNaN(v) || math.IsNaN(base) {
		return ""
	}
	d := v - base
	if d == 0 {
		return "±0"
	}
	return fmt.Sprintf("%+.3g", d)
}
