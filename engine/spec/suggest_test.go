package spec

import "testing"

// A name is never offered as its own correction: a plugin kind that is
// listed but did not resolve (its plugin failed to start) used to read
// `unknown stage kind "fit"; did you mean fit?`.
func TestDidYouMeanNeverSuggestsTheSameName(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cands []string
		want  string
	}{
		{"fit", []string{"fit"}, ""},
		{"fit", []string{"fit", "fat"}, "; did you mean fat?"},
		{"ridge", []string{"rigde", "ridge"}, "; did you mean rigde?"},
		{"ridg", []string{"ridge", "probe"}, "; did you mean ridge?"},
		{"zzz", []string{"ridge"}, ""},
	} {
		if got := DidYouMean(tc.name, tc.cands); got != tc.want {
			t.Errorf("DidYouMean(%q, %v) = %q, want %q", tc.name, tc.cands, got, tc.want)
		}
	}
}

// ParseMemory is the one reading of memory sizes (spec resources and
// `voxflow run --memory`): binary units as in Slurm, a plain number MiB.
func TestParseMemoryBinaryUnits(t *testing.T) {
	for in, want := range map[string]int64{
		"16GB": 16384, "16G": 16384, "16GiB": 16384, "16gib": 16384, "512MiB": 512, "512M": 512,
		"512": 512, "1.5G": 1536, "1T": 1 << 20, "1024K": 1, "1K": 1, " 2 GB ": 2048,
	} {
		if got, err := ParseMemory(in); err != nil || got != want {
			t.Errorf("ParseMemory(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1G", "16 gigs", "12B", "5GI", "G"} {
		if got, err := ParseMemory(in); err == nil {
			t.Errorf("ParseMemory(%q) = %d, want an error", in, got)
		}
	}
}
