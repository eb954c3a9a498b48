package spec

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

const ovSpec = `name: ov
params: {seed: 7, rois: [V1v, FFA-1], tag: base}
executor: {type: batch, partition: cpu}
stages:
  tune_cl:
    uses: gen
    foreach: {roi: "${params.rois}"}
    with: {scale: 0.1, seed: "${params.seed}", note: "${params.tag}-${each.roi}"}
    retries: 1
  after:
    uses: sum
    foreach: tune_cl
    inputs: {xs: tune_cl.out}
    with: {op: add}
variants:
  tau-0.05: {tune_cl.with.scale: 0.05}
  two-rois: {params.rois: [V1v, PPA], params.tag: two}
  deep: {tune_cl.with.opts.lr: 0.01, stages.tune_cl.timeout: 2h}
`

func parseOK(t *testing.T, src string, opt Options) *Spec {
	t.Helper()
	s, err := Parse("x.yaml", []byte(src), opt)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if err := Validate(s, testKinds()); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return s
}

func TestVariantAndSets(t *testing.T) {
	base := parseOK(t, ovSpec, Options{})
	if base.Stages[0].With["scale"] != 0.1 || len(base.Variants) != 3 {
		t.Fatalf("base: with %v, variants %v", base.Stages[0].With, base.Variants)
	}
	if v := base.Variants["two-rois"]["params.rois"]; !reflect.DeepEqual(v, []any{"V1v", "PPA"}) {
		t.Errorf("Variants[two-rois] = %#v", v)
	}

	tau := parseOK(t, ovSpec, Options{Variant: "tau-0.05"})
	if tau.Stages[0].With["scale"] != 0.05 || tau.Variant != "tau-0.05" {
		t.Errorf("tau variant: with %v", tau.Stages[0].With)
	}
	if p := tau.Stages[0].FieldPos["with.scale"]; p.String() != "x.yaml:16:34" {
		t.Errorf("overridden value position %s, want the variant's value at x.yaml:16:34", p)
	}
	if tau.Digest == base.Digest {
		t.Error("variant did not change the digest")
	}

	// A variant over params flows through interpolation, foreach included.
	two := parseOK(t, ovSpec, Options{Variant: "two-rois"})
	g, err := Expand(two, testKinds())
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(g); !reflect.DeepEqual(got, []string{"tune_cl[V1v]", "tune_cl[PPA]", "after[V1v]", "after[PPA]"}) {
		t.Errorf("two-rois instances %v", got)
	}
	if got := g.ByID["tune_cl[PPA]"].Params["note"]; got != "two-PPA" {
		t.Errorf("note = %v", got)
	}

	deep := parseOK(t, ovSpec, Options{Variant: "deep"})
	if deep.Stages[0].Timeout != 2*time.Hour || !reflect.DeepEqual(deep.Stages[0].With["opts"], map[string]any{"lr": 0.01}) {
		t.Errorf("deep: timeout %v with %v", deep.Stages[0].Timeout, deep.Stages[0].With)
	}

	// --set after the variant: last word wins; values are YAML-typed.
	set := parseOK(t, ovSpec, Options{Variant: "tau-0.05", Sets: []string{
		"tune_cl.with.scale=0.2", "params.seed=11", "tune_cl.retries=3", "tune_cl.foreach.roi=[a, b, c]",
		"tune_cl.resources.memory=2GiB", "executor.partition=gpu", "tune_cl.with.note=", "tune_cl.executor.time=04:00:00",
	}})
	st := set.Stages[0]
	if st.With["scale"] != 0.2 || st.With["seed"] != int64(11) || st.Retries != 3 || st.Resources.MemoryMB != 2048 {
		t.Errorf("sets: with %v retries %d resources %+v", st.With, st.Retries, st.Resources)
	}
	if st.With["note"] != "" || st.ExecOptions["time"] != "04:00:00" || set.Executor["partition"] != "gpu" {
		t.Errorf("sets: note %#v stage executor %v executor %v", st.With["note"], st.ExecOptions, set.Executor)
	}
	if !reflect.DeepEqual(st.Foreach[0].Values, []any{"a", "b", "c"}) {
		t.Errorf("foreach = %v", st.Foreach)
	}
	if p := st.FieldPos["with.scale"].String(); p != "--set tune_cl.with.scale=0.2" {
		t.Errorf("set position %q", p)
	}
	if !reflect.DeepEqual(set.Overrides, []string{"tune_cl.with.scale=0.2", "params.seed=11", "tune_cl.retries=3", "tune_cl.foreach.roi=[a, b, c]", "tune_cl.resources.memory=2GiB", "executor.partition=gpu", "tune_cl.with.note=", "tune_cl.executor.time=04:00:00"}) {
		t.Errorf("Overrides = %v", set.Overrides)
	}
	// Setting a value to what the file says already leaves the digest alone.
	same := parseOK(t, ovSpec, Options{Sets: []string{"tune_cl.with.scale=0.1"}})
	if same.Digest != base.Digest {
		t.Error("a no-op --set changed the digest")
	}
}

func TestInterpolationTypedAndFormatted(t *testing.T) {
	src := `name: in
params:
  n: 3
  f: 0.5
  b: true
  s: hello
  list: [1, 2]
  m: {a: 1}
stages:
  g:
    uses: gen
    with:
      n: ${params.n}
      scale: ${params.f}
      verbose: ${params.b}
      sizes: ${params.list}
      opts: ${params.m}
      note: "n=${params.n} f=${params.f} b=${params.b} s=${params.s} lit=$${x}"
      tags: ["${params.s}", "x${params.n}"]
  c:
    uses: command
    inputs: {deps: "${params.s}"}
    with: {cmd: true}
  hello: {uses: gen}
`
	s, err := Parse("x.yaml", []byte(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := s.Stages[0].With
	want := map[string]any{
		"n": int64(3), "scale": 0.5, "verbose": true, "sizes": []any{int64(1), int64(2)},
		"opts": map[string]any{"a": int64(1)}, "note": "n=3 f=0.5 b=true s=hello lit=$${x}",
		"tags": []any{"hello", "x3"},
	}
	for k, v := range want {
		if !reflect.DeepEqual(w[k], v) {
			t.Errorf("with.%s = %#v, want %#v", k, w[k], v)
		}
	}
	if r := s.Stages[1].Inputs[0].Refs[0]; r.Stage != "hello" {
		t.Errorf("interpolated ref = %+v", r)
	}
	// cmd: true is a bool where a string is wanted.
	err = Validate(s, testKinds())
	if err == nil || !strings.Contains(err.Error(), `x.yaml:23:17: param "cmd": expected string, got bool true`) {
		t.Errorf("Validate = %v", err)
	}
}

func TestMemoryAndTimeout(t *testing.T) {
	for in, want := range map[string]int64{"512MiB": 512, "4GiB": 4096, "2G": 2048, "1.5GB": 1536, "1T": 1 << 20, "3000": 3000, "100": 100, "1024KiB": 1} {
		s := parseOK(t, "name: m\nstages:\n  a: {uses: gen, resources: {memory: \""+in+"\", cpus: 2, gpus: 1}}\n", Options{})
		if got := s.Stages[0].Resources; got.MemoryMB != want || got.CPUs != 2 || got.GPUs != 1 {
			t.Errorf("memory %q: %+v, want %d MiB", in, got, want)
		}
	}
	for in, want := range map[string]time.Duration{"2h": 2 * time.Hour, "1h30m": 90 * time.Minute, "90": 90 * time.Second} {
		s := parseOK(t, "name: m\nstages:\n  a: {uses: gen, timeout: "+in+"}\n", Options{})
		if got := s.Stages[0].Timeout; got != want {
			t.Errorf("timeout %q = %v, want %v", in, got, want)
		}
	}
}

func TestParseFields(t *testing.T) {
	src := `name: f
description: demo
executor: batch
plugins: {pca: ./bin/voxflow-pca}
stages:
  a:
    uses: plugin:./bin/x
  b: {uses: pca}
  c:
    uses: gen
    executor: {partition: gpu}
    inputs: {seed_from: a}
`
	s, err := Parse("/specs/dir/f.yaml", []byte(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Dir != "/specs/dir" || s.Plugins["pca"] != "/specs/dir/bin/voxflow-pca" || s.Stages[0].Uses != "plugin:/specs/dir/bin/x" {
		t.Errorf("paths: dir %s plugins %v uses %s", s.Dir, s.Plugins, s.Stages[0].Uses)
	}
	if s.Executor["type"] != "batch" || s.Description != "demo" || s.Stages[2].ExecOptions["partition"] != "gpu" || s.Stages[2].FieldPos["executor.partition"].Line != 11 {
		t.Errorf("executor %v description %q stage executor %v at %v", s.Executor, s.Description, s.Stages[2].ExecOptions, s.Stages[2].FieldPos)
	}
	if len(s.Digest) != 64 {
		t.Errorf("digest %q", s.Digest)
	}
	// Plugin kinds resolve through the engine's Kinds; here only pca is known.
	kinds := func(uses string) (stagesDescription, bool) {
		if uses == "pca" || uses == "plugin:/specs/dir/bin/x" {
			uses = "gen"
		}
		return testKinds()(uses)
	}
	if err := Validate(s, kinds); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestAnchorsMergeKeysAndColumns(t *testing.T) {
	src := `name: anchors
x-common: &common {scale: 0.5, mode: slow}
params: {s: hi}
stages:
  a:
    uses: gen
    with: {<<: *common, scale: 0.25}
  b:
    uses: gen
    with:
      <<: *common
      note: ${params.s}
  c: {uses: gen, with: {note: ${params.s}, n: zz}}
`
	s, err := Parse("x.yaml", []byte(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if w := s.Stages[0].With; w["scale"] != 0.25 || w["mode"] != "slow" {
		t.Errorf("merge: explicit keys must win: %v", w)
	}
	if w := s.Stages[1].With; w["scale"] != 0.5 || w["note"] != "hi" {
		t.Errorf("merge: %v", w)
	}
	// Columns after an unquoted ${...} in a flow mapping are where the user sees them.
	errs := validate(t, src, Options{})
	wantErr(t, errs, "x.yaml:13:47", `param "n": expected int, got string "zz"`)
	if len(errs) != 1 {
		t.Errorf("want exactly one error, got %v", errs)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/exp.yaml"
	if err := os.WriteFile(path, []byte("name: l\nplugins: {p: bin/p}\nstages:\n  a: {uses: gen}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Load(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Path != path || s.Dir != dir || s.Plugins["p"] != dir+"/bin/p" || s.Stage("a") == nil || s.Stage("b") != nil {
		t.Errorf("Load: path %s dir %s plugins %v", s.Path, s.Dir, s.Plugins)
	}
	_, err = Load(dir+"/missing.yaml", Options{})
	if err == nil || !strings.Contains(err.Error(), "missing.yaml") || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing file: %v", err)
	}
	// Errors carry the path as given.
	if err := os.WriteFile(path, []byte("name: l\nstages:\n  a: {uses: gen, retries: x}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path, Options{}); err == nil || !strings.HasPrefix(err.Error(), path+":3:27: retries") {
		t.Errorf("Load error = %v", err)
	}
}
