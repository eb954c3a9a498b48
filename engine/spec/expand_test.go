package spec

import (
	"reflect"
	"strings"
	"testing"
)

// expand parses and expands src, failing the test on any error.
func expand(t *testing.T, src string, opt Options) *Graph {
	t.Helper()
	s, err := Parse("x.yaml", []byte(src), opt)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	g, err := Expand(s, testKinds(), knownTestKinds...)
	if err != nil {
		t.Fatalf("Expand: %v", err)
	}
	return g
}

// edges renders an instance's port edges as "from[.output]" strings.
func edges(inst *Instance, port string) []string {
	var out []string
	for _, e := range inst.Inputs[port] {
		s := e.From.ID
		if e.Output != "" {
			s += "." + e.Output
		}
		out = append(out, s)
	}
	return out
}

func ids(g *Graph) []string {
	var out []string
	for _, i := range g.Instances {
		out = append(out, i.ID)
	}
	return out
}

const fanSpec = `name: fan
params: {subjects: [s1, s2], rois: [V1v, FFA-1]}
stages:
  g:
    uses: gen
    foreach: {subject: "${params.subjects}", roi: "${params.rois}"}
  per_subject:
    uses: sum
    foreach: {subject: "${params.subjects}"}
    inputs: {xs: g.out}
    with: {op: add}
  all:
    uses: sum
    inputs: {xs: [per_subject.total, g]}
    with: {op: mul}
  same:
    uses: sum
    foreach: g
    inputs: {xs: g.aux, base: g.out}
    with: {op: add}
`

func TestExpandFollowAndFanIn(t *testing.T) {
	g := expand(t, fanSpec, Options{})
	want := []string{
		"g[s1,V1v]", "g[s1,FFA-1]", "g[s2,V1v]", "g[s2,FFA-1]",
		"per_subject[s1]", "per_subject[s2]",
		"all",
		"same[s1,V1v]", "same[s1,FFA-1]", "same[s2,V1v]", "same[s2,FFA-1]",
	}
	if got := ids(g); !reflect.DeepEqual(got, want) {
		t.Fatalf("instances:\n got %v\nwant %v", got, want)
	}
	// subject x roi -> subject: each subject gets its own two ROIs.
	if got := edges(g.ByID["per_subject[s2]"], "xs"); !reflect.DeepEqual(got, []string{"g[s2,V1v].out", "g[s2,FFA-1].out"}) {
		t.Errorf("per_subject[s2].xs = %v", got)
	}
	// -> no foreach: everything fans in, ordered by ref then instance.
	wantAll := []string{"per_subject[s1].total", "per_subject[s2].total", "g[s1,V1v]", "g[s1,FFA-1]", "g[s2,V1v]", "g[s2,FFA-1]"}
	if got := edges(g.ByID["all"], "xs"); !reflect.DeepEqual(got, wantAll) {
		t.Errorf("all.xs = %v", got)
	}
	if n := len(g.ByID["all"].Deps); n != 6 {
		t.Errorf("all has %d deps, want 6", n)
	}
	// foreach: other follows one to one, on single and many ports.
	same := g.ByID["same[s2,FFA-1]"]
	if got := edges(same, "base"); !reflect.DeepEqual(got, []string{"g[s2,FFA-1].out"}) {
		t.Errorf("same.base = %v", got)
	}
	if got := edges(same, "xs"); !reflect.DeepEqual(got, []string{"g[s2,FFA-1].aux"}) {
		t.Errorf("same.xs = %v", got)
	}
	if len(same.Deps) != 1 || same.Deps[0] != g.ByID["g[s2,FFA-1]"] {
		t.Errorf("same deps = %v", same.Deps)
	}
	if !reflect.DeepEqual(same.LabelKeys, []string{"subject", "roi"}) || same.Labels["roi"] != "FFA-1" {
		t.Errorf("labels %v %v", same.LabelKeys, same.Labels)
	}
	// foreach keys bind declared params of the same name.
	gi := g.ByID["g[s1,FFA-1]"]
	if gi.Params["subject"] != "s1" || gi.Params["roi"] != "FFA-1" {
		t.Errorf("bound params: %v", gi.Params)
	}
	if ps := g.ByID["per_subject[s2]"].Params; ps["subject"] != "s2" {
		t.Errorf("per_subject params: %v", ps)
	}
	if got := g.ByID["all"].Params["subject"]; got != "" {
		t.Errorf("all.subject default = %#v", got)
	}
}

func TestExpandParamsNormalised(t *testing.T) {
	src := `name: p
params: {seed: 7}
isolate: inline
stages:
  g:
    uses: gen
    foreach: {k: [1, 2]}
    with:
      seed: ${params.seed}
      n: ${each.k}
      scale: 2
      sizes: [1, 2.0, 1e3]
      alphas: {logspace: [-1, 1, 3]}
      note: "k=${each.k} seed=${params.seed} $${HOME}"
      opts: {a: [1, x]}
  h:
    uses: gen
    with: {alphas: {linspace: [0, 1, 5]}}
    isolate: process
  c:
    uses: command
    with: {cmd: "echo $${OUT}"}
`
	g := expand(t, src, Options{})
	p := g.ByID["g[2]"].Params
	want := map[string]any{
		"n": int64(2), "seed": int64(7), "scale": 2.0, "mode": "fast", "subject": "", "roi": "",
		"sizes": []any{int64(1), int64(2), int64(1000)}, "alphas": []any{0.1, 1.0, 10.0},
		"tags": []any{}, "verbose": false, "opts": map[string]any{"a": []any{int64(1), "x"}},
		"note": "k=2 seed=7 ${HOME}",
	}
	for k, v := range want {
		if !reflect.DeepEqual(p[k], v) {
			t.Errorf("param %s = %#v (%T), want %#v (%T)", k, p[k], p[k], v, v)
		}
	}
	if len(p) != len(want) {
		t.Errorf("params %v has %d entries, want %d (every declared param)", p.Names(), len(p), len(want))
	}
	if got := g.ByID["h"].Params.Floats("alphas"); !reflect.DeepEqual(got, []float64{0, 0.25, 0.5, 0.75, 1}) {
		t.Errorf("linspace = %v", got)
	}
	if got := g.ByID["c"].Params.String("cmd"); got != "echo ${OUT}" {
		t.Errorf("cmd = %q", got)
	}
	// isolation: stage, then spec, then kind (gen asks for process), then inline.
	for id, want := range map[string]string{"g[1]": "inline", "h": "process", "c": "inline"} {
		if got := g.ByID[id].Isolate; got != want {
			t.Errorf("%s isolate = %s, want %s", id, got, want)
		}
	}
	s, _ := Parse("x.yaml", []byte(strings.Replace(src, "isolate: inline\n", "", 1)), Options{})
	g2, err := Expand(s, testKinds())
	if err != nil {
		t.Fatal(err)
	}
	if got := g2.ByID["g[1]"].Isolate; got != "process" {
		t.Errorf("kind default isolate = %s, want process", got)
	}
}

func TestExpandTopologicalDeterministic(t *testing.T) {
	// Declared downstream-first: the order must follow data, ties by file order.
	src := `name: topo
stages:
  z: {uses: sum, with: {op: add}, inputs: {xs: [b, a]}}
  b: {uses: sum, with: {op: add}, inputs: {xs: a}}
  c: {uses: gen}
  a: {uses: gen, foreach: {i: [3, 1, 2]}}
`
	first := ids(expand(t, src, Options{}))
	want := []string{"c", "a[3]", "a[1]", "a[2]", "b", "z"}
	if !reflect.DeepEqual(first, want) {
		t.Fatalf("order %v, want %v", first, want)
	}
	for i := 0; i < 20; i++ {
		if got := ids(expand(t, src, Options{})); !reflect.DeepEqual(got, first) {
			t.Fatalf("run %d: order %v differs from %v", i, got, first)
		}
	}
	g := expand(t, src, Options{})
	pos := map[string]int{}
	for i, inst := range g.Instances {
		pos[inst.ID] = i
	}
	for _, inst := range g.Instances {
		for _, d := range inst.Deps {
			if pos[d.ID] >= pos[inst.ID] {
				t.Errorf("%s comes before its dependency %s", inst.ID, d.ID)
			}
		}
	}
}

func TestExpandLabelsTypedValues(t *testing.T) {
	src := `name: typed
stages:
  g:
    uses: gen
    foreach: {seed: [1, 2], scale: [0.5, 1.0], verbose: [true]}
    with: {note: "s=${each.scale}"}
`
	g := expand(t, src, Options{})
	inst := g.ByID["g[2,1,true]"]
	if inst == nil {
		t.Fatalf("no g[2,1,true] in %v", ids(g))
	}
	if inst.Params["seed"] != int64(2) || inst.Params["scale"] != 1.0 || inst.Params["verbose"] != true {
		t.Errorf("typed bindings: %v", inst.Params)
	}
	if inst.Params["note"] != "s=1" || g.ByID["g[1,0.5,true]"].Params["note"] != "s=0.5" {
		t.Errorf("formatted each: %q", inst.Params["note"])
	}
	// An exact ${each.k} keeps the value's type; a string param wants a string.
	s, _ := Parse("x.yaml", []byte(strings.Replace(src, "s=${each.scale}", "${each.scale}", 1)), Options{})
	err := Validate(s, testKinds())
	if err == nil || !strings.Contains(err.Error(), `param "note": expected string, got float 0.5`) {
		t.Errorf("want a type error for note, got %v", err)
	}
}
