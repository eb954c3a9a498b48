package report

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voxflow/voxflow/stages"
	"github.com/voxflow/voxflow/stages/artifact"
)

// TestHeadlineStatistics feeds the report three per-subject ridge inputs
// (the nsd-algonauts pattern) with noise ceilings and paired bootstrap
// statistics, and requires the headline to show the noise-normalised r
// with the voxels above the ceiling, each subject's CI and p of CL -
// control, and the test over the three subjects (artifact.NewSubjectTest, held
// to scipy in package ridge); the poster figure's caption states them too.
func TestHeadlineStatistics(t *testing.T) {
	dir := t.TempDir()
	deltas := []float64{0.05, 0.03, 0.04}
	var arts []stages.Artifact
	for i, d := range deltas {
		subj := fmt.Sprintf("subj%02d", i+1)
		sc := func(r float64, above int) map[string]any {
			return map[string]any{"mean_r": r, "ci95": []float64{r - 0.01, r + 0.01}, "mean_r_norm": r / 0.5, "n_above_ceiling": above, "n_voxels": 40}
		}
		cmp := map[string]any{"pct_improved": 70.0, "delta_mean_r": d, "delta_ci95": []float64{d - 0.02, d + 0.02}, "p_boot": 0.004 * float64(i+1), "wilcoxon_p_descriptive": 1e-30}
		p := filepath.Join(dir, subj)
		writeJSON(t, filepath.Join(p, "metrics.json"), map[string]any{
			"networks": []string{"feat_control", "feat_cl"}, "baseline": "feat_control",
			"subjects": []string{subj}, "rois": []string{"V1v"},
			"roi":     map[string]any{"V1v": map[string]any{"feat_control": sc(0.3, 1), "feat_cl": sc(0.3+d, 2)}},
			"group":   map[string]any{"early": map[string]any{"feat_control": sc(0.3, 1), "feat_cl": sc(0.3+d, 2)}},
			"compare": map[string]any{"feat_cl_vs_feat_control": map[string]any{"roi": map[string]any{"V1v": cmp}, "group": map[string]any{"early": cmp}}},
		})
		arts = append(arts, stages.Artifact{Path: p, Stage: "ridge", Labels: map[string]string{"subject": subj}})
	}
	out := t.TempDir()
	req := &stages.Request{
		Inputs: map[string][]stages.Artifact{"ridge": arts},
		Params: stages.Params{"control": "", "cl": "", "mse": "", "title": ""},
		OutDir: out, Progress: stages.NopProgress{}, Log: &strings.Builder{},
	}
	if err := New().Run(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	head, err := os.ReadFile(filepath.Join(out, "headline.md"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("headline.md:\n%s", head)
	st := artifact.NewSubjectTest(deltas)
	testText := fmt.Sprintf("over 3 subjects t(2) = %.2f, p = %.3g; sign-flip p = 0.25", *st.T, *st.P)
	for _, want := range []string{
		"| early | 0.6000 (3) | 0.6800 (6) |", // r/0.5 per subject, averaged; above-ceiling voxels summed
		"| early | +0.0400 | 3 | " + testText + " |",
		"| subj02 | early | +0.0300 | [+0.0100, +0.0500] | 0.008 |",
		"descriptive only: voxels are not independent samples",
	} {
		if !strings.Contains(string(head), want) {
			t.Errorf("headline lacks %q:\n%s", want, head)
		}
	}
	var m struct{ Headline map[string]map[string]float64 }
	b, _ := os.ReadFile(filepath.Join(out, "metrics.json"))
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	e := m.Headline["early"]
	if math.Abs(e["p_t_feat_cl_vs_feat_control"]-*st.P) > 1e-12 || e["n_subjects_feat_cl_vs_feat_control"] != 3 ||
		e["p_signflip_feat_cl_vs_feat_control"] != 0.25 || e["n_above_ceiling_feat_cl"] != 6 || math.Abs(e["norm_r_feat_control"]-0.6) > 1e-12 {
		t.Errorf("headline metrics %v", e)
	}
	var fm figureMeta
	b, err = os.ReadFile(filepath.Join(out, "figures", "groups.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &fm); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"feat_cl − feat_control, early: Δr = +0.0400 (mean of 3 subjects; per-subject p_boot 0.004 to 0.012), " + testText, "descriptive only"} {
		if !strings.Contains(fm.Caption, want) {
			t.Errorf("groups caption lacks %q: %s", want, fm.Caption)
		}
	}
}
