// Package stages holds the stage contract: the small interface every stage
// kind implements, builtin or plugin, and the plain-value types that cross it.
//
// A stage knows nothing of caching, scheduling or processes. Its inputs and
// outputs are paths and its params are plain values (string, bool, int64,
// float64, []any, map[string]any), so the same stage runs unchanged inline,
// in a plugin process, or on a Slurm node. EncodeValue and DecodeValue are
// the one codec for those values wherever they are hashed or cross a
// process; EncodeValue states its rules.
package stages

import (
	"context"
	"io"
)

// Stage is one stage kind. Implementations must be safe for concurrent Run
// calls: the engine runs many instances of one kind at once.
type Stage interface {
	// Describe returns the kind's name, version and schema. It must be cheap
	// and constant for the life of the process.
	Describe() Description
	// Run executes one stage instance. It reads only req.Inputs, writes only
	// under req.OutDir, and returns when ctx is cancelled.
	Run(ctx context.Context, req *Request) error
}

// Description is what a stage kind declares about itself. The engine
// validates specs against it before anything runs.
type Description struct {
	Kind    string // e.g. "tune-cl"
	Version string // bumped whenever outputs for the same inputs change
	Doc     string // one line for `voxflow stages`
	Params  []ParamSpec
	Inputs  []PortSpec
	Outputs []PortSpec
	// Isolate is the kind's default isolation: "inline" or "process".
	// Heavy training kinds ask for their own process.
	Isolate string
}

// Param types a ParamSpec may declare.
const (
	TypeString  = "string"
	TypeInt     = "int"
	TypeFloat   = "float"
	TypeBool    = "bool"
	TypeStrings = "[]string"
	TypeFloats  = "[]float" // also accepts {logspace: [lo, hi, n]} and {linspace: [lo, hi, n]}
	TypeInts    = "[]int"
	TypeMap     = "map" // map[string]any, free-form
	TypeAny     = "any" // any plain value

	// TypePath is a file or directory outside the cache that the stage
	// reads (a data root, a weights file). The stage gets it as a string
	// (Params.String), made absolute against the spec's directory; the
	// engine puts its content in the instance's key, so editing, adding,
	// removing or renaming a file under it reruns the stage while `touch`
	// does not. A directory's content is every regular file under it
	// (symlinks followed, to files and to directories); "" and the
	// ParamSpec's NotPaths words name no file and are not fingerprinted.
	// A path that does not exist is keyed as missing, and the stage
	// reports the error when it runs.
	TypePath = "path"
	// TypePaths is a list of TypePath (Params.Strings). Elements may be
	// globs (filepath.Match syntax: *, ?, [...]; no **), each keyed by
	// the content of every file or directory it matches.
	TypePaths = "[]path"
)

// ParamSpec declares one parameter of a stage kind.
type ParamSpec struct {
	Name     string
	Type     string // one of the Type* constants
	Default  any    // used when the spec omits the param; nil with Required
	Required bool
	Doc      string
	Min, Max *float64 // inclusive bounds for numbers (and list elements)
	Enum     []string // allowed values for strings
	// NotPaths lists the values of a TypePath param that are words, not
	// paths (pretrain's init "random"): kept as written, not fingerprinted.
	NotPaths []string
	// Keys, for a TypeMap param, is a regular expression every key must
	// match in full, with KeysDoc saying in words what it allows: the
	// command kind's env names, where "A=B" or "" would be silently wrong.
	Keys, KeysDoc string
}

// PortSpec declares one named input or output of a stage kind.
type PortSpec struct {
	Name string
	Doc  string
	// Many marks an input that accepts several artifacts (a fan-in, or a
	// list of references). Single inputs receive exactly one artifact.
	Many bool
	// Optional inputs may be left out of a spec.
	Optional bool
}

// Artifact is one input artifact handed to a stage: a read-only file or
// directory, with where it came from.
type Artifact struct {
	Path   string            // absolute path; never write to it
	Stage  string            // producing stage's name in the spec
	Output string            // producing port name, "" for the whole instance output
	Labels map[string]string // the producing instance's foreach bindings
	// Digest is the artifact's content digest, for provenance records.
	Digest string
}

// Request is everything one stage instance gets.
type Request struct {
	// Instance is the instance's display name, e.g. "tune_cl[subj01,FFA-1]".
	Instance string
	// Inputs maps input port names to artifacts; a single input has one.
	Inputs map[string][]Artifact
	// Params holds every declared param, defaults applied, values normalised
	// to the declared type (ints are int64, floats float64, lists []any).
	Params Params
	// Labels are this instance's foreach bindings (e.g. subject, roi).
	Labels map[string]string
	// OutDir is an empty directory owned by this instance. Output port X is
	// written at OutDir/X (a file or a directory). A stage may also write
	// OutDir/metrics.json: a JSON object whose numeric leaves the engine
	// indexes as metrics (nested keys joined by ".").
	OutDir string
	// Progress receives progress updates; never nil.
	Progress Progress
	// Log receives human-readable log lines (the stage's stdout/stderr);
	// never nil. The engine stores it with the execution.
	Log io.Writer
	// Resources are what the instance was granted.
	Resources Resources
	// Protect lists directories, outside OutDir, that the stage and every
	// process it starts must never write: the engine's store, which holds
	// the inputs and, below it, OutDir. A stage that runs other programs
	// has them run with these directories read-only where the host allows
	// (see stages/command); in-process code simply must not write there.
	Protect []string
}

// Resources is what a stage instance asks for and is granted: the one
// type for a spec's `resources:`, the engine's budgets and the plugin wire.
// In a spec, zero fields mean "not declared" and the engine applies its
// defaults.
type Resources struct {
	CPUs     int
	MemoryMB int64 // mebibytes (see engine/spec.ParseMemory)
	GPUs     int
}

// Progress receives progress updates from a running stage.
type Progress interface {
	Update(Update)
}

// Update is one progress report. The engine derives rate and ETA from
// successive Done values when Rate is zero.
type Update struct {
	Phase   string  // e.g. "epoch 3/20", "decode", "fold 2/5"
	Done    float64 // units done in this phase
	Total   float64 // units in this phase, 0 when unknown
	Unit    string  // e.g. "img", "voxel", "step"
	Rate    float64 // units per second, 0 to let the engine compute it
	Message string  // free text, e.g. "loss 0.412"
}

// ProgressFunc adapts a function to Progress.
type ProgressFunc func(Update)

// Update calls f(u).
func (f ProgressFunc) Update(u Update) { f(u) }

// NopProgress is a Progress that drops every update.
type NopProgress struct{}

// Update does nothing.
func (NopProgress) Update(Update) {}

// Bound returns a pointer to v, for ParamSpec.Min and ParamSpec.Max.
func Bound(v float64) *float64 { return &v }
