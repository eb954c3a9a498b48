package spec

import (
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strings"

	"github.com/voxflow/voxflow/stages"
)

// maxSpaceLen bounds {logspace|linspace: [a, b, n]}.
const maxSpaceLen = 100000

// paramError is a problem with one param value; path is the FieldPos key
// of the offending (sub)value, e.g. "with.alphas[2]"; "key:with.x" names a
// key's position, "stage" the stage's.
type paramError struct {
	path string
	msg  string
}

// resolver computes a stage's params per foreach binding. Values that do
// not depend on the binding (no ${each.k}, not bound by a foreach key, and
// defaults) are normalised once: a 10,000-point logspace over 1,000
// instances must not cost 10^7 conversions. Instances share those values,
// which stages only read.
type resolver struct {
	st       *Stage
	desc     stages.Description
	keys     []string
	names    []string // declared param names, for hints
	declared map[string]stages.ParamSpec
	static   map[string]any // normalised values that do not vary
	errs     []paramError   // problems of the static values
	dir      string         // the spec's directory, for relative path params
}

func newResolver(st *Stage, desc stages.Description, keys []string, dir string) *resolver {
	r := &resolver{st: st, desc: desc, keys: keys, declared: map[string]stages.ParamSpec{}, static: map[string]any{}, dir: dir}
	for _, ps := range desc.Params {
		r.declared[ps.Name] = ps
		r.names = append(r.names, ps.Name)
	}
	for _, k := range slices.Sorted(maps.Keys(st.With)) {
		ps, ok := r.declared[k]
		switch {
		case !ok:
			r.errs = append(r.errs, paramError{"key:with." + k, fmt.Sprintf("unknown param %q for kind %s%s", k, desc.Kind, didYouMean(k, r.names, true))})
		case contains(keys, k):
			r.errs = append(r.errs, paramError{"key:with." + k, fmt.Sprintf("param %q is bound by foreach; remove it from with", k)})
		case !hasRef(st.With[k]):
			v, err := resolveEach(st.With[k], nil, keys) // unescapes $${
			if err != nil {
				r.errs = append(r.errs, paramError{"with." + k, err.Error()})
				continue
			}
			if nv, perr := normalize(ps, v, "with."+k, r.dir); perr != nil {
				r.errs = append(r.errs, *perr)
			} else {
				r.static[k] = nv
			}
		}
	}
	for _, ps := range desc.Params {
		if _, set := st.With[ps.Name]; set || contains(keys, ps.Name) {
			continue
		}
		switch {
		case ps.Required:
			r.errs = append(r.errs, paramError{"stage", fmt.Sprintf("missing required param %q (%s) for kind %s", ps.Name, ps.Type, desc.Kind)})
		case ps.Default == nil:
			r.static[ps.Name] = nil
		default:
			if nv, perr := normalize(ps, stages.Plain(ps.Default), "stage", r.dir); perr != nil {
				r.errs = append(r.errs, paramError{"stage", fmt.Sprintf("kind %s: bad default for param %q: %s", desc.Kind, ps.Name, perr.msg)})
			} else {
				r.static[ps.Name] = nv
			}
		}
	}
	return r
}

// hasRef reports whether any string in v holds "${".
func hasRef(v any) bool {
	switch x := v.(type) {
	case string:
		return strings.Contains(x, "${")
	case []any:
		for _, e := range x {
			if hasRef(e) {
				return true
			}
		}
	case map[string]any:
		for _, e := range x {
			if hasRef(e) {
				return true
			}
		}
	}
	return false
}

// resolve computes one instance's params: the stage's with, ${each.k}
// resolved from binding, foreach keys bound to same-named declared params,
// defaults applied, every value normalised to its declared type. Validate
// and Expand both use it, so what runs is exactly what was checked.
//
// It returns only the problems that depend on the binding; r.errs holds the
// others.
func (r *resolver) resolve(binding map[string]any) (stages.Params, []paramError) {
	var errs []paramError
	out := make(stages.Params, len(r.static)+len(r.keys))
	for k, v := range r.static {
		out[k] = v
	}
	for _, k := range slices.Sorted(maps.Keys(r.st.With)) {
		ps, ok := r.declared[k]
		if !ok || contains(r.keys, k) || !hasRef(r.st.With[k]) {
			continue
		}
		v, err := resolveEach(r.st.With[k], binding, r.keys)
		if err != nil {
			errs = append(errs, paramError{"with." + k, err.Error()})
			continue
		}
		nv, perr := normalize(ps, v, "with."+k, r.dir)
		if perr != nil {
			errs = append(errs, *perr)
			continue
		}
		out[k] = nv
	}
	for _, k := range r.keys {
		ps, ok := r.declared[k]
		if !ok {
			continue
		}
		nv, perr := normalize(ps, binding[k], "foreach."+k, r.dir)
		if perr != nil {
			perr.msg = "foreach binds param: " + perr.msg
			errs = append(errs, *perr)
			continue
		}
		out[k] = nv
	}
	return out, errs
}

// normalize checks v against ps and converts it to the declared type:
// int64, float64, string, bool, []any (of those) or map[string]any. Path
// params are made absolute against dir, the spec's directory, so that the
// key and the stage see the same file whatever the working directory.
func normalize(ps stages.ParamSpec, v any, path, dir string) (any, *paramError) {
	fail := func(p, format string, args ...any) (any, *paramError) {
		return nil, &paramError{p, fmt.Sprintf("param %q: ", ps.Name) + fmt.Sprintf(format, args...)}
	}
	if v == nil {
		if ps.Required {
			return fail(path, "required, got null")
		}
		return nil, nil
	}
	switch ps.Type {
	case stages.TypeString, stages.TypeInt, stages.TypeFloat, stages.TypeBool:
		nv, msg := scalarAs(ps, v)
		if msg != "" {
			return fail(path, "%s", msg)
		}
		return nv, nil
	case stages.TypePath:
		nv, msg := pathAs(ps, v, dir)
		if msg != "" {
			return fail(path, "%s", msg)
		}
		return nv, nil
	case stages.TypePaths:
		list, ok := v.([]any)
		if !ok {
			return fail(path, "expected %s (a list of paths), got %s", ps.Type, describeValue(v))
		}
		out := make([]any, len(list))
		for i, e := range list {
			nv, msg := pathAs(ps, e, dir)
			if msg != "" {
				return fail(fmt.Sprintf("%s[%d]", path, i), "element %d: %s", i, msg)
			}
			out[i] = nv
		}
		return out, nil
	case stages.TypeStrings, stages.TypeFloats, stages.TypeInts:
		elem := ps
		elem.Type = strings.TrimPrefix(ps.Type, "[]")
		if m, ok := v.(map[string]any); ok && ps.Type == stages.TypeFloats {
			list, msg := space(m)
			if msg != "" {
				return fail(path, "%s", msg)
			}
			v = list
		}
		list, ok := v.([]any)
		if !ok {
			hint := ""
			if ps.Type == stages.TypeFloats {
				hint = " or {logspace: [lo, hi, n]} / {linspace: [lo, hi, n]}"
			}
			return fail(path, "expected %s (a list)%s, got %s", ps.Type, hint, describeValue(v))
		}
		out := make([]any, len(list))
		for i, e := range list {
			nv, msg := scalarAs(elem, e)
			if msg != "" {
				return fail(fmt.Sprintf("%s[%d]", path, i), "element %d: %s", i, msg)
			}
			out[i] = nv
		}
		return out, nil
	case stages.TypeMap:
		m, ok := v.(map[string]any)
		if !ok {
			return fail(path, "expected map, got %s", describeValue(v))
		}
		if ps.Keys != "" {
			re, err := regexp.Compile("^(?:" + ps.Keys + ")$")
			if err != nil {
				return fail(path, "kind declares a bad key pattern %q: %v", ps.Keys, err)
			}
			for _, k := range slices.Sorted(maps.Keys(m)) {
				if !re.MatchString(k) {
					return fail(path, "key %q: want %s", k, orText(ps.KeysDoc, "a key matching "+ps.Keys))
				}
			}
		}
		return m, nil
	case stages.TypeAny, "":
		return v, nil
	}
	return fail(path, "kind declares unknown type %q", ps.Type)
}

// pathAs checks a path param value (a string, as TypeString) and makes it
// absolute against dir; "" and ps.NotPaths words stay as written.
func pathAs(ps stages.ParamSpec, v any, dir string) (any, string) {
	str := ps
	str.Type = stages.TypeString
	nv, msg := scalarAs(str, v)
	if msg != "" {
		return nil, msg
	}
	s := nv.(string)
	if s == "" || contains(ps.NotPaths, s) {
		return s, ""
	}
	if strings.ContainsRune(s, 0) {
		return nil, fmt.Sprintf("path %q holds a NUL byte", s)
	}
	return absPath(dir, s), ""
}

// scalarAs converts a scalar to ps.Type and checks bounds and enum; msg
// is "" on success.
func scalarAs(ps stages.ParamSpec, v any) (any, string) {
	var out any
	switch ps.Type {
	case stages.TypeString:
		s, ok := v.(string)
		if !ok {
			if _, isList := v.([]any); !isList {
				if text, err := formatScalar(v); err == nil {
					return nil, fmt.Sprintf("expected string, got %s (quote it: %q)", describeValue(v), text)
				}
			}
			return nil, fmt.Sprintf("expected string, got %s", describeValue(v))
		}
		if len(ps.Enum) > 0 && !contains(ps.Enum, s) {
			return nil, fmt.Sprintf("%q is not one of %s%s", s, strings.Join(ps.Enum, ", "), didYouMean(s, ps.Enum, false))
		}
		return s, ""
	case stages.TypeBool:
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Sprintf("expected bool (true or false), got %s", describeValue(v))
		}
		return b, ""
	case stages.TypeInt:
		i, ok := toInt(v)
		if !ok {
			return nil, fmt.Sprintf("expected int, got %s", describeValue(v))
		}
		out = i
	case stages.TypeFloat:
		f, ok := stages.ToFloat(v)
		if !ok {
			return nil, fmt.Sprintf("expected float, got %s", describeValue(v))
		}
		out = f
	default:
		return v, ""
	}
	f, _ := stages.ToFloat(out)
	if ps.Min != nil && f < *ps.Min {
		return nil, fmt.Sprintf("%s is below the minimum %s", formatFloat(f), formatFloat(*ps.Min))
	}
	if ps.Max != nil && f > *ps.Max {
		return nil, fmt.Sprintf("%s is above the maximum %s", formatFloat(f), formatFloat(*ps.Max))
	}
	return out, ""
}

// space expands {logspace: [lo, hi, n]} (powers of ten, as numpy.logspace)
// or {linspace: [lo, hi, n]}.
func space(m map[string]any) ([]any, string) {
	if len(m) != 1 {
		return nil, "expected a list or one of {logspace: [lo, hi, n]} / {linspace: [lo, hi, n]}"
	}
	var name string
	var arg any
	for name, arg = range m {
	}
	if name != "logspace" && name != "linspace" {
		return nil, fmt.Sprintf("unknown generator %q: want logspace or linspace%s", name, didYouMean(name, []string{"logspace", "linspace"}, false))
	}
	args, ok := arg.([]any)
	if !ok || len(args) != 3 {
		return nil, fmt.Sprintf("%s wants [lo, hi, n], got %s", name, describeValue(arg))
	}
	lo, ok1 := stages.ToFloat(args[0])
	hi, ok2 := stages.ToFloat(args[1])
	n, ok3 := toInt(args[2])
	if !ok1 || !ok2 || !ok3 || n < 1 || n > maxSpaceLen {
		return nil, fmt.Sprintf("%s wants [lo, hi, n] with numbers lo, hi and an integer 1 <= n <= %d", name, maxSpaceLen)
	}
	out := make([]any, n)
	for i := range out {
		x := lo
		if n > 1 {
			x = lo + float64(i)*(hi-lo)/float64(n-1)
		}
		if i == int(n-1) {
			x = hi
		}
		if name == "logspace" {
			x = math.Pow(10, x)
		}
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return nil, fmt.Sprintf("%s overflows: 10^%s is not finite", name, formatFloat(lo+float64(i)*(hi-lo)/float64(max(n-1, 1))))
		}
		out[i] = x
	}
	return out, ""
}

// orText returns s, or def when s is empty.
func orText(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
