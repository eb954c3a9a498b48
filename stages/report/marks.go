package report

import (
	"image/color"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// bars is a bar series placed in data units: bar i spans xs[i] ± width/2
// from 0 to ys[i]. gonum's BarChart takes its width in points, which makes
// grouped bars and their error bars drift apart as a figure's size
// changes; data units keep them aligned at any size.
type bars struct {
	xs, ys []float64
	width  float64
	color  color.Color
}

// Plot implements plot.Plotter.
func (b *bars) Plot(c draw.Canvas, plt *plot.Plot) {
	trX, trY := plt.Transforms(&c)
	for i, x := range b.xs {
		if math.IsNaN(b.ys[i]) {
			continue
		}
		x0, x1 := trX(x-b.width/2), trX(x+b.width/2)
		y0, y1 := trY(0), trY(b.ys[i])
		pts := []vg.Point{{X: x0, Y: y0}, {X: x1, Y: y0}, {X: x1, Y: y1}, {X: x0, Y: y1}}
		c.FillPolygon(b.color, c.ClipPolygonXY(pts))
	}
}

// DataRange implements plot.DataRanger: the bars and the zero line.
func (b *bars) DataRange() (xmin, xmax, ymin, ymax float64) {
	xmin, xmax = math.Inf(1), math.Inf(-1)
	ymin, ymax = 0, 0
	for i, x := range b.xs {
		xmin, xmax = math.Min(xmin, x-b.width/2), math.Max(xmax, x+b.width/2)
		if !math.IsNaN(b.ys[i]) {
			ymin, ymax = math.Min(ymin, b.ys[i]), math.Max(ymax, b.ys[i])
		}
	}
	return xmin, xmax, ymin, ymax
}

// Thumbnail implements plot.Thumbnailer for the legend.
func (b *bars) Thumbnail(c *draw.Canvas) {
	r := c.Rectangle
	c.FillPolygon(b.color, []vg.Point{r.Min, {X: r.Max.X, Y: r.Min.Y}, r.Max, {X: r.Min.X, Y: r.Max.Y}})
}

// drawn counts the bars that have a value.
func (b *bars) drawn() int {
	n := 0
	for _, y := range b.ys {
		if !math.IsNaN(y) {
			n++
		}
	}
	return n
}

// slot is the x offset, in data units, of series i of n in a grouped bar
// chart whose groups sit at 0, 1, 2, ...; the n bars of a group fill 80%
// of its unit.
func slot(i, n int) float64 {
	return (float64(i) - float64(n-1)/2) * 0.8 / float64(n)
}

// barWidth is the width in data units of one of n bars in a group.
func barWidth(n int) float64 { return 0.8 / float64(n) * 0.92 }

// preciseTicks is gonum's default ticker with labels printed to as many
// significant digits as it takes to tell them apart: on a narrow range
// (validation losses 3.2575 to 3.2583) the default prints "3.258" three
// times, and on counts it prints "25.00".
type preciseTicks struct{}

// Ticks implements plot.Ticker: the fewest decimals that print every
// labelled tick exactly (to 1e-6 of the range) and tell them apart.
func (preciseTicks) Ticks(lo, hi float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(lo, hi)
	tol := 1e-6 * math.Max(hi-lo, math.SmallestNonzeroFloat64)
	for dec := 0; dec <= 8; dec++ {
		seen := map[string]bool{}
		ok := true
		for _, t := range ticks {
			if t.Label == "" {
				continue
			}
			l := strconv.FormatFloat(t.Value, 'f', dec, 64)
			v, _ := strconv.ParseFloat(l, 64)
			if seen[l] || math.Abs(v-t.Value) > tol {
				ok = false
				break
			}
			seen[l] = true
		}
		if !ok {
			continue
		}
		for i, t := range ticks {
			if t.Label != "" {
				ticks[i].Label = strconv.FormatFloat(t.Value, 'f', dec, 64)
			}
		}
		break
	}
	return ticks
}

// newPlot is plot.New with the report's tick labels on both axes.
func newPlot() *plot.Plot {
	p := plot.New()
	p.X.Tick.Marker = preciseTicks{}
	p.Y.Tick.Marker = preciseTicks{}
	return p
}

// epochTicks labels only whole epochs: "1.5" is not an epoch.
type epochTicks struct{}

// Ticks implements plot.Ticker.
func (epochTicks) Ticks(lo, hi float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(lo, hi)
	for i, t := range ticks {
		ticks[i].Label = ""
		if t.Value == math.Trunc(t.Value) {
			ticks[i].Label = strconv.FormatFloat(t.Value, 'f', 0, 64)
		}
	}
	return ticks
}
