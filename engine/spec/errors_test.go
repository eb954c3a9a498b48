package spec

import (
	"errors"
	"strings"
	"testing"
)

// validate parses src as x.yaml and validates it with the test kinds,
// returning every error.
func validate(t *testing.T, src string, opt Options) ErrorList {
	t.Helper()
	s, err := Parse("x.yaml", []byte(src), opt)
	if s == nil {
		var l ErrorList
		if !errors.As(err, &l) {
			t.Fatalf("Parse returned %T, want ErrorList: %v", err, err)
		}
		return l
	}
	err = Validate(s, testKinds(), knownTestKinds...)
	if err == nil {
		return nil
	}
	var l ErrorList
	if !errors.As(err, &l) {
		t.Fatalf("Validate returned %T, want ErrorList: %v", err, err)
	}
	return l
}

// wantErr asserts that errs holds an error at pos whose message contains
// every fragment.
func wantErr(t *testing.T, errs ErrorList, pos string, frags ...string) {
	t.Helper()
	for _, e := range errs {
		if e.Pos.String() != pos {
			continue
		}
		ok := true
		for _, f := range frags {
			if !strings.Contains(e.Msg, f) {
				ok = false
			}
		}
		if ok {
			return
		}
	}
	t.Errorf("no error at %s containing %q; got:\n%v", pos, frags, errs)
}

type errCase struct {
	name  string
	src   string
	opt   Options
	pos   string
	frags []string
}

func runErrCases(t *testing.T, cases []errCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			errs := validate(t, c.src, c.opt)
			wantErr(t, errs, c.pos, c.frags...)
		})
	}
}

func TestErrorsYAML(t *testing.T) {
	runErrCases(t, []errCase{
		{"syntax", "name: x\nstages: {a: [\n", Options{}, "x.yaml:2", []string{"did not find expected"}},
		{"empty", "", Options{}, "x.yaml:1:1", []string{"empty spec"}},
		{"not a mapping", "- a\n- b\n", Options{}, "x.yaml:1:1", []string{"a spec is a mapping", "got a list"}},
		{"duplicate top key", "name: x\nname: y\nstages: {a: {uses: gen}}\n", Options{}, "x.yaml:2:1", []string{`duplicate key "name"`, "first defined at 1:1"}},
		{"duplicate with key", "name: x\nstages:\n  a:\n    uses: gen\n    with:\n      n: 1\n      n: 2\n", Options{}, "x.yaml:7:7", []string{`duplicate key "n"`, "6:7"}},
		{"duplicate foreach key", "name: x\nstages:\n  a:\n    uses: gen\n    foreach: {roi: [a], roi: [b]}\n", Options{}, "x.yaml:5:25", []string{`duplicate key "roi"`}},
		{"duplicate stage", "name: x\nstages:\n  a: {uses: gen}\n  a: {uses: sum}\n", Options{}, "x.yaml:4:3", []string{`duplicate key "a"`}},
		{"non-finite", "name: x\nstages:\n  a: {uses: gen, with: {scale: .inf}}\n", Options{}, "x.yaml:3:32", []string{"not finite"}},
		{"recursive alias", "name: x\nstages: &s\n  a: *s\n", Options{}, "x.yaml:3:6", []string{"refers to itself"}},
		{"bad tag", "name: x\nstages:\n  a: {uses: gen, with: {note: !foo bar}}\n", Options{}, "x.yaml:3:31", []string{"unsupported YAML tag !foo"}},
	})
}

func TestErrorsStructure(t *testing.T) {
	runErrCases(t, []errCase{
		{"unknown top key", "name: x\nstagse: {}\nstages: {a: {uses: gen}}\n", Options{}, "x.yaml:2:1", []string{`unknown top-level key "stagse"`, "did you mean stages?"}},
		{"unknown stage key", "name: x\nstages:\n  a:\n    uses: gen\n    wiht: {n: 1}\n", Options{}, "x.yaml:5:5", []string{`unknown stage key "wiht" in stage a`, "did you mean with?"}},
		{"missing name", "stages: {a: {uses: gen}}\n", Options{}, "x.yaml:1:1", []string{"missing name"}},
		{"bad spec name", "name: my spec\nstages: {a: {uses: gen}}\n", Options{}, "x.yaml:1:7", []string{`bad spec name "my spec"`}},
		{"missing stages", "name: x\n", Options{}, "x.yaml:1:1", []string{"missing stages"}},
		{"missing uses", "name: x\nstages:\n  a:\n    with: {n: 1}\n", Options{}, "x.yaml:3:3", []string{"stage a: missing uses"}},
		{"null stage", "name: x\nstages:\n  a:\n", Options{}, "x.yaml:3:3", []string{"stage a: missing uses"}},
		{"bad stage name", "name: x\nstages:\n  a.b: {uses: gen}\n", Options{}, "x.yaml:3:3", []string{`bad stage name "a.b"`}},
		{"bad stage name bracket", "name: x\nstages:\n  \"a[1]\": {uses: gen}\n", Options{}, "x.yaml:3:3", []string{`bad stage name "a[1]"`}},
		{"unknown kind", "name: x\nstages:\n  a: {uses: gne}\n", Options{}, "x.yaml:3:13", []string{`unknown stage kind "gne"`, "did you mean gen?", "known: command, gen, sum"}},
		{"bad isolate", "name: x\nisolate: thread\nstages:\n  a: {uses: gen}\n", Options{}, "x.yaml:2:10", []string{"isolate must be inline or process"}},
		{"executor type not a name", "name: x\nexecutor: {type: [a]}\nstages:\n  a: {uses: gen}\n", Options{}, "x.yaml:2:18", []string{"executor type must be the name of an executor"}},
		{"executor without type", "name: x\nexecutor: {partition: gpu}\nstages:\n  a: {uses: gen}\n", Options{}, "x.yaml:2:11", []string{"executor needs a type"}},
		{"stage executor not a mapping", "name: x\nstages:\n  a:\n    uses: gen\n    executor: gpu\n", Options{}, "x.yaml:5:15", []string{"executor must be a mapping of options"}},
		{"stage executor picks a type", "name: x\nstages:\n  a:\n    uses: gen\n    executor: {type: local}\n", Options{}, "x.yaml:5:16", []string{"stage a: executor: type: a stage cannot pick its own executor"}},
		{"old slurm stage key", "name: x\nstages:\n  a:\n    uses: gen\n    slurm: {partition: gpu}\n", Options{}, "x.yaml:5:5", []string{"stage a: slurm: moved to executor:"}},
		{"old slurm override path", "name: x\nstages:\n  a: {uses: gen}\n", Options{Sets: []string{"a.slurm.time=1:00:00"}}, "--set a.slurm.time=1:00:00", []string{"stage field slurm moved to executor", "a.executor.time"}},
		{"plugin not a path", "name: x\nplugins: {pca: [a]}\nstages:\n  a: {uses: gen}\n", Options{}, "x.yaml:2:16", []string{"plugin pca: want the path of its binary"}},
	})
}

func TestErrorsResources(t *testing.T) {
	base := "name: x\nstages:\n  a:\n    uses: gen\n"
	runErrCases(t, []errCase{
		{"bad memory", base + "    resources: {memory: 4 gigs}\n", Options{}, "x.yaml:5:25", []string{"resources.memory", "512MiB"}},
		{"negative cpus", base + "    resources: {cpus: -1}\n", Options{}, "x.yaml:5:23", []string{"resources.cpus must be a non-negative integer"}},
		{"unknown resource", base + "    resources: {cpu: 2}\n", Options{}, "x.yaml:5:17", []string{`unknown resource "cpu"`, "did you mean cpus?"}},
		{"bad timeout", base + "    timeout: soon\n", Options{}, "x.yaml:5:14", []string{"timeout must be a positive duration", `string "soon"`}},
		{"negative timeout", base + "    timeout: -5m\n", Options{}, "x.yaml:5:14", []string{"timeout must be a positive duration"}},
		{"bad retries", base + "    retries: 1.5\n", Options{}, "x.yaml:5:14", []string{"retries must be an integer from 0 to 100", "float 1.5"}},
		{"too many retries", base + "    retries: 1000\n", Options{}, "x.yaml:5:14", []string{"retries must be an integer from 0 to 100"}},
	})
}

func TestErrorsInputs(t *testing.T) {
	gen := "name: x\nstages:\n  g:\n    uses: gen\n    foreach: {roi: [a, b]}\n"
	runErrCases(t, []errCase{
		{"unknown port", gen + "  s:\n    uses: sum\n    with: {op: add}\n    inputs: {xs: g, bse: g}\n", Options{}, "x.yaml:9:21", []string{`unknown input port "bse" for kind sum`, "did you mean base?"}},
		{"port on kind without inputs", "name: x\nstages:\n  g: {uses: command, with: {cmd: x}, inputs: {dep: g}}\n", Options{}, "x.yaml:3:47", []string{`unknown input port "dep"`, "did you mean deps?"}},
		{"required port missing", gen + "  s:\n    uses: sum\n    with: {op: add}\n", Options{}, "x.yaml:6:3", []string{`missing required input "xs" for kind sum`}},
		{"unknown ref stage", gen + "  s:\n    uses: sum\n    with: {op: add}\n    inputs: {xs: [g, gg]}\n", Options{}, "x.yaml:9:22", []string{`input xs: unknown stage "gg"`, "did you mean g?"}},
		{"unknown output", gen + "  s:\n    uses: sum\n    with: {op: add}\n    inputs: {xs: g.ot}\n", Options{}, "x.yaml:9:18", []string{`stage g (kind gen) has no output "ot"`, "did you mean out?"}},
		{"bad ref", gen + "  s:\n    uses: sum\n    with: {op: add}\n    inputs: {xs: g.out.x}\n", Options{}, "x.yaml:9:18", []string{`bad stage reference "g.out.x"`}},
		{"list to single port", gen + "  s:\n    uses: sum\n    with: {op: add}\n    inputs: {xs: g, base: [g.out, g.aux]}\n", Options{}, "x.yaml:9:27", []string{"input base of kind sum takes one artifact, got a list of 2"}},
		{"fan-in to single port", gen + "  s:\n    uses: sum\n    with: {op: add}\n    inputs: {xs: g, base: g.out}\n", Options{}, "x.yaml:9:27", []string{"input base of kind sum takes one artifact, but 2 would arrive", "fans out over roi"}},
		{"no matching instance", gen + "  s:\n    uses: sum\n    foreach: {roi: [a, c]}\n    with: {op: add}\n    inputs: {xs: g}\n", Options{}, "x.yaml:10:18", []string{"input xs of s[c]: no instance of g has roi=c"}},
		{"empty ref list", gen + "  s:\n    uses: sum\n    with: {op: add}\n    inputs: {xs: []}\n", Options{}, "x.yaml:9:18", []string{"input xs: empty list"}},
		{"cycle", "name: x\nstages:\n  a: {uses: sum, with: {op: add}, inputs: {xs: c}}\n  b: {uses: sum, with: {op: add}, inputs: {xs: a}}\n  c: {uses: sum, with: {op: add}, inputs: {xs: b}}\n", Options{}, "x.yaml:4:48", []string{"dependency cycle", "a -> b -> c -> a"}},
		{"self cycle", "name: x\nstages:\n  a: {uses: sum, with: {op: add}, inputs: {xs: a}}\n", Options{}, "x.yaml:3:48", []string{"dependency cycle", "a -> a"}},
	})
}

func TestErrorsForeach(t *testing.T) {
	base := "name: x\nstages:\n  g:\n    uses: gen\n"
	runErrCases(t, []errCase{
		{"empty list", base + "    foreach: {roi: []}\n", Options{}, "x.yaml:5:20", []string{"foreach roi: empty list"}},
		{"empty foreach", base + "    foreach: {}\n", Options{}, "x.yaml:5:14", []string{"foreach is empty"}},
		{"scalar not list", base + "    foreach: {roi: 3}\n", Options{}, "x.yaml:5:20", []string{"foreach roi must be a list", "write [3]"}},
		{"non-scalar value", base + "    foreach: {roi: [a, [b]]}\n", Options{}, "x.yaml:5:24", []string{"foreach roi: values must be strings, numbers or booleans, got a list"}},
		{"null value", base + "    foreach: {roi: [a, null]}\n", Options{}, "x.yaml:5:24", []string{"values must be strings, numbers or booleans, got null"}},
		{"duplicate value", base + "    foreach: {roi: [a, b, a]}\n", Options{}, "x.yaml:5:27", []string{`value "a" listed twice`, "5:21"}},
		{"bad key", base + "    foreach: {1roi: [a]}\n", Options{}, "x.yaml:5:15", []string{`bad foreach key "1roi"`}},
		{"from unknown", base + "  h: {uses: gen, foreach: gg}\n", Options{}, "x.yaml:5:27", []string{`foreach "gg": no such stage`, "did you mean g?"}},
		{"from cycle", base + "    foreach: h\n  h: {uses: gen, foreach: g}\n", Options{}, "x.yaml:5:14", []string{"foreach cycle: g -> h -> g"}},
		{"bound param type", base + "    foreach: {roi: [1, 2]}\n", Options{}, "x.yaml:5:20", []string{"foreach binds param", `param "roi": expected string, got int 1`, `quote it: "1"`}},
		{"bound and in with", base + "    foreach: {roi: [a]}\n    with: {roi: b}\n", Options{}, "x.yaml:6:12", []string{`param "roi" is bound by foreach`}},
	})
}

func TestErrorsParams(t *testing.T) {
	base := "name: x\nparams: {k: 3, rois: [a, b]}\nstages:\n  g:\n    uses: gen\n"
	runErrCases(t, []errCase{
		{"unknown param", base + "    with: {scael: 2}\n", Options{}, "x.yaml:6:12", []string{`unknown param "scael" for kind gen`, "did you mean scale?"}},
		{"wrong type int", base + "    with: {n: two}\n", Options{}, "x.yaml:6:15", []string{`param "n": expected int, got string "two"`}},
		{"wrong type int from float", base + "    with: {n: 2.5}\n", Options{}, "x.yaml:6:15", []string{`param "n": expected int, got float 2.5`}},
		{"wrong type string", base + "    with: {mode: 3}\n", Options{}, "x.yaml:6:18", []string{`param "mode": expected string, got int 3`}},
		{"wrong type bool", base + "    with: {verbose: yes}\n", Options{}, "x.yaml:6:21", []string{`param "verbose": expected bool`, `string "yes"`}},
		{"wrong type list", base + "    with: {tags: a}\n", Options{}, "x.yaml:6:18", []string{`param "tags": expected []string (a list)`}},
		{"wrong list element", base + "    with: {sizes: [1, x]}\n", Options{}, "x.yaml:6:23", []string{`param "sizes": element 1: expected int, got string "x"`}},
		{"wrong type map", base + "    with: {opts: [1]}\n", Options{}, "x.yaml:6:18", []string{`param "opts": expected map`}},
		{"below min", base + "    with: {n: -1}\n", Options{}, "x.yaml:6:15", []string{`param "n": -1 is below the minimum 0`}},
		{"above max", base + "    with: {n: 101}\n", Options{}, "x.yaml:6:15", []string{`param "n": 101 is above the maximum 100`}},
		{"element above max", "name: x\nstages:\n  s:\n    uses: sum\n    with: {op: add, weight: 2}\n    inputs: {xs: s2}\n  s2: {uses: gen}\n", Options{}, "x.yaml:5:29", []string{`param "weight": 2 is above the maximum 1`}},
		{"not in enum", base + "    with: {mode: fats}\n", Options{}, "x.yaml:6:18", []string{`"fats" is not one of fast, slow`, "did you mean fast?"}},
		{"required missing", "name: x\nstages:\n  g: {uses: gen}\n  s:\n    uses: sum\n    inputs: {xs: g}\n", Options{}, "x.yaml:4:3", []string{`missing required param "op" (string) for kind sum`}},
		{"bad logspace", base + "    with: {alphas: {logspace: [0, 1]}}\n", Options{}, "x.yaml:6:20", []string{"logspace wants [lo, hi, n]"}},
		{"bad generator", base + "    with: {alphas: {logspcae: [0, 1, 3]}}\n", Options{}, "x.yaml:6:20", []string{`unknown generator "logspcae"`, "did you mean logspace?"}},
		{"typed interpolation type", base + "    with: {mode: \"${params.k}\"}\n", Options{}, "x.yaml:6:18", []string{`param "mode": expected string, got int 3`}},
		{"each type", base + "    foreach: {v: [1, x]}\n    with: {n: \"${each.v}\"}\n", Options{}, "x.yaml:7:15", []string{`param "n": expected int, got string "x"`}},
	})
}

func TestErrorsInterpolation(t *testing.T) {
	base := "name: x\nparams: {k: 3, rois: [a, b]}\nstages:\n  g:\n    uses: gen\n"
	runErrCases(t, []errCase{
		{"unknown param", base + "    with: {note: \"n=${params.kk}\"}\n", Options{}, "x.yaml:6:18", []string{"unknown param in ${params.kk}", "did you mean k?"}},
		{"unterminated", base + "    with: {note: \"n=${params.k\"}\n", Options{}, "x.yaml:6:18", []string{`unterminated "${params.k"`}},
		{"unknown namespace", base + "    with: {note: \"cd ${HOME}\"}\n", Options{}, "x.yaml:6:18", []string{"unknown interpolation ${HOME}", "$${HOME}"}},
		{"bad name", base + "    with: {note: \"${params.}\"}\n", Options{}, "x.yaml:6:18", []string{"bad interpolation ${params.}"}},
		{"list inside string", base + "    with: {note: \"rois ${params.rois}\"}\n", Options{}, "x.yaml:6:18", []string{"cannot format ${params.rois} inside a longer string"}},
		{"unknown each key", base + "    foreach: {roi: [a]}\n    with: {note: \"${each.subject}\"}\n", Options{}, "x.yaml:7:18", []string{`no foreach key "subject"`}},
		{"each without foreach", base + "    with: {note: \"${each.roi}\"}\n", Options{}, "x.yaml:6:18", []string{"the stage has no foreach"}},
		{"each in inputs", base + "  s:\n    uses: sum\n    foreach: {roi: [a]}\n    with: {op: add}\n    inputs: {xs: \"${each.roi}\"}\n", Options{}, "x.yaml:10:18", []string{"${each.roi} is not allowed in inputs"}},
		{"in foreach", base + "    foreach: {roi: [\"${params.nope}\"]}\n", Options{}, "x.yaml:6:21", []string{"unknown param in ${params.nope}"}},
	})
}

func TestErrorsOverrides(t *testing.T) {
	src := "name: x\nparams: {k: 3}\nstages:\n  tune_cl:\n    uses: gen\n    with: {scale: 0.1}\n    foreach: {roi: [a]}\n  from:\n    uses: gen\n    foreach: tune_cl\nvariants:\n  v1: {tune_cl.with.scale: 0.5}\n  v2: {tune_cl.wiht.scale: 0.5}\n  v3: {tune_cl.with.sacle: 0.5}\n  v4: [a]\n"
	runErrCases(t, []errCase{
		{"unknown variant", src, Options{Variant: "v9"}, "--variant v9", []string{`unknown variant "v9"`, "did you mean v1?", "known variants: v1, v2, v3, v4"}},
		{"bad path in unapplied variant", src, Options{}, "x.yaml:13:8", []string{`bad override path "tune_cl.wiht.scale"`, "did you mean with?"}},
		{"unknown param in unapplied variant", src, Options{}, "x.yaml:14:8", []string{`unknown param "sacle" for kind gen`, "did you mean scale?"}},
		{"variant not a mapping", src, Options{}, "x.yaml:15:7", []string{`variant "v4" must be a mapping`}},
		{"set typo param", src, Options{Sets: []string{"tune_cl.with.sclae=0.2"}}, "--set tune_cl.with.sclae=0.2", []string{`unknown param "sclae" for kind gen`, "did you mean scale?"}},
		{"set typo stage", src, Options{Sets: []string{"tune_c.with.scale=0.2"}}, "--set tune_c.with.scale=0.2", []string{`"tune_c" is neither a stage nor a top-level key`, "did you mean tune_cl?"}},
		{"set typo field", src, Options{Sets: []string{"tune_cl.retires=2"}}, "--set tune_cl.retires=2", []string{`unknown stage field "retires"`, "did you mean retries?"}},
		{"set unknown param", src, Options{Sets: []string{"params.kk=2"}}, "--set params.kk=2", []string{`unknown param "kk"`, "did you mean k?"}},
		{"set no equals", src, Options{Sets: []string{"params.k"}}, "--set params.k", []string{"want path=value"}},
		{"set bad value", src, Options{Sets: []string{"params.k=[1"}}, "--set params.k=[1", []string{`bad value "[1"`}},
		{"set into foreach-from", src, Options{Sets: []string{"from.foreach.roi=[a]"}}, "--set from.foreach.roi=[a]", []string{"foreach is string \"tune_cl\", not a mapping"}},
		{"set wrong type", src, Options{Sets: []string{"tune_cl.with.scale=abc"}}, "--set tune_cl.with.scale=abc", []string{`param "scale": expected float, got string "abc"`}},
		{"set bad retries", src, Options{Sets: []string{"tune_cl.retries=-1"}}, "--set tune_cl.retries=-1", []string{"retries must be an integer"}},
		{"set scalar field too deep", src, Options{Sets: []string{"tune_cl.retries.x=1"}}, "--set tune_cl.retries.x=1", []string{"retries is a single value"}},
		{"set empty segment", src, Options{Sets: []string{"tune_cl..x=1"}}, "--set tune_cl..x=1", []string{"empty segment"}},
	})
}

func TestErrorListFormat(t *testing.T) {
	errs := validate(t, "name: x\nstages:\n  b: {uses: nope}\n  a: {uses: gen, with: {zz: 1}}\n", Options{Sets: []string{"q=1"}})
	got := errs.Error()
	lines := strings.Split(got, "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 lines, got %d:\n%s", len(lines), got)
	}
	for i, prefix := range []string{"--set q=1: ", "x.yaml:3:13: ", "x.yaml:4:25: "} {
		if !strings.HasPrefix(lines[i], prefix) {
			t.Errorf("line %d = %q, want prefix %q", i, lines[i], prefix)
		}
	}
	if p := (Pos{File: "f", Line: 2, Col: 5}).String(); p != "f:2:5" {
		t.Errorf("Pos.String = %q", p)
	}
}
