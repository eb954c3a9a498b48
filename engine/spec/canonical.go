package spec

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/zeebo/blake3"
)

// CanonicalJSON encodes v deterministically for hashing: object keys
// sorted, no insignificant whitespace, strings without HTML escaping, and
// floats in their shortest round-trip form always marked as floats (1.0,
// 1e+21), so that the int 1 and the float 1.0 encode differently. v may
// hold nil, bool, string, any Go integer or float, slices and arrays, and
// maps with string keys, nested. NaN and infinities are errors.
func CanonicalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := canon(&b, reflect.ValueOf(v), "$"); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func canon(b *bytes.Buffer, v reflect.Value, path string) error {
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
		return canon(b, v.Elem(), path)
	case reflect.Bool:
		b.WriteString(strconv.FormatBool(v.Bool()))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		b.WriteString(strconv.FormatInt(v.Int(), 10))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		b.WriteString(strconv.FormatUint(v.Uint(), 10))
	case reflect.Float32, reflect.Float64:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("canonical JSON: %s: %v is not representable in JSON", path, f)
		}
		b.WriteString(canonFloat(f))
	case reflect.String:
		canonString(b, v.String())
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
			if err := canon(b, v.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return fmt.Errorf("canonical JSON: %s: map keys must be strings, got %s", path, v.Type().Key())
		}
		if v.IsNil() {
			b.WriteString("null")
			return nil
		}
		keys := make([]string, 0, v.Len())
		for _, k := range v.MapKeys() {
			keys = append(keys, k.String())
		}
		sort.Strings(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			canonString(b, k)
			b.WriteByte(':')
			kv := reflect.ValueOf(k).Convert(v.Type().Key())
			if err := canon(b, v.MapIndex(kv), path+"."+k); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	default:
		return fmt.Errorf("canonical JSON: %s: unsupported type %s; want plain values (bool, number, string, list, map)", path, v.Type())
	}
	return nil
}

// canonFloat formats f shortest round-trip, with ".0" added when the
// result would otherwise read as an integer; -0 encodes as 0.0.
func canonFloat(f float64) string {
	if f == 0 {
		f = 0 // -0 equals 0: hash them alike
	}
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}

func canonString(b *bytes.Buffer, s string) {
	var tmp bytes.Buffer
	enc := json.NewEncoder(&tmp)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	b.Write(bytes.TrimSuffix(tmp.Bytes(), []byte("\n")))
}

// digest hashes the effective spec: what decides what runs, not how it is
// described.
func digest(s *Spec, errs *ErrorList) string {
	stagesOut := make([]any, 0, len(s.Stages))
	for _, st := range s.Stages {
		inputs := map[string]any{}
		for _, in := range st.Inputs {
			refs := make([]any, len(in.Refs))
			for i, r := range in.Refs {
				refs[i] = r.String()
			}
			inputs[in.Port] = refs
		}
		var foreach any = st.ForeachFrom
		if st.ForeachFrom == "" {
			keys := make([]any, len(st.Foreach))
			for i, k := range st.Foreach {
				key := map[string]any{"name": k.Name, "values": k.Values}
				if sel := k.Select; sel != nil {
					key["select"] = map[string]any{"mode": sel.Mode, "k": sel.K, "above": sel.Threshold, "by": sel.By}
				}
				keys[i] = key
			}
			foreach = keys
		}
		stagesOut = append(stagesOut, map[string]any{
			"name": st.Name, "uses": st.Uses, "inputs": inputs, "with": st.With,
			"foreach": foreach, "retries": st.Retries, "timeout": int64(st.Timeout),
			"isolate": st.Isolate, "executor": st.ExecOptions,
			"resources": map[string]any{"cpus": st.Resources.CPUs, "memory_mb": st.Resources.MemoryMB, "gpus": st.Resources.GPUs},
		})
	}
	eff := map[string]any{
		"name": s.Name, "params": s.Params, "isolate": s.Isolate,
		"executor": s.Executor, "plugins": s.Plugins, "stages": stagesOut,
	}
	data, err := CanonicalJSON(eff)
	if err != nil {
		errs.add(s.Pos, "cannot compute the spec digest: %s", err)
		return ""
	}
	sum := blake3.Sum256(data)
	return hex.EncodeToString(sum[:])
}
