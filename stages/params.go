package stages

import (
	"fmt"
	"maps"
	"math"
	"slices"
)

// Params holds a stage instance's resolved parameters. Values are plain:
// string, bool, int64, float64, []any, map[string]any. The getters panic on
// a missing or mistyped name because the engine has already validated the
// params against the kind's schema; a panic there is a programming error.
type Params map[string]any

// String returns a string param.
func (p Params) String(name string) string { return mustGet[string](p, name) }

// Bool returns a bool param.
func (p Params) Bool(name string) bool { return mustGet[bool](p, name) }

// Int returns an int param.
func (p Params) Int(name string) int {
	switch v := p.get(name).(type) {
	case int64:
		return int(v)
	case int:
		return v
	case float64:
		if v == math.Trunc(v) {
			return int(v)
		}
	}
	panic(fmt.Sprintf("param %q: want int, have %T", name, p[name]))
}

// Float returns a float param (ints are converted).
func (p Params) Float(name string) float64 {
	f, ok := ToFloat(p.get(name))
	if !ok {
		panic(fmt.Sprintf("param %q: want float, have %T", name, p[name]))
	}
	return f
}

// Strings returns a []string param.
func (p Params) Strings(name string) []string {
	switch v := p.get(name).(type) {
	case []string:
		return v
	case []any:
		out := make([]string, len(v))
		for i, e := range v {
			s, ok := e.(string)
			if !ok {
				panic(fmt.Sprintf("param %q[%d]: want string, have %T", name, i, e))
			}
			out[i] = s
		}
		return out
	}
	panic(fmt.Sprintf("param %q: want []string, have %T", name, p[name]))
}

// Floats returns a []float param.
func (p Params) Floats(name string) []float64 {
	switch v := p.get(name).(type) {
	case []float64:
		return v
	case []any:
		out := make([]float64, len(v))
		for i, e := range v {
			f, ok := ToFloat(e)
			if !ok {
				panic(fmt.Sprintf("param %q[%d]: want float, have %T", name, i, e))
			}
			out[i] = f
		}
		return out
	}
	panic(fmt.Sprintf("param %q: want []float, have %T", name, p[name]))
}

// Ints returns a []int param.
func (p Params) Ints(name string) []int {
	fs := p.Floats(name)
	out := make([]int, len(fs))
	for i, f := range fs {
		out[i] = int(f)
	}
	return out
}

// Map returns a map param.
func (p Params) Map(name string) map[string]any {
	return mustGet[map[string]any](p, name)
}

// Has reports whether name is set (and not nil).
func (p Params) Has(name string) bool { return p[name] != nil }

// Names returns the param names in sorted order.
func (p Params) Names() []string { return slices.Sorted(maps.Keys(p)) }

func (p Params) get(name string) any {
	v, ok := p[name]
	if !ok {
		panic(fmt.Sprintf("param %q not set", name))
	}
	return v
}

func mustGet[T any](p Params, name string) T {
	v, ok := p.get(name).(T)
	if !ok {
		var zero T
		panic(fmt.Sprintf("param %q: want %T, have %T", name, zero, p[name]))
	}
	return v
}

// ToFloat converts a plain numeric value to float64.
func ToFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int64:
		return float64(x), true
	case int:
		return float64(x), true
	case int32:
		return float64(x), true
	}
	return 0, false
}
