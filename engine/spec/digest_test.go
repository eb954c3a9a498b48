package spec

import (
	"strings"
	"testing"

	"github.com/voxflow/voxflow/internal/valuetest"
	"github.com/voxflow/voxflow/stages"
)

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

// The digest hashes params in the plain-value codec's form: a value and
// its decoded encoding digest alike, values that encode differently (1 and
// 1.0, -0 and 0) digest differently, and what the codec refuses is
// reported with the value's path.
func TestDigestUsesTheCodec(t *testing.T) {
	digestOf := func(v any) (string, ErrorList) {
		s := &Spec{Name: "d", Stages: []*Stage{{Name: "g", Uses: "gen", With: map[string]any{"v": v}}}}
		var errs ErrorList
		return digest(s, &errs), errs
	}
	seen := map[string]string{}
	for _, c := range valuetest.Cases() {
		d, errs := digestOf(c.Value)
		if len(errs) > 0 || d == "" {
			t.Errorf("%s: digest failed: %v", c.Name, errs)
			continue
		}
		back, err := stages.DecodeValue([]byte(c.JSON))
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		if d2, _ := digestOf(back); d2 != d {
			t.Errorf("%s: the value read back from %s digests differently", c.Name, c.JSON)
		}
		if other, dup := seen[d]; dup {
			t.Errorf("%s and %s share a digest", c.Name, other)
		}
		seen[d] = c.Name
	}
	for _, c := range valuetest.Bads() {
		d, errs := digestOf(c.Value)
		if want := strings.Replace(c.Path, "$", "$.stages[0].with.v", 1); d != "" || !strings.Contains(errs.Error(), want+":") {
			t.Errorf("%s: digest %q, errors %v; want an error naming %s", c.Name, d, errs, want)
		}
	}
}
