package accel

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors/images"
)

// sameOnBoth runs fn on the patched backend and on the stock-kernel
// reference with the given float32 inputs and requires bit-identical
// outputs (any NaN matching any NaN).
func sameOnBoth(t *testing.T, name string, fn func(in []*Node) []*Node, data [][]float32, dims ...[]int) {
	t.Helper()
	want := runGraph(t, stockBackend(t), name, fn, data, dims)
	got := runGraph(t, newTestBackend(t), name, fn, data, dims)
	for i := range want {
		for j := range want[i] {
			g, w := got[i][j], want[i][j]
			if math.Float32bits(g) != math.Float32bits(w) && !(isNaN(g) && isNaN(w)) {
				t.Fatalf("%s output %d entry %d: got %v (%#x), expected %v (%#x)", name, i, j, g, math.Float32bits(g), w, math.Float32bits(w))
			}
		}
	}
}

// TestMaxPoolTiesAndSpecials checks max pooling and its gradient where
// the separable kernels must reproduce the tap-by-tap reference exactly:
// tied maxima (a ReLU's zeros, repeated values), NaN and signed zeros.
func TestMaxPoolTiesAndSpecials(t *testing.T) {
	// 13x11 fits a row of windows in one vector; 9x37 needs two (18
	// windows at stride 2) or three (35 at stride 1), the last partial.
	for _, hw := range [][2]int{{13, 11}, {9, 37}} {
		t.Run(fmt.Sprintf("%dx%d", hw[0], hw[1]), func(t *testing.T) { maxPoolTiesAndSpecials(t, hw[0], hw[1]) })
	}
}

func maxPoolTiesAndSpecials(t *testing.T, h, w int) {
	const n, c = 2, 3
	rng := rand.New(rand.NewPCG(5, 5))
	size := n * c * h * w
	ties := make([]float32, size)
	for i := range ties {
		// Few distinct values, half of them zero: many tied windows.
		ties[i] = float32(max(0, rng.IntN(6)-3))
	}
	special := make([]float32, size)
	negZero := float32(math.Copysign(0, -1))
	for i := range special {
		switch rng.IntN(8) {
		case 0:
			special[i] = float32(math.NaN())
		case 1:
			special[i] = negZero
		case 2:
			special[i] = 0
		default:
			special[i] = float32(rng.NormFloat64())
		}
	}
	// Planes with no special value next to planes with some.
	mixed := append([]float32(nil), ties...)
	copy(mixed[h*w:2*h*w], special[h*w:2*h*w])
	src := make([]float32, size)
	for i := range src {
		src[i] = float32(rng.NormFloat64())
	}
	pools := map[string]func(x *Node) *Node{
		"3s2": func(x *Node) *Node {
			return MaxPool(x).ChannelsAxis(images.ChannelsFirst).Window(3).Strides(2).NoPadding().Done()
		},
		"3s1": func(x *Node) *Node {
			return MaxPool(x).ChannelsAxis(images.ChannelsFirst).Window(3).Strides(1).NoPadding().Done()
		},
		"3s1-same": func(x *Node) *Node {
			return MaxPool(x).ChannelsAxis(images.ChannelsFirst).Window(3).Strides(1).PadSame().Done()
		},
		"2s2-min": func(x *Node) *Node {
			return Neg(MaxPool(Neg(x)).ChannelsAxis(images.ChannelsFirst).Window(2).Strides(2).NoPadding().Done())
		},
	}
	for poolName, pool := range pools {
		for dataName, x := range map[string][]float32{"ties": ties, "special": special, "mixed": mixed} {
			sameOnBoth(t, poolName+"/"+dataName, func(in []*Node) []*Node {
				y := pool(in[0])
				// Weight the gradient by a random tensor so that every
				// window's choice shows.
				loss := ReduceAllSum(Mul(y, Slice(in[1], AxisRange(), AxisRange(), AxisRange(0, y.Shape().Dimensions[2]), AxisRange(0, y.Shape().Dimensions[3]))))
				return append([]*Node{y}, Gradient(loss, in[0])...)
			}, [][]float32{x, src}, []int{n, c, h, w}, []int{n, c, h, w})
		}
	}
}
