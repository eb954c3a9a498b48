package network

import (
	"fmt"
	"math/rand/v2"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // graph code reads best unqualified
)

// Contrastive-loss denominators (DESIGN.md section 7).
const (
	// DenomDecoupled sums negatives j != i only, as the poster's Eq. 1 writes.
	DenomDecoupled = "decoupled"
	// DenomSimCLR keeps the positive in the denominator (SimCLR's NT-Xent).
	DenomSimCLR = "simclr"
)

// bnEps and bnMomentum are torch's BatchNorm1d defaults.
const (
	bnEps      = 1e-5
	bnMomentum = 0.1
)

// Head is the poster's CL head for one ROI: g_A (In -> V1) and g_Y
// (Voxels -> V1) linear maps into a shared space, then g_H, an MLP
// V1 -> V1 -> V1 -> V2 with BatchNorm1d + ReLU after the first two layers,
// shared by both sides. Parameter names follow a torch module with
// attributes g_a, g_y (Linear) and g_h (Sequential), so the head's
// state_dict keys are g_a.weight, g_h.0.weight, g_h.1.running_mean, ...
type Head struct {
	In, Voxels, V1, V2 int
}

// Params lists the head's trainable parameters.
func (h Head) Params() []ParamSpec {
	return []ParamSpec{
		{"g_a.weight", []int{h.V1, h.In}}, {"g_a.bias", []int{h.V1}},
		{"g_y.weight", []int{h.V1, h.Voxels}}, {"g_y.bias", []int{h.V1}},
		{"g_h.0.weight", []int{h.V1, h.V1}}, {"g_h.0.bias", []int{h.V1}},
		{"g_h.1.weight", []int{h.V1}}, {"g_h.1.bias", []int{h.V1}},
		{"g_h.3.weight", []int{h.V1, h.V1}}, {"g_h.3.bias", []int{h.V1}},
		{"g_h.4.weight", []int{h.V1}}, {"g_h.4.bias", []int{h.V1}},
		{"g_h.6.weight", []int{h.V2, h.V1}}, {"g_h.6.bias", []int{h.V2}},
	}
}

// State lists the head's BatchNorm running statistics.
func (h Head) State() []ParamSpec {
	return []ParamSpec{
		{"g_h.1.running_mean", []int{h.V1}}, {"g_h.1.running_var", []int{h.V1}},
		{"g_h.4.running_mean", []int{h.V1}}, {"g_h.4.running_var", []int{h.V1}},
	}
}

// InitWeights initialises the head as torch does: Linear uniform
// +-1/sqrt(fan_in), BatchNorm weight 1, bias 0, running mean 0, var 1.
func (h Head) InitWeights(seed uint64) Weights {
	rng := rand.New(rand.NewPCG(seed, 0x68656164))
	w := Weights{}
	for _, p := range h.Params() {
		switch p.Name {
		case "g_h.1.weight", "g_h.4.weight":
			w[p.Name] = filled(1, p.Shape...)
		case "g_h.1.bias", "g_h.4.bias":
			w[p.Name] = NewTensor(p.Shape...)
		default:
			fanIn := h.V1
			switch p.Name[:3] {
			case "g_a":
				fanIn = h.In
			case "g_y":
				fanIn = h.Voxels
			}
			w[p.Name] = uniformTensor(rng, 1/sqrtf(fanIn), p.Shape...)
		}
	}
	for _, s := range h.State() {
		if s.Name[len(s.Name)-3:] == "var" {
			w[s.Name] = filled(1, s.Shape...)
		} else {
			w[s.Name] = NewTensor(s.Shape...)
		}
	}
	return w
}

func filled(v float32, shape ...int) Tensor {
	t := NewTensor(shape...)
	for i := range t.Data {
		t.Data[i] = v
	}
	return t
}

// Project maps f_A outputs a [N,In] and voxels y [N,Voxels] to z_x and z_y
// [N,V2]. In training mode BatchNorm uses batch statistics and the updated
// running statistics are returned (x side first, then y side, as two torch
// calls of g_h would update them); in eval mode it uses p's running stats.
func (h Head) Project(p map[string]*Node, a, y *Node, train bool) (zx, zy *Node, state map[string]*Node) {
	state = map[string]*Node{}
	for _, s := range h.State() {
		state[s.Name] = p[s.Name]
	}
	hx := linear(a, p["g_a.weight"], p["g_a.bias"])
	hy := linear(y, p["g_y.weight"], p["g_y.bias"])
	zx = h.mlp(p, hx, train, state)
	zy = h.mlp(p, hy, train, state)
	return zx, zy, state
}

func (h Head) mlp(p map[string]*Node, x *Node, train bool, state map[string]*Node) *Node {
	for _, idx := range []int{0, 3} {
		x = linear(x, p[fmt.Sprintf("g_h.%d.weight", idx)], p[fmt.Sprintf("g_h.%d.bias", idx)])
		bn := fmt.Sprintf("g_h.%d", idx+1)
		x = batchNorm(x, p[bn+".weight"], p[bn+".bias"], bn, train, state)
		x = Max(x, ScalarZero(x.Graph(), x.DType()))
	}
	return linear(x, p["g_h.6.weight"], p["g_h.6.bias"])
}

// batchNorm is torch's BatchNorm1d on [N,C]. It is written out in graph ops
// because the backends' fused batch-norm ops are not available on the go
// backend.
func batchNorm(x, gamma, beta *Node, name string, train bool, state map[string]*Node) *Node {
	rm, rv := state[name+".running_mean"], state[name+".running_var"]
	var mean, variance *Node
	if train {
		n := float64(x.Shape().Dimensions[0])
		mean = ReduceMean(x, 0)
		variance = ReduceMean(Square(Sub(x, InsertAxes(mean, 0))), 0)
		unbiased := MulScalar(variance, n/(n-1))
		state[name+".running_mean"] = Add(MulScalar(rm, 1-bnMomentum), MulScalar(StopGradient(mean), bnMomentum))
		state[name+".running_var"] = Add(MulScalar(rv, 1-bnMomentum), MulScalar(StopGradient(unbiased), bnMomentum))
	} else {
		mean, variance = rm, rv
	}
	inv := Inverse(Sqrt(AddScalar(variance, bnEps)))
	y := Mul(Sub(x, InsertAxes(mean, 0)), InsertAxes(inv, 0))
	return Add(Mul(y, InsertAxes(gamma, 0)), InsertAxes(beta, 0))
}

// CLLoss is the poster's Eq. 1 averaged over the batch: with s_ij =
// cos(z_i^y, z_j^x)/tau, l_i = -s_ii + log sum_j exp(s_ij), the sum over
// j != i for DenomDecoupled and over all j for DenomSimCLR. Symmetric
// averages it with the same loss anchored on x (s transposed).
func CLLoss(zx, zy *Node, tau float64, denominator string, symmetric bool) *Node {
	n := zx.Shape().Dimensions[0]
	ux := l2Normalize(zx)
	uy := l2Normalize(zy)
	s := DivScalar(Einsum("id,jd->ij", uy, ux), tau)
	g := s.Graph()
	diag := Diagonal(g, n)
	one := func(s *Node) *Node {
		pos := ReduceSum(Where(diag, s, ZerosLike(s)), 1)
		logits := s
		if denominator == DenomDecoupled {
			// -inf would make exp() exact but its gradient NaN under Where's
			// VJP; a large negative is exactly 0 after exp in float32.
			logits = Where(diag, Add(ZerosLike(s), Scalar(g, s.DType(), -1e30)), s)
		}
		return ReduceAllMean(Sub(logSumExpRows(logits), pos))
	}
	loss := one(s)
	if symmetric {
		loss = MulScalar(Add(loss, one(Transpose(s, 0, 1))), 0.5)
	}
	return loss
}

// l2Normalize is torch.nn.functional.normalize(x, dim=1): x / max(|x|, 1e-12).
func l2Normalize(x *Node) *Node {
	norm := Sqrt(ReduceSum(Square(x), 1))
	norm = Max(norm, Scalar(x.Graph(), x.DType(), 1e-12))
	return Div(x, InsertAxes(norm, 1))
}

// logSumExpRows is a numerically stable log(sum_j exp(x_ij)).
func logSumExpRows(x *Node) *Node {
	m := StopGradient(ReduceMax(x, 1))
	return Add(Log(ReduceSum(Exp(Sub(x, InsertAxes(m, 1))), 1)), m)
}

// MSELoss is torch's mse_loss with mean reduction.
func MSELoss(pred, target *Node) *Node {
	return ReduceAllMean(Square(Sub(pred, target)))
}

// CrossEntropy is torch's cross_entropy on logits [N,K] and int32 labels [N].
func CrossEntropy(logits, labels *Node) *Node {
	k := logits.Shape().Dimensions[1]
	oh := OneHot(labels, k, logits.DType())
	return Neg(ReduceAllMean(ReduceSum(Mul(LogSoftmax(logits, 1), oh), 1)))
}

// MSEHead is tune-mse's linear read-out In -> Voxels, saved as
// head.weight / head.bias.
type MSEHead struct {
	In, Voxels int
}

// Params lists the read-out's parameters.
func (h MSEHead) Params() []ParamSpec {
	return []ParamSpec{{"head.weight", []int{h.Voxels, h.In}}, {"head.bias", []int{h.Voxels}}}
}

// InitWeights initialises the read-out as torch's Linear does.
func (h MSEHead) InitWeights(seed uint64) Weights {
	rng := rand.New(rand.NewPCG(seed, 0x6d7365))
	b := 1 / sqrtf(h.In)
	return Weights{"head.weight": uniformTensor(rng, b, h.Voxels, h.In), "head.bias": uniformTensor(rng, b, h.Voxels)}
}

// Predict applies the read-out to a [N,In].
func (h MSEHead) Predict(p map[string]*Node, a *Node) *Node {
	return linear(a, p["head.weight"], p["head.bias"])
}
