// Package spec reads voxflow experiment specs: YAML files that declare
// params, stages, fan-out (foreach) and variants. It parses them with
// positions on every value, applies a variant and --set overrides,
// interpolates ${params.x}, validates the result against the stage kinds'
// declared schemas, and expands it into a graph of stage instances.
//
// Every problem is reported with file:line:col and what was expected, and
// all problems are reported at once: Parse returns a best-effort Spec next
// to its errors so that Validate can add the kind-dependent ones.
//
// The package also computes the spec digest (Spec.Digest) and holds
// ParseMemory, the one parser of memory sizes. It names no executor:
// `executor:` maps are kept raw (Spec.Executor, Stage.ExecOptions) for the
// executor the run picks (engine.Executors) to check.
package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/voxflow/voxflow/stages"
)

// Spec is a parsed experiment spec with the selected variant and overrides
// applied and ${params.x} interpolated. ${each.k} references stay in With
// until expansion.
type Spec struct {
	Path        string // the file as given to Load ("" for Parse of bytes without a path)
	Dir         string // absolute directory relative paths are resolved against
	Name        string
	Description string
	Params      map[string]any
	// Isolate is the spec-wide default isolation: "", "inline" or "process".
	Isolate string
	// Executor is the raw executor mapping, e.g. {type: NAME, OPTION: value}:
	// the type picks a registered executor (engine.Executors), which parses
	// the options. Nil when the spec has none. Positions are in FieldPos
	// ("executor.type", "executor.partition").
	Executor map[string]any
	// Plugins maps a plugin name, usable in `uses:`, to its binary's absolute path.
	Plugins map[string]string
	// Stages are in file order.
	Stages []*Stage
	// Variants holds every declared variant: name -> override path -> value.
	Variants map[string]map[string]any
	// Variant is the applied variant, "" for none.
	Variant string
	// Overrides are the applied --set flags, as given.
	Overrides []string
	// Digest is the hex BLAKE3 of the effective spec (name, params,
	// isolate, executor, plugins, stages) in the plain-value codec's form
	// (stages.EncodeValue). Descriptions and unapplied variants do not
	// contribute.
	Digest string
	// FieldPos holds positions of top-level values: "name", "params.seed",
	// "executor.partition", "plugins.pca", "variants.tau-0.05", ...
	FieldPos map[string]Pos
	// Pos is the position of the document's root.
	Pos Pos

	problems ErrorList // found by Parse, reported again by Validate
	varSets  []override
}

// Stage is one entry of the spec's `stages:` mapping.
type Stage struct {
	Name string
	// Uses is the stage kind: a builtin name, a name from the spec's plugins,
	// or "plugin:/abs/path" (Parse makes a relative plugin path absolute).
	Uses   string
	Inputs []Input
	// With holds the params as written, ${params.x} already substituted.
	With map[string]any
	// Foreach lists the stage's own fan-out keys in file order; empty when
	// the stage runs once or when ForeachFrom is set.
	Foreach []ForeachKey
	// ForeachFrom names the stage whose fan-out this stage copies
	// (`foreach: other`).
	ForeachFrom string
	// Resources is what the stage declares it needs, as written; zero
	// fields mean "not declared" and the engine applies its defaults.
	Resources stages.Resources
	Retries   int
	Timeout   time.Duration // 0 = none
	Isolate   string        // "", "inline" or "process", as written
	// ExecOptions holds the stage's own `executor:` options, raw; the
	// executor that runs the stage parses them (its keys win over the
	// spec's top-level executor options).
	ExecOptions map[string]any
	// Pos is the position of the stage's name.
	Pos Pos
	// FieldPos holds value positions below the stage: "uses", "with.temperature",
	// "with.alphas[1]", "inputs.data", "inputs.nets[0]", "foreach.roi",
	// "foreach.roi[2]", "resources.memory", "retries", "timeout", "executor.time".
	FieldPos map[string]Pos

	keyPos map[string]Pos // key positions: "with.temperature", "inputs.data", ...
}

// Input is one input port binding of a stage.
type Input struct {
	Port string
	Refs []Ref
	Pos  Pos // the port key's position
}

// Ref names a stage's output: Stage alone for the whole instance output
// directory, or Stage.Output for one output port.
type Ref struct {
	Stage, Output string
	Pos           Pos
}

// String formats r as written in a spec.
func (r Ref) String() string {
	if r.Output == "" {
		return r.Stage
	}
	return r.Stage + "." + r.Output
}

// ForeachKey is one fan-out key with its values (scalars: string, int64,
// float64 or bool), in file order.
type ForeachKey struct {
	Name   string
	Values []any
	Pos    Pos
	// Select, when set, chooses some of Values (the candidates) at run
	// time from an upstream metric; see Selection.
	Select *Selection
}

// Options selects what Parse applies on top of the file.
type Options struct {
	// Variant is the name of a variant to apply, "" for none.
	Variant string
	// Sets are --set overrides "path=value", applied in order after the variant.
	Sets []string
}

// Kinds resolves a stage's `uses:` to the kind's description. The engine
// passes one that knows the builtins and the spec's plugins.
type Kinds func(uses string) (stages.Description, bool)

// KindsOf returns a Kinds that knows exactly descs, by Description.Kind.
func KindsOf(descs ...stages.Description) Kinds {
	m := make(map[string]stages.Description, len(descs))
	for _, d := range descs {
		m[d.Kind] = d
	}
	return func(uses string) (stages.Description, bool) {
		d, ok := m[uses]
		return d, ok
	}
}

// Load reads and parses the spec file at path. Like Parse, it returns a
// non-nil Spec alongside errors whenever the file could be read as YAML.
func Load(path string, opt Options) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load spec %s: %w", path, err)
	}
	s, perr := Parse(path, data, opt)
	if s != nil {
		s.Path = path
	}
	return s, perr
}

// Parse parses a spec from data; file names it in positions and its
// directory resolves relative plugin paths. It applies opt.Variant, then
// opt.Sets, then interpolates ${params.x}.
//
// The returned error, if any, is an ErrorList. The Spec is nil only when the
// data is not readable YAML; otherwise it is a best-effort result whose
// problems Validate reports again, together with those that need the
// stage kinds, so a caller that wants every error at once can do
//
//	s, err := spec.Load(path, opt)
//	if s == nil {
//		return err
//	}
//	if err := spec.Validate(s, kinds); err != nil { ... }
func Parse(file string, data []byte, opt Options) (*Spec, error) {
	var errs ErrorList
	root := parseYAML(file, data, &errs)
	if root == nil {
		return nil, errs.err()
	}
	dir := filepath.Dir(file)
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	s := &Spec{Path: file, Dir: dir, Variant: opt.Variant, Overrides: opt.Sets, Pos: root.pos}
	if root.kind != mapNode {
		if root.isNull() {
			errs.add(root.pos, "empty spec: want a mapping with name and stages")
		} else {
			errs.add(root.pos, "a spec is a mapping with name, params and stages; got %s", root.describe())
		}
		s.problems = errs
		return s, errs.err()
	}
	checkKeys(root, "", topKeys, "top-level key", &errs)
	s.varSets = applyOverrides(root, opt, &errs)
	interpolate(root, &errs)
	build(s, root, &errs)
	s.Digest = digest(s, &errs)
	s.problems = errs
	return s, errs.err()
}

// Stage returns the stage named name, or nil.
func (s *Spec) Stage(name string) *Stage {
	for _, st := range s.Stages {
		if st.Name == name {
			return st
		}
	}
	return nil
}
