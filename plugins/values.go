package plugins

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/voxflow/voxflow/stages"
)

// encodeJSON writes a plain value (string, bool, ints, floats, slices and
// string-keyed maps of those, nil) as JSON in which every float carries a
// '.' or an exponent. Plain encoding/json writes float64(2) as "2", which
// would come back as an int; stages type-switch on params, so the kind of
// number must survive the trip.
func encodeJSON(v any) (string, error) {
	var b bytes.Buffer
	if err := writeValue(&b, reflect.ValueOf(v), "$"); err != nil {
		return "", err
	}
	return b.String(), nil
}

func writeValue(b *bytes.Buffer, v reflect.Value, path string) error {
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
		return writeValue(b, v.Elem(), path)
	case reflect.String:
		s, _ := json.Marshal(v.String())
		b.Write(s)
	case reflect.Bool:
		b.WriteString(strconv.FormatBool(v.Bool()))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		b.WriteString(strconv.FormatInt(v.Int(), 10))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		b.WriteString(strconv.FormatUint(v.Uint(), 10))
	case reflect.Float32, reflect.Float64:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("%s: %v cannot be sent to a plugin; want a finite number", path, f)
		}
		s := strconv.FormatFloat(f, 'g', -1, 64)
		if !strings.ContainsAny(s, ".eE") {
			s += ".0"
		}
		b.WriteString(s)
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
			if err := writeValue(b, v.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return fmt.Errorf("%s: map with %s keys; want string keys", path, v.Type().Key())
		}
		if v.IsNil() {
			b.WriteString("null")
			return nil
		}
		keys := make([]string, 0, v.Len())
		for _, k := range v.MapKeys() {
			keys = append(keys, k.String())
		}
		// Sorted keys keep the wire form deterministic, which makes plugin
		// traffic diffable in logs.
		sort.Strings(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			ks, _ := json.Marshal(k)
			b.Write(ks)
			b.WriteByte(':')
			if err := writeValue(b, v.MapIndex(reflect.ValueOf(k).Convert(v.Type().Key())), path+"."+k); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	default:
		return fmt.Errorf("%s: %s is not a plain value; want string, bool, number, list or map", path, v.Type())
	}
	return nil
}

// decodeJSON reads what encodeJSON wrote: numbers with '.' or an exponent
// become float64, the others int64; lists become []any, objects
// map[string]any. Empty input decodes to nil.
func decodeJSON(s string) (any, error) {
	if s == "" {
		return nil, nil
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("decode plain value %q: %w", truncate(s, 80), err)
	}
	return stages.PlainNumbers(v)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
