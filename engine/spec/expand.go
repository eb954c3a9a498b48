package spec

import (
	"strings"

	"github.com/voxflow/voxflow/stages"
)

// Instance is one stage instance after fan-out.
type Instance struct {
	// ID is "stage" without foreach, else "stage[v1,v2]" with the values in
	// foreach key order, e.g. "tune_cl[subj01,FFA-1]".
	ID    string
	Stage *Stage
	// Desc is the stage kind's description.
	Desc stages.Description
	// Labels are the foreach bindings, formatted; LabelKeys is their order.
	Labels    map[string]string
	LabelKeys []string
	// Params are resolved: defaults applied, foreach keys bound to declared
	// params of the same name, ${each.k} substituted, values normalised to
	// the declared types (int64, float64, string, bool, []any, map[string]any).
	Params stages.Params
	// Inputs maps each bound port to its edges: refs in spec order, then
	// upstream instances in their order.
	Inputs map[string][]Edge
	// Deps are the distinct upstream instances, in order of first use.
	Deps []*Instance
	// Isolate is the effective isolation: the stage's, else the spec's,
	// else the kind's, else "inline".
	Isolate string
	// Gates are the selecting foreach keys the instance runs under (see
	// Selection); their upstream instances are in Deps but feed no port.
	Gates []*Gate
}

// Edge feeds one upstream instance's output (or, with Output "", its whole
// output directory) to an input port.
type Edge struct {
	From   *Instance
	Output string
}

// Graph is an expanded spec.
type Graph struct {
	// Instances are in a deterministic topological order: stages ordered
	// by dependencies with ties broken by file order, instances of one
	// stage in foreach order (last key varying fastest).
	Instances []*Instance
	ByID      map[string]*Instance
}

// Expand validates s and expands it into instances and edges. An upstream
// instance u feeds a downstream instance d when their labels agree on every
// foreach key both stages have; keys only the upstream has fan in. It
// returns the same ErrorList Validate would on an invalid spec.
func Expand(s *Spec, kinds Kinds, known ...string) (*Graph, error) {
	g, errs := check(s, kinds, known)
	if err := errs.err(); err != nil {
		return nil, err
	}
	return g, nil
}

// expand builds the graph; it runs only on a structurally sound spec (all
// kinds and refs known, no cycles), and adds matching errors to c.errs.
func (c *checker) expand() *Graph {
	g := &Graph{ByID: map[string]*Instance{}}
	byStage := map[string][]*Instance{}
	gates := map[*Selection]*Gate{}
	for _, st := range c.topoStages() {
		keys := c.fanout[st.Name]
		names := keyNames(keys)
		d := c.descs[st.Name]
		r := newResolver(st, d, names, c.s.Dir)
		eachBinding(keys, func(b map[string]any) {
			inst := &Instance{Stage: st, Desc: d, Labels: map[string]string{}, LabelKeys: names, Inputs: map[string][]Edge{}}
			vals := make([]string, len(names))
			for i, k := range names {
				vals[i], _ = formatScalar(b[k])
				inst.Labels[k] = vals[i]
			}
			inst.ID = st.Name
			if len(names) > 0 {
				inst.ID += "[" + strings.Join(vals, ",") + "]"
			}
			inst.Params, _ = r.resolve(b) // errors were reported by checkParams
			inst.Isolate = firstNonEmpty(st.Isolate, c.s.Isolate, d.Isolate, "inline")
			c.connect(inst, byStage)
			c.selectDeps(inst, g, gates)
			byStage[st.Name] = append(byStage[st.Name], inst)
			g.Instances = append(g.Instances, inst)
			g.ByID[inst.ID] = inst
		})
	}
	return g
}

// connect adds inst's input edges from already-built upstream instances.
func (c *checker) connect(inst *Instance, byStage map[string][]*Instance) {
	st := inst.Stage
	dep := map[*Instance]bool{}
	for _, in := range st.Inputs {
		var port *stages.PortSpec
		for i := range inst.Desc.Inputs {
			if inst.Desc.Inputs[i].Name == in.Port {
				port = &inst.Desc.Inputs[i]
			}
		}
		var edges []Edge
		for _, r := range in.Refs {
			shared := sharedKeys(c.fanout[r.Stage], inst.Labels)
			n := 0
			for _, u := range byStage[r.Stage] {
				if agree(u, inst, shared) {
					edges = append(edges, Edge{From: u, Output: r.Output})
					n++
					if !dep[u] {
						dep[u] = true
						inst.Deps = append(inst.Deps, u)
					}
				}
			}
			if n == 0 {
				c.errs.add(r.Pos, "input %s of %s: no instance of %s has %s", in.Port, inst.ID, r.Stage, labelText(inst, shared))
			}
		}
		if port != nil && !port.Many && len(edges) > 1 {
			var fanIn []string
			for _, r := range in.Refs {
				for _, k := range keyNames(c.fanout[r.Stage]) {
					if _, ok := inst.Labels[k]; !ok && !contains(fanIn, k) {
						fanIn = append(fanIn, k)
					}
				}
			}
			c.errs.add(st.FieldPos["inputs."+in.Port], "input %s of kind %s takes one artifact, but %d would arrive: the upstream fans out over %s, which stage %s does not share; add that foreach to %s or use a port that takes many",
				in.Port, inst.Desc.Kind, len(edges), strings.Join(fanIn, ", "), st.Name, st.Name)
		}
		inst.Inputs[in.Port] = edges
	}
}

// sharedKeys lists upstream foreach keys the downstream instance also has.
func sharedKeys(up []ForeachKey, labels map[string]string) []string {
	var out []string
	for _, k := range up {
		if _, ok := labels[k.Name]; ok {
			out = append(out, k.Name)
		}
	}
	return out
}

func agree(u, d *Instance, keys []string) bool {
	for _, k := range keys {
		if u.Labels[k] != d.Labels[k] {
			return false
		}
	}
	return true
}

func labelText(inst *Instance, keys []string) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + inst.Labels[k]
	}
	return strings.Join(parts, ", ")
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// topoStages orders stages so every stage follows its inputs' stages;
// among ready stages the earliest in the file comes first.
func (c *checker) topoStages() []*Stage {
	indeg := map[string]int{}
	users := map[string][]*Stage{}
	for _, st := range c.s.Stages {
		ups := map[string]bool{}
		for _, in := range c.upstreamInputs(st) {
			for _, r := range in.Refs {
				if !ups[r.Stage] {
					ups[r.Stage] = true
					indeg[st.Name]++
					users[r.Stage] = append(users[r.Stage], st)
				}
			}
		}
	}
	done := map[string]bool{}
	var out []*Stage
	for len(out) < len(c.s.Stages) {
		progressed := false
		for _, st := range c.s.Stages {
			if done[st.Name] || indeg[st.Name] > 0 {
				continue
			}
			done[st.Name] = true
			out = append(out, st)
			for _, u := range users[st.Name] {
				indeg[u.Name]--
			}
			progressed = true
			break
		}
		if !progressed {
			// Unreachable: check() builds no graph for a cyclic spec. Fail
			// loudly rather than loop.
			c.errs.add(c.s.Pos, "internal error: stages of spec %q cannot be ordered", c.s.Name)
			return out
		}
	}
	return out
}
