// Package report is the `report` stage kind: the study's figures (PNG and
// SVG, through gonum.org/v1/plot) and its headline table, as cached
// artifacts built from ridge, probe and training-curve outputs.
//
// Figures (under OutDir/figures/):
//
//	groups.{png,svg}      the poster's figure: mean test r per ROI group for
//	                      each network, error bars = bootstrap 95% CI
//	                      (one ridge input) or ±1 s.e. over ridge inputs
//	                      (several subjects)
//	scatter.{png,svg}     per-voxel test r, CL network against control, with
//	                      the diagonal
//	improved.{png,svg}    % of voxels whose r improves, CL vs control and CL
//	                      vs MSE, per ROI
//	curves-<stage>.{png,svg}  validation loss per epoch of each tuned network
//	                      of one training stage
//	probe.{png,svg}       probe top-1 accuracy per dataset and network
//
// OutDir/headline.md and headline.json hold the headline table (mean r per
// ROI group and network); metrics.json repeats it as metrics.
package report

import (
	"context"
	"encoding/json"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/voxflow/voxflow/stages"
	"github.com/voxflow/voxflow/stages/npy"
)

// Stage is the report stage kind.
type Stage struct{}

// New returns the report stage kind.
func New() stages.Stage { return Stage{} }

// Describe declares the kind.
func (Stage) Describe() stages.Description {
	return stages.Description{
		Kind:    "report",
		Version: "2",
		Doc:     "figures (PNG+SVG) and the headline table from ridge, probe and training outputs",
		Isolate: "inline",
		Params: []stages.ParamSpec{
			{Name: "control", Type: stages.TypeString, Default: "", Doc: "network (features stage name) used as control; default the ridge baseline"},
			{Name: "cl", Type: stages.TypeString, Default: "", Doc: "the CL-tuned network; default the network whose name contains \"cl\""},
			{Name: "mse", Type: stages.TypeString, Default: "", Doc: "the MSE-tuned network; default the network whose name contains \"mse\""},
			{Name: "title", Type: stages.TypeString, Default: "", Doc: "title prefix for the figures"},
		},
		Inputs: []stages.PortSpec{
			{Name: "ridge", Many: true, Doc: "ridge outputs (metrics.json, scores/)"},
			{Name: "probe", Many: true, Optional: true, Doc: "probe outputs (metrics.json); dataset = the instance's `dataset` label, else its stage name"},
			{Name: "curves", Many: true, Optional: true, Doc: "training outputs with curve.json (tune-cl, tune-mse, pretrain)"},
		},
		Outputs: []stages.PortSpec{
			{Name: "figures", Doc: "groups, scatter, improved, curves, probe as .png and .svg"},
			{Name: "headline.md", Doc: "mean test r per ROI group and network (markdown)"},
			{Name: "headline.json", Doc: "the same as JSON"},
		},
	}
}

// ridgeMetrics is the part of a ridge metrics.json the report reads.
type ridgeMetrics struct {
	Networks []string                     `json:"networks"`
	Baseline string                       `json:"baseline"`
	Subjects []string                     `json:"subjects"`
	ROIs     []string                     `json:"rois"`
	ROI      map[string]map[string]*score `json:"roi"`
	Group    map[string]map[string]*score `json:"group"`
	Compare  map[string]struct {
		ROI   map[string]*delta `json:"roi"`
		Group map[string]*delta `json:"group"`
	} `json:"compare"`
	Subject map[string]struct{ Group map[string]map[string]*score } `json:"subject"`
	dir     string
}

type score struct {
	MeanR   float64   `json:"mean_r"`
	CI95    []float64 `json:"ci95"`
	NVoxels int       `json:"n_voxels"`
}

type delta struct {
	PctImproved float64 `json:"pct_improved"`
	WilcoxonP   float64 `json:"wilcoxon_p"`
}

// groupOrder is the poster's order of ROI groups.
var groupOrder = []string{"early", "higher", "streams"}

// Run draws the figures.
func (Stage) Run(ctx context.Context, req *stages.Request) error {
	var rms []*ridgeMetrics
	for _, a := range req.Inputs["ridge"] {
		m := &ridgeMetrics{dir: a.Path}
		if err := readJSON(filepath.Join(a.Path, "metrics.json"), m); err != nil {
			return fmt.Errorf("ridge input %s: %w", a.Stage, err)
		}
		rms = append(rms, m)
	}
	if len(rms) == 0 {
		return fmt.Errorf("input ridge: no artifacts; want at least one ridge output")
	}
	nets := rms[0].Networks
	control := pick(req.Params.String("control"), rms[0].Baseline, nets, "")
	cl := pick(req.Params.String("cl"), "", nets, "cl")
	mse := pick(req.Params.String("mse"), "", nets, "mse")
	title := req.Params.String("title")
	figDir := filepath.Join(req.OutDir, "figures")
	if err := os.MkdirAll(figDir, 0o755); err != nil {
		return err
	}
	steps := []struct {
		name string
		fn   func() (*plot.Plot, error)
	}{
		{"groups", func() (*plot.Plot, error) { return groupsPlot(rms, nets, title) }},
		{"scatter", func() (*plot.Plot, error) { return scatterPlot(rms, cl, control, title) }},
		{"improved", func() (*plot.Plot, error) { return improvedPlot(rms, cl, control, mse, title) }},

		{"probe", func() (*plot.Plot, error) { return probePlot(req.Inputs["probe"], title) }},
	}
	// One curves figure per training stage: CL and MSE losses live on
	// different scales.
	byStage := map[string][]stages.Artifact{}
	var stageOrder []string
	for _, a := range req.Inputs["curves"] {
		if _, ok := byStage[a.Stage]; !ok {
			stageOrder = append(stageOrder, a.Stage)
		}
		byStage[a.Stage] = append(byStage[a.Stage], a)
	}
	for _, st := range stageOrder {
		arts := byStage[st]
		steps = append(steps, struct {
			name string
			fn   func() (*plot.Plot, error)
		}{"curves-" + st, func() (*plot.Plot, error) { return curvesPlot(arts, strings.TrimSpace(title+" "+st)) }})
	}
	for i, s := range steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		req.Progress.Update(stages.Update{Phase: "plot " + s.name, Done: float64(i), Total: float64(len(steps)), Unit: "figure"})
		p, err := s.fn()
		if err != nil {
			return fmt.Errorf("figure %s: %w", s.name, err)
		}
		if p == nil {
			fmt.Fprintf(req.Log, "report: no data for figure %s; skipped\n", s.name)
			continue
		}
		for _, ext := range []string{"png", "svg"} {
			if err := p.Save(7*vg.Inch, 4.5*vg.Inch, filepath.Join(figDir, s.name+"."+ext)); err != nil {
				return fmt.Errorf("save %s.%s: %w", s.name, ext, err)
			}
		}
	}
	return writeHeadline(req, rms, nets, control, cl, mse)
}

// pick returns the explicit choice, else the fallback, else the first
// network whose name contains hint.
func pick(explicit, fallback string, nets []string, hint string) string {
	if explicit != "" {
		return explicit
	}
	if fallback != "" {
		return fallback
	}
	if hint == "" {
		return ""
	}
	for _, n := range nets {
		if strings.Contains(strings.ToLower(n), hint) {
			return n
		}
	}
	return ""
}

// groupStats returns, for a group and network, the mean r over ridge
// inputs and its error bar.
func groupStats(rms []*ridgeMetrics, group, net string) (mean, lo, hi float64, ok bool) {
	var vals []float64
	var ci []float64
	for _, m := range rms {
		subjects := m.Subject
		if len(subjects) > 1 {
			for _, s := range m.Subjects {
				if sc := subjects[s].Group[group][net]; sc != nil {
					vals = append(vals, sc.MeanR)
				}
			}
			continue
		}
		if sc := m.Group[group][net]; sc != nil {
			vals = append(vals, sc.MeanR)
			ci = sc.CI95
		}
	}
	if len(vals) == 0 {
		return 0, 0, 0, false
	}
	mean = meanOf(vals)
	if len(vals) == 1 && len(ci) == 2 {
		return mean, mean - ci[0], ci[1] - mean, true
	}
	se := 0.0
	if len(vals) > 1 {
		for _, v := range vals {
			se += (v - mean) * (v - mean)
		}
		se = math.Sqrt(se/float64(len(vals)-1)) / math.Sqrt(float64(len(vals)))
	}
	return mean, se, se, true
}

func meanOf(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// presentGroups lists the groups with data, in the poster's order.
func presentGroups(rms []*ridgeMetrics) []string {
	var out []string
	for _, g := range groupOrder {
		for _, m := range rms {
			if len(m.Group[g]) > 0 {
				out = append(out, g)
				break
			}
		}
	}
	return out
}

func groupsPlot(rms []*ridgeMetrics, nets []string, title string) (*plot.Plot, error) {
	groups := presentGroups(rms)
	if len(groups) == 0 {
		return nil, nil
	}
	p := plot.New()
	p.Title.Text = strings.TrimSpace(title + " mean test r per ROI group")
	p.Y.Label.Text = "mean Pearson r (test images)"
	p.Legend.Top = true
	w := vg.Points(240 / float64(max(1, len(nets)*len(groups))))
	for i, n := range nets {
		vals := make(plotter.Values, len(groups))
		errs := make(plotter.YErrors, len(groups))
		for j, g := range groups {
			m, lo, hi, _ := groupStats(rms, g, n)
			vals[j] = m
			errs[j] = struct{ Low, High float64 }{lo, hi}
		}
		bars, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return nil, err
		}
		bars.Color = plotutil.Color(i)
		bars.LineStyle.Width = 0
		// Bars are placed in data units (XMin) rather than by a point
		// offset, so that the error bars can sit exactly on them.
		bars.XMin = slot(i, len(nets))
		p.Add(bars)
		p.Legend.Add(n, bars)
		xys := make(plotter.XYs, len(groups))
		for j := range groups {
			xys[j].X = bars.XMin + float64(j)
			xys[j].Y = vals[j]
		}
		eb, err := plotter.NewYErrorBars(struct {
			plotter.XYs
			plotter.YErrors
		}{xys, errs})
		if err != nil {
			return nil, err
		}
		p.Add(eb)
	}
	p.NominalX(groups...)
	p.X.Min, p.X.Max = -0.6, float64(len(groups))-0.4
	return p, nil
}

// slot is the x offset, in data units, of series i of n in a grouped bar
// chart whose groups sit at 0, 1, 2, ...
func slot(i, n int) float64 {
	return (float64(i) - float64(n-1)/2) * 0.8 / float64(n)
}

func scatterPlot(rms []*ridgeMetrics, cl, control, title string) (*plot.Plot, error) {
	if cl == "" || control == "" {
		return nil, nil
	}
	var xy plotter.XYs
	for _, m := range rms {
		files, _ := filepath.Glob(filepath.Join(m.dir, "scores", control, "*", "*_r.npy"))
		for _, f := range files {
			rel, _ := filepath.Rel(filepath.Join(m.dir, "scores", control), f)
			other := filepath.Join(m.dir, "scores", cl, rel)
			a, err := npy.ReadFile[float32](f)
			if err != nil {
				return nil, err
			}
			b, err := npy.ReadFile[float32](other)
			if os.IsNotExist(err) {
				continue
			}
			if err != nil {
				return nil, err
			}
			for i := range min(len(a.Data), len(b.Data)) {
				xy = append(xy, plotter.XY{X: float64(a.Data[i]), Y: float64(b.Data[i])})
			}
		}
	}
	if len(xy) == 0 {
		return nil, nil
	}
	p := plot.New()
	p.Title.Text = strings.TrimSpace(fmt.Sprintf("%s per-voxel test r: %s vs %s", title, cl, control))
	p.X.Label.Text = control + " r"
	p.Y.Label.Text = cl + " r"
	sc, err := plotter.NewScatter(xy)
	if err != nil {
		return nil, err
	}
	sc.GlyphStyle.Radius = vg.Points(1.5)
	sc.GlyphStyle.Color = color.RGBA{R: 31, G: 119, B: 180, A: 160}
	p.Add(sc)
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range xy {
		lo, hi = math.Min(lo, math.Min(v.X, v.Y)), math.Max(hi, math.Max(v.X, v.Y))
	}
	diag, err := plotter.NewLine(plotter.XYs{{X: lo, Y: lo}, {X: hi, Y: hi}})
	if err != nil {
		return nil, err
	}
	diag.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(diag)
	return p, nil
}

func improvedPlot(rms []*ridgeMetrics, cl, control, mse, title string) (*plot.Plot, error) {
	var pairs []string
	for _, other := range []string{control, mse} {
		if cl != "" && other != "" && other != cl {
			pairs = append(pairs, cl+"_vs_"+other)
		}
	}
	rois := rms[0].ROIs
	if len(pairs) == 0 || len(rois) == 0 {
		return nil, nil
	}
	p := plot.New()
	p.Title.Text = strings.TrimSpace(title + " % voxels whose test r improves")
	p.Y.Label.Text = "% voxels improved"
	p.Legend.Top = true
	w := vg.Points(280 / float64(len(pairs)*len(rois)))
	drawn := false
	for i, pair := range pairs {
		vals := make(plotter.Values, len(rois))
		for j, r := range rois {
			var v []float64
			for _, m := range rms {
				if d := m.Compare[pair].ROI[r]; d != nil {
					v = append(v, d.PctImproved)
				}
			}
			if len(v) > 0 {
				vals[j] = meanOf(v)
				drawn = true
			}
		}
		bars, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return nil, err
		}
		bars.Color = plotutil.Color(i + 2)
		bars.LineStyle.Width = 0
		bars.XMin = slot(i, len(pairs))
		p.Add(bars)
		p.Legend.Add(strings.ReplaceAll(pair, "_vs_", " vs "), bars)
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
	p.NominalX(rois...)
	p.X.Min, p.X.Max = -0.6, float64(len(rois))-0.4
	p.Y.Min, p.Y.Max = 0, 100
	return p, nil
}

func curvesPlot(arts []stages.Artifact, title string) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = strings.TrimSpace(title + " validation loss per epoch")
	p.X.Label.Text = "epoch"
	p.Y.Label.Text = "validation loss"
	p.Legend.Top = true
	n := 0
	for _, a := range arts {
		var c struct {
			Epochs []struct {
				Epoch   int     `json:"epoch"`
				ValLoss float64 `json:"val_loss"`
			} `json:"epochs"`
		}
		if err := readJSON(filepath.Join(a.Path, "curve.json"), &c); err != nil {
			return nil, fmt.Errorf("curves input %s: %w", a.Stage, err)
		}
		if len(c.Epochs) == 0 {
			continue
		}
		xy := make(plotter.XYs, len(c.Epochs))
		for i, e := range c.Epochs {
			xy[i] = plotter.XY{X: float64(e.Epoch), Y: e.ValLoss}
		}
		l, err := plotter.NewLine(xy)
		if err != nil {
			return nil, err
		}
		l.Color = plotutil.Color(n)
		p.Add(l)
		p.Legend.Add(label(a), l)
		n++
	}
	if n == 0 {
		return nil, nil
	}
	return p, nil
}

// label names an artifact by its stage and foreach bindings.
func label(a stages.Artifact) string {
	keys := make([]string, 0, len(a.Labels))
	for k := range a.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	vals := make([]string, len(keys))
	for i, k := range keys {
		vals[i] = a.Labels[k]
	}
	if len(vals) == 0 {
		return a.Stage
	}
	return a.Stage + "[" + strings.Join(vals, ",") + "]"
}

func probePlot(arts []stages.Artifact, title string) (*plot.Plot, error) {
	type row struct {
		dataset string
		acc     map[string]float64
	}
	var rows []row
	nets := map[string]bool{}
	for _, a := range arts {
		var m map[string]map[string]float64
		if err := readJSON(filepath.Join(a.Path, "metrics.json"), &m); err != nil {
			return nil, fmt.Errorf("probe input %s: %w", a.Stage, err)
		}
		ds := a.Labels["dataset"]
		if ds == "" {
			ds = label(a)
		}
		// Networks of one stage fanned out over subjects and ROIs
		// ("probe_cl[FFA-1,subj01]") are averaged into one bar per stage.
		r := row{dataset: ds, acc: map[string]float64{}}
		count := map[string]int{}
		for n, v := range m {
			base, _, _ := strings.Cut(n, "[")
			r.acc[base] += v["top1"]
			count[base]++
			nets[base] = true
		}
		for n := range r.acc {
			r.acc[n] /= float64(count[n])
		}
		rows = append(rows, r)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	names := make([]string, 0, len(nets))
	for n := range nets {
		names = append(names, n)
	}
	sort.Strings(names)
	p := plot.New()
	p.Title.Text = strings.TrimSpace(title + " probe top-1 accuracy (mean over tuned networks)")
	p.Y.Label.Text = "top-1 accuracy (test split)"
	p.Legend.Top = true
	w := vg.Points(240 / float64(len(names)*len(rows)))
	for i, n := range names {
		vals := make(plotter.Values, len(rows))
		for j, r := range rows {
			vals[j] = r.acc[n]
		}
		bars, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return nil, err
		}
		bars.Color = plotutil.Color(i)
		bars.LineStyle.Width = 0
		bars.XMin = slot(i, len(names))
		p.Add(bars)
		p.Legend.Add(n, bars)
	}
	ds := make([]string, len(rows))
	for i, r := range rows {
		ds[i] = r.dataset
	}
	p.NominalX(ds...)
	p.X.Min, p.X.Max = -0.6, float64(len(ds))-0.4
	return p, nil
}

// writeHeadline writes the mean r per ROI group and network, with the CL
// comparisons, as markdown, JSON and metrics.
func writeHeadline(req *stages.Request, rms []*ridgeMetrics, nets []string, control, cl, mse string) error {
	groups := presentGroups(rms)
	head := map[string]map[string]float64{}
	var b strings.Builder
	fmt.Fprintf(&b, "| ROI group | %s |", strings.Join(nets, " | "))
	pctCols := []string{}
	for _, o := range []string{control, mse} {
		if cl != "" && o != "" && o != cl {
			pctCols = append(pctCols, o)
			fmt.Fprintf(&b, " %% voxels %s > %s |", cl, o)
		}
	}
	b.WriteString("\n|---|" + strings.Repeat("---|", len(nets)+len(pctCols)) + "\n")
	for _, g := range groups {
		head[g] = map[string]float64{}
		fmt.Fprintf(&b, "| %s |", g)
		for _, n := range nets {
			m, _, _, ok := groupStats(rms, g, n)
			if !ok {
				b.WriteString(" - |")
				continue
			}
			head[g][n] = m
			fmt.Fprintf(&b, " %.4f |", m)
		}
		for _, o := range pctCols {
			var v []float64
			for _, m := range rms {
				if d := m.Compare[cl+"_vs_"+o].Group[g]; d != nil {
					v = append(v, d.PctImproved)
				}
			}
			if len(v) == 0 {
				b.WriteString(" - |")
				continue
			}
			head[g]["pct_improved_"+cl+"_vs_"+o] = meanOf(v)
			fmt.Fprintf(&b, " %.1f |", meanOf(v))
		}
		b.WriteString("\n")
	}
	if err := os.WriteFile(filepath.Join(req.OutDir, "headline.md"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	js, err := json.MarshalIndent(map[string]any{"group": head, "control": control, "cl": cl, "mse": mse}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(req.OutDir, "headline.json"), js, 0o644); err != nil {
		return err
	}
	fmt.Fprint(req.Log, b.String())
	mj, err := json.Marshal(map[string]any{"headline": head})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(req.OutDir, "metrics.json"), mj, 0o644)
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
