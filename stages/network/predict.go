package network

import (
	"fmt"

	"github.com/gomlx/gomlx/backends"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // graph code reads best unqualified
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// Predictor runs a network in eval mode on uint8 image batches and returns
// one layer's output. It compiles once per batch shape.
type Predictor struct {
	cfg    Config
	names  []string
	params []*tensors.Tensor
	exec   *Exec
}

// NewPredictor prepares cfg with weights w on backend, returning layer
// (see Layers; "output" for the logits) flattened to [N, D].
func NewPredictor(backend backends.Backend, cfg Config, w Weights, layer string) (*Predictor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := CheckWeights(cfg.Params(), w); err != nil {
		return nil, err
	}
	if !validLayer(layer) {
		return nil, fmt.Errorf("layer %q: want one of %v", layer, Layers())
	}
	pr := &Predictor{cfg: cfg}
	for _, p := range cfg.Params() {
		pr.names = append(pr.names, p.Name)
		t := w[p.Name]
		pr.params = append(pr.params, tensors.FromFlatDataAndDimensions(t.Data, t.Shape...))
	}
	np := len(pr.names)
	fn := func(in []*Node) *Node {
		p := map[string]*Node{}
		for i, n := range pr.names {
			p[n] = in[i]
		}
		_, out := cfg.Forward(p, Normalize(in[np]), nil, layer)
		return out
	}
	exec, err := NewExec(backend, fn)
	if err != nil {
		return nil, fmt.Errorf("build forward graph: %w", err)
	}
	pr.exec = exec
	return pr, nil
}

func validLayer(layer string) bool {
	for _, l := range Layers() {
		if l == layer {
			return true
		}
	}
	return false
}

// Run computes the layer for images (uint8, n x 3 x H x W flattened, H = W =
// the config's image size) and returns a row-major n x D float32 slice and D.
func (pr *Predictor) Run(images []uint8, n int) ([]float32, int, error) {
	s := pr.cfg.ImageSize
	if len(images) != n*3*s*s {
		return nil, 0, fmt.Errorf("predict: %d bytes are not %d images of 3x%dx%d", len(images), n, s, s)
	}
	args := make([]any, 0, len(pr.params)+1)
	for _, t := range pr.params {
		args = append(args, t)
	}
	in := tensors.FromFlatDataAndDimensions(images, n, 3, s, s)
	defer in.FinalizeAll()
	args = append(args, in)
	out, err := pr.exec.Exec(args...)
	if err != nil {
		return nil, 0, fmt.Errorf("predict: %w", err)
	}
	defer out[0].FinalizeAll()
	data, err := tensors.CopyFlatData[float32](out[0])
	if err != nil {
		return nil, 0, fmt.Errorf("predict: %w", err)
	}
	return data, out[0].Shape().Dimensions[1], nil
}

// Close releases the compiled graph and parameter buffers.
func (pr *Predictor) Close() {
	pr.exec.Finalize()
	for _, t := range pr.params {
		t.FinalizeAll()
	}
}
