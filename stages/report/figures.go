package report

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"slices"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/voxflow/voxflow/numerics/npy"
	"github.com/voxflow/voxflow/stages"
	"github.com/voxflow/voxflow/stages/artifact"
)

// Figure sizes: 7 x 4.5 in, as a two-column paper figure at 1:1.
const (
	figW = 7 * vg.Inch
	figH = 4.5 * vg.Inch
)

func (s *study) titled(what string) string { return strings.TrimSpace(s.title + " " + what) }

// groupCI is a group's error bar for one network: the ridge metrics'
// bootstrap 95% CI over test images (averaged over ridge inputs, which is
// exact for one input and conservative for independent subjects). ok is
// false when some ridge input has no CI (ridge ran with bootstrap: 0).
func (s *study) groupCI(group, net string, mean float64) (lo, hi float64, ok bool) {
	var los, his []float64
	for _, m := range s.rms {
		sc := m.Group[group][net]
		if sc == nil {
			continue
		}
		if len(sc.CI95) != 2 {
			return 0, 0, false
		}
		los, his = append(los, sc.CI95[0]), append(his, sc.CI95[1])
	}
	if len(los) == 0 {
		return 0, 0, false
	}
	return math.Max(0, mean-meanOf(los)), math.Max(0, meanOf(his)-mean), true
}

// groupsFigure is the poster's bar chart: mean test r per ROI group for
// control, CL and MSE.
func (s *study) groupsFigure() (*figure, error) {
	groups := presentGroups(s.rms)
	if len(groups) == 0 || len(s.nets) == 0 {
		return nil, nil
	}
	p := newPlot()
	p.Y.Label.Text = "mean Pearson r (test images)"
	p.X.Label.Text = "ROI group"
	colors := s.roles.colors(s.nets)
	f := &figure{title: s.titled("mean test r per ROI group"), w: figW, h: figH, legend: newLegend()}
	withCI, withoutCI := 0, 0
	for i, n := range s.nets {
		b := &bars{width: barWidth(len(s.nets)), color: colors[n]}
		var xys plotter.XYs
		var errs plotter.YErrors
		for j, g := range groups {
			m, ok := groupStats(s.rms, g, n)
			x := float64(j) + slot(i, len(s.nets))
			b.xs = append(b.xs, x)
			if !ok {
				b.ys = append(b.ys, math.NaN())
				continue
			}
			b.ys = append(b.ys, m)
			if lo, hi, ok := s.groupCI(g, n, m); ok {
				xys = append(xys, plotter.XY{X: x, Y: m})
				errs = append(errs, struct{ Low, High float64 }{lo, hi})
				withCI++
			} else {
				withoutCI++
			}
		}
		p.Add(b)
		f.legend.Add(n, b)
		f.series = append(f.series, seriesMeta{Name: n, Color: hex(colors[n]), Marks: b.drawn()})
		if len(xys) > 0 {
			eb, err := plotter.NewYErrorBars(struct {
				plotter.XYs
				plotter.YErrors
			}{xys, errs})
			if err != nil {
				return nil, err
			}
			eb.LineStyle.Width = vg.Points(1)
			p.Add(eb)
		}
	}
	titles := make([]string, len(groups))
	for i, g := range groups {
		titles[i] = groupTitle(g)
	}
	p.NominalX(titles...)
	p.X.Min, p.X.Max = -0.5, float64(len(groups))-0.5
	p.Y.Min = math.Min(0, p.Y.Min)
	p.Y.Max *= 1.05
	f.panels = [][]*plot.Plot{{p}}
	f.caption = "Mean test Pearson r per ROI group (the mean over the group's ROIs of each ROI's mean over voxels), per network; " + groupMembers + ". "
	switch {
	case withoutCI == 0 && len(s.rms) == 1:
		f.caption += "Error bars: bootstrap 95% CI over test images, from the ridge metrics."
	case withoutCI == 0:
		f.caption += fmt.Sprintf("Error bars: bootstrap 95%% CIs over test images, averaged over the %d ridge inputs (conservative for independent subjects).", len(s.rms))
	case withCI == 0:
		// The hook: once ridge writes CIs (bootstrap > 0) the bars get
		// them through groupCI with no change here.
		f.caption += "No error bars: the ridge metrics carry no bootstrap CIs (ridge ran with bootstrap: 0)."
	default:
		f.caption += "Error bars: bootstrap 95% CIs over test images where the ridge metrics have them; bars without one come from ridge inputs run with bootstrap: 0."
	}
	f.caption += s.differenceCaption(groups)
	return f, nil
}

// differenceCaption states each CL comparison per group: the mean-r
// difference, its per-subject paired bootstrap CI and p over test images,
// and the test with subjects as the unit.
func (s *study) differenceCaption(groups []string) string {
	var parts []string
	for _, o := range []string{s.control, s.mse} {
		if s.cl == "" || o == "" || o == s.cl {
			continue
		}
		for _, g := range groups {
			if pg := comparePair(s.rms, s.cl, o, g); pg != nil {
				parts = append(parts, fmt.Sprintf("%s − %s, %s: %s", s.cl, o, groupTitle(g), pg.captionText()))
			}
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " " + strings.Join(parts, ". ") + ". CIs and p_boot: paired bootstrap of each subject's test images (voxels kept together); " +
		"tests over subjects: one-sample t-test and exact sign-flip p of the subjects' differences. " +
		"The per-voxel Wilcoxon p of the ridge metrics is descriptive only (voxels are not independent samples)."
}

// voxelPairs is every voxel's test r of two networks, keyed by ROI.
type voxelPairs struct {
	rois []string
	pts  map[string]plotter.XYs
}

// voxelR reads the per-voxel test r of network a and b for every subject
// and ROI both were scored on, keyed by ROI, in the ridge's ROI order. The
// scatter and rdiff figures share one read of the score files: the result
// is kept on s (callers must not modify it).
func (s *study) voxelR(a, b string) (rois []string, pts map[string]plotter.XYs, err error) {
	key := a + "\x00" + b
	if v, ok := s.voxels[key]; ok {
		return v.rois, v.pts, nil
	}
	rois, pts, err = readVoxelR(s.rms, a, b)
	if err != nil {
		return nil, nil, err
	}
	if s.voxels == nil {
		s.voxels = map[string]voxelPairs{}
	}
	s.voxels[key] = voxelPairs{rois, pts}
	return rois, pts, nil
}

func readVoxelR(rms []*ridgeMetrics, a, b string) (rois []string, pts map[string]plotter.XYs, err error) {
	pts = map[string]plotter.XYs{}
	for _, m := range rms {
		files, err := artifact.ListVoxelR(m.dir, a)
		if err != nil {
			return nil, nil, err
		}
		for _, f := range files {
			ra, err := npy.ReadFile[float32](f.Path)
			if err != nil {
				return nil, nil, err
			}
			rb, err := npy.ReadFile[float32](artifact.VoxelRPath(m.dir, b, f.Subject, f.ROI))
			if os.IsNotExist(err) {
				continue
			}
			if err != nil {
				return nil, nil, err
			}
			roi := f.ROI
			for i := range min(len(ra.Data), len(rb.Data)) {
				x, y := float64(ra.Data[i]), float64(rb.Data[i])
				if math.IsNaN(x) || math.IsNaN(y) {
					continue
				}
				pts[roi] = append(pts[roi], plotter.XY{X: x, Y: y})
			}
		}
	}
	seen := map[string]bool{}
	for _, m := range rms {
		for _, r := range m.ROIs {
			if len(pts[r]) > 0 && !seen[r] {
				seen[r] = true
				rois = append(rois, r)
			}
		}
	}
	var rest []string
	for r := range pts {
		if !seen[r] {
			rest = append(rest, r)
		}
	}
	sort.Strings(rest)
	return append(rois, rest...), pts, nil
}

// glyph is the i-th marker shape: circles for the first round of the
// palette, then squares and triangles, so 30 ROIs stay distinguishable.
func glyph(i int) draw.GlyphDrawer {
	switch (i / paletteSize) % 3 {
	case 1:
		return draw.SquareGlyph{}
	case 2:
		return draw.TriangleGlyph{}
	}
	return draw.CircleGlyph{}
}

// scatterFigure plots every voxel's test r, CL against control: small
// multiples, one panel per ROI in the ROI's colour, on shared axes with the
// diagonal, so that overlapping ROIs do not hide each other.
func (s *study) scatterFigure() (*figure, error) {
	if s.cl == "" || s.control == "" || s.cl == s.control {
		return nil, nil
	}
	rois, pts, err := s.voxelR(s.control, s.cl)
	if err != nil || len(rois) == 0 {
		return nil, err
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, r := range rois {
		for _, v := range pts[r] {
			lo, hi = math.Min(lo, math.Min(v.X, v.Y)), math.Max(hi, math.Max(v.X, v.Y))
		}
	}
	pad := 0.03*(hi-lo) + 1e-3
	lo, hi = lo-pad, hi+pad
	cols, rows := panelGrid(len(rois))
	f := &figure{title: s.titled(fmt.Sprintf("per-voxel test r: %s vs %s", s.cl, s.control)), w: 7.5 * vg.Inch, legend: newLegend()}
	f.h = max(5*vg.Inch, vg.Length(rows)*2.3*vg.Inch+0.5*vg.Inch)
	if rows == 1 && cols == 1 {
		f.w = figW
	}
	above, total := 0, 0
	var plots []*plot.Plot
	var diag *plotter.Line
	for i, r := range rois {
		p := newPlot()
		if i%cols == 0 {
			p.Y.Label.Text = s.cl + " r"
		}
		if i+cols >= len(rois) {
			p.X.Label.Text = s.control + " r"
		}
		diag, err = plotter.NewLine(plotter.XYs{{X: lo, Y: lo}, {X: hi, Y: hi}})
		if err != nil {
			return nil, err
		}
		diag.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		diag.Color = color.Gray{Y: 0x60}
		p.Add(diag)
		sc, err := plotter.NewScatter(pts[r])
		if err != nil {
			return nil, err
		}
		c := seriesColor(i)
		sc.GlyphStyle = draw.GlyphStyle{Color: c, Radius: vg.Points(1.6), Shape: glyph(i)}
		p.Add(sc)
		up := 0
		for _, v := range pts[r] {
			if v.Y > v.X {
				up++
			}
		}
		above += up
		total += len(pts[r])
		p.Title.Text = fmt.Sprintf("%s: %.0f%% of %d above", r, 100*float64(up)/float64(len(pts[r])), len(pts[r]))
		p.Title.TextStyle.Font.Size = vg.Points(10)
		p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = lo, hi, lo, hi
		plots = append(plots, p)
		f.legend.Add(r, sc)
		f.series = append(f.series, seriesMeta{Name: r, Color: hex(c), Marks: len(pts[r])})
	}
	f.legend.Add("y = x", diag)
	f.panels = gridOf(plots, cols)
	f.caption = fmt.Sprintf("Test Pearson r of every voxel (all subjects), %s (y) against %s (x), one panel and colour per ROI, shared axes. "+
		"%d of %d voxels (%.1f%%) lie above the diagonal, where %s predicts better.", s.cl, s.control, above, total, 100*float64(above)/float64(total), s.cl)
	return f, nil
}

// panelGrid chooses columns and rows for n small multiples.
func panelGrid(n int) (cols, rows int) {
	cols = n
	switch {
	case n == 4:
		cols = 2
	case n > 4 && n <= 9:
		cols = 3
	case n > 9:
		cols = 4
	}
	return cols, (n + cols - 1) / cols
}

// rdiffFigure is the histogram of per-voxel r differences, CL minus control.
func (s *study) rdiffFigure() (*figure, error) {
	if s.cl == "" || s.control == "" || s.cl == s.control {
		return nil, nil
	}
	rois, pts, err := s.voxelR(s.control, s.cl)
	if err != nil || len(rois) == 0 {
		return nil, err
	}
	var d plotter.Values
	better := 0
	for _, r := range rois {
		for _, v := range pts[r] {
			d = append(d, v.Y-v.X)
			if v.Y > v.X {
				better++
			}
		}
	}
	bins := min(40, max(10, int(math.Sqrt(float64(len(d))))))
	h, err := plotter.NewHist(d, bins)
	if err != nil {
		return nil, err
	}
	c := s.roles.colors(s.nets)[s.cl]
	h.FillColor = c
	h.LineStyle.Color = color.White
	h.LineStyle.Width = vg.Points(0.5)
	p := newPlot()
	p.X.Label.Text = fmt.Sprintf("r(%s) − r(%s) per voxel", s.cl, s.control)
	p.Y.Label.Text = "voxels"
	p.Add(h)
	_, _, _, ymax := h.DataRange()
	mean := meanOf(d)
	zero, err := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}, {X: 0, Y: ymax * 1.05}})
	if err != nil {
		return nil, err
	}
	zero.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	zero.Color = color.Black
	meanLine, err := plotter.NewLine(plotter.XYs{{X: mean, Y: 0}, {X: mean, Y: ymax * 1.05}})
	if err != nil {
		return nil, err
	}
	meanLine.Color = seriesColor(3)
	meanLine.Width = vg.Points(1.5)
	p.Add(zero, meanLine)
	p.Y.Max = ymax * 1.08
	// Keep 0 in view so that the side of the mass is obvious.
	p.X.Min, p.X.Max = math.Min(p.X.Min, -0.01), math.Max(p.X.Max, 0.01)
	f := &figure{title: s.titled(fmt.Sprintf("per-voxel r difference: %s − %s", s.cl, s.control)), w: figW, h: figH, legend: newLegend()}
	f.legend.Add(fmt.Sprintf("voxels (%d)", len(d)), h)
	f.legend.Add("no change", zero)
	f.legend.Add(fmt.Sprintf("mean %+.3f", mean), meanLine)
	f.series = []seriesMeta{{Name: "voxels", Color: hex(c), Marks: len(h.Bins)}, {Name: "mean", Color: hex(seriesColor(3)), Marks: 1}}
	f.panels = [][]*plot.Plot{{p}}
	f.caption = fmt.Sprintf("Histogram of r(%s) − r(%s) over the %d voxels of all subjects and ROIs; %.1f%% of voxels improve, mean difference %+.4f.",
		s.cl, s.control, len(d), 100*float64(better)/float64(len(d)), mean)
	return f, nil
}

// improvedFigure shows % of voxels whose r improves with CL, per ROI.
func (s *study) improvedFigure() (*figure, error) {
	var pairs []string
	for _, other := range []string{s.control, s.mse} {
		if s.cl != "" && other != "" && other != s.cl {
			pairs = append(pairs, s.cl+"_vs_"+other)
		}
	}
	rois := s.rms[0].ROIs
	if len(pairs) == 0 || len(rois) == 0 {
		return nil, nil
	}
	p := newPlot()
	p.Y.Label.Text = "% voxels improved"
	p.X.Label.Text = "ROI"
	f := &figure{title: s.titled("% voxels whose test r improves"), w: figW, h: figH, legend: newLegend()}
	drawn := false
	for i, pair := range pairs {
		b := &bars{width: barWidth(len(pairs)), color: seriesColor(4 + i)}
		for j, r := range rois {
			var v []float64
			for _, m := range s.rms {
				if d := m.Compare[pair].ROIDelta(r); d != nil {
					v = append(v, d.PctImproved)
				}
			}
			b.xs = append(b.xs, float64(j)+slot(i, len(pairs)))
			if len(v) == 0 {
				b.ys = append(b.ys, math.NaN())
				continue
			}
			b.ys = append(b.ys, meanOf(v))
			drawn = true
		}
		p.Add(b)
		name := strings.ReplaceAll(pair, "_vs_", " > ")
		f.legend.Add(name, b)
		f.series = append(f.series, seriesMeta{Name: name, Color: hex(b.color), Marks: b.drawn()})
	}
	if !drawn {
		return nil, nil
	}
	fifty, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: 50}, {X: float64(len(rois)) - 0.5, Y: 50}})
	if err != nil {
		return nil, err
	}
	fifty.Dashes = []vg.Length{vg.Points(3), vg.Points(3)}
	p.Add(fifty)
	f.legend.Add("50% (chance)", fifty)
	p.NominalX(rois...)
	p.X.Min, p.X.Max = -0.5, float64(len(rois))-0.5
	p.Y.Min, p.Y.Max = 0, 100
	f.panels = [][]*plot.Plot{{p}}
	f.caption = "Percentage of each ROI's voxels (all subjects pooled) whose test r is higher with " + s.cl + " than with the other network; 50% is no net effect."
	return f, nil
}

// curvesFigure draws the validation loss per epoch of one training stage:
// small multiples, one panel per ROI, one colour (and, past the palette, a
// dash pattern) per subject, so 8 to 48 curves stay readable.
func (s *study) curvesFigure(stage string, arts []stages.Artifact) (*figure, error) {
	type curve struct {
		panel, series string
		xy            plotter.XYs
	}
	var curves []curve
	for _, a := range arts {
		c, err := artifact.ReadCurve(a.Path)
		if err != nil {
			return nil, fmt.Errorf("curves input %s: %w", a.Stage, err)
		}
		var xy plotter.XYs
		for _, e := range c.Epochs {
			if !math.IsNaN(e.ValLoss) && !math.IsInf(e.ValLoss, 0) {
				xy = append(xy, plotter.XY{X: float64(e.Epoch), Y: e.ValLoss})
			}
		}
		if len(xy) == 0 {
			continue
		}
		panel, series := splitLabels(a)
		curves = append(curves, curve{panel, series, xy})
	}
	if len(curves) == 0 {
		return nil, nil
	}
	// Panels in the ridge's ROI order, then any others sorted; series sorted.
	panelSet, seriesSet := map[string]bool{}, map[string]bool{}
	for _, c := range curves {
		panelSet[c.panel], seriesSet[c.series] = true, true
	}
	var panels []string
	for _, m := range s.rms {
		for _, r := range m.ROIs {
			if panelSet[r] && !slices.Contains(panels, r) {
				panels = append(panels, r)
			}
		}
	}
	var rest []string
	for p := range panelSet {
		if !slices.Contains(panels, p) {
			rest = append(rest, p)
		}
	}
	sort.Strings(rest)
	panels = append(panels, rest...)
	var series []string
	for k := range seriesSet {
		series = append(series, k)
	}
	sort.Strings(series)
	idx := map[string]int{}
	for i, k := range series {
		idx[k] = i
	}
	cols, rows := panelGrid(len(panels))
	f := &figure{title: s.titled(stage + ": validation loss per epoch"), w: 7.5 * vg.Inch, legend: newLegend()}
	f.h = max(figH, vg.Length(rows)*2.1*vg.Inch+0.5*vg.Inch)
	thumbs := make([]*plotter.Line, len(series))
	marks := make([]int, len(series))
	var plots []*plot.Plot
	for pi, name := range panels {
		p := newPlot()
		p.X.Tick.Marker = epochTicks{}
		if len(panels) > 1 {
			p.Title.Text = name
			p.Title.TextStyle.Font.Size = vg.Points(10)
		}
		if pi%cols == 0 {
			p.Y.Label.Text = "validation loss"
		}
		if pi/cols == rows-1 || pi+cols >= len(panels) {
			p.X.Label.Text = "epoch"
		}
		for _, c := range curves {
			if c.panel != name {
				continue
			}
			l, err := plotter.NewLine(c.xy)
			if err != nil {
				return nil, err
			}
			i := idx[c.series]
			l.Color = seriesColor(i)
			l.Width = vg.Points(1.5)
			l.Dashes = dashes(i / paletteSize)
			p.Add(l)
			if len(c.xy) == 1 {
				// A single epoch draws no line: mark the point.
				pt, err := plotter.NewScatter(c.xy)
				if err != nil {
					return nil, err
				}
				pt.GlyphStyle = draw.GlyphStyle{Color: l.Color, Radius: vg.Points(2.5), Shape: draw.CircleGlyph{}}
				p.Add(pt)
			}
			thumbs[i] = l
			marks[i]++
		}
		plots = append(plots, p)
	}
	for i, k := range series {
		f.legend.Add(k, thumbs[i])
		f.series = append(f.series, seriesMeta{Name: k, Color: hex(seriesColor(i)), Marks: marks[i]})
	}
	f.panels = gridOf(plots, cols)
	f.caption = fmt.Sprintf("Validation loss per epoch of the %d networks of stage %s", len(curves), stage)
	if len(panels) > 1 {
		f.caption += ", one panel per ROI (own y scale), one colour per subject."
	} else {
		f.caption += "."
	}
	return f, nil
}

// splitLabels names a training artifact's panel (its ROI) and series
// (its other foreach labels, e.g. the subject).
func splitLabels(a stages.Artifact) (panel, series string) {
	keys := make([]string, 0, len(a.Labels))
	for k := range a.Labels {
		if k != "roi" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	vals := make([]string, len(keys))
	for i, k := range keys {
		vals[i] = a.Labels[k]
	}
	series = strings.Join(vals, ",")
	if series == "" {
		series = a.Stage
	}
	return a.Labels["roi"], series
}

// probeFigure shows probe top-1 accuracy grouped by dataset: one bar per
// network stage (the mean over its instances, e.g. every tuned network of
// tune_cl) and a dot per instance, so the spread over tuned networks shows.
func (s *study) probeFigure() (*figure, error) {
	var datasets []string
	acc := map[string]map[string][]float64{} // dataset -> network stage -> top1 per instance
	for _, a := range s.probe {
		m, err := artifact.ReadProbeScores(a.Path)
		if err != nil {
			return nil, fmt.Errorf("probe input %s: %w", a.Stage, err)
		}
		ds := s.datasets[a.Stage]
		if ds == "" {
			ds = a.Labels["dataset"]
		}
		if ds == "" {
			ds = a.Stage
		}
		if acc[ds] == nil {
			acc[ds] = map[string][]float64{}
			datasets = append(datasets, ds)
		}
		names := make([]string, 0, len(m))
		for n := range m {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			base, _, _ := strings.Cut(n, "[")
			acc[ds][base] = append(acc[ds][base], m[n]["top1"])
		}
	}
	if len(datasets) == 0 {
		return nil, nil
	}
	netSet := map[string]bool{}
	for _, byNet := range acc {
		for n := range byNet {
			netSet[n] = true
		}
	}
	var nets []string
	for n := range netSet {
		nets = append(nets, n)
	}
	sort.Strings(nets)
	nets = roles{}.sort(nets)
	colors := roles{}.colors(nets)
	p := newPlot()
	p.Y.Label.Text = "top-1 accuracy (test split)"
	p.X.Label.Text = "dataset"
	f := &figure{title: s.titled("linear probe accuracy per dataset"), w: figW, h: figH, legend: newLegend()}
	var dots plotter.XYs
	var valueLabels plotter.XYLabels
	for i, n := range nets {
		b := &bars{width: barWidth(len(nets)), color: colors[n]}
		count := 0
		for j, ds := range datasets {
			x := float64(j) + slot(i, len(nets))
			b.xs = append(b.xs, x)
			v := acc[ds][n]
			if len(v) == 0 {
				b.ys = append(b.ys, math.NaN())
				continue
			}
			m := meanOf(v)
			b.ys = append(b.ys, m)
			count = max(count, len(v))
			top := m
			if len(v) > 1 {
				// Spread the instances' dots across the bar so that 48
				// tuned networks do not print as one blot.
				for k, y := range v {
					dx := (float64(k)/float64(len(v)-1) - 0.5) * 0.7 * b.width
					dots = append(dots, plotter.XY{X: x + dx, Y: y})
					top = math.Max(top, y)
				}
			}
			valueLabels.XYs = append(valueLabels.XYs, plotter.XY{X: x, Y: top})
			valueLabels.Labels = append(valueLabels.Labels, fmt.Sprintf("%.3f", m))
		}
		p.Add(b)
		name := n
		if count > 1 {
			name = fmt.Sprintf("%s (mean of %d)", n, count)
		}
		f.legend.Add(name, b)
		f.series = append(f.series, seriesMeta{Name: n, Color: hex(colors[n]), Marks: b.drawn()})
	}
	if len(dots) > 0 {
		sc, err := plotter.NewScatter(dots)
		if err != nil {
			return nil, err
		}
		sc.GlyphStyle = draw.GlyphStyle{Color: color.Black, Radius: vg.Points(1.8), Shape: draw.RingGlyph{}}
		p.Add(sc)
		f.legend.Add("one network", sc)
	}
	lab, err := plotter.NewLabels(valueLabels)
	if err != nil {
		return nil, err
	}
	for i := range lab.TextStyle {
		lab.TextStyle[i].Font.Size = vg.Points(8)
		lab.TextStyle[i].XAlign = draw.XCenter
	}
	lab.Offset = vg.Point{Y: vg.Points(3)}
	p.Add(lab)
	p.NominalX(datasets...)
	p.X.Min, p.X.Max = -0.5, float64(len(datasets))-0.5
	if len(datasets) == 1 {
		// One dataset: keep its bars bar-shaped rather than page-wide.
		p.X.Min, p.X.Max = -0.9, 0.9
	}
	p.Y.Min = 0
	p.Y.Max = math.Min(1, p.Y.Max*1.12)
	f.panels = [][]*plot.Plot{{p}}
	f.caption = "Top-1 test accuracy of a logistic-regression probe on each network's outputs, grouped by dataset (x axis). " +
		"Bars: mean over a stage's networks (value above the bar); rings: each tuned network."
	return f, nil
}
