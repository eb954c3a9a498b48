package spec

import (
	"fmt"
	"strings"
	"testing"
)

// nsdSizedSpec is a study at the poster's scale: 8 subjects x 20 ROIs,
// two tuning stages, a ridge per subject x ROI and a report fan-in.
func nsdSizedSpec() string {
	var subj, rois []string
	for i := 1; i <= 8; i++ {
		subj = append(subj, fmt.Sprintf("subj%02d", i))
	}
	for i := 1; i <= 20; i++ {
		rois = append(rois, fmt.Sprintf("R%d", i))
	}
	return `name: bench
params: {subjects: [` + strings.Join(subj, ", ") + `], rois: [` + strings.Join(rois, ", ") + `]}
stages:
  data: {uses: gen, with: {alphas: {logspace: [-1, 6, 15]}}}
  tune_a:
    uses: gen
    foreach: {subject: "${params.subjects}", roi: "${params.rois}"}
    inputs: {seed_from: data.out}
    with: {note: "${each.subject}/${each.roi}", scale: 0.1}
  tune_b: {uses: gen, foreach: tune_a, inputs: {seed_from: data.out}}
  ridge:
    uses: sum
    foreach: tune_a
    inputs: {xs: [tune_a.out, tune_b.out], base: data}
    with: {op: add}
  report: {uses: sum, inputs: {xs: ridge.total}, with: {op: mul}}
`
}

func BenchmarkParseExpand(b *testing.B) {
	src := []byte(nsdSizedSpec())
	kinds := testKinds()
	for b.Loop() {
		s, err := Parse("bench.yaml", src, Options{Sets: []string{"tune_a.with.scale=0.2"}})
		if err != nil {
			b.Fatal(err)
		}
		g, err := Expand(s, kinds)
		if err != nil {
			b.Fatal(err)
		}
		if len(g.Instances) != 1+3*160+1 {
			b.Fatalf("%d instances", len(g.Instances))
		}
	}
}
