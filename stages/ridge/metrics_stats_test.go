package ridge

import (
	"math/rand/v2"
	"testing"

	"github.com/voxflow/voxflow/numerics/stats"
	"github.com/voxflow/voxflow/stages/artifact"
)

// TestPairedStatsMatchReference checks the paired bootstrap of a mean-r
// difference (CI95 and BootstrapP over one shared resample matrix) against
// numpy expanding every resample row by row, and the tests over subjects
// (TTest1Samp, SignFlipP) against scipy.stats.ttest_1samp and brute-force
// sign flips.
// TestMetricsStatistics builds the metrics of three subjects' cells and
// checks that each subject's comparison carries its own paired bootstrap
// CI and p, the top-level one the test over subjects of their mean
// differences, and the scores the above-ceiling counts.
func TestMetricsStatistics(t *testing.T) {
	j := &job{
		opt:      options{baseline: "control", cfg: Config{Folds: 5}},
		nets:     &networks{names: []string{"control", "cl"}},
		subjects: []string{"subj01", "subj02", "subj03"},
		roiOrder: []string{"V1v", "FFA-1"},
		groups:   map[string]string{"V1v": "early", "FFA-1": "higher"},
		cells:    map[cellKey]*cell{},
	}
	rng := rand.New(rand.NewPCG(2, 7))
	const b, nte = 50, 103
	for si, s := range j.subjects {
		for _, roi := range j.roiOrder {
			for ni, net := range j.nets.names {
				c := &cell{group: j.groups[roi], nte: nte, r: make([]float64, 6), nc: make([]float32, 6), boot: make([]float64, b)}
				for i := range c.r {
					c.r[i] = 0.2 + 0.02*float64(ni*(si+1)) + 0.05*rng.NormFloat64()
					c.nc[i] = 0.25
				}
				c.r[0] = 0.9 // far above its ceiling (r 0.5) for 103 images
				for k := range c.boot {
					c.boot[k] = stats.Mean(c.r) + 0.01*rng.NormFloat64()
				}
				j.cells[cellKey{s, roi, net}] = c
			}
		}
	}
	m := j.metrics()
	var deltas []float64
	for _, s := range j.subjects {
		d := m.Subject[s].Compare["cl_vs_control"].ROI["V1v"]
		ca, cb := j.cells[cellKey{s, "V1v", "cl"}], j.cells[cellKey{s, "V1v", "control"}]
		diff := make([]float64, b)
		for k := range diff {
			diff[k] = ca.boot[k] - cb.boot[k]
		}
		if d.PBoot == nil || *d.PBoot != stats.BootstrapP(diff) || d.DeltaCI95[0] != stats.Percentile(diff, 2.5) {
			t.Fatalf("%s: p_boot %v CI %v, want %g and %g from the subject's own resamples", s, d.PBoot, d.DeltaCI95, stats.BootstrapP(diff), stats.Percentile(diff, 2.5))
		}
		if d.Subjects != nil {
			t.Errorf("%s: a single subject's comparison carries a test over subjects", s)
		}
		deltas = append(deltas, d.DeltaMeanR)
	}
	top := m.Compare["cl_vs_control"].ROI["V1v"]
	want := artifact.NewSubjectTest(deltas)
	if top.Subjects == nil || top.Subjects.N != 3 || *top.Subjects.P != *want.P || top.Subjects.PSignFlip != 0.25 {
		t.Fatalf("top-level test over subjects %+v, want %+v (sign-flip floor 2/8)", top.Subjects, want)
	}
	if g := m.Compare["cl_vs_control"].Group["higher"]; g.Subjects == nil || g.PBoot == nil {
		t.Errorf("group comparison without tests: %+v", g)
	}
	if n := m.ROI["V1v"]["cl"].NAboveCeiling; n == nil || *n != 3 {
		t.Errorf("V1v cl: n_above_ceiling %v, want 3 (one voxel per subject)", n)
	}
	if n := m.Subject["subj02"].Group["early"]["control"].NAboveCeiling; n == nil || *n != 1 {
		t.Errorf("subj02 early control: n_above_ceiling %v, want 1", n)
	}
}
