package spec

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/voxflow/voxflow/stages"
)

func TestCanonicalJSON(t *testing.T) {
	cases := []struct {
		in   any
		want string
	}{
		{nil, `null`},
		{int64(1), `1`},
		{1.0, `1.0`},
		{float32(0.5), `0.5`},
		{math.Copysign(0, -1), `0.0`},
		{0.1, `0.1`},
		{1e21, `1e+21`},
		{123456.0, `123456.0`},
		{1234567.0, `1.234567e+06`},
		{1e-7, `1e-07`},
		{uint8(7), `7`},
		{"a<b>&\"\n", `"a<b>&\"\n"`},
		{[]any{int64(1), 1.0, "1", true, nil}, `[1,1.0,"1",true,null]`},
		{map[string]any{"b": 1, "a": map[string]any{"z": []string{"x"}, "y": 2.5}}, `{"a":{"y":2.5,"z":["x"]},"b":1}`},
		{stages.Params{"t": 0.05, "n": int64(3)}, `{"n":3,"t":0.05}`},
		{map[string]string{}, `{}`},
		{[]float64{}, `[]`},
	}
	for _, c := range cases {
		got, err := CanonicalJSON(c.in)
		if err != nil {
			t.Errorf("CanonicalJSON(%#v): %v", c.in, err)
			continue
		}
		if string(got) != c.want {
			t.Errorf("CanonicalJSON(%#v) = %s, want %s", c.in, got, c.want)
		}
		var back any
		if err := json.Unmarshal(got, &back); err != nil {
			t.Errorf("%s is not valid JSON: %v", got, err)
		}
	}
	for _, bad := range []any{math.NaN(), math.Inf(1), map[int]any{1: 2}, struct{}{}, make(chan int)} {
		if _, err := CanonicalJSON(bad); err == nil {
			t.Errorf("CanonicalJSON(%#v) succeeded, want an error", bad)
		}
	}
	if _, err := CanonicalJSON(map[string]any{"x": []any{math.Inf(-1)}}); err == nil || !strings.Contains(err.Error(), "$.x[0]") {
		t.Errorf("error should name the path, got %v", err)
	}
}

// Round trip: every finite float parses back to itself from its canonical form.
func TestCanonicalFloatRoundTrip(t *testing.T) {
	for _, f := range []float64{0.1, 1.0 / 3, math.MaxFloat64, math.SmallestNonzeroFloat64, 1e300, 2.5e-300, 42} {
		b, _ := CanonicalJSON(f)
		var back float64
		if err := json.Unmarshal(b, &back); err != nil || back != f {
			t.Errorf("%v -> %s -> %v (%v)", f, b, back, err)
		}
	}
}

func TestDigestIgnoresDescriptionAndFormatting(t *testing.T) {
	a := parseOK(t, "name: d\ndescription: one\nstages:\n  g: {uses: gen, with: {n: 1}}\n", Options{})
	b := parseOK(t, "# comment\nname: d\ndescription: two\nstages:\n  g:\n    uses: gen\n    with:\n      n: 1\n", Options{})
	c := parseOK(t, "name: d\nstages:\n  g: {uses: gen, with: {n: 2}}\n", Options{})
	if a.Digest != b.Digest {
		t.Error("description or layout changed the digest")
	}
	if a.Digest == c.Digest {
		t.Error("a param change left the digest alone")
	}
}
