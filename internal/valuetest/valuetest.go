// Package valuetest holds the tricky plain values that every path params
// travel by (cache keys, the spec digest, the plugin wire, Slurm job files)
// is tested with, so that those tests agree on one table and one expected
// encoding (stages.EncodeValue's rules). It is for tests only.
package valuetest

import (
	"math"
	"reflect"
)

// Case is a plain value as DecodeValue returns it, with its canonical JSON.
type Case struct {
	Name  string
	Value any
	JSON  string
}

// Cases returns the table, fresh on every call so that a test may modify
// what it gets. Every Value has a distinct JSON, so keys and digests made
// from them must all differ.
func Cases() []Case {
	return []Case{
		{"null", nil, `null`},
		{"false", false, `false`},
		{"int zero", int64(0), `0`},
		{"float zero", 0.0, `0.0`},
		{"negative zero keeps its sign", math.Copysign(0, -1), `-0.0`},
		{"int one", int64(1), `1`},
		{"float one", 1.0, `1.0`},
		{"1e300", 1e300, `1e+300`},
		{"1e21", 1e21, `1e+21`},
		{"tiny", -2.5e-12, `-2.5e-12`},
		{"smallest float", math.SmallestNonzeroFloat64, `5e-324`},
		{"a third", 1.0 / 3, `0.3333333333333333`},
		{"int64 max", int64(math.MaxInt64), `9223372036854775807`},
		{"int64 min", int64(math.MinInt64), `-9223372036854775808`},
		{"html stays unescaped", "<&>", `"<&>"`},
		{"unicode", "ü 🧠 ∑", `"ü 🧠 ∑"`},
		{"escapes", "a\"b\\c\nd\te\u2028\x01", `"a\"b\\c\nd\te\u2028\u0001"`},
		{"empty string", "", `""`},
		{"empty list", []any{}, `[]`},
		{"empty map", map[string]any{}, `{}`},
		{"ints and floats in a list", []any{int64(1), 1.0, "1", true, nil}, `[1,1.0,"1",true,null]`},
		{"nested maps with unsorted keys", map[string]any{
			"zeta":  map[string]any{"b": []any{0.5, int64(-4)}, "a": map[string]any{"y": "<", "x": false}},
			"Alpha": int64(2), "": nil, "é": 1e-7,
		}, `{"":null,"Alpha":2,"zeta":{"a":{"x":false,"y":"<"},"b":[0.5,-4]},"é":1e-07}`},
	}
}

// Bad is a value that has no faithful JSON form, with the path (as the
// codec names it, from "$") its error must name.
type Bad struct {
	Name  string
	Value any
	Path  string
}

// Bads returns the values every path must refuse.
func Bads() []Bad {
	return []Bad{
		{"NaN", map[string]any{"alphas": []any{1.0, math.NaN()}}, "$.alphas[1]"},
		{"infinity", map[string]any{"lr": math.Inf(1)}, "$.lr"},
		{"negative infinity in a nested map", map[string]any{"m": map[string]any{"x": math.Inf(-1)}}, "$.m.x"},
		{"invalid UTF-8", map[string]any{"s": "a\xffb"}, "$.s"},
		{"integer beyond int64", map[string]any{"n": uint64(math.MaxUint64)}, "$.n"},
		{"a func", map[string]any{"f": func() {}}, "$.f"},
	}
}

// Same reports whether a and b are the same plain value: DeepEqual, but
// telling -0 from 0 (DeepEqual compares floats with ==).
func Same(a, b any) bool {
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		return ok && math.Float64bits(x) == math.Float64bits(y)
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) || (x == nil) != (y == nil) {
			return false
		}
		for i := range x {
			if !Same(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) || (x == nil) != (y == nil) {
			return false
		}
		for k, e := range x {
			f, ok := y[k]
			if !ok || !Same(e, f) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}
