package engine

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/voxflow/voxflow/cache"
	"github.com/voxflow/voxflow/engine/spec"
)

// Fan-out chosen by an upstream result (spec.Selection): a stage whose
// foreach key selects its values is expanded for every candidate, so that
// every instance's ID and key are those of a hand-written list; the
// selector below decides, when an instance's turn comes, whether it runs.
// Unchosen instances are "not chosen" (neither failed nor skipped), and so
// are their dependents that share all their foreach keys; a dependent that
// fans in over the key drops the unchosen inputs, so its key equals that
// of a spec listing only the chosen values.

// StatusNotChosen is an instance whose foreach value a selection did not
// choose, or that depends on such an instance per value.
const StatusNotChosen = "not chosen"

// Plan actions of gated instances.
const (
	// ActionWaiting is an instance whose selection reads metrics of
	// upstream instances that have not run yet.
	ActionWaiting = "waiting"
	// ActionNotChosen is an instance its selection did not choose.
	ActionNotChosen = "not chosen"
)

// choice is the outcome of one selection: a reason per candidate label.
type choice struct {
	chosen  map[string]bool
	reasons map[string]string
}

// selector evaluates a run's (or plan's) selections, each once, from the
// metrics recorded for the keys the run computed for upstream instances.
type selector struct {
	store     *cache.Store
	keys      map[string]cache.Digest // instance ID -> key, as computed here
	decided   map[*spec.Gate]*choice
	failed    map[*spec.Gate]error
	waiting   map[*spec.Gate][]string // gate -> upstream instances without metrics
	notChosen map[string]string       // instance ID -> why
}

func newSelector(store *cache.Store) *selector {
	return &selector{store: store, keys: map[string]cache.Digest{}, decided: map[*spec.Gate]*choice{},
		failed: map[*spec.Gate]error{}, waiting: map[*spec.Gate][]string{}, notChosen: map[string]string{}}
}

// keyed records the key computed for an instance; a selection reads the
// metrics of exactly that key's execution (not the instance's latest, which
// may belong to another variant).
func (s *selector) keyed(id string, key cache.Digest) { s.keys[id] = key }

// verdict is what the selector decided for one instance: Action "" runs it
// as usual (Note says why it was chosen, when it was), ActionWaiting or
// ActionNotChosen with Reason.
type verdict struct {
	action, reason, note string
}

// admit decides whether inst runs, once every upstream instance has been
// dealt with. It returns inst with the input edges from unchosen upstream
// instances dropped (inst itself when none are), and the verdict; an
// instance not chosen is remembered, for its dependents' verdicts.
func (s *selector) admit(ctx context.Context, inst *spec.Instance) (*spec.Instance, verdict, error) {
	inst, v, err := s.judge(ctx, inst)
	if err == nil && v.action == ActionNotChosen {
		s.notChosen[inst.ID] = v.reason
	}
	return inst, v, err
}

// judge is admit's decision.
func (s *selector) judge(ctx context.Context, inst *spec.Instance) (*spec.Instance, verdict, error) {
	var dropped map[*spec.Instance]bool
	for _, u := range inst.Deps {
		why, ok := s.notChosen[u.ID]
		if !ok {
			continue
		}
		if sharesKeys(inst, u) {
			return inst, verdict{action: ActionNotChosen, reason: fmt.Sprintf("upstream %s not chosen (%s)", u.ID, why)}, nil
		}
		if dropped == nil {
			dropped = map[*spec.Instance]bool{}
		}
		dropped[u] = true
	}
	if dropped != nil {
		inst = prune(inst, dropped)
		for _, port := range slices.Sorted(maps.Keys(inst.Inputs)) {
			if len(inst.Inputs[port]) == 0 {
				return inst, verdict{action: ActionNotChosen, reason: fmt.Sprintf("input %s: none of its upstream instances was chosen", port)}, nil
			}
		}
	}
	var notes []string
	for _, g := range inst.Gates {
		c, missing, err := s.decide(ctx, g)
		if err != nil {
			return inst, verdict{}, err
		}
		if len(missing) > 0 {
			return inst, verdict{action: ActionWaiting, reason: fmt.Sprintf("waiting for %s to record %s (foreach %s: %s)",
				strings.Join(missing, ", "), metricOf(g), g.Key, g.Select.Rule())}, nil
		}
		label := inst.Labels[g.Key]
		if !c.chosen[label] {
			return inst, verdict{action: ActionNotChosen, reason: c.reasons[label]}, nil
		}
		notes = append(notes, c.reasons[label])
	}
	return inst, verdict{note: strings.Join(notes, "; ")}, nil
}

// metricOf names the metric a gate ranks by, without its instance part.
func metricOf(g *spec.Gate) string {
	if len(g.Candidates) == 0 {
		return g.Select.By
	}
	_, m := g.Select.Resolve("{" + g.Key + "}")
	return m
}

// sharesKeys reports whether d has every foreach key of u: then d is u's
// per-value dependent and cannot run without it.
func sharesKeys(d, u *spec.Instance) bool {
	for _, k := range u.LabelKeys {
		if _, ok := d.Labels[k]; !ok {
			return false
		}
	}
	return true
}

// prune returns a copy of inst without the edges and deps from dropped.
func prune(inst *spec.Instance, dropped map[*spec.Instance]bool) *spec.Instance {
	c := *inst
	c.Inputs = make(map[string][]spec.Edge, len(inst.Inputs))
	for port, edges := range inst.Inputs {
		kept := make([]spec.Edge, 0, len(edges))
		for _, e := range edges {
			if !dropped[e.From] {
				kept = append(kept, e)
			}
		}
		c.Inputs[port] = kept
	}
	c.Deps = nil
	for _, u := range inst.Deps {
		if !dropped[u] {
			c.Deps = append(c.Deps, u)
		}
	}
	return &c
}

// decide evaluates g once. missing lists the upstream instances whose
// metrics are not recorded yet (nothing is decided then). Every instance
// under g depends on all of g.From and is admitted only once they have
// been dealt with, so the outcome, missing included, is the same for all
// of them: it is kept, and the metrics are looked up once per gate.
func (s *selector) decide(ctx context.Context, g *spec.Gate) (*choice, []string, error) {
	if c, ok := s.decided[g]; ok {
		return c, nil, nil
	}
	if err, ok := s.failed[g]; ok {
		return nil, nil, err
	}
	if missing, ok := s.waiting[g]; ok {
		return nil, missing, nil
	}
	vals := make([]float64, len(g.Candidates))
	var missing []string
	for i, u := range g.From {
		if why, ok := s.notChosen[u.ID]; ok {
			return nil, nil, s.fail(g, fmt.Errorf("foreach %s: %s reads %s, which was not chosen (%s)", g.Key, g.Select.Describe(), u.ID, why))
		}
		key, ok := s.keys[u.ID]
		if !ok {
			missing = append(missing, u.ID)
			continue
		}
		ex, ok, err := s.store.Lookup(ctx, key)
		if err != nil {
			return nil, nil, fmt.Errorf("foreach %s: metrics of %s: %w", g.Key, u.ID, err)
		}
		if !ok {
			missing = append(missing, u.ID)
			continue
		}
		m, err := s.store.Metrics(ctx, ex.ID)
		if err != nil {
			return nil, nil, fmt.Errorf("foreach %s: metrics of %s: %w", g.Key, u.ID, err)
		}
		_, name := g.Select.Resolve(g.Candidates[i])
		v, ok := m[name]
		if !ok {
			return nil, nil, s.fail(g, fmt.Errorf("foreach %s: %s: %s records no metric %q; it has: %s",
				g.Key, g.Select.Describe(), u.ID, name, metricList(m, name)))
		}
		if math.IsNaN(v) {
			return nil, nil, s.fail(g, fmt.Errorf("foreach %s: %s: metric %s of %s is NaN, so candidate %s cannot be ranked",
				g.Key, g.Select.Describe(), name, u.ID, g.Candidates[i]))
		}
		vals[i] = v
	}
	if len(missing) > 0 {
		s.waiting[g] = missing
		return nil, missing, nil
	}
	c := choose(g, vals)
	s.decided[g] = c
	return c, nil, nil
}

func (s *selector) fail(g *spec.Gate, err error) error {
	s.failed[g] = err
	return err
}

// metricList lists the metric names m has, those sharing the wanted
// name's first segment first, bounded so that an error stays readable.
func metricList(m map[string]float64, want string) string {
	if len(m) == 0 {
		return "no metrics at all"
	}
	prefix, _, _ := strings.Cut(want, ".")
	var near, far []string
	for k := range m {
		if strings.HasPrefix(k, prefix+".") || k == prefix {
			near = append(near, k)
		} else {
			far = append(far, k)
		}
	}
	sort.Strings(near)
	sort.Strings(far)
	all := append(near, far...)
	const show = 40
	if len(all) > show {
		return strings.Join(all[:show], ", ") + fmt.Sprintf(", ... (%d more)", len(all)-show)
	}
	return strings.Join(all, ", ")
}

// choose applies g's rule to the candidates' metric values. Ranks are by
// value (highest first for top and above, lowest first for bottom); equal
// values keep the order of the candidates in from, which is the tie rule.
func choose(g *spec.Gate, vals []float64) *choice {
	sel := g.Select
	_, metric := sel.Resolve("{" + g.Key + "}")
	n := len(vals)
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		if sel.Mode == spec.SelectBottom {
			return vals[order[a]] < vals[order[b]]
		}
		return vals[order[a]] > vals[order[b]]
	})
	c := &choice{chosen: map[string]bool{}, reasons: map[string]string{}}
	// A tie across the cut is decided by candidate order; say so on both
	// sides of it.
	tied := map[int]bool{}
	if sel.Mode != spec.SelectAbove && sel.K < n && vals[order[sel.K-1]] == vals[order[sel.K]] {
		for _, i := range order {
			if vals[i] == vals[order[sel.K-1]] {
				tied[i] = true
			}
		}
	}
	for rank, i := range order {
		label := g.Candidates[i]
		// "subj01 chosen: M 0.52, rank 1 of 8 (top 3)" or, for above,
		// "subj01 chosen: M 0.52 > 0.3, rank 1 of 8".
		ok := rank < sel.K
		rule := fmt.Sprintf(", rank %d of %d (%s %d)", rank+1, n, sel.Mode, sel.K)
		if sel.Mode == spec.SelectAbove {
			ok = vals[i] > sel.Threshold
			cmp := " <= "
			if ok {
				cmp = " > "
			}
			rule = fmt.Sprintf("%s%s, rank %d of %d", cmp, formatValue(sel.Threshold), rank+1, n)
		}
		word := "not chosen"
		if ok {
			word = "chosen"
		}
		c.chosen[label] = ok
		r := fmt.Sprintf("%s %s: %s %s%s", label, word, metric, formatValue(vals[i]), rule)
		if tied[i] {
			r += "; tie at the cut broken by candidate order"
		}
		c.reasons[label] = r
	}
	return c
}

func formatValue(v float64) string { return fmt.Sprintf("%.4g", v) }

// Chosen lists, per stage with a selecting foreach key, the values the
// executions of one run ran for: "probe_cl" -> "subject" -> [subj01].
// Instances are matched by ID against s's expansion rule, so s must be the
// spec (variant and overrides applied) the run ran.
func Chosen(s *spec.Spec, instances []string) map[string]map[string][]string {
	out := map[string]map[string][]string{}
	for _, st := range s.Stages {
		for ki, k := range st.Foreach {
			if k.Select == nil {
				continue
			}
			var vals []string
			for _, label := range k.Labels() {
				for _, id := range instances {
					if instanceValue(id, st.Name, ki, len(st.Foreach)) == label {
						vals = append(vals, label)
						break
					}
				}
			}
			if out[st.Name] == nil {
				out[st.Name] = map[string][]string{}
			}
			out[st.Name][k.Name] = vals
		}
	}
	return out
}

// instanceValue returns the i-th of n foreach values in an instance ID
// "stage[v1,...,vn]" of stage, or "" when id is not one.
func instanceValue(id, stage string, i, n int) string {
	rest, ok := strings.CutPrefix(id, stage+"[")
	if !ok || !strings.HasSuffix(rest, "]") {
		return ""
	}
	parts := strings.Split(strings.TrimSuffix(rest, "]"), ",")
	if len(parts) != n {
		return "" // a value with a comma: ambiguous, not counted
	}
	return parts[i]
}
