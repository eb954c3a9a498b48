package accel

// Everything in this file reaches into unexported internals of
// github.com/gomlx/gomlx/backends/simplego at exactly GomlxVersion. gomlx has
// no public way to add an op executor to its pure-Go backend, so we borrow
// two symbols with //go:linkname and read its Node through a mirror struct.
// checkInternals verifies the mirror against the real type at run time and
// New refuses to start if anything moved, so an upgrade fails loudly instead
// of corrupting memory.

import (
	"fmt"
	"reflect"
	"runtime/debug"
	"unsafe"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// GomlxVersion is the only gomlx release whose internals this package knows.
const GomlxVersion = "v0.26.0"

// executor has the signature of simplego's unexported nodeExecutor type.
type executor func(backend *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, inputsOwned []bool) (*simplego.Buffer, error)

//go:linkname sgNodeExecutors github.com/gomlx/gomlx/backends/simplego.nodeExecutors
var sgNodeExecutors [backends.OpTypeLast]executor

//go:linkname sgNewNode github.com/gomlx/gomlx/backends/simplego.(*Builder).newNode
func sgNewNode(b *simplego.Builder, opType backends.OpType, shape shapes.Shape, inputs ...*simplego.Node) *simplego.Node

// nodeMirror mirrors simplego.Node field for field (gomlx v0.26.0).
type nodeMirror struct {
	builderIdx         int
	inputs             []*simplego.Node
	opType             backends.OpType
	shape              shapes.Shape
	builder            *simplego.Builder
	multiOutputsShapes []shapes.Shape
	multiOutputsNodes  []*simplego.Node
	isNodeSelectOutput bool
	selectOutputIdx    int
	data               any
}

// bufferMirror mirrors simplego.Buffer (gomlx v0.26.0); only the layout
// check uses it, buffers are otherwise reached through public methods.
type bufferMirror struct {
	shape shapes.Shape
	valid bool
	flat  any
}

func mirror(n *simplego.Node) *nodeMirror { return (*nodeMirror)(unsafe.Pointer(n)) }

// checkInternals reports whether the gomlx internals this package relies on
// still look the way they did in GomlxVersion.
func checkInternals() error {
	if err := sameLayout(reflect.TypeFor[simplego.Node](), reflect.TypeFor[nodeMirror]()); err != nil {
		return err
	}
	if err := sameLayout(reflect.TypeFor[simplego.Buffer](), reflect.TypeFor[bufferMirror]()); err != nil {
		return err
	}
	// The executor table must still be indexed by op type and hold the stock
	// executors we chain to; a nil DotGeneral entry means the symbol we
	// linked is no longer the table the executor reads.
	for _, op := range []backends.OpType{backends.OpTypeDotGeneral, backends.OpTypeConvGeneral, backends.OpTypeReduceWindow} {
		if stockExecutors[op] == nil {
			return fmt.Errorf("accel: gomlx internals changed: simplego.nodeExecutors[%s] is nil; "+
				"this package supports gomlx %s only", op, GomlxVersion)
		}
	}
	if v := gomlxModuleVersion(); v != "" && v != GomlxVersion {
		return fmt.Errorf("accel: this binary links gomlx %s but numerics/accel supports gomlx %s only: "+
			"re-check internals.go before upgrading", v, GomlxVersion)
	}
	return nil
}

// gomlxModuleVersion is the gomlx version this binary was built with, or ""
// where build info is unavailable.
func gomlxModuleVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, d := range info.Deps {
		if d.Path == "github.com/gomlx/gomlx" {
			if d.Replace != nil {
				return d.Replace.Version
			}
			return d.Version
		}
	}
	return ""
}

func sameLayout(real, mine reflect.Type) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("accel: gomlx internals changed (this package supports gomlx %s only): %s: %s",
			GomlxVersion, real, fmt.Sprintf(format, args...))
	}
	if real.Size() != mine.Size() {
		return fail("size %d, expected %d", real.Size(), mine.Size())
	}
	if real.NumField() != mine.NumField() {
		return fail("%d fields, expected %d", real.NumField(), mine.NumField())
	}
	for i := range real.NumField() {
		rf, mf := real.Field(i), mine.Field(i)
		if rf.Name != mf.Name || rf.Offset != mf.Offset || rf.Type.String() != mf.Type.String() {
			return fail("field %d is %s %s at offset %d, expected %s %s at %d",
				i, rf.Name, rf.Type, rf.Offset, mf.Name, mf.Type, mf.Offset)
		}
	}
	return nil
}
