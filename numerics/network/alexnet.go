package network

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // graph code reads best unqualified, as in gomlx's own examples
	"github.com/gomlx/gomlx/pkg/core/tensors/images"
)

// ParamSpec names one parameter and its shape.
type ParamSpec struct {
	Name  string
	Shape []int
}

// convSpec is one conv layer of the features block.
type convSpec struct {
	index, kernel, stride, pad int
}

func (c Config) convs() []convSpec {
	return []convSpec{
		{0, 11, c.Conv1Stride, 2}, {3, 5, 1, 2}, {6, 3, 1, 1}, {8, 3, 1, 1}, {10, 3, 1, 1},
	}
}

// Params lists the network's parameters in torchvision state_dict order.
func (c Config) Params() []ParamSpec {
	var ps []ParamSpec
	in := 3
	for i, cv := range c.convs() {
		out := c.Channels[i]
		ps = append(ps,
			ParamSpec{fmt.Sprintf("features.%d.weight", cv.index), []int{out, in, cv.kernel, cv.kernel}},
			ParamSpec{fmt.Sprintf("features.%d.bias", cv.index), []int{out}})
		in = out
	}
	fcIn := c.Channels[4] * c.PoolSize * c.PoolSize
	dims := [][2]int{{c.Hidden[0], fcIn}, {c.Hidden[1], c.Hidden[0]}, {c.NumClasses, c.Hidden[1]}}
	for i, idx := range []int{1, 4, 6} {
		ps = append(ps,
			ParamSpec{fmt.Sprintf("classifier.%d.weight", idx), []int{dims[i][0], dims[i][1]}},
			ParamSpec{fmt.Sprintf("classifier.%d.bias", idx), []int{dims[i][0]}})
	}
	return ps
}

// InitWeights draws weights as torch's default Conv2d/Linear init does
// (uniform in +-1/sqrt(fan_in) for weights and biases), from a seeded PCG so
// that a seed fixes the network.
func (c Config) InitWeights(seed uint64) Weights {
	rng := rand.New(rand.NewPCG(seed, 0x766f78666c6f77))
	w := Weights{}
	var fanIn int
	for _, p := range c.Params() {
		if strings.HasSuffix(p.Name, ".weight") {
			fanIn = numel(p.Shape[1:])
		}
		w[p.Name] = uniformTensor(rng, 1/math.Sqrt(float64(fanIn)), p.Shape...)
	}
	return w
}

// Init schemes accepted by InitWeightsScheme.
const (
	// InitTorch is torch's default Conv2d/Linear init, which torchvision's
	// AlexNet keeps: uniform +-1/sqrt(fan_in) for weights and biases.
	InitTorch = "torch"
	// InitKaiming is He et al.'s init for ReLU networks, as torchvision's
	// VGG uses it: conv weights kaiming_normal (fan_out, relu), linear
	// weights normal(0, 0.01), biases 0. Without BatchNorm, torch's default
	// init shrinks the signal through AlexNet's eight layers so that a
	// from-scratch run can stall at chance; this one keeps it alive.
	InitKaiming = "kaiming"
)

// InitSchemes lists the accepted init schemes.
var InitSchemes = []string{InitTorch, InitKaiming}

// InitWeightsScheme draws weights with the named scheme (InitTorch is
// InitWeights).
func (c Config) InitWeightsScheme(seed uint64, scheme string) (Weights, error) {
	switch scheme {
	case InitTorch, "":
		return c.InitWeights(seed), nil
	case InitKaiming:
	default:
		return nil, fmt.Errorf("init scheme %q: want one of %v", scheme, InitSchemes)
	}
	rng := rand.New(rand.NewPCG(seed, 0x6b61696d696e67))
	w := Weights{}
	for _, p := range c.Params() {
		t := NewTensor(p.Shape...)
		if strings.HasSuffix(p.Name, ".weight") {
			sd := 0.01
			if len(p.Shape) == 4 { // conv: fan_out = out * k * k
				sd = math.Sqrt(2 / float64(p.Shape[0]*p.Shape[2]*p.Shape[3]))
			}
			for i := range t.Data {
				t.Data[i] = float32(rng.NormFloat64() * sd)
			}
		}
		w[p.Name] = t
	}
	return w, nil
}

func uniformTensor(rng *rand.Rand, bound float64, shape ...int) Tensor {
	t := NewTensor(shape...)
	for i := range t.Data {
		t.Data[i] = float32((2*rng.Float64() - 1) * bound)
	}
	return t
}

// CheckWeights reports missing, extra or mis-shaped parameters, naming each.
func CheckWeights(specs []ParamSpec, w Weights) error {
	var problems []string
	seen := map[string]bool{}
	for _, p := range specs {
		seen[p.Name] = true
		t, ok := w[p.Name]
		if !ok {
			problems = append(problems, "missing "+p.Name)
			continue
		}
		if !sameShape(t.Shape, p.Shape) {
			problems = append(problems, fmt.Sprintf("%s has shape %v, want %v", p.Name, t.Shape, p.Shape))
		}
	}
	for k := range w {
		if !seen[k] {
			problems = append(problems, "unexpected "+k)
		}
	}
	if len(problems) > 0 {
		if len(problems) > 6 {
			problems = append(problems[:6], fmt.Sprintf("and %d more", len(problems)-6))
		}
		return fmt.Errorf("weights do not fit the network: %s", strings.Join(problems, "; "))
	}
	return nil
}

// Layers lists the names Forward can capture: every torchvision module
// ("features.0" ... "features.12", "avgpool", "classifier.0" ...
// "classifier.6") and "output" (= classifier.6).
func Layers() []string {
	var out []string
	for i := 0; i <= 12; i++ {
		out = append(out, fmt.Sprintf("features.%d", i))
	}
	out = append(out, "avgpool")
	for i := 0; i <= 6; i++ {
		out = append(out, fmt.Sprintf("classifier.%d", i))
	}
	return append(out, "output")
}

// Normalize turns uint8 images [N,3,H,W] into float32 ImageNet-normalised
// input.
func Normalize(imgs *Node) *Node {
	g := imgs.Graph()
	x := DivScalar(ConvertDType(imgs, dtypes.Float32), 255.0)
	// ImageNet statistics, as torchvision's pretrained AlexNet expects.
	mean := Reshape(Const(g, []float32{0.485, 0.456, 0.406}), 1, 3, 1, 1)
	std := Reshape(Const(g, []float32{0.229, 0.224, 0.225}), 1, 3, 1, 1)
	return Div(Sub(x, mean), std)
}

// Forward builds the network on float32 input x [N,3,H,W] (already
// normalised). p holds a node per parameter name. dropMasks, when not nil,
// are the masks of dropout classifier.0 and classifier.3 (see DropoutMasks);
// nil means eval mode. capture names a layer (see Layers) whose
// output is returned flattened to [N, D] as the second result; "" captures
// nothing.
func (c Config) Forward(p map[string]*Node, x *Node, dropMasks []*Node, capture string) (out, captured *Node) {
	n := x.Shape().Dimensions[0]
	keep := func(name string, v *Node) {
		if name == capture || (capture == "output" && name == "classifier.6") {
			captured = Reshape(v, n, -1)
		}
	}
	pools := map[int]bool{2: true, 5: true, 12: true}
	ci := 0
	convs := c.convs()
	for i := 0; i <= 12; i++ {
		name := fmt.Sprintf("features.%d", i)
		switch {
		case ci < len(convs) && convs[ci].index == i:
			cv := convs[ci]
			x = conv2d(x, p[name+".weight"], p[name+".bias"], cv.stride, cv.pad)
			ci++
		case pools[i]:
			x = maxPool3s2(x)
		default:
			x = Max(x, ScalarZero(x.Graph(), x.DType()))
		}
		keep(name, x)
	}
	x = adaptiveAvgPool(x, c.PoolSize)
	keep("avgpool", x)
	x = Reshape(x, n, -1)
	fc := func(idx int) {
		name := fmt.Sprintf("classifier.%d", idx)
		x = linear(x, p[name+".weight"], p[name+".bias"])
		keep(name, x)
	}
	drop := func(idx, k int) {
		if dropMasks != nil {
			x = Mul(x, dropMasks[k])
		}
		keep(fmt.Sprintf("classifier.%d", idx), x)
	}
	relu := func(idx int) {
		x = Max(x, ScalarZero(x.Graph(), x.DType()))
		keep(fmt.Sprintf("classifier.%d", idx), x)
	}
	drop(0, 0)
	fc(1)
	relu(2)
	drop(3, 1)
	fc(4)
	relu(5)
	fc(6)
	return x, captured
}

// conv2d is torch's Conv2d: x [N,C,H,W], w [O,C,k,k] (torch layout, so no
// transposition on import), b [O].
func conv2d(x, w, b *Node, stride, pad int) *Node {
	axes := ConvolveAxesConfig{
		InputBatch: 0, InputChannels: 1, InputSpatial: []int{2, 3},
		KernelOutputChannels: 0, KernelInputChannels: 1, KernelSpatial: []int{2, 3},
		OutputBatch: 0, OutputChannels: 1, OutputSpatial: []int{2, 3},
	}
	y := Convolve(x, w).AxesConfig(axes).StridePerAxis(stride, stride).
		PaddingPerDim([][2]int{{pad, pad}, {pad, pad}}).DilationPerAxis(1, 1).Done()
	return Add(y, Reshape(b, 1, -1, 1, 1))
}

// maxPool3s2 is torch's MaxPool2d(kernel_size=3, stride=2) on NCHW.
func maxPool3s2(x *Node) *Node {
	return MaxPool(x).ChannelsAxis(images.ChannelsFirst).Window(3).Strides(2).NoPadding().Done()
}

// linear is torch's Linear: y = x w^T + b with w [out, in]. Contracting
// w's axis 1 directly lets the backend fold the transpose into its GEMM.
func linear(x, w, b *Node) *Node {
	return Add(DotGeneral(x, []int{1}, nil, w, []int{1}, nil), Reshape(b, 1, -1))
}

// adaptiveAvgPool is torch's AdaptiveAvgPool2d((out,out)) on NCHW, as two
// small averaging matrices (bins [floor(i*s/o), ceil((i+1)*s/o)) ), so it is
// differentiable with matmuls only. When the map already has the target
// size it is the identity, as in torch.
func adaptiveAvgPool(x *Node, out int) *Node {
	dims := x.Shape().Dimensions
	h, w := dims[2], dims[3]
	if h == out && w == out {
		return x
	}
	g := x.Graph()
	ph := Const(g, poolMatrix(h, out))
	pw := Const(g, poolMatrix(w, out))
	x = Einsum("nchw,ih->nciw", x, ph)
	return Einsum("nciw,jw->ncij", x, pw)
}

func poolMatrix(in, out int) [][]float32 {
	m := make([][]float32, out)
	for i := range m {
		m[i] = make([]float32, in)
		lo := i * in / out
		hi := ((i+1)*in + out - 1) / out
		for j := lo; j < hi; j++ {
			m[i][j] = 1 / float32(hi-lo)
		}
	}
	return m
}

func sqrtf(n int) float64 { return math.Sqrt(float64(n)) }

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x74657374)) }
