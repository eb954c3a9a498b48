package spec

import (
	"testing"

	"github.com/voxflow/voxflow/stages"
)

// FuzzParseValidate feeds arbitrary bytes (seeded with the README's
// examples and this package's error cases) through Parse, Validate and
// Expand: none of them may panic, whatever the input.
func FuzzParseValidate(f *testing.F) {
	for _, s := range readmeSpecs(f) {
		f.Add([]byte(s), "", "")
	}
	f.Add([]byte(fanSpec), "", "g.foreach.roi=[a]")
	f.Add([]byte(ovSpec), "two-rois", "tune_cl.with.scale=0.3")
	f.Add([]byte("name: x\nstages:\n  a: {uses: sum, with: {op: add}, inputs: {xs: c}}\n  c: {uses: sum, inputs: {xs: a}}\n"), "", "")
	f.Add([]byte("a: &a [*a, *a]\nb: <<: *a\n"), "v", "x")
	f.Add([]byte("name: x\nstages: &s\n  a: *s\n  b: {<<: *s}\n"), "", "")
	f.Fuzz(func(t *testing.T, data []byte, variant, set string) {
		opt := Options{Variant: variant}
		if set != "" {
			opt.Sets = []string{set}
		}
		s, err := Parse("fuzz.yaml", data, opt)
		if s == nil {
			if err == nil {
				t.Fatal("Parse returned neither a spec nor an error")
			}
			return
		}
		verr := Validate(s, testKinds(), knownTestKinds...)
		if err != nil && verr == nil {
			t.Fatalf("Parse reported %v but Validate found nothing", err)
		}
		g, eerr := Expand(s, testKinds())
		if (eerr == nil) != (verr == nil) {
			t.Fatalf("Validate and Expand disagree: %v vs %v", verr, eerr)
		}
		if eerr == nil {
			for _, inst := range g.Instances {
				if _, err := stages.EncodeValue(inst.Params); err != nil {
					t.Fatalf("instance %s params not hashable: %v", inst.ID, err)
				}
			}
		}
	})
}
