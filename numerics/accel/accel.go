// Package accel owns voxflow's compute backends for gomlx: the pure-Go
// ("go", simplego) backend with the ops AlexNet training needs patched in
// and its hot kernels moved to OpenBLAS, and gomlx's XLA backend where a
// PJRT plugin is installed.
//
// It is the only package in voxflow that touches gomlx internals
// (internals.go, pinned to gomlx GomlxVersion and checked by New and by
// TestGomlxInternals); everything else uses the public gomlx API on the
// backends.Backend that New returns.
//
// How network code obtains and uses a backend:
//
//	backend, err := accel.New(accel.Config{Backend: name}) // "go" or "xla"
//	if err != nil {
//		return fmt.Errorf("backend: %w", err)
//	}
//	defer backend.Finalize()
//	trainer := train.NewTrainer(backend, ctx, modelFn, lossFn, optimizer, nil, nil) // or context.NewExec(backend, ...)
//
// Create one backend per run (a training, a feature extraction) and share
// it by all graphs of that run.
// To hit the fast paths, build models the way torchvision lays them out:
//
//   - float32 everywhere (other dtypes fall back to gomlx's slow kernels);
//   - images and activations NCHW: Convolve(...).ChannelsAxis(images.ChannelsFirst)
//     and MaxPool/MeanPool(...).ChannelsAxis(images.ChannelsFirst); the
//     kernel is then [out, in, kh, kw], torchvision's own layout, so
//     features.N.weight loads without a transpose;
//   - linear layers may keep torchvision's [out, in] weight and use
//     DotGeneral(x, []int{1}, nil, w, []int{1}, nil): the transpose is
//     folded into sgemm, never copied;
//   - batch norm must use graph-level statistics,
//     batchnorm.New(...).UseBackendInference(false), since the fused
//     BatchNorm ops exist in neither simplego nor this package.
//
// What the "go" backend adds to gomlx's simplego: Reverse, Pad,
// SelectAndScatterMax/Min (the gradients of convolution, slicing, mean and
// max pooling); unit defaults for the nil strides and dilations gomlx's
// convolution gradients pass; float32 DotGeneral on sgemm, reading operands
// in place through transposes and reshapes; the ReduceSum(Mul(...)) that
// gomlx emits for DotGeneral's gradient fused back into one sgemm (without
// it a dense layer's gradient materialises a batch x in x out tensor);
// 2-D float32 convolutions (forward and both gradients) on oneDNN's
// convolution primitives, the library PyTorch's CPU convolutions run on
// (dnnl.go maps gomlx's gradient convolutions back onto them), with
// im2col/col2im in C plus sgemm for layouts oneDNN is not given; plane
// kernels for max/min/sum pooling and its gradient (AVX-512 where the CPU
// has it); vectorised, threaded float32 element-wise ops (elementwise.go:
// Add, Sub, Mul, Div, Max, Min with broadcasts folded into strides, uint8
// to float32), ReduceSum (reduce.go), and transposes (transpose.go, those
// that only move unit axes become free reshapes); gomlx's five-op ReLU
// gradient fused into one pass that reads the ReLU's output, so that the
// ReLU runs in place. OpenBLAS and oneDNN run single-threaded and this
// package splits each GEMM or convolution batch across Config.Threads
// goroutines, so their spinning thread pools never compete with gomlx's
// parallel ops. ProfileOps (opstats.go) times a graph op by op.
package accel

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
)

// Backend names accepted in Config.Backend.
const (
	BackendGo  = "go"
	BackendXLA = "xla"
)

// Config selects and tunes a compute backend. The zero value selects the
// patched pure-Go backend with default parallelism.
type Config struct {
	// Backend is "go" (default when empty) or "xla".
	Backend string
	// Threads caps the CPU threads one op may use (BLAS and our kernels);
	// 0 means runtime.GOMAXPROCS(0).
	Threads int
	// XLAPlugin names the PJRT plugin for "xla" ("cpu", "cuda", or an
	// absolute path to a .so); empty picks the first plugin found.
	XLAPlugin string
	// StockKernels keeps gomlx's own pure-Go matmul, convolution and
	// pooling kernels and patches in only the missing ops: slow, for
	// checking the numerics of the OpenBLAS paths.
	StockKernels bool
	// Im2colConv runs float32 convolutions as im2col + OpenBLAS sgemm
	// instead of oneDNN: slower, for comparing the two.
	Im2colConv bool
}

// New returns the backend cfg asks for. For "go" it is gomlx's pure-Go
// backend wrapped so that conv/pool/pad/reverse gradients work and float32
// matmuls and convolutions run on OpenBLAS. For "xla" it is gomlx's XLA
// backend, or an error naming what to install when no PJRT plugin is found.
func New(cfg Config) (backends.Backend, error) {
	switch strings.ToLower(cfg.Backend) {
	case "", BackendGo:
		return newGo(cfg)
	case BackendXLA:
		return newXLA(cfg)
	default:
		return nil, fmt.Errorf("accel: unknown backend %q in Config.Backend: expected %q or %q", cfg.Backend, BackendGo, BackendXLA)
	}
}

// Backend is the patched pure-Go backend. It embeds gomlx's simplego backend
// for buffers and execution and only replaces graph building.
type Backend struct {
	*simplego.Backend
	threads int
	stock   bool
	im2col  bool // convolutions on im2col + sgemm rather than oneDNN
	// convPaths counts the float32 2-D convolutions built, by the kernel
	// that runs them: oneDNN's three primitives, then im2col.
	convPaths [convIm2col + 1]atomic.Int64
	// convMu lets one oneDNN convolution run at a time; see dnnlConv.exec.
	convMu sync.Mutex
	// dnnlChunkBytes overrides chunkBytes for convolutions built after it
	// is set (tests use it to make every sample a chunk).
	dnnlChunkBytes int
}

// ConvPaths reports how many float32 2-D convolutions graphs built on b
// run on each kernel: "forward", "backward-data", "backward-weights"
// (oneDNN) and "im2col" (OpenBLAS). A model whose convolutions should all
// reach oneDNN can check that none fell back.
func (b *Backend) ConvPaths() map[string]int64 {
	out := map[string]int64{}
	for k := range convIm2col + 1 {
		out[k.String()] = b.convPaths[k].Load()
	}
	return out
}

var _ backends.Backend = (*Backend)(nil)

func newGo(cfg Config) (*Backend, error) { return newGoWith(cfg, "") }

// newGoWith is newGo on a simplego backend created with the given
// configuration string (e.g. "ops_sequential").
func newGoWith(cfg Config, sgConfig string) (*Backend, error) {
	if installErr != nil {
		return nil, installErr
	}
	threads := cfg.Threads
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	sg, err := simplego.New(sgConfig)
	if err != nil {
		return nil, fmt.Errorf("accel: create gomlx go backend: %w", err)
	}
	return &Backend{Backend: sg.(*simplego.Backend), threads: threads, stock: cfg.StockKernels, im2col: cfg.Im2colConv}, nil
}

// Name implements backends.Backend.
func (b *Backend) Name() string { return "SimpleGo (go) + voxflow accel" }

// Description implements backends.Backend.
func (b *Backend) Description() string {
	return fmt.Sprintf("gomlx pure-Go backend patched by voxflow/numerics/accel (gomlx %s, OpenBLAS, %d threads)", GomlxVersion, b.threads)
}

// Capabilities implements backends.Backend, adding the ops this package
// implements to those of the pure-Go backend.
func (b *Backend) Capabilities() backends.Capabilities {
	c := b.Backend.Capabilities().Clone()
	for _, op := range addedOps {
		c.Operations[op] = true
	}
	return c
}

// Builder implements backends.Backend.
func (b *Backend) Builder(name string) backends.Builder {
	sg := b.Backend.Builder(name)
	return &builder{Builder: sg, sg: sg.(*simplego.Builder), backend: b}
}

// envPJRT is where gomlx's xla backend looks for PJRT plugins.
const envPJRT = "PJRT_PLUGIN_LIBRARY_PATH"

func pjrtHint() string {
	return fmt.Sprintf("install a PJRT plugin (e.g. pjrt_c_api_cpu_plugin.so from github.com/gomlx/pjrt-cpu-binaries, "+
		"or the CUDA plugin from the jax-cuda12-pjrt wheel) and set %s to its directory (now %q)", envPJRT, os.Getenv(envPJRT))
}
