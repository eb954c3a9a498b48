package ridge

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/voxflow/voxflow/stages/artifact"
)

// Reductions of the features before ridge (param `reduce`).
const (
	ReduceNone = "none" // the layer's features as they are
	ReducePool = "pool" // pool:N, average each channel's map to N x N
	ReducePCA  = "pca"  // pca:K, the first K principal components
)

// reduction is a parsed `reduce` param.
type reduction struct {
	kind string
	k    int // N of pool:N, K of pca:K
}

func (r reduction) String() string {
	if r.kind == ReduceNone || r.kind == "" {
		return ReduceNone
	}
	return fmt.Sprintf("%s:%d", r.kind, r.k)
}

// parseReduction parses "none", "pool:N" or "pca:K".
func parseReduction(s string) (reduction, error) {
	if s == "" || s == ReduceNone {
		return reduction{kind: ReduceNone}, nil
	}
	kind, num, ok := strings.Cut(s, ":")
	k, err := strconv.Atoi(num)
	if !ok || err != nil || k < 1 || (kind != ReducePool && kind != ReducePCA) {
		return reduction{}, fmt.Errorf("param reduce %q: want none, pool:N (N >= 1) or pca:K (K >= 1)", s)
	}
	return reduction{kind: kind, k: k}, nil
}

// Conv stacks of the AlexNet family, for the shape of a conv layer's
// features when features.json does not record it: conv1's stride and the
// adaptive pool's side per architecture (numerics/network's configs).
var archGeometry = map[string]struct{ conv1Stride, poolSize int }{
	"alexnet":      {4, 6},
	"alexnet-mini": {2, 2},
}

// mapShape returns (channels, side) of a conv layer's features: the
// features stage flattens a [C, H, W] map channel by channel (C x H x W,
// NCHW as torch), with H = W. It uses features.json's shape when present,
// else derives the side from the architecture, image size and layer
// (AlexNet: conv1 k11 p2, max pools k3 s2 after features.1, .4 and .11).
func mapShape(info *artifact.Features) (c, side int, err error) {
	if len(info.Shape) == 3 {
		if info.Shape[1] != info.Shape[2] {
			return 0, 0, fmt.Errorf("layer %s: map %dx%d is not square; pool wants square maps", info.Layer, info.Shape[1], info.Shape[2])
		}
		return info.Shape[0], info.Shape[1], nil
	}
	idx := -1
	switch {
	case info.Layer == "avgpool":
	case strings.HasPrefix(info.Layer, "features."):
		idx, err = strconv.Atoi(strings.TrimPrefix(info.Layer, "features."))
		if err != nil || idx < 0 || idx > 12 {
			return 0, 0, fmt.Errorf("layer %q: not a conv-stack layer", info.Layer)
		}
	default:
		return 0, 0, fmt.Errorf("layer %s: pool applies to conv-stack layers (features.0 ... features.12, avgpool), whose features are channel maps; use pca:K or none for a classifier layer", info.Layer)
	}
	geo, ok := archGeometry[info.Arch]
	if !ok {
		return 0, 0, fmt.Errorf("layer %s of arch %q: unknown map shape (features.json has no shape, and only %v are known)", info.Layer, info.Arch, slices.Sorted(maps.Keys(archGeometry)))
	}
	pool := func(s int) int { return (s-3)/2 + 1 }
	if idx < 0 {
		side = geo.poolSize
	} else {
		side = (info.ImageSize+4-11)/geo.conv1Stride + 1
		if idx >= 2 {
			side = pool(side)
		}
		if idx >= 5 {
			side = pool(side)
		}
		if idx >= 12 {
			side = pool(side)
		}
	}
	if side < 1 || info.Dim%(side*side) != 0 {
		return 0, 0, fmt.Errorf("layer %s of %s at %d px: %d features are not channels of %dx%d maps", info.Layer, info.Arch, info.ImageSize, info.Dim, side, side)
	}
	return info.Dim / (side * side), side, nil
}

// poolMaps averages each of c channels' side x side maps (rows of x,
// C x H x W flattened) to out x out, with torch AdaptiveAvgPool2d's bins
// [floor(i*side/out), ceil((i+1)*side/out)).
func poolMaps(x []float32, n, c, side, out int) []float32 {
	type bin struct{ lo, hi int }
	bins := make([]bin, out)
	for i := range bins {
		bins[i] = bin{i * side / out, ((i+1)*side + out - 1) / out}
	}
	p, q := c*side*side, c*out*out
	res := make([]float32, n*q)
	parallelFor(n, q*4, func(r0, r1 int) {
		for r := r0; r < r1; r++ {
			src, dst := x[r*p:(r+1)*p], res[r*q:(r+1)*q]
			for ch := 0; ch < c; ch++ {
				m := src[ch*side*side : (ch+1)*side*side]
				for i, bi := range bins {
					for j, bj := range bins {
						s := 0.0
						for y := bi.lo; y < bi.hi; y++ {
							for xx := bj.lo; xx < bj.hi; xx++ {
								s += float64(m[y*side+xx])
							}
						}
						dst[ch*out*out+i*out+j] = float32(s / float64((bi.hi-bi.lo)*(bj.hi-bj.lo)))
					}
				}
			}
		}
	})
	return res
}

// reduce applies r to the training (ntr x p) and test (nte x p) features
// and returns them with their new width. PCA is fitted on the training
// rows only (centred, not scaled, as sklearn's PCA), so test images never
// shape the components; the components see no responses, so the CV's
// held-out folds are not scored on anything fitted to their targets.
func (r reduction) reduce(ctx context.Context, info *artifact.Features, xtr []float32, ntr int, xte []float32, nte, p int) ([]float32, []float32, int, error) {
	switch r.kind {
	case ReduceNone, "":
		return xtr, xte, p, nil
	case ReducePool:
		info.Dim = p
		c, side, err := mapShape(info)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("param reduce %s: %w", r, err)
		}
		if r.k > side {
			return nil, nil, 0, fmt.Errorf("param reduce %s: the layer's maps are %dx%d, want N <= %d", r, side, side, side)
		}
		return poolMaps(xtr, ntr, c, side, r.k), poolMaps(xte, nte, c, side, r.k), c * r.k * r.k, nil
	case ReducePCA:
		b, err := newBasis(ctx, xtr, p, rowSet{{0, ntr}}, false)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("param reduce %s: PCA of %d x %d training features: %w", r, ntr, p, err)
		}
		rank := len(b.s)
		if r.k > rank {
			return nil, nil, 0, fmt.Errorf("param reduce %s: the %d training images' features have rank %d; want K <= %d", r, ntr, rank, rank)
		}
		zte, err := b.project(ctx, xte, rowSet{{0, nte}})
		if err != nil {
			return nil, nil, 0, err
		}
		// Components in descending variance: the basis keeps eigenvalues
		// ascending, so component c is basis column rank-1-c. Training
		// scores are U diag(sqrt(s)).
		k := r.k
		tr, te := make([]float32, ntr*k), make([]float32, nte*k)
		for c := 0; c < k; c++ {
			col := rank - 1 - c
			sv := math.Sqrt(b.s[col])
			for i := 0; i < ntr; i++ {
				tr[i*k+c] = float32(b.ut[col*ntr+i] * sv)
			}
			for i := 0; i < nte; i++ {
				te[i*k+c] = float32(zte[i*rank+col])
			}
		}
		return tr, te, k, nil
	}
	return nil, nil, 0, fmt.Errorf("param reduce %s: unknown reduction", r)
}
