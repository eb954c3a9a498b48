package compare

import (
	"encoding/json"
	"math"
	"testing"
)

// Absent values print as "-" (metric) and "" (delta), a zero delta as
// "±0", and the rest compactly with a sign on deltas.
func TestFormatMetricAndDelta(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		v, base      float64
		metric, diff string
	}{
		{0.4, 0.2, "0.4", "+0.2"},
		{0.123456, 0.2, "0.1235", "-0.0765"},
		{0.5, 0.5, "0.5", "±0"},
		{nan, 0.5, "-", ""},
		{0.5, nan, "0.5", ""},
		{1234567, 0, "1.235e+06", "+1.23e+06"},
	} {
		if got := FormatMetric(tc.v); got != tc.metric {
			t.Errorf("FormatMetric(%v) = %q, want %q", tc.v, got, tc.metric)
		}
		if got := FormatDelta(tc.v, tc.base); got != tc.diff {
			t.Errorf("FormatDelta(%v, %v) = %q, want %q", tc.v, tc.base, got, tc.diff)
		}
	}
}

// JSON has no NaN: a metric a run lacks is written as null, not refused.
func TestMetricRowJSONWritesAbsentAsNull(t *testing.T) {
	b, err := json.Marshal(MetricRow{Instance: "score[V1v]", Metric: "mean_r", Values: []float64{0.25, math.NaN()}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"instance":"score[V1v]","metric":"mean_r","values":[0.25,null]}`; got != want {
		t.Fatalf("MetricRow JSON = %s, want %s", got, want)
	}
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"mean_*", "mean_r", true},
		{"score*:mean_r", "score[V1v]:mean_r", true},
		{"mean_r", "score[V1v]:mean_r", false},
		{"[", "[", false}, // malformed: matches nothing rather than fail
	} {
		if got := match(tc.pattern, tc.s); got != tc.want {
			t.Errorf("match(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}
