package stages

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// EncodeValue writes the plain value v in the plain-value codec's form: the
// one JSON form of params and other plain values wherever they are hashed
// (cache keys, the spec digest) or cross a process (the plugin wire, job
// files for cluster executors). DecodeValue reads it back. Its rules,
// decided once:
//
//   - Canonical: object keys sorted bytewise, no whitespace, strings escaped
//     as encoding/json does but without HTML escaping ("<&>" stay as they
//     are), so equal values always give equal bytes.
//   - Ints and floats stay distinct: an integer is written as digits and
//     read back as int64; a float always carries a '.' or an exponent (1.0,
//     1e+21) and is read back as float64. Stages type-switch on params, so
//     int64(1) and 1.0 are different values and get different keys. (The
//     spec has already converted each declared param to its declared type,
//     so `alpha: 1` and `alpha: 1.0` for a float param are the same value.)
//   - -0 keeps its sign ("-0.0"). The codec is lossless, so a stage sees the
//     same value in-process, through a plugin and on a Slurm node, and a key
//     hashes exactly what the stage sees: merging -0 with 0 would let two
//     runs share a key though their stages saw different values (1/x,
//     math.Signbit, "-0" in a label).
//   - Only what can come back identically is written: NaN, ±Inf, integers
//     beyond int64 and strings that are not valid UTF-8 are refused with an
//     error naming the value's path ("$.alphas[2]").
//
// v may hold nil, bool, string, any Go integer or float, slices and arrays,
// and maps with string keys, nested (so stages.Params, []string and
// map[string]string encode as their plain equivalents).
func EncodeValue(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := encodeValue(&b, v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// valueError is a refusal somewhere inside a value. Its path is built on
// the way out (see at), so that encoding a 10,000-element list formats no
// paths unless an element is refused.
type valueError struct {
	path string // below the root, e.g. ".alphas[1]"
	msg  string
}

func (e *valueError) Error() string { return "$" + e.path + ": " + e.msg }

func refuse(format string, args ...any) error {
	return &valueError{msg: fmt.Sprintf(format, args...)}
}

// at prefixes err's path with seg, the step from a parent to its child.
func at(err error, seg string) error {
	if ve, ok := err.(*valueError); ok {
		ve.path = seg + ve.path
	}
	return err
}

func index(i int) string { return "[" + strconv.Itoa(i) + "]" }

// encodeValue handles the plain types directly, since keys are computed for
// every instance of a spec and reflection would dominate; other Go types go
// through encodeReflect.
func encodeValue(b *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case string:
		return encodeString(b, x)
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case float64:
		return encodeFloat(b, x)
	case []any:
		if x == nil {
			b.WriteString("null")
			return nil
		}
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := encodeValue(b, e); err != nil {
				return at(err, index(i))
			}
		}
		b.WriteByte(']')
	case map[string]any:
		return encodeMap(b, x)
	case Params:
		return encodeMap(b, x)
	default:
		return encodeReflect(b, reflect.ValueOf(v))
	}
	return nil
}

func encodeMap(b *bytes.Buffer, m map[string]any) error {
	if m == nil {
		b.WriteString("null")
		return nil
	}
	b.WriteByte('{')
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b.WriteByte(',')
		}
		if !utf8.ValidString(k) {
			return refuse("key %q is not valid UTF-8; want text", k)
		}
		if err := encodeString(b, k); err != nil {
			return err
		}
		b.WriteByte(':')
		if err := encodeValue(b, m[k]); err != nil {
			return at(err, "."+k)
		}
	}
	b.WriteByte('}')
	return nil
}

func encodeReflect(b *bytes.Buffer, v reflect.Value) error {
	if !v.IsValid() {
		b.WriteString("null")
		return nil
	}
	switch v.Kind() {
	case reflect.Interface, reflect.Pointer:
		if v.IsNil() {
			b.WriteString("null")
			return nil
		}
		return encodeValue(b, v.Elem().Interface())
	case reflect.Bool:
		b.WriteString(strconv.FormatBool(v.Bool()))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		b.WriteString(strconv.FormatInt(v.Int(), 10))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if v.Uint() > math.MaxInt64 {
			return refuse("integer %d is beyond int64; want at most %d", v.Uint(), int64(math.MaxInt64))
		}
		b.WriteString(strconv.FormatUint(v.Uint(), 10))
	case reflect.Float32, reflect.Float64:
		return encodeFloat(b, v.Float())
	case reflect.String:
		return encodeString(b, v.String())
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			b.WriteString("null")
			return nil
		}
		b.WriteByte('[')
		for i := 0; i < v.Len(); i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := encodeValue(b, v.Index(i).Interface()); err != nil {
				return at(err, index(i))
			}
		}
		b.WriteByte(']')
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return refuse("map with %s keys; want string keys", v.Type().Key())
		}
		if v.IsNil() {
			b.WriteString("null")
			return nil
		}
		m := make(map[string]any, v.Len())
		for it := v.MapRange(); it.Next(); {
			m[it.Key().String()] = it.Value().Interface()
		}
		return encodeMap(b, m)
	default:
		return refuse("%s is not a plain value; want nil, bool, number, string, list or map", v.Type())
	}
	return nil
}

// encodeFloat writes f shortest round-trip, marked as a float.
func encodeFloat(b *bytes.Buffer, f float64) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return refuse("%v has no JSON form; want a finite number", f)
	}
	s := strconv.FormatFloat(f, 'g', -1, 64)
	b.WriteString(s)
	if !strings.ContainsAny(s, ".e") {
		b.WriteString(".0")
	}
	return nil
}

// encodeString writes s as encoding/json does with HTML escaping off.
// Invalid UTF-8 is refused rather than replaced: two different strings
// must never encode alike, or they would share a cache key.
func encodeString(b *bytes.Buffer, s string) error {
	if !utf8.ValidString(s) {
		return refuse("string %q is not valid UTF-8; want text", s)
	}
	if !needsEscape(s) {
		b.WriteByte('"')
		b.WriteString(s)
		b.WriteByte('"')
		return nil
	}
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return refuse("%v", err)
	}
	b.Truncate(b.Len() - 1) // Encode ends with a newline
	return nil
}

// needsEscape reports whether encoding/json would escape anything in s:
// quotes, backslashes, control characters, or U+2028/U+2029 (which start
// with the byte 0xE2).
func needsEscape(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c == 0xE2 {
			return true
		}
	}
	return false
}

// DecodeValue reads one JSON value back into plain values: integers as
// int64, numbers with a '.' or an exponent as float64, lists as []any,
// objects as map[string]any. It is the inverse of EncodeValue
// (DecodeValue(EncodeValue(v)) is v in plain form) and also reads JSON from
// elsewhere (a Python plugin's params), refusing numbers that fit neither
// type. Empty input (a field never set) decodes to nil.
func DecodeValue(data []byte) (any, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("decode plain value %s: %w", excerpt(data), err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("decode plain value %s: want one JSON value, found more after it", excerpt(data))
	}
	v, err := plainNumbers(v)
	if err != nil {
		return nil, fmt.Errorf("decode plain value %s: %w", excerpt(data), err)
	}
	return v, nil
}

// plainNumbers turns the json.Numbers of a value decoded with UseNumber
// into int64 or float64 by their spelling, in place.
func plainNumbers(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		s := x.String()
		if strings.ContainsAny(s, ".eE") {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return nil, refuse("number %s is beyond float64", s)
			}
			return f, nil
		}
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, refuse("integer %s is beyond int64; write it as a float (%s.0) if that is what it is", s, s)
		}
		return i, nil
	case []any:
		for i, e := range x {
			n, err := plainNumbers(e)
			if err != nil {
				return nil, at(err, index(i))
			}
			x[i] = n
		}
	case map[string]any:
		for k, e := range x {
			n, err := plainNumbers(e)
			if err != nil {
				return nil, at(err, "."+k)
			}
			x[k] = n
		}
	}
	return v, nil
}

// excerpt quotes the start of data for an error message.
func excerpt(data []byte) string {
	const n = 80
	if len(data) <= n {
		return strconv.Quote(string(data))
	}
	return strconv.Quote(string(data[:n])) + "..."
}

// Plain converts Go values as stage kinds write them in defaults ([]string,
// []float64, map[string]string, int, float32, ...) to the plain form params
// use: nil, string, bool, int64, float64, []any and map[string]any, the
// form DecodeValue returns. Anything else is returned unchanged (and
// EncodeValue refuses it).
func Plain(v any) any {
	switch x := v.(type) {
	case nil, string, bool, int64, float64:
		return x
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = Plain(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = Plain(e)
		}
		return out
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if rv.Uint() <= math.MaxInt64 {
			return int64(rv.Uint())
		}
	case reflect.Float32, reflect.Float64:
		return rv.Float()
	case reflect.String:
		return rv.String()
	case reflect.Bool:
		return rv.Bool()
	case reflect.Slice, reflect.Array:
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = Plain(rv.Index(i).Interface())
		}
		return out
	case reflect.Map:
		if rv.Type().Key().Kind() == reflect.String {
			out := make(map[string]any, rv.Len())
			for it := rv.MapRange(); it.Next(); {
				out[it.Key().String()] = Plain(it.Value().Interface())
			}
			return out
		}
	}
	return v
}
