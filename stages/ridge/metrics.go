package ridge

import (
	"fmt"
	"io"
	"math"
	"path/filepath"
	"sort"
	"text/tabwriter"

	"github.com/voxflow/voxflow/internal/jsonfile"
	"github.com/voxflow/voxflow/numerics/stats"
	"github.com/voxflow/voxflow/stages/artifact"
)

func (j *job) metrics() *artifact.Metrics {
	m := &artifact.Metrics{Networks: j.nets.names, Baseline: j.opt.baseline, Subjects: j.subjects, ROIs: j.roiOrder}
	score := j.opt.cfg.Score
	if score == "" {
		score = ScoreR
	}
	dtype := "float32"
	if j.opt.float64 {
		dtype = "float64"
	}
	m.Method = artifact.Method{CVScore: score, Folds: j.opt.cfg.Folds, Standardise: "per-fold", Dtype: dtype,
		Reduce: j.opt.reduce.String(), Alphas: j.opt.cfg.Alphas}
	m.Summary = *j.summarise(j.subjects)
	if len(j.subjects) > 1 {
		m.Subject = map[string]*artifact.Summary{}
		for _, s := range j.subjects {
			m.Subject[s] = j.summarise([]string{s})
		}
		testSubjects(m)
	}
	return m
}

// testSubjects adds to every top-level comparison the test over subjects
// of the per-subject mean differences.
func testSubjects(m *artifact.Metrics) {
	for pair, cmp := range m.Compare {
		each := func(pick func(c *artifact.Comparison) *artifact.Delta) []float64 {
			var d []float64
			for _, s := range m.Subjects {
				if c := m.Subject[s].Compare[pair]; c != nil {
					if x := pick(c); x != nil {
						d = append(d, x.DeltaMeanR)
					}
				}
			}
			return d
		}
		for roi, d := range cmp.ROI {
			d.Subjects = artifact.NewSubjectTest(each(func(c *artifact.Comparison) *artifact.Delta { return c.ROI[roi] }))
		}
		for g, d := range cmp.Group {
			d.Subjects = artifact.NewSubjectTest(each(func(c *artifact.Comparison) *artifact.Delta { return c.Group[g] }))
		}
	}
}

// pairs lists the comparisons: each network vs the baseline, then the
// remaining pairs in input order.
func (j *job) pairs() [][2]string {
	var out [][2]string
	for _, n := range j.nets.names {
		if n != j.opt.baseline {
			out = append(out, [2]string{n, j.opt.baseline})
		}
	}
	for a, na := range j.nets.names {
		for _, nb := range j.nets.names[a+1:] {
			if na != j.opt.baseline && nb != j.opt.baseline {
				out = append(out, [2]string{na, nb})
			}
		}
	}
	return out
}

// roiAgg is one network on one ROI over a set of subjects.
type roiAgg struct {
	score *artifact.Score
	boot  []float64 // mean over subjects of each resample's mean r
}

func (j *job) aggregate(subjects []string, roi, net string) *roiAgg {
	var cells []*cell
	for _, s := range subjects {
		if c, ok := j.cells[cellKey{s, roi, net}]; ok {
			cells = append(cells, c)
		}
	}
	if len(cells) == 0 {
		return nil
	}
	sc := &artifact.Score{}
	var norms []float64
	boot := cells[0].boot != nil
	above, withNC := 0, 0
	for _, c := range cells {
		sc.MeanR += stats.Mean(c.r) / float64(len(cells))
		sc.NVoxels += len(c.r)
		if c.nc != nil {
			withNC++
			above += stats.AboveCeiling(c.r, c.nc, c.nte)
			if nr, ok := normalised(c.r, c.nc); ok {
				norms = append(norms, nr)
			}
		}
		boot = boot && c.boot != nil
	}
	if len(norms) == len(cells) {
		sc.MeanRNorm = ptr(stats.Mean(norms))
	}
	if withNC == len(cells) {
		sc.NAboveCeiling = &above
	}
	a := &roiAgg{score: sc}
	if boot {
		a.boot = make([]float64, len(cells[0].boot))
		for _, c := range cells {
			for k, x := range c.boot {
				a.boot[k] += x / float64(len(cells))
			}
		}
		sc.CI95 = stats.CI95(a.boot)
	}
	return a
}

// normalised is mean r over mean sqrt(noise ceiling), over voxels whose
// ceiling is positive.
func normalised(r []float64, nc []float32) (float64, bool) {
	var sr, sc float64
	k := 0
	for i, c := range nc {
		if c > 0 && !math.IsNaN(float64(c)) {
			sr += r[i]
			sc += math.Sqrt(float64(c))
			k++
		}
	}
	if k == 0 || sc == 0 {
		return 0, false
	}
	return sr / sc, true
}

func (j *job) summarise(subjects []string) *artifact.Summary {
	s := &artifact.Summary{ROI: map[string]map[string]*artifact.Score{}, Group: map[string]map[string]*artifact.Score{}, Compare: map[string]*artifact.Comparison{}}
	aggs := map[[2]string]*roiAgg{} // (roi, net)
	for _, roi := range j.roiOrder {
		for _, net := range j.nets.names {
			a := j.aggregate(subjects, roi, net)
			if a == nil {
				continue
			}
			aggs[[2]string{roi, net}] = a
			if s.ROI[roi] == nil {
				s.ROI[roi] = map[string]*artifact.Score{}
			}
			s.ROI[roi][net] = a.score
		}
	}
	groupROIs := map[string][]string{}
	var groups []string
	for _, roi := range j.roiOrder {
		g := j.groups[roi]
		if g == "" {
			continue
		}
		if groupROIs[g] == nil {
			groups = append(groups, g)
		}
		groupROIs[g] = append(groupROIs[g], roi)
	}
	for _, g := range groups {
		for _, net := range j.nets.names {
			var parts []*roiAgg
			for _, roi := range groupROIs[g] {
				if a := aggs[[2]string{roi, net}]; a != nil {
					parts = append(parts, a)
				}
			}
			if len(parts) == 0 {
				continue
			}
			sc := &artifact.Score{NROIs: len(parts)}
			var boots [][]float64
			var rs, norms []float64
			above, withNC := 0, 0
			for _, a := range parts {
				rs = append(rs, a.score.MeanR)
				sc.NVoxels += a.score.NVoxels
				if a.score.MeanRNorm != nil {
					norms = append(norms, *a.score.MeanRNorm)
				}
				if a.score.NAboveCeiling != nil {
					above += *a.score.NAboveCeiling
					withNC++
				}
				if a.boot != nil {
					boots = append(boots, a.boot)
				}
			}
			sc.MeanR = stats.Mean(rs)
			if len(norms) == len(parts) {
				sc.MeanRNorm = ptr(stats.Mean(norms))
			}
			if withNC == len(parts) {
				sc.NAboveCeiling = &above
			}
			if len(boots) == len(parts) {
				sc.CI95 = stats.CI95(meanRows(boots))
			}
			if s.Group[g] == nil {
				s.Group[g] = map[string]*artifact.Score{}
			}
			s.Group[g][net] = sc
		}
	}
	for _, pr := range j.pairs() {
		cmp := &artifact.Comparison{ROI: map[string]*artifact.Delta{}, Group: map[string]*artifact.Delta{}}
		roiDeltas := map[string]*pairData{}
		for _, roi := range j.roiOrder {
			pd := j.pairData(subjects, roi, pr[0], pr[1])
			if pd == nil {
				continue
			}
			roiDeltas[roi] = pd
			cmp.ROI[roi] = comparePooled([]*pairData{pd})
		}
		for _, g := range groups {
			var parts []*pairData
			for _, roi := range groupROIs[g] {
				if pd := roiDeltas[roi]; pd != nil {
					parts = append(parts, pd)
				}
			}
			if len(parts) > 0 {
				cmp.Group[g] = comparePooled(parts)
			}
		}
		if len(cmp.ROI) > 0 {
			s.Compare[pr[0]+"_vs_"+pr[1]] = cmp
		}
	}
	return s
}

// pairData is a paired comparison of two networks on one ROI over subjects
// where both were fitted.
type pairData struct {
	diffs []float64 // r_a - r_b, pooled over subjects
	delta float64   // mean over subjects of mean r_a - mean r_b
	boot  []float64 // per resample, mean over subjects of the difference
}

func (j *job) pairData(subjects []string, roi, a, b string) *pairData {
	pd := &pairData{}
	k := 0
	var boots [][]float64
	for _, s := range subjects {
		ca, okA := j.cells[cellKey{s, roi, a}]
		cb, okB := j.cells[cellKey{s, roi, b}]
		if !okA || !okB {
			continue
		}
		k++
		for i := range ca.r {
			pd.diffs = append(pd.diffs, ca.r[i]-cb.r[i])
		}
		pd.delta += stats.Mean(ca.r) - stats.Mean(cb.r)
		if ca.boot != nil && cb.boot != nil {
			d := make([]float64, len(ca.boot))
			for i := range d {
				d[i] = ca.boot[i] - cb.boot[i]
			}
			boots = append(boots, d)
		}
	}
	if k == 0 {
		return nil
	}
	pd.delta /= float64(k)
	if len(boots) == k {
		pd.boot = meanRows(boots)
	}
	return pd
}

// comparePooled pools the voxels of parts for % improved and the
// (descriptive) Wilcoxon p; the mean difference, its CI and bootstrap p
// average the parts (ROIs) per resample, like a group's mean r.
func comparePooled(parts []*pairData) *artifact.Delta {
	var diffs, deltas []float64
	var boots [][]float64
	for _, p := range parts {
		diffs = append(diffs, p.diffs...)
		deltas = append(deltas, p.delta)
		if p.boot != nil {
			boots = append(boots, p.boot)
		}
	}
	up := 0
	for _, d := range diffs {
		if d > 0 {
			up++
		}
	}
	_, pv, _ := stats.Wilcoxon(diffs)
	d := &artifact.Delta{
		PctImproved: 100 * float64(up) / float64(max(len(diffs), 1)),
		WilcoxonP:   pv,
		DeltaMeanR:  stats.Mean(deltas),
		NVoxels:     len(diffs),
	}
	if len(boots) == len(parts) {
		b := meanRows(boots)
		d.DeltaCI95 = stats.CI95(b)
		d.PBoot = ptr(stats.BootstrapP(b))
	}
	return d
}

// meanRows averages equal-length rows elementwise.
func meanRows(rows [][]float64) []float64 {
	out := make([]float64, len(rows[0]))
	for _, r := range rows {
		for i, v := range r {
			out[i] += v / float64(len(rows))
		}
	}
	return out
}

func writeMetrics(outDir string, m *artifact.Metrics) error {
	return jsonfile.Write(filepath.Join(outDir, artifact.ScoresFile), m)
}

// writeTable logs mean r per ROI and group for every network, and the %
// of voxels each network improves over the baseline.
func writeTable(w io.Writer, m *artifact.Metrics) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	header := "ROI\t"
	for _, n := range m.Networks {
		header += n + "\t"
	}
	var vs []string
	for _, n := range m.Networks {
		if n != m.Baseline {
			vs = append(vs, n+"_vs_"+m.Baseline)
			header += n + ">" + m.Baseline + " %vox\t"
		}
	}
	fmt.Fprintf(w, "ridge: mean test r (subjects %v, baseline %s)\n", m.Subjects, m.Baseline)
	fmt.Fprintln(tw, header)
	row := func(name string, scores map[string]*artifact.Score, delta func(c *artifact.Comparison) *artifact.Delta) {
		line := name + "\t"
		for _, n := range m.Networks {
			if s := scores[n]; s != nil {
				line += fmt.Sprintf("%.4f\t", s.MeanR)
			} else {
				line += "-\t"
			}
		}
		for _, k := range vs {
			if c := m.Compare[k]; c != nil && delta(c) != nil {
				line += fmt.Sprintf("%.1f\t", delta(c).PctImproved)
			} else {
				line += "-\t"
			}
		}
		fmt.Fprintln(tw, line)
	}
	for _, r := range m.ROIs {
		row(r, m.ROI[r], func(c *artifact.Comparison) *artifact.Delta { return c.ROI[r] })
	}
	groups := make([]string, 0, len(m.Group))
	for g := range m.Group {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	for _, g := range groups {
		row("["+g+"]", m.Group[g], func(c *artifact.Comparison) *artifact.Delta { return c.Group[g] })
	}
	tw.Flush()
	for _, k := range vs {
		for _, g := range groups {
			d := m.Compare[k].Group[g]
			if d == nil || d.PBoot == nil {
				continue
			}
			line := fmt.Sprintf("ridge: %s [%s]: mean r difference %+.4f, 95%% CI [%+.4f, %+.4f], p_boot %.3g (test images resampled, voxels together)",
				k, g, d.DeltaMeanR, d.DeltaCI95[0], d.DeltaCI95[1], *d.PBoot)
			if st := d.Subjects; st != nil && st.P != nil {
				line += fmt.Sprintf("; over %d subjects t(%d) = %.3g, p = %.3g, sign-flip p = %.3g", st.N, st.DF, *st.T, *st.P, st.PSignFlip)
			}
			fmt.Fprintln(w, line)
		}
	}
}

// ptr returns a pointer to v, for the optional numbers of metrics.json.
func ptr(v float64) *float64 { return &v }
