package report

import (
	"image/color"
	"sort"
	"strings"

	"gonum.org/v1/plot/vg"
)

// seriesColor is the i-th colour of an opaque, colour-blind-tolerant
// palette (Tableau 10). Opaque on purpose: gonum's SVG writer turns colours
// with alpha into strings browsers reject, and opaque marks keep their
// exact colour on screen, which the browser test relies on.
func seriesColor(i int) color.NRGBA {
	return palette[((i%paletteSize)+paletteSize)%paletteSize]
}

// palette is seriesColor's colours, in order.
var palette = [...]color.NRGBA{
	{0x1f, 0x77, 0xb4, 0xff}, // blue
	{0xff, 0x7f, 0x0e, 0xff}, // orange
	{0x2c, 0xa0, 0x2c, 0xff}, // green
	{0xd6, 0x27, 0x28, 0xff}, // red
	{0x94, 0x67, 0xbd, 0xff}, // purple
	{0x8c, 0x56, 0x4b, 0xff}, // brown
	{0xe3, 0x77, 0xc2, 0xff}, // pink
	{0x17, 0xbe, 0xcf, 0xff}, // cyan
	{0xbc, 0xbd, 0x22, 0xff}, // olive
	{0x7f, 0x7f, 0x7f, 0xff}, // grey
}

// paletteSize is how many distinct colours seriesColor has.
const paletteSize = len(palette)

// dashes returns the i-th line dash pattern; solid first.
func dashes(i int) []vg.Length {
	switch i % 4 {
	case 1:
		return []vg.Length{vg.Points(5), vg.Points(2.5)}
	case 2:
		return []vg.Length{vg.Points(1.5), vg.Points(2)}
	case 3:
		return []vg.Length{vg.Points(6), vg.Points(2), vg.Points(1.5), vg.Points(2)}
	}
	return nil
}

// roles fixes one colour per network across every figure: control blue,
// CL orange, MSE green (the poster's three), other networks after them.
type roles struct {
	control, cl, mse string
}

// rank orders networks control, CL, MSE, then the rest.
func (r roles) rank(net string) int {
	switch {
	case net == r.control:
		return 0
	case net == r.cl:
		return 1
	case net == r.mse:
		return 2
	}
	base := strings.ToLower(net)
	switch {
	case strings.Contains(base, "control"):
		return 0
	case strings.Contains(base, "mse"):
		return 2
	case strings.Contains(base, "cl"):
		return 1
	}
	return 3
}

// sort orders nets by role, keeping the input order within a role.
func (r roles) sort(nets []string) []string {
	out := append([]string(nil), nets...)
	sort.SliceStable(out, func(i, j int) bool { return r.rank(out[i]) < r.rank(out[j]) })
	return out
}

// colors assigns each of the sorted nets its colour: the role's for the
// first network of each role, the remaining palette for the rest.
func (r roles) colors(nets []string) map[string]color.NRGBA {
	out := map[string]color.NRGBA{}
	used := map[int]bool{}
	next := 3
	for _, n := range nets {
		k := r.rank(n)
		if k < 3 && !used[k] {
			used[k] = true
			out[n] = seriesColor(k)
			continue
		}
		out[n] = seriesColor(next)
		next++
	}
	return out
}
