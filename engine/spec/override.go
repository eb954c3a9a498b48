package spec

import (
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Keys a spec knows, for unknown-key errors and did-you-mean hints.
var (
	topKeys        = []string{"name", "description", "params", "isolate", "executor", "plugins", "stages", "variants"}
	stageKeys      = []string{"uses", "with", "inputs", "foreach", "resources", "retries", "timeout", "isolate", "executor"}
	resourceKeys   = []string{"cpus", "memory", "gpus"}
	overridableTop = []string{"name", "description", "params", "isolate", "executor", "plugins"}
)

// movedStageKey maps a stage key of older specs to the key that replaced
// it, so that an old spec gets a rename hint rather than "unknown key".
func movedStageKey(key string) (string, bool) {
	switch key {
	case "slurm":
		return "executor", true
	}
	return "", false
}

// override records a `stage.with.param` override of an unapplied variant,
// so that Validate can check the param name against the stage's kind.
type override struct {
	stage, param string
	pos          Pos
}

// checkKeys reports keys of mapping n not in known. At the top level
// (where == ""), keys starting with "x-" are allowed and ignored, as in
// Compose files, so that anchors have somewhere to live.
func checkKeys(n *node, where string, known []string, what string, errs *ErrorList) {
	if n == nil || n.kind != mapNode {
		return
	}
	for _, p := range n.pairs {
		if where == "" && strings.HasPrefix(p.key, "x-") {
			continue // extension keys hold YAML anchors for reuse
		}
		if !contains(known, p.key) {
			errs.add(p.keyPos, "unknown %s %q%s%s", what, p.key, where, didYouMean(p.key, known, true))
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// applyOverrides applies the selected variant and the --set flags to root.
// Unapplied variants are applied to throwaway copies, so that a typo in any
// variant is reported whichever one runs; their with-param paths are
// returned for Validate to check against the kinds.
func applyOverrides(root *node, opt Options, errs *ErrorList) []override {
	var pending []override
	variants := root.get("variants")
	var names []string
	if variants != nil {
		if variants.val.kind != mapNode {
			if !variants.val.isNull() {
				errs.add(variants.val.pos, "variants must be a mapping of variant name to {path: value}, got %s", variants.val.describe())
			}
		} else {
			for _, v := range variants.val.pairs {
				names = append(names, v.key)
				if !nameRE.MatchString(v.key) {
					errs.add(v.keyPos, "bad variant name %q: want letters, digits, '_', '.', '-'", v.key)
				}
				if v.val.kind != mapNode {
					errs.add(v.val.pos, "variant %q must be a mapping of override path to value (e.g. {tune_cl.with.temperature: 0.05}), got %s", v.key, v.val.describe())
					continue
				}
				if v.key == opt.Variant {
					continue // applied to the real tree below
				}
				scratch := root.clone()
				for _, o := range v.val.pairs {
					if ov, ok := setPath(scratch, o.key, o.val, o.keyPos, errs); ok && ov.param != "" {
						pending = append(pending, ov)
					}
				}
			}
		}
	}
	if opt.Variant != "" {
		var sel *pair
		if variants != nil {
			sel = variants.val.get(opt.Variant)
		}
		switch {
		case sel == nil:
			known := "the spec declares no variants"
			if len(names) > 0 {
				sorted := append([]string(nil), names...)
				sort.Strings(sorted)
				known = "known variants: " + strings.Join(sorted, ", ")
				if s := suggest(opt.Variant, names); s != "" {
					known = "did you mean " + s + "? " + known
				}
			}
			errs.add(Pos{File: "--variant " + opt.Variant}, "unknown variant %q; %s", opt.Variant, known)
		case sel.val.kind == mapNode:
			for _, o := range sel.val.pairs {
				setPath(root, o.key, o.val.clone(), o.keyPos, errs)
			}
		}
	}
	for _, set := range opt.Sets {
		at := Pos{File: "--set " + set}
		path, text, ok := strings.Cut(set, "=")
		if !ok {
			errs.add(at, "want path=value, e.g. tune_cl.with.temperature=0.2")
			continue
		}
		val, ok := parseSetValue(text, at, errs)
		if !ok {
			continue
		}
		setPath(root, strings.TrimSpace(path), val, at, errs)
	}
	return pending
}

// parseSetValue reads a --set value as a YAML flow scalar, list or mapping.
func parseSetValue(text string, at Pos, errs *ErrorList) (*node, bool) {
	if strings.TrimSpace(text) == "" {
		return &node{kind: scalarNode, val: "", pos: at}, true
	}
	var doc yaml.Node
	if err := safeUnmarshal(protect([]byte(text)), &doc); err != nil {
		errs.add(at, "bad value %q: %s", text, strings.TrimPrefix(err.Error(), "yaml: "))
		return nil, false
	}
	var local ErrorList
	c := &converter{file: at.File, errs: &local, budget: maxNodes, active: map[*yaml.Node]bool{}}
	val := c.conv(&doc)
	for _, e := range local {
		errs.add(at, "bad value %q: %s", text, e.Msg)
	}
	if len(local) > 0 {
		return nil, false
	}
	val.moveTo(at)
	return val, true
}

// setPath sets the value at a dotted override path, e.g.
// "tune_cl.with.temperature", "params.rois", "stages.data.retries",
// "executor.partition". A first segment that is a top-level key wins over a
// stage of the same name; "stages.NAME..." reaches any stage. It returns
// which with-param the path named, if any.
func setPath(root *node, path string, val *node, at Pos, errs *ErrorList) (override, bool) {
	segs := strings.Split(path, ".")
	for _, s := range segs {
		if s == "" {
			errs.add(at, "bad override path %q: empty segment", path)
			return override{}, false
		}
	}
	var stagesNode *node
	var stageNames []string
	if p := root.get("stages"); p != nil && p.val.kind == mapNode {
		stagesNode = p.val
		for _, p := range stagesNode.pairs {
			stageNames = append(stageNames, p.key)
		}
	}
	switch {
	case segs[0] == "stages":
		if len(segs) < 3 {
			errs.add(at, "bad override path %q: want stages.NAME.FIELD...", path)
			return override{}, false
		}
		return setStagePath(root, stagesNode, stageNames, segs[1:], path, val, at, errs)
	case segs[0] == "variants":
		errs.add(at, "bad override path %q: variants cannot be overridden", path)
		return override{}, false
	case contains(overridableTop, segs[0]):
		if segs[0] == "params" && len(segs) >= 2 {
			params := root.get("params")
			if params == nil || params.val.kind != mapNode || params.val.get(segs[1]) == nil {
				var known []string
				if params != nil {
					for _, p := range params.val.pairs {
						known = append(known, p.key)
					}
				}
				errs.add(at, "unknown param %q in override %q; params must be declared in the spec's params%s", segs[1], path, didYouMean(segs[1], known, true))
				return override{}, false
			}
		}
		return override{}, assign(root, segs, path, val, at, errs)
	case contains(stageNames, segs[0]):
		return setStagePath(root, stagesNode, stageNames, segs, path, val, at, errs)
	}
	cands := append(append([]string(nil), stageNames...), overridableTop...)
	errs.add(at, "bad override path %q: %q is neither a stage nor a top-level key%s", path, segs[0], didYouMean(segs[0], cands, false))
	return override{}, false
}

// setStagePath handles an override path whose segs start with a stage name.
func setStagePath(root, stagesNode *node, stageNames, segs []string, path string, val *node, at Pos, errs *ErrorList) (override, bool) {
	if !contains(stageNames, segs[0]) {
		errs.add(at, "bad override path %q: unknown stage %q%s", path, segs[0], didYouMean(segs[0], stageNames, true))
		return override{}, false
	}
	if len(segs) < 2 {
		errs.add(at, "bad override path %q: want STAGE.FIELD, e.g. %s.with.PARAM", path, segs[0])
		return override{}, false
	}
	field := segs[1]
	if to, ok := movedStageKey(field); ok {
		errs.add(at, "bad override path %q: stage field %s moved to %s; write %s.%s.%s", path, field, to, segs[0], to, strings.Join(segs[2:], "."))
		return override{}, false
	}
	if !contains(stageKeys, field) {
		errs.add(at, "bad override path %q: unknown stage field %q%s", path, field, didYouMean(field, stageKeys, true))
		return override{}, false
	}
	switch field {
	case "uses", "retries", "timeout", "isolate":
		if len(segs) > 2 {
			errs.add(at, "bad override path %q: %s is a single value; write %s.%s=VALUE", path, field, segs[0], field)
			return override{}, false
		}
	case "resources":
		if len(segs) > 3 || (len(segs) == 3 && !contains(resourceKeys, segs[2])) {
			errs.add(at, "bad override path %q: unknown resource %q%s", path, segs[2], didYouMean(segs[2], resourceKeys, true))
			return override{}, false
		}
	case "foreach", "inputs":
		// A selection's fields may be set one at a time:
		// STAGE.foreach.KEY.top=2 (see Selection).
		if field == "foreach" && len(segs) == 4 && contains(selectKeys, segs[3]) {
			break
		}
		if len(segs) > 3 {
			errs.add(at, "bad override path %q: %s entries are set whole, e.g. %s.%s.%s=[a, b]", path, field, segs[0], field, segs[2])
			return override{}, false
		}
	}
	st := stagesNode.get(segs[0])
	if st.val.kind != mapNode {
		errs.add(at, "cannot apply override %q: stage %s is not a mapping", path, segs[0])
		return override{}, false
	}
	if !assign(st.val, segs[1:], path, val, at, errs) {
		return override{}, false
	}
	if field == "with" && len(segs) >= 3 {
		return override{stage: segs[0], param: segs[2], pos: at}, true
	}
	return override{}, true
}

// assign walks mapping n along segs, creating missing mappings, and sets
// the last segment to val.
func assign(n *node, segs []string, path string, val *node, at Pos, errs *ErrorList) bool {
	cur := n
	for i, s := range segs[:len(segs)-1] {
		p := cur.get(s)
		if p == nil || p.val.isNull() {
			child := &node{kind: mapNode, pos: at}
			cur.set(s, at, child)
			cur = child
			continue
		}
		if p.val.kind != mapNode {
			errs.add(at, "cannot apply override %q: %s is %s, not a mapping", path, strings.Join(segs[:i+1], "."), p.val.describe())
			return false
		}
		cur = p.val
	}
	cur.set(segs[len(segs)-1], at, val)
	return true
}
