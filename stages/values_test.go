package stages

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/voxflow/voxflow/internal/valuetest"
)

func TestCodecTable(t *testing.T) {
	for _, c := range valuetest.Cases() {
		got, err := EncodeValue(c.Value)
		if err != nil || string(got) != c.JSON {
			t.Errorf("%s: EncodeValue(%#v) = %s, %v; want %s", c.Name, c.Value, got, err, c.JSON)
			continue
		}
		back, err := DecodeValue(got)
		if err != nil || !valuetest.Same(back, c.Value) {
			t.Errorf("%s: DecodeValue(%s) = %#v, %v; want %#v", c.Name, got, back, err, c.Value)
		}
		var std any
		if err := json.Unmarshal(got, &std); err != nil {
			t.Errorf("%s: %s is not valid JSON: %v", c.Name, got, err)
		}
	}
	for _, c := range valuetest.Bads() {
		if got, err := EncodeValue(c.Value); err == nil || !strings.HasPrefix(err.Error(), c.Path+":") {
			t.Errorf("%s: EncodeValue = %s, %v; want an error naming %s", c.Name, got, err, c.Path)
		}
	}
}

// Go values as kinds write them (defaults, stages.Params) encode as their
// plain form does, and Plain converts them to what DecodeValue returns.
func TestCodecGoTypes(t *testing.T) {
	cases := []struct {
		in   any
		want string
	}{
		{Params{"t": 0.05, "n": int64(3)}, `{"n":3,"t":0.05}`},
		{[]string{"V1v", "FFA-1"}, `["V1v","FFA-1"]`},
		{[]float64{0.1, 3}, `[0.1,3.0]`},
		{map[string]string{"b": "<", "a": ""}, `{"a":"","b":"<"}`},
		{[2]int{7, -1}, `[7,-1]`},
		{float32(0.5), `0.5`},
		{uint8(7), `7`},
		{7, `7`},
		{[]float64(nil), `null`},
		{map[string]any(nil), `null`},
	}
	for _, c := range cases {
		got, err := EncodeValue(c.in)
		if err != nil || string(got) != c.want {
			t.Errorf("EncodeValue(%#v) = %s, %v; want %s", c.in, got, err, c.want)
			continue
		}
		if c.want == "null" {
			continue // Plain makes a nil slice an empty list, as defaults always had it
		}
		plain, err := EncodeValue(Plain(c.in))
		if err != nil || string(plain) != c.want {
			t.Errorf("EncodeValue(Plain(%#v)) = %s, %v; want %s", c.in, plain, err, c.want)
		}
	}
	if _, err := EncodeValue(map[int]any{1: 2}); err == nil {
		t.Error("a map with int keys encoded")
	}
}

func TestDecodeValueRefuses(t *testing.T) {
	for in, want := range map[string]string{
		`{"n": 9223372036854775808}`: `decode plain value "{\"n\": 9223372036854775808}": $.n: integer`,
		`[1, 2e400]`:                 "$[1]: number",
		`{"a": 1} {"b": 2}`:          "want one JSON value",
		`{"a": `:                     "decode plain value",
	} {
		if got, err := DecodeValue([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("DecodeValue(%s) = %#v, %v; want an error with %q", in, got, err, want)
		}
	}
	if v, err := DecodeValue(nil); v != nil || err != nil {
		t.Errorf("DecodeValue(nil) = %#v, %v; want nil, nil", v, err)
	}
}

// FuzzValueRoundTrip holds the codec's promise on arbitrary JSON: what
// DecodeValue accepts, EncodeValue writes, and that decodes to the same
// value and encodes to the same bytes again; strings are escaped exactly
// as encoding/json escapes them with HTML escaping off.
func FuzzValueRoundTrip(f *testing.F) {
	for _, c := range valuetest.Cases() {
		f.Add([]byte(c.JSON))
	}
	f.Add([]byte(`{"b":[1,-0,1E2,"\u003c\ud83e\udde0"],"a":{"c":-0.0}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := DecodeValue(data)
		if err != nil {
			return
		}
		enc, err := EncodeValue(v)
		if err != nil {
			t.Fatalf("decoded %s to %#v, which does not encode: %v", data, v, err)
		}
		back, err := DecodeValue(enc)
		if err != nil || !valuetest.Same(back, v) {
			t.Fatalf("%s -> %#v -> %s -> %#v, %v", data, v, enc, back, err)
		}
		again, _ := EncodeValue(back)
		if !bytes.Equal(again, enc) {
			t.Fatalf("encoding is not stable: %s then %s", enc, again)
		}
		if s, ok := v.(string); ok {
			var std bytes.Buffer
			e := json.NewEncoder(&std)
			e.SetEscapeHTML(false)
			_ = e.Encode(s)
			if want := strings.TrimSuffix(std.String(), "\n"); string(enc) != want {
				t.Fatalf("string %q encodes as %s; encoding/json writes %s", s, enc, want)
			}
		}
	})
}
