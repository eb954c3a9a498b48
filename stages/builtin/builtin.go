// Package builtin lists the stage kinds compiled into voxflow, each with
// the implementation identity that impl_gen.go records for its code.
package builtin

//go:generate go run github.com/voxflow/voxflow/internal/implgen/cmd/implgen

import (
	"fmt"
	"reflect"

	"github.com/voxflow/voxflow/stages"
	"github.com/voxflow/voxflow/stages/command"
	"github.com/voxflow/voxflow/stages/data"
	"github.com/voxflow/voxflow/stages/features"
	"github.com/voxflow/voxflow/stages/pretrain"
	"github.com/voxflow/voxflow/stages/probe"
	"github.com/voxflow/voxflow/stages/report"
	"github.com/voxflow/voxflow/stages/ridge"
	"github.com/voxflow/voxflow/stages/tunecl"
	"github.com/voxflow/voxflow/stages/tunemse"
)

// Stages returns a fresh instance of every builtin stage kind, each with an
// Identity method (engine.Identified) returning the digest of its code that
// the engine puts in cache keys. The generator (internal/implgen)
// reads the PKG.New() calls below to learn which packages to digest, so a
// new kind is added here and then `go generate ./stages/builtin` is run.
func Stages() []stages.Stage {
	return identify(
		command.New(),
		data.New(),
		pretrain.New(),
		tunecl.New(),
		tunemse.New(),
		features.New(),
		ridge.New(),
		probe.New(),
		report.New(),
	)
}

// identity is what impl_gen.go records for one kind's package.
type identity struct {
	source   string // digest of the code as last generated
	identity string // digest used in keys: source, or an older one kept by a neutral declaration
}

// identified attaches an identity to a builtin stage. Embedding forwards
// Describe and Run unchanged.
type identified struct {
	stages.Stage
	identity string
}

// Identity returns the kind's implementation identity, as recorded in
// impl_gen.go.
func (s identified) Identity() string { return s.identity }

// identify wraps each stage with the identity recorded for the package that
// defines its type. A kind without one is a programming error caught by the
// package's tests (and by the generator, which reads Stages).
func identify(ss ...stages.Stage) []stages.Stage {
	ids := identities()
	out := make([]stages.Stage, len(ss))
	for i, s := range ss {
		pkg := PackageOf(s)
		id, ok := ids[pkg]
		if !ok {
			panic(fmt.Sprintf("builtin kind %s (package %s) has no recorded identity: run go generate ./stages/builtin", s.Describe().Kind, pkg))
		}
		out[i] = identified{Stage: s, identity: id.identity}
	}
	return out
}

// PackageOf returns the import path of the package that defines s's
// concrete type, looking through the identity wrapper.
func PackageOf(s stages.Stage) string {
	if w, ok := s.(identified); ok {
		s = w.Stage
	}
	t := reflect.TypeOf(s)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.PkgPath()
}
