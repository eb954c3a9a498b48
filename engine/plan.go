package engine

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/voxflow/voxflow/cache"
	"github.com/voxflow/voxflow/engine/spec"
	"github.com/voxflow/voxflow/stages"
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
	Action   string   `json:"action"`            // cached | run | waiting | not chosen
	Reasons  []string `json:"reasons,omitempty"` // why it runs
	Key      string   `json:"key,omitempty"`     // empty while an upstream instance must run first
	Output   string   `json:"output,omitempty"`  // cached output digest
	// Problem says why a run would fail the instance without starting it:
	// its foreach selection cannot be evaluated (Plan sets it), or the
	// chosen executor cannot meet its request (CheckPlan).
	Problem string `json:"problem,omitempty"`
	// Chosen says why a foreach selection chose the instance (select.go).
	Chosen string `json:"chosen,omitempty"`
}

// Plan decides for every instance of p whether a run would reuse it or run
// it, and explains each run by diffing against the instance's last
// successful execution: changed params, changed inputs, changed
// implementation, never run, or forced.
func Plan(ctx context.Context, store *cache.Store, p *Project, force []string) ([]PlanItem, error) {
	d, err := newDecider(ctx, store, p, force, false)
	if err != nil {
		return nil, err
	}
	items := make([]PlanItem, 0, len(p.Graph.Instances))
	for _, inst := range p.Graph.Instances {
		dec, err := d.decide(ctx, inst)
		if err != nil {
			return nil, err
		}
		if dec.keyErr != nil {
			return nil, dec.keyErr
		}
		it := PlanItem{Instance: inst.ID, Stage: inst.Stage.Name, Kind: p.Kinds[inst.Stage.Name].Desc.Kind,
			Action: dec.action, Reasons: dec.reasons, Chosen: dec.chosen}
		if dec.selErr != nil {
			it.Problem = dec.selErr.Error()
		}
		if dec.known {
			it.Key = string(dec.key.Digest)
		}
		if dec.hit != nil {
			it.Output = string(dec.hit.Output)
			d.produced(inst.ID, dec.hit.Output)
		}
		items = append(items, it)
	}
	return items, nil
}

// reasons explains why inst must run.
// files are the fingerprints of its path params; pending lists the inputs
// whose upstream has not run yet.
func reasons(ctx context.Context, store *cache.Store, p *Project, inst *spec.Instance, kind *Kind, key Key, files []PathInput, pending []string, forced bool) ([]string, error) {
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
		rs = append(rs, implChanged(kind.Desc.Kind, last.Impl, kind.Impl))
	}
	newParams, err := stages.EncodeValue(inst.Params)
	if err != nil {
		return nil, err
	}
	rs = append(rs, paramDiff(last.Params, string(newParams))...)
	rs = append(rs, pathDiff(ctx, store, last.Params, last.Inputs, string(newParams), files)...)
	if len(pending) == 0 {
		rs = append(rs, inputDiff(last.Inputs, key.Inputs)...)
	} else {
		rs = append(rs, pending...)
	}
	switch {
	case len(rs) > 0:
	case key.Digest != "" && last.Key != key.Digest:
		// Nothing that enters the key changed, yet the key did: the last
		// success was keyed by an older derivation (keyDomain).
		rs = append(rs, "cache key changed with no change to params, inputs or code (keys derived by an older voxflow; now "+keyDomain+")")
	default:
		// Same key as the last success, yet no usable record: its output
		// was invalidated by `cache verify` or removed by gc.
		rs = append(rs, "previous output invalidated or collected")
	}
	return rs, nil
}

// implChanged says that kind's implementation changed from old to new,
// naming the kind and the short digests of its code (a builtin's identity,
// a plugin binary's digest), or the whole implementation strings where the
// digests alone do not show the difference (an older format, a version).
func implChanged(kind, old, new string) string {
	o, n := implDigest(old), implDigest(new)
	if o == "" || n == "" || o == n {
		o, n = shortImpl(old), shortImpl(new)
	}
	return fmt.Sprintf("implementation changed: %s (%s -> %s)", kind, o, n)
}

// implDigest returns the first 12 hex digits of the 64-hex digest in an
// implementation string, or "" if it has none.
func implDigest(impl string) string {
	for _, p := range strings.Split(impl, ":") {
		if len(p) == 64 {
			return p[:12]
		}
	}
	return ""
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
	run, cached, blocked := 0, 0, 0
	gated := map[string]int{} // waiting, not chosen
	for _, it := range items {
		why, action := "", it.Action
		switch it.Action {
		case ActionRun:
			run++
			why = strings.Join(it.Reasons, "; ")
		case ActionWaiting, ActionNotChosen:
			gated[it.Action]++
			why = strings.Join(it.Reasons, "; ")
		default:
			cached++
		}
		if it.Chosen != "" {
			why = strings.TrimPrefix(strings.Join([]string{why, it.Chosen}, "; "), "; ")
		}
		if it.Problem != "" {
			blocked++
			action, why = "FAIL", "cannot run: "+it.Problem
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", action, it.Instance, why)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var extra string
	for _, a := range []string{ActionNotChosen, ActionWaiting} {
		if gated[a] > 0 {
			extra += fmt.Sprintf(", %d %s", gated[a], a)
		}
	}
	if blocked > 0 {
		_, err := fmt.Fprintf(w, "%d to run, %d cached%s; %d cannot run under this executor\n", run, cached, extra, blocked)
		return err
	}
	_, err := fmt.Fprintf(w, "%d to run, %d cached%s\n", run, cached, extra)
	return err
}

// CheckPlan sets Problem on every item that would run but cannot under
// exe with opt's budgets: the same check a run makes before starting an
// instance, so `voxflow plan --executor slurm` shows it before anything is
// submitted. An item that has a Problem already (a selection that cannot
// be evaluated) keeps it: a run fails the instance for that first.
func CheckPlan(ctx context.Context, p *Project, items []PlanItem, exe Executor, opt RunOptions) {
	for i := range items {
		inst := p.Graph.ByID[items[i].Instance]
		if items[i].Action != ActionRun || items[i].Problem != "" || inst == nil {
			continue
		}
		items[i].Problem = unsatisfiable(ctx, p, inst, exe, opt)
	}
}

// ResourceWarnings lists what a local run with opt's budgets could not
// schedule among the items that would (or, waiting, may) run (the check a run makes before
// it starts each instance, which would fail it), each with the fix. One
// line per stage and reason, so 384 fine-tunes asking for a GPU make one
// warning, not 384.
func ResourceWarnings(ctx context.Context, p *Project, items []PlanItem, opt RunOptions) []string {
	type group struct {
		first, stage, reason string
		n                    int
	}
	var groups []*group
	seen := map[[2]string]*group{}
	for _, it := range items {
		inst := p.Graph.ByID[it.Instance]
		// A waiting instance (its foreach awaits an upstream metric) may
		// well run: warn about it now rather than after hours of upstream.
		if it.Action != ActionRun && it.Action != ActionWaiting || inst == nil {
			continue
		}
		reason := unsatisfiable(ctx, p, inst, nil, opt)
		if reason == "" {
			continue
		}
		k := [2]string{it.Stage, reason}
		if g := seen[k]; g != nil {
			g.n++
			continue
		}
		g := &group{first: it.Instance, stage: it.Stage, reason: reason, n: 1}
		seen[k] = g
		groups = append(groups, g)
	}
	out := make([]string, len(groups))
	for i, g := range groups {
		who := g.first
		if g.n > 1 {
			who = fmt.Sprintf("%s (and %d more instances of %s)", g.first, g.n-1, g.stage)
		}
		out[i] = who + " " + g.reason
	}
	return out
}
