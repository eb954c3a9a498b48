package engine

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/voxflow/voxflow/cache"
	"github.com/voxflow/voxflow/engine/spec"
)

// Plan actions.
const (
	ActionCached = "cached"
	ActionRun    = "run"
)

// PlanItem says what a run would do with one stage instance, and why.
type PlanItem struct {
	Instance string   `json:"instance"`
	Stage    string   `json:"stage"`
	Kind     string   `json:"kind"`
	Action   string   `json:"action"`            // cached | run
	Reasons  []string `json:"reasons,omitempty"` // why it runs
	Key      string   `json:"key,omitempty"`     // empty while an upstream instance must run first
	Output   string   `json:"output,omitempty"`  // cached output digest
}

// Plan decides for every instance of p whether a run would reuse it or run
// it, and explains each run by diffing against the instance's last
// successful execution: changed params, changed inputs, changed
// implementation, never run, or forced.
func Plan(ctx context.Context, store *cache.Store, p *Project, force []string) ([]PlanItem, error) {
	reusable, err := store.Reusable(ctx, p.Spec.Name)
	if err != nil {
		return nil, err
	}
	outputs := map[string]cache.Digest{}
	items := make([]PlanItem, 0, len(p.Graph.Instances))
	for _, inst := range p.Graph.Instances {
		kind := p.Kinds[inst.Stage.Name]
		it := PlanItem{Instance: inst.ID, Stage: inst.Stage.Name, Kind: kind.Desc.Kind, Action: ActionRun}
		forced := slices.Contains(force, inst.Stage.Name) || slices.Contains(force, inst.ID)
		in, known, err := artifacts(ctx, store, inst, outputs, false)
		if err != nil {
			return nil, err
		}
		var key Key
		if known {
			key, err = ComputeKey(kind, inst.Params, inst.Labels, in)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", inst.ID, err)
			}
			it.Key = string(key.Digest)
			if !forced {
				ex, ok := reusable[key.Digest]
				if !ok {
					ex, ok, err = store.Lookup(ctx, key.Digest)
					if err != nil {
						return nil, fmt.Errorf("%s: %w", inst.ID, err)
					}
				}
				if ok {
					it.Action, it.Output = ActionCached, string(ex.Output)
					outputs[inst.ID] = ex.Output
					items = append(items, it)
					continue
				}
			}
		}
		var pending []string
		for port, edges := range inst.Inputs {
			for _, e := range edges {
				if _, ok := outputs[e.From.ID]; !ok {
					pending = append(pending, fmt.Sprintf("input %s: upstream %s runs first", port, e.From.ID))
					break
				}
			}
		}
		slices.Sort(pending)
		it.Reasons, err = reasons(ctx, store, p, inst, kind, key, pending, forced)
		if err != nil {
			return nil, err
		}
		items = append(items, it)
	}
	return items, nil
}

// reasons explains why inst must run.
// pending lists the inputs whose upstream has not run yet.
func reasons(ctx context.Context, store *cache.Store, p *Project, inst *spec.Instance, kind *Kind, key Key, pending []string, forced bool) ([]string, error) {
	var rs []string
	if forced {
		rs = append(rs, "forced")
	}
	last, ok, err := store.LastForInstance(ctx, p.Spec.Name, inst.ID)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", inst.ID, err)
	}
	if !ok {
		return append(rs, "never run"), nil
	}
	if last.Impl != kind.Impl {
		rs = append(rs, fmt.Sprintf("implementation changed (%s -> %s)", shortImpl(last.Impl), shortImpl(kind.Impl)))
	}
	newParams, err := spec.CanonicalJSON(map[string]any(inst.Params))
	if err != nil {
		return nil, err
	}
	rs = append(rs, paramDiff(last.Params, string(newParams))...)
	if len(pending) == 0 {
		rs = append(rs, inputDiff(last.Inputs, key.Inputs)...)
	} else {
		rs = append(rs, pending...)
	}
	if len(rs) == 0 {
		// Same key as the last success, yet no usable record: its output
		// was invalidated by `cache verify` or removed by gc.
		rs = append(rs, "previous output invalidated or collected")
	}
	return rs, nil
}

// shortImpl trims a plugin digest in implementation strings for display.
func shortImpl(impl string) string {
	parts := strings.Split(impl, ":")
	for i, p := range parts {
		if len(p) == 64 {
			parts[i] = p[:12]
		}
	}
	return strings.Join(parts, ":")
}

// WritePlan prints a plan as a table: one row per instance.
func WritePlan(w io.Writer, items []PlanItem) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	run, cached := 0, 0
	for _, it := range items {
		why := ""
		if it.Action == ActionRun {
			run++
			why = strings.Join(it.Reasons, "; ")
		} else {
			cached++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", it.Action, it.Instance, why)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d to run, %d cached\n", run, cached)
	return err
}
