package spec

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Selection modes of a foreach key whose values are chosen at run time.
const (
	SelectTop    = "top"    // the k candidates with the highest metric
	SelectBottom = "bottom" // the k candidates with the lowest metric
	SelectAbove  = "above"  // every candidate whose metric exceeds a threshold
)

// selectKeys are the keys of a selecting foreach entry, in the order
// documented in specs/README.md.
var selectKeys = []string{"from", SelectTop, SelectBottom, SelectAbove, "by"}

// Selection chooses some of a foreach key's candidate values (the key's
// Values) from a metric that an upstream stage instance records for each
// candidate:
//
//	foreach:
//	  subject: {from: ${params.subjects}, top: 3, by: "ridge[{subject}].group.higher.feat_control.mean_r"}
//
// The stage is expanded for every candidate, so an instance's ID and key
// are those a hand-written list would give; the engine decides at run
// time, once the named upstream instances have succeeded, which instances
// run and which are "not chosen".
type Selection struct {
	// Mode is SelectTop, SelectBottom or SelectAbove.
	Mode string
	// K is how many candidates top and bottom choose.
	K int
	// Threshold is the value a candidate's metric must exceed for above.
	Threshold float64
	// By is the reference as written, with {KEY} standing for a candidate:
	// "ridge[{subject}].group.higher.feat_control.mean_r".
	By string
	// Stage is the upstream stage By names ("ridge").
	Stage string
	// Pos is the position of the key's mapping.
	Pos Pos
	// ByPos is the position of the by value.
	ByPos Pos

	key string // the foreach key {KEY} stands for
}

// Key is the foreach key the selection chooses values of.
func (s *Selection) Key() string { return s.key }

// Resolve returns the upstream instance ID and the metric name By names
// for one candidate label: "ridge[subj01]" and "group.higher.feat_control.mean_r".
func (s *Selection) Resolve(candidate string) (instance, metric string) {
	by := strings.ReplaceAll(s.By, "{"+s.key+"}", candidate)
	instance, metric, _ = splitBy(by)
	return instance, metric
}

// Describe renders the selection rule for plan output and errors:
// "top 3 by ridge[{subject}].group.higher.feat_control.mean_r".
func (s *Selection) Describe() string { return s.Rule() + " by " + s.By }

// Labels returns k's values formatted as instance labels, in order.
func (k ForeachKey) Labels() []string {
	out := make([]string, len(k.Values))
	for i, v := range k.Values {
		out[i], _ = formatScalar(v)
	}
	return out
}

// Rule renders the rule without its metric: "top 3" or "above 0.3".
func (s *Selection) Rule() string {
	if s.Mode == SelectAbove {
		return "above " + formatFloat(s.Threshold)
	}
	return fmt.Sprintf("%s %d", s.Mode, s.K)
}

// splitBy splits a by reference into its instance ("stage" or
// "stage[...]") and metric parts. The metric may itself contain dots and
// brackets; the instance ends at the first '.' outside brackets.
func splitBy(by string) (instance, metric string, err error) {
	depth := 0
	for i, r := range by {
		switch r {
		case '[':
			depth++
		case ']':
			depth--
		case '.':
			if depth == 0 {
				if by[i+1:] == "" {
					return by[:i], "", fmt.Errorf("bad by %q: nothing after the '.': want STAGE[{KEY}].METRIC", by)
				}
				return by[:i], by[i+1:], nil
			}
		}
	}
	return by, "", fmt.Errorf("bad by %q: no metric: want STAGE[{KEY}].METRIC, e.g. ridge[{subject}].group.higher.feat_control.mean_r", by)
}

// buildSelection reads a selecting foreach entry `key: {from: [...],
// top|bottom: K | above: X, by: "stage[{key}].metric"}`.
func buildSelection(p *pair, errs *ErrorList) (ForeachKey, bool) {
	n := p.val
	fk := ForeachKey{Name: p.key, Pos: p.keyPos}
	sel := &Selection{Pos: n.pos, key: p.key}
	checkKeys(n, " in foreach "+p.key, selectKeys, "selection key", errs)
	ok := true
	from := n.get("from")
	switch {
	case from == nil:
		errs.add(n.pos, "foreach %s: a selection needs from: the candidate values, e.g. {from: ${params.subjects}, top: 3, by: ...}", p.key)
		ok = false
	case from.val.kind != seqNode || len(from.val.items) == 0:
		errs.add(from.val.pos, "foreach %s: from must be a non-empty list of candidate values, got %s", p.key, from.val.describe())
		ok = false
	default:
		fk.Values, ok = foreachValues(p.key, from.val.items, errs)
	}
	var modes []string
	for _, m := range []string{SelectTop, SelectBottom, SelectAbove} {
		q := n.get(m)
		if q == nil {
			continue
		}
		modes = append(modes, m)
		sel.Mode = m
		if m == SelectAbove {
			x, isNum := q.val.val.(float64)
			if i, isInt := q.val.val.(int64); isInt {
				x, isNum = float64(i), true
			}
			if q.val.kind != scalarNode || !isNum || math.IsNaN(x) || math.IsInf(x, 0) {
				errs.add(q.val.pos, "foreach %s: above must be a number (the threshold a candidate's metric must exceed), got %s", p.key, q.val.describe())
				ok = false
			}
			sel.Threshold = x
			continue
		}
		k, isInt := intValue(q.val)
		switch {
		case !isInt || k < 1:
			errs.add(q.val.pos, "foreach %s: %s must be a positive integer (how many candidates to choose), got %s", p.key, m, q.val.describe())
			ok = false
		case len(fk.Values) > 0 && k > int64(len(fk.Values)):
			errs.add(q.val.pos, "foreach %s: %s %d is more than the %d candidates in from; choose at most %d or list every value instead", p.key, m, k, len(fk.Values), len(fk.Values))
			ok = false
		default:
			sel.K = int(k)
		}
	}
	switch len(modes) {
	case 0:
		errs.add(n.pos, "foreach %s: a selection needs one of top: K, bottom: K or above: X", p.key)
		ok = false
	case 1:
	default:
		errs.add(n.pos, "foreach %s: give one of top, bottom and above, not %s", p.key, strings.Join(modes, " and "))
		ok = false
	}
	by := n.get("by")
	if by == nil {
		errs.add(n.pos, "foreach %s: a selection needs by: the metric to rank candidates by, e.g. \"ridge[{%s}].group.higher.feat_control.mean_r\"", p.key, p.key)
		return fk, false
	}
	sel.ByPos = by.val.pos
	s, isStr := by.val.val.(string)
	if by.val.kind != scalarNode || !isStr || s == "" {
		errs.add(by.val.pos, "foreach %s: by must be a string STAGE[{%s}].METRIC, got %s", p.key, p.key, by.val.describe())
		return fk, false
	}
	sel.By = s
	if !strings.Contains(s, "{"+p.key+"}") {
		errs.add(by.val.pos, "foreach %s: by %q does not mention {%s}: name the upstream instance per candidate, e.g. \"ridge[{%s}].METRIC\"", p.key, s, p.key, p.key)
		ok = false
	}
	inst, _, err := splitBy(s)
	if err != nil {
		errs.add(by.val.pos, "foreach %s: %s", p.key, err)
		return fk, false
	}
	stage, _, _ := strings.Cut(inst, "[")
	if !stageNameRE.MatchString(stage) || strings.Contains(inst, "[") && !strings.HasSuffix(inst, "]") {
		errs.add(by.val.pos, "foreach %s: bad by %q: want STAGE[{%s}].METRIC naming an upstream stage instance", p.key, s, p.key)
		return fk, false
	}
	sel.Stage = stage
	if ok {
		fk.Select = sel
	}
	return fk, ok
}

// foreachValues reads a list of scalar foreach values, refusing
// duplicates.
func foreachValues(key string, items []*node, errs *ErrorList) ([]any, bool) {
	var out []any
	ok := true
	seen := map[string]Pos{}
	for _, it := range items {
		if it.kind != scalarNode || it.val == nil {
			errs.add(it.pos, "foreach %s: values must be strings, numbers or booleans, got %s", key, it.describe())
			ok = false
			continue
		}
		label, _ := formatScalar(it.val)
		if prev, dup := seen[label]; dup {
			errs.add(it.pos, "foreach %s: value %q listed twice (first at %d:%d)", key, label, prev.Line, prev.Col)
			ok = false
			continue
		}
		seen[label] = it.pos
		out = append(out, it.val)
	}
	return out, ok
}

// selectionRefs lists, as input-like refs, the upstream stages that st's
// selecting foreach keys read metrics of: they order stages and close
// dependency cycles like inputs do.
func (c *checker) selectionRefs(st *Stage) []Ref {
	var refs []Ref
	for _, k := range c.fanout[st.Name] {
		if k.Select != nil {
			refs = append(refs, Ref{Stage: k.Select.Stage, Pos: k.Select.ByPos})
		}
	}
	return refs
}

// upstreamInputs is st's inputs plus a pseudo input "foreach" holding its
// selection refs, for ordering and cycle checks.
func (c *checker) upstreamInputs(st *Stage) []Input {
	refs := c.selectionRefs(st)
	if len(refs) == 0 {
		return st.Inputs
	}
	return append(append([]Input(nil), st.Inputs...), Input{Port: "foreach", Refs: refs, Pos: st.FieldPos["foreach"]})
}

// checkSelections reports selections that name unknown stages; the
// per-candidate instances are checked after expansion.
func (c *checker) checkSelections(st *Stage, names []string) {
	for _, k := range st.Foreach {
		if k.Select == nil {
			continue
		}
		if _, ok := c.byName[k.Select.Stage]; !ok {
			c.errs.add(k.Select.ByPos, "foreach %s: by names unknown stage %q%s", k.Name, k.Select.Stage, didYouMean(k.Select.Stage, names, false))
			c.broken = true
		}
		if k.Select.Stage == st.Name {
			c.errs.add(k.Select.ByPos, "foreach %s: stage %s cannot select its values by its own metrics", k.Name, st.Name)
			c.broken = true
		}
	}
}

// Gate binds an instance to one selecting foreach key: the engine runs the
// instance only if its value for Key is among those the selection chooses.
type Gate struct {
	Key    string
	Select *Selection
	// Candidates are the key's values as labels, in spec order (the tie
	// rule's order); From holds the upstream instance By names for each.
	Candidates []string
	From       []*Instance
}

// selectDeps makes inst depend on the upstream instances its selections
// read (without feeding them to any port, so its key is unchanged) and
// records its gates. gates caches one Gate per selecting key of a stage.
func (c *checker) selectDeps(inst *Instance, g *Graph, gates map[*Selection]*Gate) {
	for _, k := range c.fanout[inst.Stage.Name] {
		if k.Select == nil {
			continue
		}
		gate, seen := gates[k.Select]
		if !seen {
			gate = &Gate{Key: k.Name, Select: k.Select}
			for _, v := range k.Values {
				label, _ := formatScalar(v)
				id, _ := k.Select.Resolve(label)
				u := g.ByID[id]
				if u == nil {
					var have []string
					for _, x := range g.Instances {
						if x.Stage.Name == k.Select.Stage {
							have = append(have, x.ID)
						}
					}
					c.errs.add(k.Select.ByPos, "foreach %s: by %q names %s for candidate %s, which is not an instance of stage %s (its instances: %s)",
						k.Name, k.Select.By, id, label, k.Select.Stage, strings.Join(have, ", "))
					gate = nil
					break
				}
				gate.Candidates = append(gate.Candidates, label)
				gate.From = append(gate.From, u)
			}
			gates[k.Select] = gate
		}
		if gate == nil {
			continue
		}
		inst.Gates = append(inst.Gates, gate)
		for _, u := range gate.From {
			if !slices.Contains(inst.Deps, u) {
				inst.Deps = append(inst.Deps, u)
			}
		}
	}
}
