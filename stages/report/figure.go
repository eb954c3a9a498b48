package report

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/voxflow/voxflow/internal/jsonfile"
)

// figure is one saved figure: a grid of panels (one plot each, or small
// multiples) with a title above and a legend in its own column to the
// right, so that no legend ever covers data.
type figure struct {
	name    string
	order   int
	title   string
	caption string
	// panels is row-major; nil cells are left empty.
	panels [][]*plot.Plot
	// legend is drawn right of the panels; nil draws none.
	legend *plot.Legend
	// series are the colours of the data marks, in legend order: the
	// metadata a reader (or a test looking at the rendered pixels) checks
	// the plotted areas against.
	series []seriesMeta
	w, h   vg.Length
}

// seriesMeta describes one colour of data marks in a figure.
type seriesMeta struct {
	Name  string `json:"name"`
	Color string `json:"color"` // opaque #rrggbb
	Marks int    `json:"marks"` // bars, points, lines or bins drawn in it
}

// panelMeta is a panel's data area, as fractions of the figure's width
// and height measured from its top-left corner (as a browser lays it out).
type panelMeta struct {
	Title string  `json:"title,omitempty"`
	X0    float64 `json:"x0"`
	Y0    float64 `json:"y0"`
	X1    float64 `json:"x1"`
	Y1    float64 `json:"y1"`
}

// figureMeta is written beside each figure as <name>.json; the HTML report
// shows Caption under the figure.
type figureMeta struct {
	Caption string `json:"caption"`
	// Order is the figure's place in the report (the HTML page sorts by it).
	Order    int          `json:"order"`
	WidthPt  float64      `json:"width_pt"`
	HeightPt float64      `json:"height_pt"`
	Panels   []panelMeta  `json:"panels"`
	Series   []seriesMeta `json:"series"`
}

// newLegend is the legend look shared by every figure: drawn by
// figure.draw in its own column, never over data.
func newLegend() *plot.Legend {
	l := plot.NewLegend()
	l.TextStyle.Font.Size = vg.Points(10)
	l.Top, l.Left = true, true
	l.ThumbnailWidth = vg.Points(18)
	l.Padding = vg.Points(4)
	return &l
}

// hex writes an opaque colour as #rrggbb, the one form every SVG reader
// accepts (gonum writes colours with alpha, or invalid premultiplied ones,
// as #RRGGBBA-like strings that browsers drop).
func hex(c color.Color) string {
	n := color.NRGBAModel.Convert(c).(color.NRGBA)
	return fmt.Sprintf("#%02x%02x%02x", n.R, n.G, n.B)
}

// save writes the figure as PNG and SVG plus its metadata under dir.
func (f *figure) save(dir string) error {
	var meta *figureMeta
	for _, ext := range []string{"png", "svg"} {
		path := filepath.Join(dir, f.name+"."+ext)
		var c interface {
			vg.CanvasSizer
			io.WriterTo
		}
		switch ext {
		case "png":
			c = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(f.w, f.h), vgimg.UseDPI(96))}
		default:
			c = vgsvg.New(f.w, f.h)
		}
		meta = f.draw(draw.New(c))
		if err := writeTo(path, c); err != nil {
			return err
		}
	}
	return jsonfile.Write(filepath.Join(dir, f.name+".json"), meta)
}

func writeTo(path string, w io.WriterTo) error {
	fh, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := w.WriteTo(fh); err != nil {
		fh.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return fh.Close()
}

// draw lays the figure out on c and returns where its panels landed.
func (f *figure) draw(c draw.Canvas) *figureMeta {
	c.SetColor(color.White)
	c.Fill(c.Rectangle.Path())
	pad := vg.Points(6)
	area := draw.Crop(c, pad, -pad, pad, -pad)
	if f.title != "" {
		sty := text.Style{Color: color.Black, Font: font.From(plot.DefaultFont, 13), XAlign: draw.XCenter, YAlign: draw.YTop, Handler: plot.DefaultTextHandler}
		area.FillText(sty, vg.Point{X: (area.Min.X + area.Max.X) / 2, Y: area.Max.Y}, f.title)
		area.Max.Y -= sty.Height(f.title) + pad
	}
	if f.legend != nil {
		lw := legendWidth(f.legend)
		col := area
		col.Min.X = area.Max.X - lw
		f.legend.Draw(col)
		area.Max.X = col.Min.X - 2*pad
	}
	rows := len(f.panels)
	cols := 0
	for _, r := range f.panels {
		cols = max(cols, len(r))
	}
	grid := make([][]*plot.Plot, rows)
	for i := range grid {
		grid[i] = make([]*plot.Plot, cols)
		copy(grid[i], f.panels[i])
	}
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Points(14), PadY: vg.Points(8)}
	canvases := plot.Align(grid, tiles, area)
	meta := &figureMeta{Caption: f.caption, Order: f.order, WidthPt: c.Max.X.Points() - c.Min.X.Points(), HeightPt: c.Max.Y.Points() - c.Min.Y.Points(), Series: f.series}
	W, H := meta.WidthPt, meta.HeightPt
	for i, r := range grid {
		for j, p := range r {
			if p == nil {
				continue
			}
			p.Draw(canvases[i][j])
			d := p.DataCanvas(canvases[i][j])
			meta.Panels = append(meta.Panels, panelMeta{Title: p.Title.Text,
				X0: round4(d.Min.X.Points() / W), X1: round4(d.Max.X.Points() / W),
				Y0: round4(1 - d.Max.Y.Points()/H), Y1: round4(1 - d.Min.Y.Points()/H)})
		}
	}
	return meta
}

func round4(v float64) float64 { return math.Round(v*1e4) / 1e4 }

// legendWidth is the width the legend's longest entry needs.
func legendWidth(l *plot.Legend) vg.Length {
	// Rectangle needs a canvas only for its corner; a tiny one will do.
	c := draw.New(vgimg.New(vg.Points(10), vg.Points(10)))
	r := l.Rectangle(c)
	// gonum measures with Liberation fonts, which browsers may lack: the
	// fallback font is up to ~25% wider, so leave room for it.
	return (r.Max.X-r.Min.X)*1.3 + vg.Points(6)
}

// gridOf arranges panels in rows of at most cols.
func gridOf(ps []*plot.Plot, cols int) [][]*plot.Plot {
	var out [][]*plot.Plot
	for i := 0; i < len(ps); i += cols {
		out = append(out, ps[i:min(i+cols, len(ps))])
	}
	return out
}
