package accel

import (
	"math/rand/v2"
	"testing"
	"time"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/core/tensors/images"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/layers"
	"github.com/gomlx/gomlx/pkg/ml/layers/activations"
	"github.com/gomlx/gomlx/pkg/ml/train"
	"github.com/gomlx/gomlx/pkg/ml/train/losses"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"
)

// alexNet is torchvision's AlexNet topology at 224x224 (no adaptive pool:
// the feature map is already 6x6), for timing this backend on the real
// layer shapes; the network package owns the model itself.
func alexNet(ctx *context.Context, x *Node, classes int) *Node {
	conv := func(name string, x *Node, ch, k, stride, pad int) *Node {
		c := layers.Convolution(ctx.In(name), x).Filters(ch).KernelSize(k).Strides(stride).ChannelsAxis(images.ChannelsFirst)
		if pad == 0 {
			c = c.NoPadding()
		} else {
			c = c.PadSame()
		}
		return activations.Relu(c.Done())
	}
	pool := func(x *Node) *Node {
		return MaxPool(x).ChannelsAxis(images.ChannelsFirst).Window(3).Strides(2).NoPadding().Done()
	}
	x = Pad(x, ScalarZero(x.Graph(), x.DType()), PadAxis{}, PadAxis{}, PadAxis{Start: 2, End: 1}, PadAxis{Start: 2, End: 1})
	x = pool(conv("c1", x, 64, 11, 4, 0)) // 227 -> 55 -> 27
	x = pool(conv("c2", x, 192, 5, 1, 2)) // 27 -> 13
	x = conv("c3", x, 384, 3, 1, 1)
	x = conv("c4", x, 256, 3, 1, 1)
	x = pool(conv("c5", x, 256, 3, 1, 1)) // 13 -> 6
	x = Reshape(x, x.Shape().Dimensions[0], -1)
	x = layers.DropoutStatic(ctx, x, 0.5)
	x = activations.Relu(layers.DenseWithBias(ctx.In("fc6"), x, 4096))
	x = layers.DropoutStatic(ctx, x, 0.5)
	x = activations.Relu(layers.DenseWithBias(ctx.In("fc7"), x, 4096))
	return layers.DenseWithBias(ctx.In("fc8"), x, classes)
}

// BenchmarkAlexNetTrainStep times one Adam step of AlexNet 224 at batch 8
// and reports images/s.
func BenchmarkAlexNetTrainStep(b *testing.B) {
	const n = 8
	backend := newTestBackendB(b).(*Backend)
	ctx := context.New()
	model := func(ctx *context.Context, _ any, inputs []*Node) []*Node {
		return []*Node{alexNet(ctx, inputs[0], 1000)}
	}
	trainer := train.NewTrainer(backend, ctx, model, losses.SparseCategoricalCrossEntropyLogits,
		optimizers.Adam().LearningRate(1e-4).Done(), nil, nil)
	rng := rand.New(rand.NewPCG(8, 8))
	x := tensors.FromFlatDataAndDimensions(randn(rng, n*3*224*224, 1), n, 3, 224, 224)
	labels := make([]int32, n)
	y := tensors.FromFlatDataAndDimensions(labels, n, 1)
	if _, err := trainer.TrainStep(nil, []*tensors.Tensor{x}, []*tensors.Tensor{y}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	for b.Loop() {
		if _, err := trainer.TrainStep(nil, []*tensors.Tensor{x}, []*tensors.Tensor{y}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/time.Since(start).Seconds(), "images/s")
	b.ReportMetric(float64(n*b.N)/(cpuTime()-cpu0).Seconds(), "images/cpu-s")
}
