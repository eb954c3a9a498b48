package spec

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// part is a piece of an interpolated string: literal text, or a reference
// ${ns.name}.
type part struct {
	text     string // literal text (an escaped "$${" reads as "${")
	raw      string // the source text of the part
	ref      bool
	ns, name string
}

var refNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

// scanRefs splits s into literal parts and ${ns.name} references. "$${"
// is an escaped literal "${", so shell code can still use ${VAR}.
func scanRefs(s string) ([]part, error) {
	var parts []part
	lit := func(text, raw string) {
		if raw == "" {
			return
		}
		if n := len(parts); n > 0 && !parts[n-1].ref {
			parts[n-1].text += text
			parts[n-1].raw += raw
			return
		}
		parts = append(parts, part{text: text, raw: raw})
	}
	for len(s) > 0 {
		i := strings.Index(s, "${")
		if i < 0 {
			lit(s, s)
			break
		}
		if i > 0 && s[i-1] == '$' {
			lit(s[:i-1]+"${", s[:i+2])
			s = s[i+2:]
			continue
		}
		lit(s[:i], s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return nil, fmt.Errorf("unterminated %q: want ${params.NAME} or ${each.KEY} (write $${ for a literal ${)", s[i:])
		}
		raw := s[i : i+end+1]
		body := raw[2 : len(raw)-1]
		ns, name, _ := strings.Cut(body, ".")
		switch {
		case ns != "params" && ns != "each" && ns != "foreach":
			return nil, fmt.Errorf("unknown interpolation %s: want ${params.NAME} or ${each.KEY}; for a shell variable write $%s or $${%s}", raw, body, body)
		case !refNameRE.MatchString(name):
			return nil, fmt.Errorf("bad interpolation %s: want ${%s.NAME} with NAME made of letters, digits, '_' and '-'", raw, ns)
		}
		if ns == "foreach" {
			ns = "each"
		}
		parts = append(parts, part{raw: raw, ref: true, ns: ns, name: name})
		s = s[i+end+1:]
	}
	return parts, nil
}

// interpolate substitutes ${params.x} in the string values of every
// stage's with, foreach, inputs and executor. In with, ${each.k} and "$${"
// escapes stay for expansion; elsewhere ${each.k} is an error.
func interpolate(root *node, errs *ErrorList) {
	var params *node
	if p := root.get("params"); p != nil && p.val.kind == mapNode {
		params = p.val
	}
	st := root.get("stages")
	if st == nil || st.val.kind != mapNode {
		return
	}
	for _, s := range st.val.pairs {
		if s.val.kind != mapNode {
			continue
		}
		for _, field := range []string{"with", "foreach", "inputs", "executor"} {
			if f := s.val.get(field); f != nil {
				f.val = interpNode(f.val, field, params, errs)
			}
		}
	}
}

func interpNode(n *node, field string, params *node, errs *ErrorList) *node {
	switch n.kind {
	case seqNode:
		for i, it := range n.items {
			n.items[i] = interpNode(it, field, params, errs)
		}
	case mapNode:
		for _, p := range n.pairs {
			p.val = interpNode(p.val, field, params, errs)
		}
	default:
		if s, ok := n.val.(string); ok && strings.Contains(s, "${") {
			return interpString(n, s, field, params, errs)
		}
	}
	return n
}

// interpString resolves one string scalar. A string that is exactly
// ${params.x} takes x's value with its type; otherwise x is formatted in.
func interpString(n *node, s, field string, params *node, errs *ErrorList) *node {
	parts, err := scanRefs(s)
	if err != nil {
		errs.add(n.pos, "%s", err)
		return n
	}
	keep := field == "with"
	var b strings.Builder
	for _, p := range parts {
		switch {
		case !p.ref && keep:
			b.WriteString(p.raw)
		case !p.ref:
			b.WriteString(p.text)
		case p.ns == "each" && keep:
			b.WriteString(p.raw)
		case p.ns == "each":
			errs.add(n.pos, "%s is not allowed in %s: foreach bindings exist only per instance, in with", p.raw, field)
			return n
		default:
			var pv *pair
			if params != nil {
				pv = params.get(p.name)
			}
			if pv == nil {
				var known []string
				if params != nil {
					for _, q := range params.pairs {
						known = append(known, q.key)
					}
				}
				errs.add(n.pos, "unknown param in %s%s", p.raw, didYouMean(p.name, known, true))
				return n
			}
			if s, ok := pv.val.val.(string); ok && strings.Contains(s, "${params.") {
				errs.add(n.pos, "%s: the value of param %s refers to other params; params are not interpolated", p.raw, p.name)
				return n
			}
			if len(parts) == 1 {
				c := pv.val.clone()
				c.moveTo(n.pos)
				return c
			}
			text, err := formatScalar(pv.val.plain())
			if err != nil {
				errs.add(n.pos, "cannot format %s inside a longer string: %s; use it as the whole value", p.raw, err)
				return n
			}
			b.WriteString(text)
		}
	}
	return &node{kind: scalarNode, val: b.String(), text: b.String(), pos: n.pos}
}

// formatScalar formats a scalar for use inside a string or as a label.
func formatScalar(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case int:
		return strconv.Itoa(x), nil
	case float64:
		return formatFloat(x), nil
	}
	return "", fmt.Errorf("it is %s, not a string, number or bool", describeValue(v))
}

// formatFloat formats f in its shortest round-trip form.
func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// resolveEach substitutes ${each.k} in every string of v (a plain value)
// from binding, and unescapes "$${". A string that is exactly ${each.k}
// takes the bound value with its type.
func resolveEach(v any, binding map[string]any, keys []string) (any, error) {
	switch x := v.(type) {
	case string:
		if !strings.Contains(x, "${") {
			return x, nil
		}
		parts, err := scanRefs(x)
		if err != nil {
			return nil, err
		}
		var b strings.Builder
		for _, p := range parts {
			if !p.ref {
				b.WriteString(p.text)
				continue
			}
			if p.ns != "each" {
				// Left by a failed substitution that Parse reported.
				b.WriteString(p.raw)
				continue
			}
			bv, ok := binding[p.name]
			if !ok {
				if len(keys) == 0 {
					return nil, fmt.Errorf("%s: the stage has no foreach", p.raw)
				}
				return nil, fmt.Errorf("%s: no foreach key %q%s", p.raw, p.name, didYouMean(p.name, keys, true))
			}
			if len(parts) == 1 {
				return bv, nil
			}
			text, err := formatScalar(bv)
			if err != nil {
				return nil, err
			}
			b.WriteString(text)
		}
		return b.String(), nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			r, err := resolveEach(e, binding, keys)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for _, k := range slices.Sorted(maps.Keys(x)) {
			r, err := resolveEach(x[k], binding, keys)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	}
	return v, nil
}
