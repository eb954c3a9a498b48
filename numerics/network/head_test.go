package network

import (
	"fmt"
	"math"
	"path/filepath"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // graph code reads best unqualified
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// TestCLLossAndGradParity checks the CL head, Eq. 1 and their gradients
// (every head parameter, a and y) and the BatchNorm running statistics
// against torch autograd on fixed inputs, for every loss variant.
func TestCLLossAndGradParity(t *testing.T) {
	const n = 16
	h := Head{In: 20, Voxels: 12, V1: 8, V2: 6}
	w := h.InitWeights(4)
	// Non-trivial BatchNorm affine parameters so their gradients matter.
	for _, k := range []string{"g_h.1.weight", "g_h.4.bias"} {
		for i := range w[k].Data {
			w[k].Data[i] += 0.1 * float32(i%3)
		}
	}
	rnd := uniformTensor(newRand(9), 2, n, h.In)
	yv := uniformTensor(newRand(10), 1, n, h.Voxels)
	dir := t.TempDir()
	wp := filepath.Join(dir, "head.safetensors")
	if err := WriteSafetensors(wp, w, nil); err != nil {
		t.Fatal(err)
	}
	ap, yp := filepath.Join(dir, "a.npy"), filepath.Join(dir, "y.npy")
	saveNpy(t, ap, tensors.FromFlatDataAndDimensions(rnd.Data, rnd.Shape...))
	saveNpy(t, yp, tensors.FromFlatDataAndDimensions(yv.Data, yv.Shape...))

	backend := testBackend(t)
	params, state := h.Params(), h.State()
	for _, denom := range []string{DenomDecoupled, DenomSimCLR} {
		for _, sym := range []bool{false, true} {
			name := fmt.Sprintf("%s/symmetric=%v", denom, sym)
			t.Run(name, func(t *testing.T) {
				op := filepath.Join(dir, name[:4]+fmt.Sprint(sym)+".safetensors")
				torchRef(t, "cl", wp, ap, yp, "0.1", denom, fmt.Sprint(sym), op)
				ref, _, err := ReadSafetensors(op)
				if err != nil {
					t.Fatal(err)
				}
				fn := func(in []*Node) []*Node {
					p := map[string]*Node{}
					all := append(append([]ParamSpec{}, params...), state...)
					for i, ps := range all {
						p[ps.Name] = in[i]
					}
					a, y := in[len(all)], in[len(all)+1]
					zx, zy, st := h.Project(p, a, y, true)
					loss := CLLoss(zx, zy, 0.1, denom, sym)
					wrt := append(append([]*Node{}, in[:len(params)]...), a, y)
					out := append([]*Node{loss}, Gradient(loss, wrt...)...)
					for _, s := range state {
						out = append(out, st[s.Name])
					}
					return out
				}
				// float64 end to end, as the torch reference runs.
				var args []any
				f64 := func(t Tensor) *tensors.Tensor {
					d := make([]float64, len(t.Data))
					for i, v := range t.Data {
						d[i] = float64(v)
					}
					return tensors.FromFlatDataAndDimensions(d, t.Shape...)
				}
				for _, ps := range append(append([]ParamSpec{}, params...), state...) {
					args = append(args, f64(w[ps.Name]))
				}
				args = append(args, f64(rnd), f64(yv))
				e, err := NewExec(backend, fn)
				if err != nil {
					t.Fatal(err)
				}
				defer e.Finalize()
				out, err := e.Exec(args...)
				if err != nil {
					t.Fatal(err)
				}
				check := func(label string, got *tensors.Tensor, want Tensor) {
					g := tensors.MustCopyFlatData[float64](got)
					var maxd, maxr float64
					for i := range g {
						maxd = math.Max(maxd, math.Abs(g[i]-float64(want.Data[i])))
						maxr = math.Max(maxr, math.Abs(float64(want.Data[i])))
					}
					// The reference is float64 but travels as float32, so
					// compare relative to the tensor's scale.
					if maxd > 1e-5*math.Max(maxr, 1e-3) {
						t.Errorf("%s: max diff %.3g (scale %.3g)", label, maxd, maxr)
					}
				}
				check("loss", out[0], ref["loss"])
				for i, ps := range params {
					check("grad "+ps.Name, out[1+i], ref["grad."+ps.Name])
				}
				check("grad a", out[1+len(params)], ref["grad.a"])
				check("grad y", out[2+len(params)], ref["grad.y"])
				for i, s := range state {
					check(s.Name, out[3+len(params)+i], ref["state."+s.Name])
				}
				t.Logf("loss %.6f (torch %.6f)", tensors.ToScalar[float64](out[0]), ref["loss"].Data[0])
			})
		}
	}
}

func TestLRSchedule(t *testing.T) {
	// Warm-up reaches the base rate, cosine ends near zero, and the
	// schedule never exceeds the base rate.
	const base, warm, total = 0.1, 10, 100
	if got := LRAt(base, warm-1, warm, total); math.Abs(got-base) > 1e-12 {
		t.Errorf("end of warm-up: %v", got)
	}
	if got := LRAt(base, 0, warm, total); math.Abs(got-base/warm) > 1e-12 {
		t.Errorf("first step: %v", got)
	}
	if got := LRAt(base, total-1, warm, total); got > base*0.01 {
		t.Errorf("last step: %v", got)
	}
	if got := LRAt(base, warm+(total-warm)/2, warm, total); math.Abs(got-base/2) > 1e-12 {
		t.Errorf("midpoint of cosine: %v", got)
	}
}
