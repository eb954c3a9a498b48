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
	trim   heapTrimmer
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
		// A local tensor would keep its host copy beside the backend's
		// after the first run.
		pt, err := backendTensor(backend, w[p.Name].Data, p.Shape)
		if err != nil {
			pr.Close()
			return nil, fmt.Errorf("parameter %s to backend: %w", p.Name, err)
		}
		pr.params = append(pr.params, pt)
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
		pr.Close()
		return nil, fmt.Errorf("build forward graph: %w", err)
	}
	pr.exec = exec
	// Free w, where the caller no longer holds it, before the first
	// batch's activations.
	pr.trim.collect()
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
// Like Fit's steps, it may collect garbage afterwards (heapTrimmer).
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
	args = append(args, in)
	restore := pr.trim.bound()
	out, err := pr.exec.Exec(args...)
	restore()
	in.FinalizeAll()
	if err != nil {
		return nil, 0, fmt.Errorf("predict: %w", err)
	}
	data, err := tensors.CopyFlatData[float32](out[0])
	d := out[0].Shape().Dimensions[1]
	out[0].FinalizeAll()
	if err != nil {
		return nil, 0, fmt.Errorf("predict: %w", err)
	}
	pr.trim.step()
	return data, d, nil
}

// Close releases the compiled graph and parameter buffers.
func (pr *Predictor) Close() {
	if pr.exec != nil {
		pr.exec.Finalize()
	}
	for _, t := range pr.params {
		t.FinalizeAll()
	}
}
