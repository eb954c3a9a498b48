package spec

import (
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

var (
	// nameRE is for spec, variant and plugin names.
	nameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	// stageNameRE excludes '.', which separates a ref's stage from its
	// output, and brackets, which delimit instance IDs.
	stageNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)
)

// maxRetries bounds retries: beyond a handful a failing stage is broken,
// not flaky.
const maxRetries = 100

// build fills s from the (overridden, interpolated) tree.
func build(s *Spec, root *node, errs *ErrorList) {
	s.FieldPos = map[string]Pos{}
	s.Params = map[string]any{}
	s.Plugins = map[string]string{}
	s.Variants = map[string]map[string]any{}

	if p := root.get("name"); p == nil {
		errs.add(root.pos, "missing name: every spec needs `name: NAME`")
	} else {
		s.FieldPos["name"] = p.val.pos
		if name, ok := p.val.val.(string); !ok || p.val.kind != scalarNode {
			errs.add(p.val.pos, "name must be a string, got %s", p.val.describe())
		} else if !nameRE.MatchString(name) {
			errs.add(p.val.pos, "bad spec name %q: want letters, digits, '_', '.', '-'", name)
		} else {
			s.Name = name
		}
	}
	if p := root.get("description"); p != nil {
		s.FieldPos["description"] = p.val.pos
		if d, ok := p.val.val.(string); ok && p.val.kind == scalarNode {
			s.Description = d
		} else if !p.val.isNull() {
			errs.add(p.val.pos, "description must be a string, got %s", p.val.describe())
		}
	}
	if p := root.get("params"); p != nil && !p.val.isNull() {
		if p.val.kind != mapNode {
			errs.add(p.val.pos, "params must be a mapping of name to value, got %s", p.val.describe())
		} else {
			for _, q := range p.val.pairs {
				if !refNameRE.MatchString(q.key) {
					errs.add(q.keyPos, "bad param name %q: want letters, digits, '_' and '-', not starting with a digit", q.key)
				}
				s.Params[q.key] = q.val.plain()
				q.val.recordPos(s.FieldPos, "params."+q.key)
			}
		}
	}
	if p := root.get("isolate"); p != nil {
		s.FieldPos["isolate"] = p.val.pos
		s.Isolate = isolation(p.val, errs)
	}
	if p := root.get("executor"); p != nil && !p.val.isNull() {
		buildExecutor(s, p.val, errs)
	}
	if p := root.get("plugins"); p != nil && !p.val.isNull() {
		if p.val.kind != mapNode {
			errs.add(p.val.pos, "plugins must be a mapping of name to binary path, got %s", p.val.describe())
		} else {
			for _, q := range p.val.pairs {
				s.FieldPos["plugins."+q.key] = q.val.pos
				if !nameRE.MatchString(q.key) {
					errs.add(q.keyPos, "bad plugin name %q: want letters, digits, '_', '.', '-'", q.key)
				}
				path, ok := q.val.val.(string)
				if !ok || q.val.kind != scalarNode || path == "" {
					errs.add(q.val.pos, "plugin %s: want the path of its binary, got %s", q.key, q.val.describe())
					continue
				}
				s.Plugins[q.key] = absPath(s.Dir, path)
			}
		}
	}
	if p := root.get("variants"); p != nil && p.val.kind == mapNode {
		for _, v := range p.val.pairs {
			s.FieldPos["variants."+v.key] = v.keyPos
			m := map[string]any{}
			for _, o := range v.val.pairs {
				m[o.key] = o.val.plain()
			}
			s.Variants[v.key] = m
		}
	}
	p := root.get("stages")
	switch {
	case p == nil:
		errs.add(root.pos, "missing stages: a spec needs at least one stage")
		return
	case p.val.kind != mapNode:
		errs.add(p.val.pos, "stages must be a mapping of stage name to stage, got %s", p.val.describe())
		return
	case len(p.val.pairs) == 0:
		errs.add(p.val.pos, "stages is empty: a spec needs at least one stage")
	}
	for _, q := range p.val.pairs {
		s.Stages = append(s.Stages, buildStage(s, q, errs))
	}
}

func absPath(dir, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(dir, p)
}

func isolation(n *node, errs *ErrorList) string {
	v, _ := n.val.(string)
	if n.kind != scalarNode || (v != "inline" && v != "process") {
		errs.add(n.pos, "isolate must be inline or process, got %s", n.describe())
		return ""
	}
	return v
}

// buildExecutor accepts `executor: NAME` as shorthand for {type: NAME}.
// The spec knows no executor by name: the run's executor registry checks
// the type and the driver checks the options, before anything runs.
func buildExecutor(s *Spec, n *node, errs *ErrorList) {
	if t, ok := n.val.(string); ok && n.kind == scalarNode {
		n = &node{kind: mapNode, pos: n.pos, pairs: []*pair{{key: "type", keyPos: n.pos, val: &node{kind: scalarNode, val: t, pos: n.pos}}}}
	}
	if n.kind != mapNode {
		errs.add(n.pos, "executor must be a mapping such as {type: local}, got %s", n.describe())
		return
	}
	n.recordPos(s.FieldPos, "executor")
	s.Executor, _ = n.plain().(map[string]any)
	t := n.get("type")
	if t == nil {
		errs.add(n.pos, "executor needs a type: the name of an executor, such as local")
		return
	}
	if v, ok := t.val.val.(string); !ok || t.val.kind != scalarNode || v == "" {
		errs.add(t.val.pos, "executor type must be the name of an executor, such as local, got %s", t.val.describe())
	}
}

// buildStage converts one `stages:` entry.
func buildStage(s *Spec, q *pair, errs *ErrorList) *Stage {
	st := &Stage{Name: q.key, Pos: q.keyPos, With: map[string]any{}, FieldPos: map[string]Pos{}, keyPos: map[string]Pos{}}
	if !stageNameRE.MatchString(q.key) {
		errs.add(q.keyPos, "bad stage name %q: want letters, digits, '_' and '-', starting with a letter or '_'", q.key)
	}
	n := q.val
	if n.kind != mapNode {
		if n.isNull() {
			errs.add(q.keyPos, "stage %s: missing uses (the stage kind)", q.key)
		} else {
			errs.add(n.pos, "stage %s must be a mapping with uses, inputs, with, ...; got %s", q.key, n.describe())
		}
		return st
	}
	known := stageKeys
	for _, p := range n.pairs {
		if to, ok := movedStageKey(p.key); ok {
			errs.add(p.keyPos, "stage %s: %s: moved to %s: (options for whichever executor runs the stage); rename the key", q.key, p.key, to)
			known = append(known[:len(known):len(known)], p.key) // reported once, as moved
		}
	}
	checkKeys(n, " in stage "+q.key, known, "stage key", errs)
	for _, p := range n.pairs {
		st.keyPos[p.key] = p.keyPos
		st.FieldPos[p.key] = p.val.pos
	}
	if p := n.get("uses"); p == nil {
		errs.add(q.keyPos, "stage %s: missing uses (the stage kind)", q.key)
	} else if u, ok := p.val.val.(string); !ok || p.val.kind != scalarNode || u == "" {
		errs.add(p.val.pos, "uses must be a stage kind name or plugin:PATH, got %s", p.val.describe())
	} else if path, ok := strings.CutPrefix(u, "plugin:"); ok {
		if path == "" {
			errs.add(p.val.pos, "uses %q: want plugin:PATH naming a plugin binary", u)
		}
		st.Uses = "plugin:" + absPath(s.Dir, path)
	} else {
		st.Uses = u
	}
	if p := n.get("with"); p != nil && !p.val.isNull() {
		if p.val.kind != mapNode {
			errs.add(p.val.pos, "with must be a mapping of param name to value, got %s", p.val.describe())
		} else {
			for _, w := range p.val.pairs {
				st.With[w.key] = w.val.plain()
				st.keyPos["with."+w.key] = w.keyPos
				w.val.recordPos(st.FieldPos, "with."+w.key)
			}
		}
	}
	if p := n.get("inputs"); p != nil && !p.val.isNull() {
		buildInputs(st, p.val, errs)
	}
	if p := n.get("foreach"); p != nil && !p.val.isNull() {
		buildForeach(st, p.val, errs)
	}
	if p := n.get("resources"); p != nil && !p.val.isNull() {
		buildResources(st, p.val, errs)
	}
	if p := n.get("retries"); p != nil {
		if r, ok := intValue(p.val); !ok || r < 0 || r > maxRetries {
			errs.add(p.val.pos, "retries must be an integer from 0 to %d, got %s", maxRetries, p.val.describe())
		} else {
			st.Retries = int(r)
		}
	}
	if p := n.get("timeout"); p != nil {
		st.Timeout = duration(p.val, errs)
	}
	if p := n.get("isolate"); p != nil {
		st.Isolate = isolation(p.val, errs)
	}
	if p := n.get("executor"); p != nil && !p.val.isNull() {
		if p.val.kind != mapNode {
			errs.add(p.val.pos, "executor must be a mapping of options for the executor that runs the stage, got %s", p.val.describe())
		} else {
			// One executor runs the whole spec; a stage's `type` would be
			// ignored, and the stage would run where the user said it
			// should not.
			if t := p.val.get("type"); t != nil {
				errs.add(t.keyPos, "stage %s: executor: type: a stage cannot pick its own executor (the spec's executor.type or --executor runs every stage); remove the key", q.key)
			}
			st.ExecOptions, _ = p.val.plain().(map[string]any)
			p.val.recordPos(st.FieldPos, "executor")
		}
	}
	return st
}

// buildInputs reads `inputs: {port: ref | [ref, ...]}`.
func buildInputs(st *Stage, n *node, errs *ErrorList) {
	if n.kind != mapNode {
		errs.add(n.pos, "inputs must be a mapping of port to stage reference(s), got %s", n.describe())
		return
	}
	for _, p := range n.pairs {
		in := Input{Port: p.key, Pos: p.keyPos}
		st.keyPos["inputs."+p.key] = p.keyPos
		p.val.recordPos(st.FieldPos, "inputs."+p.key)
		items := []*node{p.val}
		if p.val.kind == seqNode {
			items = p.val.items
			if len(items) == 0 {
				errs.add(p.val.pos, "input %s: empty list; want at least one stage reference", p.key)
			}
		}
		for _, it := range items {
			ref, err := parseRef(it)
			if err != nil {
				errs.add(it.pos, "input %s: %s", p.key, err)
				continue
			}
			in.Refs = append(in.Refs, ref)
		}
		st.Inputs = append(st.Inputs, in)
	}
}

// parseRef reads "stage" or "stage.output".
func parseRef(n *node) (Ref, error) {
	s, ok := n.val.(string)
	if n.kind != scalarNode || !ok {
		return Ref{}, fmt.Errorf("want a stage reference STAGE or STAGE.OUTPUT, got %s", n.describe())
	}
	stage, out, _ := strings.Cut(s, ".")
	if !stageNameRE.MatchString(stage) || strings.Contains(out, ".") || (strings.Contains(s, ".") && out == "") {
		return Ref{}, fmt.Errorf("bad stage reference %q: want STAGE or STAGE.OUTPUT", s)
	}
	return Ref{Stage: stage, Output: out, Pos: n.pos}, nil
}

// buildForeach reads `foreach: {key: [values] | selection}` or
// `foreach: other`.
func buildForeach(st *Stage, n *node, errs *ErrorList) {
	if from, ok := n.val.(string); ok && n.kind == scalarNode {
		if !stageNameRE.MatchString(from) {
			errs.add(n.pos, "foreach %q: want a mapping of key to list of values, or the name of a stage whose fan-out to copy", from)
			return
		}
		st.ForeachFrom = from
		return
	}
	if n.kind != mapNode {
		errs.add(n.pos, "foreach must be a mapping of key to list of values (or a stage name), got %s", n.describe())
		return
	}
	if len(n.pairs) == 0 {
		errs.add(n.pos, "foreach is empty: want at least one key with a list of values")
	}
	for _, p := range n.pairs {
		st.keyPos["foreach."+p.key] = p.keyPos
		p.val.recordPos(st.FieldPos, "foreach."+p.key)
		if !refNameRE.MatchString(p.key) {
			errs.add(p.keyPos, "bad foreach key %q: want letters, digits, '_' and '-', not starting with a digit", p.key)
		}
		if p.val.kind == mapNode {
			// Kept even when the selection is bad, so that ${each.KEY}
			// does not report a second, misleading error.
			if fk, _ := buildSelection(p, errs); len(fk.Values) > 0 {
				st.Foreach = append(st.Foreach, fk)
			}
			continue
		}
		if p.val.kind != seqNode {
			errs.add(p.val.pos, "foreach %s must be a list of values or a selection {from, top|bottom|above, by}, got %s (write [%s] for one value)", p.key, p.val.describe(), p.val.text)
			continue
		}
		if len(p.val.items) == 0 {
			errs.add(p.val.pos, "foreach %s: empty list; a stage with no instances is almost certainly a mistake", p.key)
			continue
		}
		fk := ForeachKey{Name: p.key, Pos: p.keyPos}
		fk.Values, _ = foreachValues(p.key, p.val.items, errs)
		st.Foreach = append(st.Foreach, fk)
	}
}

func buildResources(st *Stage, n *node, errs *ErrorList) {
	if n.kind != mapNode {
		errs.add(n.pos, "resources must be a mapping {cpus: N, memory: 4GiB, gpus: N}, got %s", n.describe())
		return
	}
	checkKeys(n, " in resources", resourceKeys, "resource", errs)
	for _, p := range n.pairs {
		p.val.recordPos(st.FieldPos, "resources."+p.key)
		switch p.key {
		case "cpus", "gpus":
			v, ok := intValue(p.val)
			if !ok || v < 0 || v > 1<<20 {
				errs.add(p.val.pos, "resources.%s must be a non-negative integer, got %s", p.key, p.val.describe())
				continue
			}
			if p.key == "cpus" {
				st.Resources.CPUs = int(v)
			} else {
				st.Resources.GPUs = int(v)
			}
		case "memory":
			mb, err := parseMemory(p.val)
			if err != nil {
				errs.add(p.val.pos, "resources.memory: %s", err)
				continue
			}
			st.Resources.MemoryMB = mb
		}
	}
}

// parseMemory reads a memory size into MiB (see ParseMemory); a plain
// integer is MiB.
func parseMemory(n *node) (int64, error) {
	if v, ok := intValue(n); ok {
		if v < 0 {
			return 0, fmt.Errorf("want a non-negative size, got %d", v)
		}
		return v, nil
	}
	s, ok := n.val.(string)
	if !ok || n.kind != scalarNode {
		return 0, fmt.Errorf("want a size such as 512MiB, 4GiB, 2G or a plain number of MiB, got %s", n.describe())
	}
	return ParseMemory(s)
}

// duration reads a timeout: a Go duration ("90m", "2h", "1h30m") or a
// number of seconds.
func duration(n *node, errs *ErrorList) time.Duration {
	if v, ok := intValue(n); ok && v > 0 && v < math.MaxInt64/int64(time.Second) {
		return time.Duration(v) * time.Second
	}
	if s, ok := n.val.(string); ok && n.kind == scalarNode {
		if d, err := time.ParseDuration(s); err == nil && d > 0 {
			return d
		}
	}
	errs.add(n.pos, "timeout must be a positive duration such as 90m, 2h or 1h30m (or seconds), got %s", n.describe())
	return 0
}

// intValue reads an integer scalar (an integral float counts, e.g. 1e3).
func intValue(n *node) (int64, bool) {
	if n == nil || n.kind != scalarNode {
		return 0, false
	}
	return toInt(n.val)
}

func toInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int:
		return int64(x), true
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x), true
		}
	}
	return 0, false
}
