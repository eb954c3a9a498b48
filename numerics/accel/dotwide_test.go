package accel

import (
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph"
)

// TestWideProductParity covers the products computed transposed (few
// rows, many columns: a dense layer's input gradient) in both rhs layouts
// and batched.
func TestWideProductParity(t *testing.T) {
	if !wideProduct(32, 1024, 1024) {
		t.Fatal("test shapes no longer take the transposed path: adjust them")
	}
	cases := []struct {
		name           string
		lhs, rhs       []int
		lc, lb, rc, rb []int
	}{
		{"nn", []int{32, 1024}, []int{1024, 1024}, []int{1}, nil, []int{0}, nil},
		{"nt", []int{32, 1024}, []int{1100, 1024}, []int{1}, nil, []int{1}, nil},
		{"tn", []int{1024, 32}, []int{1024, 1030}, []int{0}, nil, []int{0}, nil},
		{"batched", []int{2, 32, 1024}, []int{2, 1024, 1024}, []int{2}, []int{0}, []int{1}, []int{0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			parity(t, c.name, func(in []*Node) []*Node {
				return []*Node{DotGeneral(in[0], c.lc, c.lb, in[1], c.rc, c.rb)}
			}, 1e-5, c.lhs, c.rhs)
		})
	}
}

func TestTranspose2D(t *testing.T) {
	const rows, cols = 45, 70
	src := make([]float32, rows*cols)
	for i := range src {
		src[i] = float32(i)
	}
	dst := make([]float32, rows*cols)
	transpose2D(src, dst, rows, cols)
	for r := range rows {
		for c := range cols {
			if dst[c*rows+r] != src[r*cols+c] {
				t.Fatalf("dst[%d][%d] = %g, expected %g", c, r, dst[c*rows+r], src[r*cols+c])
			}
		}
	}
}
