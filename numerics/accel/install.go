package accel

import (
	"fmt"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
)

// addedOps are the op types the pure-Go backend lacks and this package
// implements.
var addedOps = []backends.OpType{
	backends.OpTypeReverse,
	backends.OpTypePad,
	backends.OpTypeSelectAndScatterMax,
	backends.OpTypeSelectAndScatterMin,
}

// stockExecutors is simplego's executor table as it was before install, so
// that nodes built by an unpatched simplego builder keep their stock
// executors. Written once by init, read-only afterwards.
var stockExecutors [backends.OpTypeLast]executor

// installErr is why the patch could not be installed (nil when it was);
// written once by init.
var installErr error

// init patches simplego's executor table before any graph can run (package
// initialisation is single-threaded), which is what makes writing the
// table race-free. Only nodes whose data is one of this package's param
// types take the new paths, so plain simplego backends behave exactly as
// before.
func init() {
	stockExecutors = sgNodeExecutors
	if err := checkInternals(); err != nil {
		installErr = err
		return
	}
	own := map[backends.OpType]executor{
		backends.OpTypeReverse:             execReverse,
		backends.OpTypePad:                 execPad,
		backends.OpTypeSelectAndScatterMax: execSelectAndScatter,
		backends.OpTypeSelectAndScatterMin: execSelectAndScatter,
	}
	for op, fn := range own {
		if stockExecutors[op] != nil {
			installErr = fmt.Errorf("accel: gomlx now implements %s itself; this package supports gomlx %s only: "+
				"drop the override before upgrading", op, GomlxVersion)
			return
		}
		sgNodeExecutors[op] = fn
	}
	for _, op := range []backends.OpType{backends.OpTypeDotGeneral, backends.OpTypeConvGeneral, backends.OpTypeReduceWindow} {
		sgNodeExecutors[op] = chain(op)
	}
	for _, op := range elementwiseOps {
		sgNodeExecutors[op] = chainOwned(op)
	}
}

// chain returns an executor that runs this package's kernel for nodes built
// by our builder and the stock executor for every other node.
func chain(op backends.OpType) executor {
	stock := stockExecutors[op]
	return func(backend *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, error) {
		if k, ok := mirror(node).data.(kernel); ok {
			return k.exec(backend, node, inputs)
		}
		return stock(backend, node, inputs, owned)
	}
}

// kernel is implemented by the params of nodes that run our own kernels in
// place of a stock simplego op.
type kernel interface {
	exec(backend *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer) (*simplego.Buffer, error)
}
