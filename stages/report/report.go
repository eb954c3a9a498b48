// Package report is the `report` stage kind: the study's figures (PNG and
// SVG, through gonum.org/v1/plot) and its headline table, as cached
// artifacts built from ridge, probe and training-curve outputs.
//
// Figures (under OutDir/figures/), each as .png, .svg and .json (caption,
// the panels' data areas and the series' colours; the HTML report shows
// the caption):
//
//	groups      the poster's bar chart: mean test r per ROI group for
//	            control, CL and MSE (and any other network); error bars =
//	            the ridge metrics' bootstrap 95% CIs over test images,
//	            averaged over ridge inputs; none when ridge ran with
//	            bootstrap 0 (the caption says so). The caption states
//	            CL - control and CL - MSE per group: the mean difference,
//	            each subject's paired bootstrap CI and p over test images,
//	            and the test with subjects as the unit
//	scatter     per-voxel test r, CL against control, one colour per ROI,
//	            with the diagonal
//	rdiff       histogram of per-voxel r differences, CL minus control
//	improved    % of voxels whose r improves, CL vs control and CL vs MSE,
//	            per ROI
//	curves-<stage>  validation loss per epoch of each tuned network of one
//	            training stage: one panel per ROI, one colour (and dash) per
//	            subject
//	probe       probe top-1 accuracy, grouped by dataset: one bar per
//	            network stage (mean over its instances), a dot per instance
//
// Every figure keeps its legend in a column right of the plotted area and
// uses opaque colours written as #rrggbb.
//
// OutDir/headline.md and headline.json hold the headline table (mean r per
// ROI group and network), the noise-normalised r and voxels above their
// ceiling where the data had noise ceilings, and the CL comparisons with
// their statistics (stats.go: per subject a paired bootstrap over test
// images, across subjects a test with subjects as the unit); metrics.json
// repeats the numbers as metrics.
package report

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/voxflow/voxflow/stages"
	"github.com/voxflow/voxflow/stages/artifact"
)

// Stage is the report stage kind.
type Stage struct{}

// New returns the report stage kind.
func New() stages.Stage { return Stage{} }

// Describe declares the kind.
func (Stage) Describe() stages.Description {
	return stages.Description{
		Kind:    "report",
		Version: "4",
		Doc:     "figures (PNG+SVG) and the headline table from ridge, probe and training outputs; noise-normalised r where ceilings exist, CL differences with per-subject bootstrap CIs and p over test images and a test with subjects as the unit",
		Isolate: "inline",
		Params: []stages.ParamSpec{
			{Name: "control", Type: stages.TypeString, Default: "", Doc: "network (features stage name) used as control; default the ridge baseline"},
			{Name: "cl", Type: stages.TypeString, Default: "", Doc: "the CL-tuned network; default the network whose name contains \"cl\""},
			{Name: "mse", Type: stages.TypeString, Default: "", Doc: "the MSE-tuned network; default the network whose name contains \"mse\""},
			{Name: "title", Type: stages.TypeString, Default: "", Doc: "title prefix for the figures"},
			{Name: "datasets", Type: stages.TypeMap, Default: map[string]any{}, Doc: "probe stage name -> dataset name shown in the probe figure; default the instance's `dataset` label, else the stage name"},
		},
		Inputs: []stages.PortSpec{
			{Name: "ridge", Many: true, Doc: "ridge outputs (metrics.json, scores/)"},
			{Name: "probe", Many: true, Optional: true, Doc: "probe outputs (metrics.json); dataset = the `datasets` param's entry for the stage, else the instance's `dataset` label, else its stage name"},
			{Name: "curves", Many: true, Optional: true, Doc: "training outputs with curve.json (tune-cl, tune-mse, pretrain)"},
		},
		Outputs: []stages.PortSpec{
			{Name: "figures", Doc: "groups, scatter, rdiff, improved, curves-<stage>, probe: .png, .svg and .json (caption, panels, series colours)"},
			{Name: "headline.md", Doc: "mean test r per ROI group and network, noise-normalised r and voxels above their ceiling, CL differences with tests (markdown)"},
			{Name: "headline.json", Doc: "the same as JSON"},
		},
	}
}

// ridgeMetrics is a ridge input's scores and the directory they came from.
type ridgeMetrics struct {
	artifact.Metrics
	dir string
}

// groupOrder is the poster's order of ROI groups.
func groupOrder() []string { return []string{"early", "higher", "streams"} }

// groupTitle is the poster's name for an ROI group: the anatomical
// streams ROIs are its third group, "anatomical".
func groupTitle(g string) string {
	if g == "streams" {
		return "anatomical (streams)"
	}
	return g
}

// groupMembers says which ROIs make each group (the data stage's label
// tables, DESIGN.md section 8), for the headline and the figure caption.
const groupMembers = "early = prf-visualrois (V1v, V1d, V2v, V2d, V3v, V3d, hV4); " +
	"higher = floc-bodies, floc-faces, floc-places and floc-words (EBA ... mTL-words); " +
	"anatomical (streams) = the streams atlas (early, midventral, midlateral, midparietal, ventral, lateral, parietal)"

// study is what the figures are drawn from.
type study struct {
	rms              []*ridgeMetrics
	nets             []string // ridge networks, control, CL, MSE first
	control, cl, mse string
	roles            roles
	title            string
	probe, curves    []stages.Artifact
	datasets         map[string]string     // probe stage -> dataset name
	voxels           map[string]voxelPairs // voxelR's reads, by network pair
}

// Run draws the figures.
func (Stage) Run(ctx context.Context, req *stages.Request) error {
	var rms []*ridgeMetrics
	for _, a := range req.Inputs["ridge"] {
		sc, err := artifact.ReadScores(a.Path)
		if err != nil {
			return fmt.Errorf("ridge input %s: %w", a.Stage, err)
		}
		rms = append(rms, &ridgeMetrics{Metrics: *sc, dir: a.Path})
	}
	if len(rms) == 0 {
		return fmt.Errorf("input ridge: no artifacts; want at least one ridge output")
	}
	nets := rms[0].Networks
	s := &study{rms: rms, title: req.Params.String("title"), probe: req.Inputs["probe"], curves: req.Inputs["curves"], datasets: map[string]string{}}
	s.control = pick(req.Params.String("control"), rms[0].Baseline, nets, "")
	s.cl = pick(req.Params.String("cl"), "", nets, "cl")
	s.mse = pick(req.Params.String("mse"), "", nets, "mse")
	s.roles = roles{control: s.control, cl: s.cl, mse: s.mse}
	s.nets = s.roles.sort(nets)
	if req.Params.Has("datasets") {
		for k, v := range req.Params.Map("datasets") {
			name, ok := v.(string)
			if !ok {
				return fmt.Errorf("param datasets.%s: %v is a %T; want the dataset's display name as a string", k, v, v)
			}
			s.datasets[k] = name
		}
	}
	figDir := filepath.Join(req.OutDir, "figures")
	if err := os.MkdirAll(figDir, 0o755); err != nil {
		return err
	}
	steps := []struct {
		name string
		fn   func() (*figure, error)
	}{
		{"groups", s.groupsFigure},
		{"scatter", s.scatterFigure},
		{"rdiff", s.rdiffFigure},
		{"improved", s.improvedFigure},
		{"probe", s.probeFigure},
	}
	// One curves figure per training stage: CL and MSE losses live on
	// different scales.
	byStage := map[string][]stages.Artifact{}
	var stageOrder []string
	for _, a := range s.curves {
		if _, ok := byStage[a.Stage]; !ok {
			stageOrder = append(stageOrder, a.Stage)
		}
		byStage[a.Stage] = append(byStage[a.Stage], a)
	}
	for _, st := range stageOrder {
		arts := byStage[st]
		steps = append(steps, struct {
			name string
			fn   func() (*figure, error)
		}{"curves-" + st, func() (*figure, error) { return s.curvesFigure(st, arts) }})
	}
	for i, st := range steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		req.Progress.Update(stages.Update{Phase: "plot " + st.name, Done: float64(i), Total: float64(len(steps)), Unit: "figure"})
		f, err := st.fn()
		if err != nil {
			return fmt.Errorf("figure %s: %w", st.name, err)
		}
		if f == nil {
			fmt.Fprintf(req.Log, "report: no data for figure %s; skipped\n", st.name)
			continue
		}
		f.name, f.order = st.name, i
		if err := f.save(figDir); err != nil {
			return fmt.Errorf("save figure %s: %w", st.name, err)
		}
	}
	return writeHeadline(req, rms, nets, s.control, s.cl, s.mse)
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

// groupStats returns the mean r of a group and network: the mean over
// subjects (each ridge input's, or each subject of a multi-subject input).
func groupStats(rms []*ridgeMetrics, group, net string) (mean float64, ok bool) {
	var vals []float64
	for _, sc := range subjectScores(rms, group, net) {
		vals = append(vals, sc.MeanR)
	}
	if len(vals) == 0 {
		return 0, false
	}
	return meanOf(vals), true
}

// subjectScores lists a group's score of net per subject: each ridge
// input's, or each subject's of a multi-subject input.
func subjectScores(rms []*ridgeMetrics, group, net string) []*artifact.Score {
	var out []*artifact.Score
	for _, m := range rms {
		if len(m.Subject) > 1 {
			for _, s := range m.Subjects {
				if sm := m.Subject[s]; sm != nil && sm.Group[group][net] != nil {
					out = append(out, sm.Group[group][net])
				}
			}
			continue
		}
		if sc := m.Group[group][net]; sc != nil {
			out = append(out, sc)
		}
	}
	return out
}

// groupNorm returns a group's noise-normalised r of net (mean over
// subjects of mean r / mean sqrt(ceiling)) and its voxels above their
// ceiling (summed over subjects); ok is false unless every subject's data
// had noise ceilings.
func groupNorm(rms []*ridgeMetrics, group, net string) (norm float64, above int, ok bool) {
	scs := subjectScores(rms, group, net)
	var vals []float64
	for _, sc := range scs {
		if sc.MeanRNorm == nil {
			return 0, 0, false
		}
		vals = append(vals, *sc.MeanRNorm)
		if sc.NAboveCeiling != nil {
			above += *sc.NAboveCeiling
		}
	}
	if len(vals) == 0 {
		return 0, 0, false
	}
	return meanOf(vals), above, true
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
	for _, g := range groupOrder() {
		for _, m := range rms {
			if len(m.Group[g]) > 0 {
				out = append(out, g)
				break
			}
		}
	}
	return out
}

// writeHeadline writes the mean r per ROI group and network, with the CL
// comparisons, as markdown, JSON and metrics: noise-normalised r and
// voxels above their ceiling where the data had noise ceilings, and each
// CL comparison's mean difference with its test over subjects and each
// subject's paired bootstrap CI and p.
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
		fmt.Fprintf(&b, "| %s |", groupTitle(g))
		for _, n := range nets {
			m, ok := groupStats(rms, g, n)
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
				if d := m.Compare[cl+"_vs_"+o].GroupDelta(g); d != nil {
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
	if len(groups) > 0 {
		b.WriteString("\nROI groups: " + groupMembers + ".\n")
	}
	norm := writeNormTable(&b, rms, groups, nets, head)
	compare := writeCompareTables(&b, rms, groups, cl, pctCols, head)
	if err := os.WriteFile(filepath.Join(req.OutDir, "headline.md"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	js, err := json.MarshalIndent(map[string]any{"group": head, "control": control, "cl": cl, "mse": mse,
		"noise_normalised": norm, "compare": compare, "statistics": statsNote}, "", "  ")
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
