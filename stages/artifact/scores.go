package artifact

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/voxflow/voxflow/internal/jsonfile"
	"github.com/voxflow/voxflow/numerics/stats"
)

// ScoresFile is the file ridge and probe write their scores to (Metrics
// and ProbeScores); report and compare read it. It is the file every stage
// may write its metrics to, so that the scores are run metrics too.
const ScoresFile = "metrics.json"

// A ridge artifact also keeps per-voxel files, one directory per network
// and subject (VoxelScoresDir): <roi>_r.npy (VoxelRPath, float32 test
// Pearson r per voxel, lh then rh), <roi>_alpha.npy and, with
// save_weights, <roi>_weights.npy.
const voxelScoresDir, voxelRSuffix = "scores", "_r.npy"

// VoxelScoresDir is dir/scores/<network>/<subject> of a ridge artifact.
func VoxelScoresDir(dir, network, subject string) string {
	return filepath.Join(dir, voxelScoresDir, network, subject)
}

// VoxelRPath is the per-voxel test r of one network, subject and ROI in a
// ridge artifact: VoxelScoresDir/<roi>_r.npy.
func VoxelRPath(dir, network, subject, roi string) string {
	return filepath.Join(VoxelScoresDir(dir, network, subject), roi+voxelRSuffix)
}

// VoxelR names one per-voxel r file of a ridge artifact.
type VoxelR struct {
	Subject, ROI, Path string
}

// ListVoxelR lists the per-voxel r files of network in a ridge artifact,
// in the order of their paths (subject, then file name).
func ListVoxelR(dir, network string) ([]VoxelR, error) {
	files, err := filepath.Glob(VoxelRPath(dir, network, "*", "*"))
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", VoxelScoresDir(dir, network, ""), err)
	}
	sort.Strings(files)
	out := make([]VoxelR, len(files))
	for i, f := range files {
		out[i] = VoxelR{Subject: filepath.Base(filepath.Dir(f)), ROI: strings.TrimSuffix(filepath.Base(f), voxelRSuffix), Path: f}
	}
	return out, nil
}

// ProbeScores is a probe artifact's metrics.json: per network (its stage,
// with foreach labels when several instances share it) the test accuracies
// top1 and top<k> and the fit's diagnostics (iterations, converged, ...).
type ProbeScores map[string]map[string]float64

// ReadProbeScores reads a probe artifact's scores (dir/metrics.json).
func ReadProbeScores(dir string) (ProbeScores, error) {
	var m ProbeScores
	if err := jsonfile.Read(filepath.Join(dir, ScoresFile), &m); err != nil {
		return nil, err
	}
	return m, nil
}

// Metrics is the structure of a ridge instance's metrics.json (ScoresFile); report,
// compare and plots read it. Every numeric leaf becomes a metric (nested
// keys joined by "."), e.g. roi.FFA-1.tune_cl.mean_r or
// compare.tune_cl_vs_pretrained.group.higher.pct_improved.
//
// Top-level ROI, Group and Compare summarise all fitted subjects: a mean r
// is the mean over subjects of each subject's mean over voxels; a group's
// mean r is the mean over its ROIs (the poster's convention); voxel counts,
// % improved and Wilcoxon tests pool the voxels of all subjects (and of all
// ROIs of a group). Bootstrap CIs and p-values average the paired
// resamples over subjects and ROIs. Subject repeats the summary per subject
// when more than one subject was fitted; then every top-level comparison
// also carries a test with subjects as the unit (Delta.Subjects).
//
// Statistics over test images: every network of a subject is scored on the
// same B resamples of the subject's test images (BootstrapCounts, one draw
// per subject and seed), all voxels of a resample together, so a
// difference's resamples are paired; its CI95 is the percentile interval
// and p_boot is BootstrapP. The Wilcoxon signed-rank p over voxels is kept
// as a descriptive number only (wilcoxon_p_descriptive): voxels are not
// independent samples, so it is no test of a network difference.
type Metrics struct {
	Networks []string `json:"networks"` // features input stages, in input order
	Baseline string   `json:"baseline"`
	Subjects []string `json:"subjects"`
	ROIs     []string `json:"rois"` // fitted ROIs in the data's order
	Method   Method   `json:"method"`
	Summary
	Subject map[string]*Summary `json:"subject,omitempty"`
}

// Method records how the scores were computed (the conventions of
// specs/README.md, "The ridge stage"), so that a report never has to
// guess them from defaults that may change.
type Method struct {
	CVScore string `json:"cv_score"` // r or mse: what each voxel's alpha maximised
	Folds   int    `json:"folds"`    // contiguous K-fold CV within the training rows
	// Standardise is always "per-fold": each fold's training rows set the
	// scaling its held-out rows are scored under; the refit uses all
	// training rows.
	Standardise string    `json:"standardise"`
	Dtype       string    `json:"dtype"`
	Reduce      string    `json:"reduce"`
	Alphas      []float64 `json:"alphas"`
}

// Summary holds the scores of one set of subjects.
type Summary struct {
	// ROI maps ROI name -> network -> score.
	ROI map[string]map[string]*Score `json:"roi"`
	// Group maps ROI group (early, higher, streams) -> network -> score.
	Group map[string]map[string]*Score `json:"group"`
	// Compare maps "<a>_vs_<b>" to the voxel-wise comparison of network a
	// with b: every network vs the baseline, then every other pair in
	// input order.
	Compare map[string]*Comparison `json:"compare"`
}

// Score summarises one network's test Pearson r over an ROI or group.
type Score struct {
	MeanR float64 `json:"mean_r"`
	// CI95 is the bootstrap 95% interval of MeanR over resampled test images.
	CI95 []float64 `json:"ci95,omitempty"`
	// MeanRNorm is MeanR divided by the mean noise ceiling in r units
	// (sqrt of the data's variance-fraction ceiling), over the voxels with
	// a positive ceiling; absent when the data has no noise ceiling.
	MeanRNorm *float64 `json:"mean_r_norm,omitempty"`
	// NAboveCeiling counts voxels whose test r exceeds their noise ceiling
	// (in r units) beyond sampling error (AboveCeiling), summed over
	// subjects (and a group's ROIs); absent without noise ceilings. A
	// count well above 2.5% of the voxels says the ceilings are too low
	// (or were read in the wrong unit).
	NAboveCeiling *int `json:"n_above_ceiling,omitempty"`
	NVoxels       int  `json:"n_voxels"`
	NROIs         int  `json:"n_rois,omitempty"` // groups only
}

// Comparison is network a against network b, per ROI and per group.
type Comparison struct {
	ROI   map[string]*Delta `json:"roi"`
	Group map[string]*Delta `json:"group"`
}

// Delta is one paired comparison of network a with b.
type Delta struct {
	PctImproved float64 `json:"pct_improved"` // % of voxels with r_a > r_b
	// WilcoxonP is the two-sided signed-rank p of the per-voxel r_a - r_b.
	// Descriptive only: voxels are not independent samples (neighbours
	// share noise and signal), so with thousands of voxels it is tiny for
	// any consistent shift; use PBoot and Subjects to test a difference.
	WilcoxonP  float64 `json:"wilcoxon_p_descriptive"`
	DeltaMeanR float64 `json:"delta_mean_r"` // mean_r(a) - mean_r(b)
	// DeltaCI95 is the paired bootstrap 95% interval of DeltaMeanR over
	// test images (voxels kept together) and PBoot its two-sided
	// bootstrap p-value (BootstrapP); absent with bootstrap: 0.
	DeltaCI95 []float64 `json:"delta_ci95,omitempty"`
	PBoot     *float64  `json:"p_boot,omitempty"`
	// Subjects tests DeltaMeanR with subjects as the unit; set on the
	// top-level summary of a fit of several subjects.
	Subjects *SubjectTest `json:"subjects_test,omitempty"`
	NVoxels  int          `json:"n_voxels"`
}

// SubjectTest is a group-level test of a mean difference over subjects,
// each subject's difference one observation.
type SubjectTest struct {
	N         int     `json:"n"`          // subjects
	MeanDelta float64 `json:"mean_delta"` // mean over subjects of their differences
	// T, DF and P are the two-sided one-sample t-test against zero
	// (TTest1Samp); absent when undefined (all differences equal).
	T  *float64 `json:"t,omitempty"`
	DF int      `json:"df"`
	P  *float64 `json:"p_t,omitempty"`
	// PSignFlip is the exact sign-flip permutation p (SignFlipP), valid
	// for few subjects (its floor is 2^(1-n)).
	PSignFlip float64 `json:"p_signflip"`
}

// NewSubjectTest tests the subjects' differences d; nil for fewer than 2.
func NewSubjectTest(d []float64) *SubjectTest {
	if len(d) < 2 {
		return nil
	}
	st := &SubjectTest{N: len(d), MeanDelta: stats.Mean(d), DF: len(d) - 1, PSignFlip: stats.SignFlipP(d)}
	if t, p, _, ok := stats.TTest1Samp(d); ok {
		st.T, st.P = &t, &p
	}
	return st
}

// ReadScores reads a ridge artifact's scores (dir/metrics.json).
func ReadScores(dir string) (*Metrics, error) {
	var m Metrics
	if err := jsonfile.Read(filepath.Join(dir, ScoresFile), &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// ROIDelta is c.ROI[roi], nil when c is nil (a pair that was not compared).
func (c *Comparison) ROIDelta(roi string) *Delta {
	if c == nil {
		return nil
	}
	return c.ROI[roi]
}

// GroupDelta is c.Group[group], nil when c is nil.
func (c *Comparison) GroupDelta(group string) *Delta {
	if c == nil {
		return nil
	}
	return c.Group[group]
}
