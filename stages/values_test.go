package stages

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"testing"
)

func TestTypedNumbersRoundTrip(t *testing.T) {
	in := map[string]any{"i": int64(3), "f": 2.0, "fs": []float64{1, 0.5}, "m": map[string]any{"x": []any{int64(1), 1.5, "s"}}}
	typed, err := TypedNumbers(in, "params")
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(typed)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var back any
	if err := dec.Decode(&back); err != nil {
		t.Fatal(err)
	}
	got, err := PlainNumbers(back)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"i": int64(3), "f": 2.0, "fs": []any{1.0, 0.5}, "m": map[string]any{"x": []any{int64(1), 1.5, "s"}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip through %s:\n got %#v\nwant %#v", b, got, want)
	}
	if _, err := TypedNumbers(map[string]any{"bad": math.NaN()}, "params"); err == nil {
		t.Fatal("NaN must be refused")
	}
}
