package spec

import (
	"slices"
	"testing"
)

// selSpec has a per-subject upstream g and a stage s whose subject values
// are selected by g's metric; tail is appended to s's foreach entry.
func selSpec(sel string) string {
	return "name: x\nparams: {subjects: [s1, s2, s3]}\nstages:\n" +
		"  g:\n    uses: gen\n    foreach: {subject: ${params.subjects}}\n" +
		"  s:\n    uses: gen\n    foreach:\n      subject: " + sel + "\n      roi: [a, b]\n" +
		"  t:\n    uses: sum\n    with: {op: add}\n    inputs: {xs: s.out}\n"
}

func TestSelectionExpandsEveryCandidate(t *testing.T) {
	s, err := Parse("x.yaml", []byte(selSpec(`{from: ${params.subjects}, top: 2, by: "g[{subject}].group.mean_r"}`)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	g, err := Expand(s, testKinds(), knownTestKinds...)
	if err != nil {
		t.Fatal(err)
	}
	// Keys of s are those of a static listing: every candidate expands.
	var ids []string
	for _, inst := range g.Instances {
		ids = append(ids, inst.ID)
	}
	want := []string{"g[s1]", "g[s2]", "g[s3]", "s[s1,a]", "s[s1,b]", "s[s2,a]", "s[s2,b]", "s[s3,a]", "s[s3,b]", "t"}
	if !slices.Equal(ids, want) {
		t.Fatalf("instances %v, want %v", ids, want)
	}
	inst := g.ByID["s[s2,a]"]
	if len(inst.Gates) != 1 || inst.Gates[0].Key != "subject" || !slices.Equal(inst.Gates[0].Candidates, []string{"s1", "s2", "s3"}) {
		t.Fatalf("gates of s[s2,a]: %+v", inst.Gates)
	}
	// It waits for every candidate's upstream (the rule needs all), yet
	// no port receives them, so its key is unchanged.
	var deps []string
	for _, d := range inst.Deps {
		deps = append(deps, d.ID)
	}
	if !slices.Equal(deps, []string{"g[s1]", "g[s2]", "g[s3]"}) || len(inst.Inputs) != 0 {
		t.Fatalf("deps %v, inputs %v", deps, inst.Inputs)
	}
	if id, m := inst.Gates[0].Select.Resolve("s2"); id != "g[s2]" || m != "group.mean_r" {
		t.Fatalf("Resolve: %s %s", id, m)
	}
	// The rule is part of the spec digest; a different k is another spec.
	s2, _ := Parse("x.yaml", []byte(selSpec(`{from: ${params.subjects}, top: 1, by: "g[{subject}].group.mean_r"}`)), Options{})
	if s2.Digest == s.Digest {
		t.Fatal("top 1 and top 2 share a digest")
	}
	// A selection's fields can be overridden one at a time.
	s3, err := Parse("x.yaml", []byte(selSpec(`{from: ${params.subjects}, top: 2, by: "g[{subject}].group.mean_r"}`)), Options{Sets: []string{"s.foreach.subject.top=1"}})
	if err != nil || s3.Digest != s2.Digest {
		t.Fatalf("--set s.foreach.subject.top=1: %v (digest equal to top 1: %v)", err, s3.Digest == s2.Digest)
	}
}

func TestSelectionErrors(t *testing.T) {
	runErrCases(t, []errCase{
		{"k above candidates", selSpec(`{from: ${params.subjects}, top: 4, by: "g[{subject}].m"}`), Options{}, "x.yaml:10:48",
			[]string{"top 4 is more than the 3 candidates"}},
		{"k zero", selSpec(`{from: ${params.subjects}, bottom: 0, by: "g[{subject}].m"}`), Options{}, "x.yaml:10:51",
			[]string{"bottom must be a positive integer"}},
		{"no mode", selSpec(`{from: ${params.subjects}, by: "g[{subject}].m"}`), Options{}, "x.yaml:10:16",
			[]string{"needs one of top: K, bottom: K or above: X"}},
		{"two modes", selSpec(`{from: ${params.subjects}, top: 1, above: 0.5, by: "g[{subject}].m"}`), Options{}, "x.yaml:10:16",
			[]string{"not top and above"}},
		{"bad threshold", selSpec(`{from: ${params.subjects}, above: high, by: "g[{subject}].m"}`), Options{}, "x.yaml:10:50",
			[]string{"above must be a number"}},
		{"no by", selSpec(`{from: ${params.subjects}, top: 1}`), Options{}, "x.yaml:10:16",
			[]string{"needs by"}},
		{"no from", selSpec(`{top: 1, by: "g[{subject}].m"}`), Options{}, "x.yaml:10:16",
			[]string{"needs from"}},
		{"unknown selection key", selSpec(`{from: ${params.subjects}, top: 1, by: "g[{subject}].m", tie: first}`), Options{}, "x.yaml:10:73",
			[]string{`unknown selection key "tie"`}},
		{"no placeholder", selSpec(`{from: ${params.subjects}, top: 1, by: "g[s1].m"}`), Options{}, "x.yaml:10:55",
			[]string{"does not mention {subject}"}},
		{"no metric", selSpec(`{from: ${params.subjects}, top: 1, by: "g[{subject}]"}`), Options{}, "x.yaml:10:55",
			[]string{"no metric"}},
		{"unknown stage", selSpec(`{from: ${params.subjects}, top: 1, by: "h[{subject}].m"}`), Options{}, "x.yaml:10:55",
			[]string{`by names unknown stage "h"`}},
		{"no such instance", selSpec(`{from: [s1, s4], top: 1, by: "g[{subject}].m"}`), Options{}, "x.yaml:10:45",
			[]string{"names g[s4] for candidate s4, which is not an instance of stage g", "g[s1], g[s2], g[s3]"}},
		{"own metrics", selSpec(`{from: ${params.subjects}, top: 1, by: "s[{subject},a].m"}`), Options{}, "x.yaml:10:55",
			[]string{"cannot select its values by its own metrics"}},
		{"cycle", selSpec(`{from: ${params.subjects}, top: 1, by: "t.{subject}"}`), Options{}, "x.yaml:15:18",
			[]string{"dependency cycle"}},
	})
}
