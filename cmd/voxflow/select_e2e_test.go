package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// selectSpec fans probe out over the top 2 of 3 subjects by a metric that
// ridge records per subject (a: s2 > s1 > s3; b: s2 > s3 > s1; c: a
// three-way tie). post depends on probe per value, summary fans in.
const selectSpec = `name: sel
params:
  subjects: [s1, s2, s3]
  metric: a
stages:
  ridge:
    uses: command
    foreach: {subject: ${params.subjects}}
    with:
      cmd: 'case ${each.subject} in s1) a=3 b=1;; s2) a=5 b=5;; s3) a=1 b=3;; esac; echo "{\"group\": {\"a\": $a, \"b\": $b, \"c\": 2}}" > metrics.json'
  probe:
    uses: command
    foreach:
      subject: {from: ${params.subjects}, top: 2, by: "ridge[{subject}].group.${params.metric}"}
      roi: [V1, FFA]
    with: {cmd: 'echo ${each.subject}-${each.roi} > out.txt'}
  post:
    uses: command
    inputs: {deps: probe}
    foreach: probe
    with: {cmd: 'cat $IN_deps/out.txt > post.txt'}
  summary:
    uses: command
    inputs: {deps: probe}
    with: {cmd: 'for d in $(echo $IN_deps | tr : " "); do cat $d/out.txt; done > all.txt'}
variants:
  by-b: {params.metric: b}
`

// selPlanRow returns the plan's row for instance, with runs of spaces
// collapsed, or "" when it has none.
func selPlanRow(out, instance string) string {
	sp := regexp.MustCompile(` {2,}`)
	for _, l := range strings.Split(out, "\n") {
		l = sp.ReplaceAllString(strings.TrimSpace(l), "  ")
		if f := strings.Split(l, "  "); len(f) >= 2 && f[1] == instance {
			return l
		}
	}
	return ""
}

func TestSelectionPlanRunAndRerun(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "sel.yaml"), selectSpec)
	// The static listing of what the selection chooses under metric a.
	static := strings.Replace(selectSpec, `{from: ${params.subjects}, top: 2, by: "ridge[{subject}].group.${params.metric}"}`, "[s1, s2]", 1)
	writeFile(t, filepath.Join(dir, "static.yaml"), strings.Replace(static, "name: sel", "name: static", 1))

	// Before ridge ran, the selecting stage and its per-value dependents wait.
	r := vox(t, dir, "plan", "sel.yaml")
	if r.code != 0 {
		t.Fatalf("plan:\n%s", r)
	}
	for _, inst := range []string{"probe[s1,V1]", "probe[s3,FFA]", "post[s2,V1]"} {
		if l := selPlanRow(r.stdout, inst); !strings.HasPrefix(l, "waiting  "+inst+"  waiting for ridge[s1], ridge[s2], ridge[s3] to record group.a (foreach subject: top 2)") {
			t.Errorf("plan before the upstream ran, %s: %q\n%s", inst, l, r.stdout)
		}
	}
	if !strings.Contains(r.stdout, "4 to run, 0 cached, 12 waiting") {
		t.Errorf("plan totals:\n%s", r.stdout)
	}

	r = vox(t, dir, "run", "sel.yaml")
	if r.code != 0 || !strings.Contains(r.stdout, "12 executed, 0 cached, 0 failed, 0 skipped, 0 interrupted, 4 not chosen (of 16)") {
		t.Fatalf("run:\n%s", r)
	}
	if !strings.Contains(r.stdout+r.stderr, "probe[s3,V1]: s3 not chosen: group.a 1, rank 3 of 3 (top 2)") {
		t.Errorf("run log lacks the unchosen reason:\n%s", r)
	}

	// After: the chosen values with their reasons, the others not chosen.
	r = vox(t, dir, "plan", "sel.yaml")
	want := map[string]string{
		"probe[s2,V1]":  "cached  probe[s2,V1]  s2 chosen: group.a 5, rank 1 of 3 (top 2)",
		"probe[s1,FFA]": "cached  probe[s1,FFA]  s1 chosen: group.a 3, rank 2 of 3 (top 2)",
		"probe[s3,V1]":  "not chosen  probe[s3,V1]  s3 not chosen: group.a 1, rank 3 of 3 (top 2)",
		"post[s3,FFA]":  "not chosen  post[s3,FFA]  upstream probe[s3,FFA] not chosen (s3 not chosen: group.a 1, rank 3 of 3 (top 2))",
		"summary":       "cached  summary",
	}
	for inst, w := range want {
		if l := selPlanRow(r.stdout, inst); l != w {
			t.Errorf("plan after the run, %s:\n got %q\nwant %q", inst, l, w)
		}
	}
	if !strings.Contains(r.stdout, "0 to run, 12 cached, 4 not chosen") {
		t.Errorf("plan totals after the run:\n%s", r.stdout)
	}

	// Every key equals that of a spec listing the chosen values by hand.
	r = vox(t, dir, "plan", "static.yaml")
	if r.code != 0 || !strings.Contains(r.stdout, "0 to run, 12 cached") {
		t.Fatalf("the static listing of the chosen values is not cached:\n%s", r)
	}

	// Another metric chooses s2 and s3: only s3's instances and the fan-in run.
	r = vox(t, dir, "plan", "sel.yaml", "--variant", "by-b")
	for inst, w := range map[string]string{
		"probe[s2,V1]":  "cached  probe[s2,V1]  s2 chosen: group.b 5, rank 1 of 3 (top 2)",
		"probe[s3,FFA]": "run  probe[s3,FFA]  never run; s3 chosen: group.b 3, rank 2 of 3 (top 2)",
		"probe[s1,V1]":  "not chosen  probe[s1,V1]  s1 not chosen: group.b 1, rank 3 of 3 (top 2)",
	} {
		if l := selPlanRow(r.stdout, inst); l != w {
			t.Errorf("plan --variant by-b, %s:\n got %q\nwant %q", inst, l, w)
		}
	}
	r = vox(t, dir, "run", "sel.yaml", "--variant", "by-b")
	if r.code != 0 || !strings.Contains(r.stdout, "5 executed, 7 cached, 0 failed, 0 skipped, 0 interrupted, 4 not chosen (of 16)") {
		t.Fatalf("run --variant by-b:\n%s", r)
	}

	// compare shows which values each run chose.
	r = vox(t, dir, "compare", "sel.yaml", "--metric", "nothing")
	if l := selPlanRow(r.stdout, "chosen subject"); r.code != 0 || l != "probe  chosen subject  s1,s2  s2,s3" {
		t.Errorf("compare chosen row %q:\n%s", l, r)
	}
	r = vox(t, dir, "compare", "sel.yaml", "--format", "json", "--metric", "nothing")
	if !strings.Contains(strings.Join(strings.Fields(r.stdout), ""), `"chosen":[{"stage":"probe","key":"subject","values":["s1,s2","s2,s3"]}]`) {
		t.Errorf("compare json lacks the chosen values:\n%s", r)
	}
}

func TestSelectionTiesAndErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "sel.yaml"), selectSpec)
	if r := vox(t, dir, "run", "sel.yaml", "--set", "params.metric=c"); r.code != 0 {
		t.Fatalf("run with a tie:\n%s", r)
	}
	// A three-way tie: candidate order (from:) decides, and plan says so.
	r := vox(t, dir, "plan", "sel.yaml", "--set", "params.metric=c")
	for inst, w := range map[string]string{
		"probe[s2,V1]": "cached  probe[s2,V1]  s2 chosen: group.c 2, rank 2 of 3 (top 2); tie at the cut broken by candidate order",
		"probe[s3,V1]": "not chosen  probe[s3,V1]  s3 not chosen: group.c 2, rank 3 of 3 (top 2); tie at the cut broken by candidate order",
	} {
		if l := selPlanRow(r.stdout, inst); l != w {
			t.Errorf("tie, %s:\n got %q\nwant %q", inst, l, w)
		}
	}
	// A metric the upstream does not record: named, with what it has.
	r = vox(t, dir, "run", "sel.yaml", "--set", "params.metric=nope")
	if r.code == 0 || !strings.Contains(r.stderr, `ridge[s1] records no metric "group.nope"; it has: group.a, group.b, group.c`) {
		t.Errorf("missing metric:\n%s", r)
	}
	r = vox(t, dir, "plan", "sel.yaml", "--set", "params.metric=nope")
	if !strings.Contains(r.stdout, `cannot run: foreach subject: top 2 by ridge[{subject}].group.nope: ridge[s1] records no metric "group.nope"`) {
		t.Errorf("plan with a missing metric:\n%s", r)
	}
	// More than there are candidates.
	r = vox(t, dir, "validate", "sel.yaml", "--set", "probe.foreach.subject.top=4")
	if r.code == 0 || !strings.Contains(r.stderr, "top 4 is more than the 3 candidates in from") {
		t.Errorf("k above the candidates:\n%s", r)
	}
	// above: a threshold instead of a count (s1 and s2 ran for the tie).
	r = vox(t, dir, "plan", "sel.yaml", "--set", "probe.foreach.subject={from: [s1, s2, s3], above: 2, by: 'ridge[{subject}].group.a'}")
	if l := selPlanRow(r.stdout, "probe[s1,V1]"); l != "cached  probe[s1,V1]  s1 chosen: group.a 3 > 2, rank 2 of 3" {
		t.Errorf("above, probe[s1,V1]: %q\n%s", l, r)
	}
	if l := selPlanRow(r.stdout, "probe[s3,V1]"); l != "not chosen  probe[s3,V1]  s3 not chosen: group.a 1 <= 2, rank 3 of 3" {
		t.Errorf("above, probe[s3,V1]: %q\n%s", l, r)
	}
	// bottom: the lowest first.
	r = vox(t, dir, "plan", "sel.yaml", "--set", "probe.foreach.subject={from: [s1, s2, s3], bottom: 1, by: 'ridge[{subject}].group.a'}")
	if l := selPlanRow(r.stdout, "probe[s3,FFA]"); l != "run  probe[s3,FFA]  never run; s3 chosen: group.a 1, rank 1 of 3 (bottom 1)" {
		t.Errorf("bottom, probe[s3,FFA]: %q\n%s", l, r)
	}
	// Nothing above the threshold: a fan-in left with no input is not
	// chosen either, rather than run on nothing.
	r = vox(t, dir, "run", "sel.yaml", "--set", "probe.foreach.subject={from: [s1, s2, s3], above: 9, by: 'ridge[{subject}].group.a'}")
	if r.code != 0 || !strings.Contains(r.stdout, "0 executed, 3 cached, 0 failed, 0 skipped, 0 interrupted, 13 not chosen (of 16)") ||
		!strings.Contains(r.stdout+r.stderr, "summary: input deps: none of its upstream instances was chosen") {
		t.Errorf("nothing chosen:\n%s", r)
	}
}
