package report

import (
	"fmt"
	"strings"

	"github.com/voxflow/voxflow/stages/artifact"
)

// statsNote says how the headline's and caption's statistics were made,
// so that no reader mistakes the voxel-wise numbers for tests.
const statsNote = "Statistics: per subject, a paired bootstrap of the test images (every network scored on the same resamples, " +
	"all voxels of a resample together; ridge param bootstrap) gives the 95% CI of the mean-r difference and a two-sided " +
	"bootstrap p (twice the smaller share of resamples on either side of zero, (k+1)/(B+1)). Across subjects, subjects are the unit: " +
	"a one-sample t-test of the subjects' differences and the exact sign-flip p (its floor is 2^(1-n) for n subjects). " +
	"The per-voxel Wilcoxon p in the ridge metrics (wilcoxon_p_descriptive) is descriptive only: voxels are not independent samples."

// subjectDelta is one subject's mean-r difference of a pair of networks
// over an ROI group, with its paired bootstrap CI and p over test images.
type subjectDelta struct {
	Subject string    `json:"subject"`
	Delta   float64   `json:"delta_mean_r"`
	CI95    []float64 `json:"ci95,omitempty"`
	PBoot   *float64  `json:"p_boot,omitempty"`
}

// pairGroup is network a against b on one ROI group: each subject's
// difference and the test over subjects.
type pairGroup struct {
	A, B     string         `json:"-"`
	Mean     float64        `json:"delta_mean_r"` // mean over subjects
	Subjects []subjectDelta `json:"subjects"`
	// Test is the test with subjects as the unit; nil for one subject.
	Test *artifact.SubjectTest `json:"subjects_test,omitempty"`
}

// comparePair gathers every subject's difference a - b on group g from
// all ridge inputs (a multi-subject input contributes each of its
// subjects; a subject seen twice counts once, from the first input), and
// tests them over subjects. nil when no input compares the pair.
func comparePair(rms []*ridgeMetrics, a, b, g string) *pairGroup {
	key := a + "_vs_" + b
	pg := &pairGroup{A: a, B: b}
	seen := map[string]bool{}
	add := func(subject string, d *artifact.Delta) {
		if d == nil || seen[subject] {
			return
		}
		seen[subject] = true
		pg.Subjects = append(pg.Subjects, subjectDelta{Subject: subject, Delta: d.DeltaMeanR, CI95: d.DeltaCI95, PBoot: d.PBoot})
	}
	for _, m := range rms {
		if len(m.Subject) > 1 {
			for _, s := range m.Subjects {
				if sm := m.Subject[s]; sm != nil {
					add(s, sm.Compare[key].GroupDelta(g))
				}
			}
			continue
		}
		subject := strings.Join(m.Subjects, ",")
		add(subject, m.Compare[key].GroupDelta(g))
	}
	if len(pg.Subjects) == 0 {
		return nil
	}
	d := make([]float64, len(pg.Subjects))
	for i, s := range pg.Subjects {
		d[i] = s.Delta
	}
	pg.Mean = meanOf(d)
	pg.Test = artifact.NewSubjectTest(d)
	return pg
}

// testText is the test over subjects in words, e.g. "over 8 subjects
// t(7) = 3.10, p = 0.017; sign-flip p = 0.016".
func (pg *pairGroup) testText() string {
	st := pg.Test
	if st == nil {
		return "one subject: no test over subjects"
	}
	s := fmt.Sprintf("over %d subjects ", st.N)
	if st.T != nil {
		s += fmt.Sprintf("t(%d) = %.2f, p = %.3g; ", st.DF, *st.T, *st.P)
	} else {
		s += "t undefined (equal differences); "
	}
	return s + fmt.Sprintf("sign-flip p = %.3g", st.PSignFlip)
}

// text is one subject's difference with its CI and bootstrap p.
func (sd subjectDelta) text() string {
	s := fmt.Sprintf("%+.4f", sd.Delta)
	if len(sd.CI95) == 2 && sd.PBoot != nil {
		s += fmt.Sprintf(", 95%% CI [%+.4f, %+.4f], p_boot = %.3g", sd.CI95[0], sd.CI95[1], *sd.PBoot)
	}
	return s
}

// captionText summarises the pair on a group for a figure caption: the
// mean difference, the single subject's CI and p or the range of the
// subjects' bootstrap p, and the test over subjects.
func (pg *pairGroup) captionText() string {
	if len(pg.Subjects) == 1 {
		sd := pg.Subjects[0]
		s := "Δr = " + sd.text()
		if sd.PBoot == nil {
			s += " (no CI: ridge ran with bootstrap: 0)"
		}
		return s + " (one subject: no test over subjects)"
	}
	s := fmt.Sprintf("Δr = %+.4f (mean of %d subjects", pg.Mean, len(pg.Subjects))
	lo, hi, k := 2.0, -1.0, 0
	for _, sd := range pg.Subjects {
		if sd.PBoot != nil {
			lo, hi, k = min(lo, *sd.PBoot), max(hi, *sd.PBoot), k+1
		}
	}
	switch {
	case k > 0 && lo == hi:
		s += fmt.Sprintf("; per-subject p_boot %.3g each", lo)
	case k > 0:
		s += fmt.Sprintf("; per-subject p_boot %.3g to %.3g", lo, hi)
	}
	return s + "), " + pg.testText()
}

// writeNormTable adds the noise-normalised r per group and network, with
// the voxels above their ceiling, when the data had noise ceilings; it
// returns the same for headline.json (nil without ceilings).
func writeNormTable(b *strings.Builder, rms []*ridgeMetrics, groups, nets []string, head map[string]map[string]float64) map[string]map[string]any {
	out := map[string]map[string]any{}
	var rows strings.Builder
	for _, g := range groups {
		row := "| " + groupTitle(g) + " |"
		for _, n := range nets {
			v, above, ok := groupNorm(rms, g, n)
			if !ok {
				row += " - |"
				continue
			}
			if out[g] == nil {
				out[g] = map[string]any{}
			}
			out[g][n] = map[string]any{"mean_r_norm": v, "n_above_ceiling": above}
			head[g]["norm_r_"+n] = v
			head[g]["n_above_ceiling_"+n] = float64(above)
			row += fmt.Sprintf(" %.4f (%d) |", v, above)
		}
		if out[g] != nil {
			// Groups whose ROIs have no ceilings get no row of dashes.
			rows.WriteString(row + "\n")
		}
	}
	if len(out) == 0 {
		return nil
	}
	b.WriteString("\nNoise-normalised mean test r (each ROI's mean r over its mean sqrt(noise ceiling), the ceiling a fraction of variance; " +
		"mean over the group's ROIs and the subjects). In brackets: voxels whose r exceeds their noise ceiling beyond sampling error " +
		"(atanh r - atanh sqrt(ceiling) > 1.96/sqrt(test images - 3)), all subjects; more than a few per cent of the voxels means the ceilings are too low or in the wrong unit.\n\n")
	fmt.Fprintf(b, "| ROI group | %s |\n|---|%s\n", strings.Join(nets, " | "), strings.Repeat("---|", len(nets)))
	b.WriteString(rows.String())
	return out
}

// writeCompareTables adds, for cl against each other network, the mean-r
// difference per group with its test over subjects, and each subject's
// paired bootstrap CI and p; it returns them for headline.json.
func writeCompareTables(b *strings.Builder, rms []*ridgeMetrics, groups []string, cl string, others []string, head map[string]map[string]float64) map[string]map[string]*pairGroup {
	out := map[string]map[string]*pairGroup{}
	for _, o := range others {
		key := cl + "_vs_" + o
		var pgs []*pairGroup
		var gs []string
		for _, g := range groups {
			if pg := comparePair(rms, cl, o, g); pg != nil {
				pgs, gs = append(pgs, pg), append(gs, g)
			}
		}
		if len(pgs) == 0 {
			continue
		}
		out[key] = map[string]*pairGroup{}
		fmt.Fprintf(b, "\n%s − %s, mean test r difference per ROI group, tested with subjects as the unit:\n\n", cl, o)
		b.WriteString("| ROI group | Δr | subjects | test over subjects |\n|---|---|---|---|\n")
		for i, pg := range pgs {
			g := gs[i]
			out[key][g] = pg
			fmt.Fprintf(b, "| %s | %+.4f | %d | %s |\n", groupTitle(g), pg.Mean, len(pg.Subjects), pg.testText())
			head[g]["delta_r_"+key] = pg.Mean
			head[g]["n_subjects_"+key] = float64(len(pg.Subjects))
			if st := pg.Test; st != nil {
				head[g]["p_signflip_"+key] = st.PSignFlip
				if st.P != nil {
					head[g]["p_t_"+key] = *st.P
				}
			} else if sd := pg.Subjects[0]; sd.PBoot != nil {
				head[g]["p_boot_"+key] = *sd.PBoot
			}
		}
		fmt.Fprintf(b, "\nPer subject, %s − %s (paired bootstrap over test images, voxels kept together):\n\n", cl, o)
		b.WriteString("| subject | ROI group | Δr | 95% CI | p_boot |\n|---|---|---|---|---|\n")
		for i, pg := range pgs {
			for _, sd := range pg.Subjects {
				ci, p := "-", "-"
				if len(sd.CI95) == 2 {
					ci = fmt.Sprintf("[%+.4f, %+.4f]", sd.CI95[0], sd.CI95[1])
				}
				if sd.PBoot != nil {
					p = fmt.Sprintf("%.3g", *sd.PBoot)
				}
				fmt.Fprintf(b, "| %s | %s | %+.4f | %s | %s |\n", sd.Subject, groupTitle(gs[i]), sd.Delta, ci, p)
			}
		}
	}
	if len(out) > 0 {
		b.WriteString("\n" + statsNote + "\n")
	}
	return out
}
