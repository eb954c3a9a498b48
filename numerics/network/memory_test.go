package network

import (
	"context"
	"io"
	"math"
	"runtime/debug"
	"slices"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // graph code reads best unqualified
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// The checkpoint of a best last epoch is built in the storage of the Adam
// moments, which training no longer needs; it must hold the weights, not
// the moments.
func TestFitLastEpochCheckpoint(t *testing.T) {
	obj, init := fitLine(64, 4)
	cfg := TrainConfig{Epochs: 3, BatchSize: 16, LR: 0.05, Seed: 1}
	res, err := Fit(context.Background(), testBackend(t), obj, init, 64, 64, cfg, nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if res.BestEpoch != cfg.Epochs {
		t.Fatalf("best epoch %d of %d: the objective no longer improves every epoch (curve %+v)", res.BestEpoch, cfg.Epochs, res.Curve)
	}
	again, err := Fit(context.Background(), testBackend(t), obj, res.Best, 64, 64, TrainConfig{Epochs: 0, BatchSize: 16}, nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(again.BestVal-res.BestVal) > 1e-6*math.Max(1, res.BestVal) {
		t.Errorf("last-epoch checkpoint evaluates to val loss %v, recorded %v", again.BestVal, res.BestVal)
	}
}

// With no epochs Fit returns the initial weights, as a copy of its own.
func TestFitNoEpochsReturnsInitCopy(t *testing.T) {
	obj, init := fitLine(32, 3)
	copy(init["w"].Data, []float32{0.5, -1, 2})
	res, err := Fit(context.Background(), testBackend(t), obj, init, 32, 32, TrainConfig{Epochs: 0, BatchSize: 8}, nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(init["w"].Data)
	init["w"].Data[0] = 99
	if got := res.Best["w"]; !slices.Equal(got.Data, want) || !slices.Equal(got.Shape, []int{3, 1}) {
		t.Errorf("best = %v %v, want the initial %v [3 1], unaliased", got.Shape, got.Data, want)
	}
}

func TestBackendTensor(t *testing.T) {
	backend := testBackend(t)
	data := []float32{1, 2, 3, 4, 5, 6}
	x, err := backendTensor(backend, data, []int{2, 3})
	if err != nil {
		t.Fatal(err)
	}
	defer x.FinalizeAll()
	if !x.IsShared() {
		t.Error("go backend tensor is not shared with the host")
	}
	data[0] = 99 // must not alias
	got, err := tensors.CopyFlatData[float32](x)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []float32{1, 2, 3, 4, 5, 6}) || !slices.Equal(x.Shape().Dimensions, []int{2, 3}) {
		t.Errorf("tensor %v %v, want [2 3] [1 2 3 4 5 6]", x.Shape(), got)
	}
	// The graph sees the values too.
	sum, err := NewExec(backend, func(a *Node) *Node { return ReduceAllSum(a) })
	if err != nil {
		t.Fatal(err)
	}
	defer sum.Finalize()
	out, err := sum.Exec(x)
	if err != nil {
		t.Fatal(err)
	}
	if s := tensors.ToScalar[float32](out[0]); s != 21 {
		t.Errorf("sum in graph %v, want 21", s)
	}
}

// TestHeapTrimmerBound checks that a step's soft memory limit sits above
// what the runtime held at the last trim, by at least the minimum slack,
// that the previous limit comes back afterwards, and that a step that
// allocated little leaves the next unbounded while a big one does not.
func TestHeapTrimmerBound(t *testing.T) {
	const unset = int64(1 << 50)
	prev := debug.SetMemoryLimit(unset)
	defer debug.SetMemoryLimit(prev)
	limit := func() int64 { return debug.SetMemoryLimit(-1) }
	var h heapTrimmer
	restore := h.bound() // no trim yet: no limit
	if got := limit(); got != unset {
		t.Errorf("limit %d with nothing measured, expected it unchanged", got)
	}
	restore()
	h.loose.Store(false)
	h.collect()
	restore = h.bound()
	lim, total := limit(), int64(h.total.Load())
	if total <= 0 || lim < total+boundSlackMin || lim > total+boundSlackMin+int64(h.base.Load()) {
		t.Errorf("limit %d during a step with %d held at the trim, expected %d plus a slack of at least %d", lim, total, total, boundSlackMin)
	}
	restore() // allocated nothing: the next step runs unbounded
	if got := limit(); got != unset {
		t.Errorf("limit %d after the step, expected the previous one back", got)
	}
	restore = h.bound()
	if got := limit(); got != unset {
		t.Errorf("limit %d after a step that allocated nothing, expected none", got)
	}
	big := make([]byte, boundWorthwhile+1)
	big[len(big)-1] = 1
	restore() // allocated boundWorthwhile: the next step is bounded again
	restore = h.bound()
	if got := limit(); got == unset {
		t.Errorf("no limit after a step that allocated %d bytes", len(big))
	}
	restore()
}
