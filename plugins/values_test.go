package plugins

import (
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestPlainValuesKeepTheirTypes(t *testing.T) {
	in := map[string]any{
		"int":      int64(3),
		"intish":   2.0,
		"big":      1e300,
		"tiny":     -2.5e-12,
		"str":      "a \"quoted\" ü",
		"bool":     true,
		"nil":      nil,
		"list":     []any{int64(1), 1.0, "x", []any{}},
		"strings":  []string{"V1v", "FFA-1"},
		"floats":   []float64{0.1, 3},
		"goint":    7,
		"map":      map[string]any{"b": map[string]any{"c": int64(-4)}, "a": false},
		"maxint64": int64(math.MaxInt64),
	}
	js, err := encodeJSON(in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeJSON(js)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"int":      int64(3),
		"intish":   2.0,
		"big":      1e300,
		"tiny":     -2.5e-12,
		"str":      "a \"quoted\" ü",
		"bool":     true,
		"nil":      nil,
		"list":     []any{int64(1), 1.0, "x", []any{}},
		"strings":  []any{"V1v", "FFA-1"},
		"floats":   []any{0.1, 3.0},
		"goint":    int64(7),
		"map":      map[string]any{"b": map[string]any{"c": int64(-4)}, "a": false},
		"maxint64": int64(math.MaxInt64),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip through %s:\n got %#v\nwant %#v", js, got, want)
	}
}

func TestPlainValuesRejectNonFinite(t *testing.T) {
	_, err := encodeJSON(map[string]any{"alphas": []any{1.0, math.Inf(1)}})
	if err == nil || !strings.Contains(err.Error(), "$.alphas[1]") {
		t.Fatalf("want an error naming $.alphas[1], got %v", err)
	}
	if _, err := encodeJSON(map[string]any{"f": func() {}}); err == nil {
		t.Fatal("a func param encoded without error")
	}
}

func TestStderrTailStartsAtPanic(t *testing.T) {
	tl := newStderrTail()
	w := tl.source()
	for i := 0; i < 50; i++ {
		_, _ = w.Write([]byte("noise\n"))
	}
	_, _ = w.Write([]byte("panic: boom\n\ngoroutine 7 [running]:\n"))
	for i := 0; i < 25; i++ {
		_, _ = w.Write([]byte("\tframe\n"))
	}
	_, _ = w.Write([]byte("partial line without newline"))
	tail := tl.tail()
	if tail[0] != "panic: boom" {
		t.Errorf("tail starts with %q, want the panic line", tail[0])
	}
	if len(tail) != 28 {
		t.Errorf("tail has %d lines, want 28 (panic line to end)", len(tail))
	}
}
