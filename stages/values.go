package stages

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// TypedNumbers copies the plain value v for encoding/json, spelling every
// float with a decimal point or exponent (as a json.Number) so that
// PlainNumbers reads it back as a float64 and ints as int64. path names v
// in errors (NaN and Inf have no JSON spelling).
func TypedNumbers(v any, path string) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("%s: %v cannot be written to JSON; want a finite number", path, x)
		}
		s := strconv.FormatFloat(x, 'g', -1, 64)
		if !strings.ContainsAny(s, ".eE") {
			s += ".0"
		}
		return json.Number(s), nil
	case float32:
		return TypedNumbers(float64(x), path)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			t, err := TypedNumbers(e, path+"."+k)
			if err != nil {
				return nil, err
			}
			out[k] = t
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			t, err := TypedNumbers(e, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			out[i] = t
		}
		return out, nil
	case []float64:
		list := make([]any, len(x))
		for i, e := range x {
			list[i] = e
		}
		return TypedNumbers(list, path)
	}
	return v, nil
}

// PlainNumbers turns the json.Numbers of a value decoded with UseNumber
// into int64 or float64 by their spelling, in place where it can: the
// inverse of TypedNumbers, so params keep their types across processes and
// hosts.
func PlainNumbers(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		s := x.String()
		if strings.ContainsAny(s, ".eE") {
			f, err := x.Float64()
			if err != nil {
				return nil, fmt.Errorf("number %s: %w", s, err)
			}
			return f, nil
		}
		i, err := x.Int64()
		if err != nil {
			return nil, fmt.Errorf("integer %s: %w", s, err)
		}
		return i, nil
	case []any:
		for i, e := range x {
			n, err := PlainNumbers(e)
			if err != nil {
				return nil, err
			}
			x[i] = n
		}
		return x, nil
	case map[string]any:
		for k, e := range x {
			n, err := PlainNumbers(e)
			if err != nil {
				return nil, err
			}
			x[k] = n
		}
		return x, nil
	}
	return v, nil
}
