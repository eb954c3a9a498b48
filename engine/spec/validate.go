package spec

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/voxflow/voxflow/stages"
)

// maxInstances bounds a spec's expansion; a cartesian product past it is a
// typo, not a study.
const maxInstances = 100000

// Validate checks s against the stage kinds and returns an ErrorList with
// every problem, Parse's included: unknown keys, kinds, ports, refs and
// params (with did-you-mean hints), type, range and enum violations,
// missing required params and inputs, single ports fed several artifacts,
// dependency and foreach cycles, and foreach bindings that match nothing.
// known optionally lists the kind names to show when a kind is unknown.
func Validate(s *Spec, kinds Kinds, known ...string) error {
	_, errs := check(s, kinds, known)
	return errs.err()
}

// checker holds the state of one validation.
type checker struct {
	s      *Spec
	errs   ErrorList
	byName map[string]*Stage
	descs  map[string]stages.Description // stage name -> kind, for known kinds
	fanout map[string][]ForeachKey       // stage name -> resolved foreach keys
	broken bool                          // the graph cannot be built
}

// check validates s and, when its structure allows, builds the graph.
func check(s *Spec, kinds Kinds, known []string) (*Graph, ErrorList) {
	if s == nil {
		return nil, ErrorList{{Pos: Pos{File: "spec"}, Msg: "no spec to validate (Parse could not read it)"}}
	}
	c := &checker{
		s:      s,
		errs:   append(ErrorList(nil), s.problems...),
		byName: map[string]*Stage{},
		descs:  map[string]stages.Description{},
		fanout: map[string][]ForeachKey{},
	}
	if kinds == nil {
		kinds = KindsOf()
	}
	var names []string
	for _, st := range s.Stages {
		c.byName[st.Name] = st
		names = append(names, st.Name)
	}
	knownKinds := append(append([]string(nil), known...), slices.Sorted(maps.Keys(s.Plugins))...)
	for _, st := range s.Stages {
		if st.Uses == "" {
			c.broken = true
			continue
		}
		d, ok := kinds(st.Uses)
		if !ok {
			c.broken = true
			msg := fmt.Sprintf("unknown stage kind %q", st.Uses)
			if len(knownKinds) > 0 {
				msg += didYouMean(st.Uses, knownKinds, true)
			}
			c.errs.add(st.FieldPos["uses"], "%s", msg)
			continue
		}
		c.descs[st.Name] = d
	}
	for _, st := range s.Stages {
		c.resolveFanout(st, nil)
	}
	for _, st := range s.Stages {
		c.checkInputs(st, names)
		c.checkSelections(st, names)
	}
	c.checkCycles()
	for _, st := range s.Stages {
		c.checkParams(st)
	}
	for _, o := range s.varSets {
		d, ok := c.descs[o.stage]
		if !ok {
			continue
		}
		var declared []string
		for _, ps := range d.Params {
			declared = append(declared, ps.Name)
		}
		if !contains(declared, o.param) {
			c.errs.add(o.pos, "unknown param %q for kind %s%s", o.param, d.Kind, didYouMean(o.param, declared, true))
		}
	}
	if c.broken {
		return nil, c.errs
	}
	g := c.expand()
	return g, c.errs
}

// resolveFanout returns st's foreach keys, following `foreach: other`.
func (c *checker) resolveFanout(st *Stage, path []string) []ForeachKey {
	if keys, ok := c.fanout[st.Name]; ok {
		return keys
	}
	if st.ForeachFrom == "" {
		c.fanout[st.Name] = st.Foreach
		return st.Foreach
	}
	for i, p := range path {
		if p == st.Name {
			cycle := append(append([]string(nil), path[i:]...), st.Name)
			c.errs.add(st.FieldPos["foreach"], "foreach cycle: %s", strings.Join(cycle, " -> "))
			c.broken = true
			c.fanout[st.Name] = nil
			return nil
		}
	}
	from, ok := c.byName[st.ForeachFrom]
	if !ok {
		var names []string
		for _, o := range c.s.Stages {
			names = append(names, o.Name)
		}
		c.errs.add(st.FieldPos["foreach"], "foreach %q: no such stage%s", st.ForeachFrom, didYouMean(st.ForeachFrom, names, false))
		c.broken = true
		c.fanout[st.Name] = nil
		return nil
	}
	keys := c.resolveFanout(from, append(path, st.Name))
	if _, done := c.fanout[st.Name]; !done {
		c.fanout[st.Name] = keys
	}
	return c.fanout[st.Name]
}

// checkInputs checks ports and refs of one stage against the kinds.
func (c *checker) checkInputs(st *Stage, names []string) {
	d, known := c.descs[st.Name]
	var ports []string
	for _, p := range d.Inputs {
		ports = append(ports, p.Name)
	}
	bound := map[string]bool{}
	for _, in := range st.Inputs {
		bound[in.Port] = true
		var spec *stages.PortSpec
		for i := range d.Inputs {
			if d.Inputs[i].Name == in.Port {
				spec = &d.Inputs[i]
			}
		}
		if known && spec == nil {
			if len(ports) == 0 {
				c.errs.add(in.Pos, "unknown input port %q: kind %s takes no inputs", in.Port, d.Kind)
			} else {
				c.errs.add(in.Pos, "unknown input port %q for kind %s%s", in.Port, d.Kind, didYouMean(in.Port, ports, true))
			}
		}
		if spec != nil && !spec.Many && len(in.Refs) > 1 {
			c.errs.add(st.FieldPos["inputs."+in.Port], "input %s of kind %s takes one artifact, got a list of %d references", in.Port, d.Kind, len(in.Refs))
		}
		for _, r := range in.Refs {
			up, ok := c.byName[r.Stage]
			if !ok {
				c.errs.add(r.Pos, "input %s: unknown stage %q%s", in.Port, r.Stage, didYouMean(r.Stage, names, false))
				c.broken = true
				continue
			}
			ud, uknown := c.descs[up.Name]
			if r.Output == "" || !uknown {
				continue
			}
			var outs []string
			for _, o := range ud.Outputs {
				outs = append(outs, o.Name)
			}
			if !contains(outs, r.Output) {
				hint := " (it declares no outputs; refer to the whole instance output as " + r.Stage + ")"
				if len(outs) > 0 {
					hint = didYouMean(r.Output, outs, true)
				}
				c.errs.add(r.Pos, "input %s: stage %s (kind %s) has no output %q%s", in.Port, r.Stage, ud.Kind, r.Output, hint)
			}
		}
	}
	for _, p := range d.Inputs {
		if !p.Optional && !bound[p.Name] {
			c.errs.add(st.Pos, "stage %s: missing required input %q for kind %s (inputs: %s)", st.Name, p.Name, d.Kind, strings.Join(ports, ", "))
		}
	}
}

// checkCycles reports dependency cycles through input refs, each once.
func (c *checker) checkCycles() {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	var stackRef []Ref
	seen := map[string]bool{}
	var visit func(st *Stage)
	visit = func(st *Stage) {
		color[st.Name] = grey
		stack = append(stack, st.Name)
		for _, in := range c.upstreamInputs(st) {
			for _, r := range in.Refs {
				up, ok := c.byName[r.Stage]
				if !ok {
					continue
				}
				switch color[up.Name] {
				case white:
					stackRef = append(stackRef, r)
					visit(up)
					stackRef = stackRef[:len(stackRef)-1]
				case grey:
					i := len(stack) - 1
					for stack[i] != up.Name {
						i--
					}
					// stack[i..] depends on the next; print the cycle in data-flow order.
					cyc := append([]string(nil), stack[i:]...)
					for l, r := 0, len(cyc)-1; l < r; l, r = l+1, r-1 {
						cyc[l], cyc[r] = cyc[r], cyc[l]
					}
					key := canonicalCycle(cyc)
					c.broken = true
					if !seen[key] {
						seen[key] = true
						cyc = append([]string{up.Name}, cyc...)
						// rotate so the printed cycle starts at the referenced stage
						c.errs.add(r.Pos, "dependency cycle (data flows along the arrows): %s", strings.Join(rotateCycle(cyc), " -> "))
					}
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[st.Name] = black
	}
	for _, st := range c.s.Stages {
		if color[st.Name] == white {
			visit(st)
		}
	}
}

// rotateCycle turns [u, a, b, ..., u'] (u first, then the stack reversed,
// ending before u repeats) into "u -> ... -> u" order.
func rotateCycle(c []string) []string {
	out := []string{c[0]}
	for _, s := range c[1:] {
		if s == c[0] {
			continue
		}
		out = append(out, s)
	}
	return append(out, c[0])
}

// canonicalCycle names a cycle independent of where it was entered.
func canonicalCycle(c []string) string {
	sorted := append([]string(nil), c...)
	sort.Strings(sorted)
	return strings.Join(sorted, ",")
}

// checkParams resolves the stage's params for every foreach binding.
func (c *checker) checkParams(st *Stage) {
	d, ok := c.descs[st.Name]
	if !ok {
		return
	}
	keys := c.fanout[st.Name]
	if n := productSize(keys); n > maxInstances {
		c.errs.add(st.Pos, "stage %s: foreach expands to more than %d instances", st.Name, maxInstances)
		c.broken = true
		return
	}
	r := newResolver(st, d, keyNames(keys), c.s.Dir)
	for _, pe := range r.errs {
		c.errs.add(st.posOf(pe.path), "%s", pe.msg)
	}
	seen := map[paramError]bool{}
	eachBinding(keys, func(b map[string]any) {
		_, perrs := r.resolve(b)
		for _, pe := range perrs {
			if !seen[pe] {
				seen[pe] = true
				c.errs.add(st.posOf(pe.path), "%s", pe.msg)
			}
		}
	})
}

// posOf maps a param error path to the closest recorded position.
func (st *Stage) posOf(path string) Pos {
	if k, ok := strings.CutPrefix(path, "key:"); ok {
		if p, ok := st.keyPos[k]; ok {
			return p
		}
		path = k
	}
	for path != "" && path != "stage" {
		if p, ok := st.FieldPos[path]; ok {
			return p
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return st.Pos
}

func keyNames(keys []ForeachKey) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.Name
	}
	return out
}

// productSize is the number of instances keys expand to, saturating.
func productSize(keys []ForeachKey) int {
	n := 1
	for _, k := range keys {
		n *= len(k.Values)
		if n > maxInstances || n == 0 {
			return max(n, 0)
		}
	}
	return n
}

// eachBinding calls f for every combination of foreach values, the last
// key varying fastest.
func eachBinding(keys []ForeachKey, f func(map[string]any)) {
	idx := make([]int, len(keys))
	for {
		b := make(map[string]any, len(keys))
		for i, k := range keys {
			if len(k.Values) == 0 {
				return
			}
			b[k.Name] = k.Values[idx[i]]
		}
		f(b)
		i := len(keys) - 1
		for ; i >= 0; i-- {
			idx[i]++
			if idx[i] < len(keys[i].Values) {
				break
			}
			idx[i] = 0
		}
		if i < 0 {
			return
		}
	}
}
