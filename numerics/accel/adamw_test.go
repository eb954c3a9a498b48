package accel

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestAdamWMatchesTorch runs three AdamW steps with weight decay against
// torch.optim.AdamW on the same weights and gradients.
func TestAdamWMatchesTorch(t *testing.T) {
	const n = 1000
	rng := rand.New(rand.NewPCG(12, 12))
	w0 := randn(rng, n, 1)
	grads := [][]float32{randn(rng, n, 1), randn(rng, n, 0.1), randn(rng, n, 3)}
	opt := AdamW{LR: 1e-2, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: 0.05}
	w, m, v := slices.Clone(w0), make([]float32, n), make([]float32, n)
	for i, g := range grads {
		if err := opt.Step(i+1, w, g, m, v); err != nil {
			t.Fatal(err)
		}
	}
	ref := runTorch(t, `
w = ld("w", 1000).float().detach().requires_grad_(True)
opt = torch.optim.AdamW([w], lr=1e-2, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.05)
for i in range(3):
    w.grad = ld("g%d" % i, 1000).float().detach()
    opt.step()
st = opt.state[w]
sv("w_out", w); sv("m", st["exp_avg"]); sv("v", st["exp_avg_sq"])
`, map[string][]float32{"w": w0, "g0": grads[0], "g1": grads[1], "g2": grads[2]}, "w_out", "m", "v")
	assertClose(t, "weights", w, ref["w_out"], 1e-6)
	assertClose(t, "first moment", m, ref["m"], 1e-6)
	assertClose(t, "second moment", v, ref["v"], 1e-6)
	if err := opt.Step(1, w, grads[0][:10], m, v); err == nil {
		t.Fatal("Step accepted a gradient shorter than the weights")
	}
}

func BenchmarkAdamW(b *testing.B) {
	const n = 1 << 24
	rng := rand.New(rand.NewPCG(1, 2))
	w, g := randn(rng, n, 1), randn(rng, n, 1)
	m, v := make([]float32, n), make([]float32, n)
	opt := AdamW{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01}
	b.SetBytes(7 * 4 * n) // reads w g m v, writes w m v
	step := 0
	for b.Loop() {
		step++
		if err := opt.Step(step, w, g, m, v); err != nil {
			b.Fatal(err)
		}
	}
}
