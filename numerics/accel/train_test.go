package accel

import (
	"math/rand/v2"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/core/tensors/images"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/layers"
	"github.com/gomlx/gomlx/pkg/ml/layers/activations"
	"github.com/gomlx/gomlx/pkg/ml/layers/batchnorm"
	"github.com/gomlx/gomlx/pkg/ml/train"
	"github.com/gomlx/gomlx/pkg/ml/train/losses"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"
)

// TestTrainAlexNetShaped trains a tiny network with every kind of layer
// AlexNet and the CL head use (strided conv, ReLU, 3x3/2 max-pool,
// dropout, dense, batch norm in training mode, softmax cross-entropy, Adam)
// through gomlx's own trainer, and requires the loss to fall.
func TestTrainAlexNetShaped(t *testing.T) {
	const n, classes = 8, 4
	backend := newTestBackend(t)
	ctx := context.New()
	// Initial weights and dropout masks come from the context's RNG, which
	// is time-seeded by default: seed it so the test is deterministic.
	if err := ctx.SetRNGStateFromSeed(7); err != nil {
		t.Fatal(err)
	}
	model := func(ctx *context.Context, _ any, inputs []*Node) []*Node {
		x := inputs[0]
		conv := func(name string, x *Node, ch, k, stride int) *Node {
			return activations.Relu(layers.Convolution(ctx.In(name), x).Filters(ch).KernelSize(k).Strides(stride).
				PadSame().ChannelsAxis(images.ChannelsFirst).Done())
		}
		pool := func(x *Node) *Node {
			return MaxPool(x).ChannelsAxis(images.ChannelsFirst).Window(3).Strides(2).Done()
		}
		x = pool(conv("c1", x, 8, 5, 2))
		x = pool(conv("c2", x, 16, 3, 1))
		x = Reshape(x, n, -1)
		x = layers.DropoutStatic(ctx, x, 0.2)
		x = layers.DenseWithBias(ctx.In("fc1"), x, 32)
		x = batchnorm.New(ctx.In("bn"), x, -1).UseBackendInference(false).Done()
		x = activations.Relu(x)
		return []*Node{layers.DenseWithBias(ctx.In("fc2"), x, classes)}
	}
	trainer := train.NewTrainer(backend, ctx, model, losses.SparseCategoricalCrossEntropyLogits,
		optimizers.Adam().LearningRate(3e-3).Done(), nil, nil)
	rng := rand.New(rand.NewPCG(7, 7))
	x := tensors.FromFlatDataAndDimensions(randn(rng, n*3*32*32, 1), n, 3, 32, 32)
	labels := make([]int32, n)
	for i := range labels {
		labels[i] = int32(i % classes)
	}
	y := tensors.FromFlatDataAndDimensions(labels, n, 1)
	var first, last float32
	for step := range 30 {
		m, err := trainer.TrainStep(nil, []*tensors.Tensor{x}, []*tensors.Tensor{y})
		if err != nil {
			t.Fatalf("train step %d: %v", step, err)
		}
		loss := m[0].Value().(float32)
		if step == 0 {
			first = loss
		}
		last = loss
	}
	if !(last < first*0.5) {
		t.Fatalf("loss went from %g to %g over 30 Adam steps on one batch, expected it to halve", first, last)
	}
}
