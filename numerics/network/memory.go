package network

import (
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// heapTrimmer keeps the Go heap of a loop of graph executions (training or
// inference steps) close to its live size.
//
// A step takes its whole working set (activations, gradients, scratch) from
// the go backend's buffer pools, one sync.Pool per buffer size, and gives it
// back there. Left alone, that costs twice: the runtime lets the heap grow
// to twice what was live at the last collection (GOGC=100), and what is live
// is dominated by the model itself (parameters, Adam moments, pooled step
// buffers); and a sync.Pool strands a buffer per size in each P's private
// slot, out of reach of the other Ps, so the pools drift to a multiple of
// one step's working set. AlexNet training at batch 32 reached 2.3 GB that
// way where parameters, moments and one step need 1.4.
//
// So between steps, where nothing is in flight, once the heap holds more
// than a slack beyond what was live after the last trim, step drops every
// pooled buffer and collects: the next step allocates its working set afresh
// from the pages just freed, and the peak stays at live data plus one step.
// A model whose step needs less than the slack keeps its pools, for it the
// reallocation would cost more time than the memory is worth.
type heapTrimmer struct {
	base  atomic.Uint64 // live heap bytes after the last trim
	total atomic.Uint64 // memory held by the Go runtime then (the soft limit's measure)
	loose atomic.Bool   // the last step allocated too little to bound the next
}

// Heap growth tolerated between trims: at least slackMin, else a
// slackDiv-th of the live heap. With 64 MB, alexnet-mini at batch 256 (a
// ~150 MB step) lost its pools every step and ran ~10% slower, zeroing and
// faulting in fresh buffers, for a 200 MB peak where PyTorch takes 370-400;
// 192 MB keeps them at a 315 MB peak (256 MB: 380) and leaves AlexNet's
// figures unchanged.
const (
	slackMin = 192 << 20
	slackDiv = 4
	// bound's slack: at least boundSlackMin, else a boundSlackDiv-th of
	// the live heap; and the allocation of a step below which the next
	// runs unbounded.
	boundSlackMin   = 32 << 20
	boundSlackDiv   = 8
	boundWorthwhile = 512 << 20
)

// readMetrics returns the named runtime/metrics values, all uint64; ok is
// false where the runtime does not provide one of them.
func readMetrics(names ...string) (vals []uint64, ok bool) {
	s := make([]metrics.Sample, len(names))
	for i, n := range names {
		s[i].Name = n
	}
	metrics.Read(s)
	vals = make([]uint64, len(s))
	for i := range s {
		if s[i].Value.Kind() != metrics.KindUint64 {
			return nil, false
		}
		vals[i] = s[i].Value.Uint64()
	}
	return vals, true
}

// heapMetrics returns the live heap as of the last collection and the heap
// bytes in objects now, live or dead; ok is false where the runtime does
// not provide them.
func heapMetrics() (live, objects uint64, ok bool) {
	v, ok := readMetrics("/gc/heap/live:bytes", "/memory/classes/heap/objects:bytes")
	if !ok {
		return 0, 0, false
	}
	return v[0], v[1], true
}

// collect frees one-off garbage, such as the caller's copy of weights just
// moved to the backend, before a first step piles its working set on top,
// and takes what is left as the live size.
func (h *heapTrimmer) collect() {
	runtime.GC()
	live, _, _ := heapMetrics()
	h.base.Store(live)
	if v, ok := readMetrics("/memory/classes/total:bytes", "/memory/classes/heap/released:bytes"); ok {
		h.total.Store(v[0] - v[1])
	}
}

// bound sets the runtime's soft memory limit to what the Go runtime held at
// the last trim plus a slack, for the duration of one step, and returns
// the function that puts the previous limit back.
//
// Inside a step the buffer pools strand every buffer a layer frees (a
// later layer needs other sizes) until two collections have passed; with
// the default pacing none comes until the heap has doubled, so at batch
// 256 AlexNet held ~400 MB of such buffers at its peak. Under the limit the
// collector runs as the step's allocations pass it, which frees them as
// they go (AlexNet at batch 256: training peak 2.6 GB without, 2.2 GB with;
// inference 1.2 GB and 1.0 GB). It is cheap for big steps because buffers
// hold no pointers (3-5% of the step), and the runtime caps the
// collector's CPU share if a step truly needs more than the limit.
//
// Steps that allocate little (alexnet-mini's; AlexNet's at batch 32, whose
// buffers the pools hand back step after step) strand little, and the
// collections would cost them up to 20%: after a step that allocated less
// than boundWorthwhile, the next runs without a limit. The first step is
// always bounded, since it sets the high-water mark.
//
// The limit is process-wide: a step that overlaps another's restores the
// limit it found, which at worst leaves collections more (or less)
// frequent than needed, never changes results.
func (h *heapTrimmer) bound() (restore func()) {
	total := h.total.Load()
	a0 := allocBytes()
	done := func() { h.loose.Store(allocBytes()-a0 < boundWorthwhile) }
	if total == 0 || h.loose.Load() {
		return done
	}
	limit := total + max(boundSlackMin, h.base.Load()/boundSlackDiv)
	prev := debug.SetMemoryLimit(int64(min(limit, math.MaxInt64)))
	return func() {
		debug.SetMemoryLimit(prev)
		done()
	}
}

// allocBytes is the runtime's count of heap bytes allocated so far.
func allocBytes() uint64 {
	v, _ := readMetrics("/gc/heap/allocs:bytes")
	if v == nil {
		return 0
	}
	return v[0]
}

// step is called between steps; see heapTrimmer.
func (h *heapTrimmer) step() {
	_, objects, ok := heapMetrics()
	base := h.base.Load()
	if !ok || objects <= base+max(slackMin, base/slackDiv) {
		return
	}
	// The first collection moves pooled buffers to the pools' victim
	// caches, the second frees them.
	runtime.GC()
	h.collect()
}

// backendTensor returns a float32 tensor of the given shape holding a copy
// of data, placed for repeated use as an input: where the backend shares
// buffers with the host (the go backend does) it is the backend's buffer
// alone, with no host copy beside it, and the host can update it in place.
func backendTensor(backend backends.Backend, data []float32, shape []int) (*tensors.Tensor, error) {
	if !backend.HasSharedBuffers() {
		return tensors.FromFlatDataAndDimensions(data, shape...), nil
	}
	// MaterializeOnDevice copies a local tensor into a new shared buffer
	// and drops the local one. Moving a zero tensor and writing data after
	// keeps the transient local copy out of RSS: fresh pages are only read
	// (the kernel's zero page), recycled heap pages are resident already.
	t := tensors.FromShape(shapes.Make(dtypes.Float32, shape...))
	if err := t.MaterializeOnDevice(backend, true, 0); err != nil {
		return nil, err
	}
	if err := tensors.MutableFlatData(t, func(flat []float32) { copy(flat, data) }); err != nil {
		t.FinalizeAll()
		return nil, err
	}
	return t, nil
}
