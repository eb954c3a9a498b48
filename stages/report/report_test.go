package report

import (
	"context"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voxflow/voxflow/numerics/npy"
	"github.com/voxflow/voxflow/stages"
)

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReportDrawsEveryFigureAndHeadline(t *testing.T) {
	dir := t.TempDir()
	ridge := filepath.Join(dir, "ridge")
	sc := func(r float64) map[string]any {
		return map[string]any{"mean_r": r, "ci95": []float64{r - 0.01, r + 0.02}, "n_voxels": 4}
	}
	writeJSON(t, filepath.Join(ridge, "metrics.json"), map[string]any{
		"networks": []string{"feat_control", "feat_cl", "feat_mse"}, "baseline": "feat_control",
		"subjects": []string{"subj01"}, "rois": []string{"V1v", "FFA-1"},
		"roi": map[string]any{"V1v": map[string]any{"feat_control": sc(0.3), "feat_cl": sc(0.35), "feat_mse": sc(0.32)}},
		"group": map[string]any{
			"early":  map[string]any{"feat_control": sc(0.30), "feat_cl": sc(0.35), "feat_mse": sc(0.32)},
			"higher": map[string]any{"feat_control": sc(0.10), "feat_cl": sc(0.25), "feat_mse": sc(0.20)},
			// The poster's third group: the anatomical streams ROIs.
			"streams": map[string]any{"feat_control": sc(0.15), "feat_cl": sc(0.22), "feat_mse": sc(0.18)},
		},
		"compare": map[string]any{
			"feat_cl_vs_feat_control": map[string]any{
				"roi":   map[string]any{"V1v": map[string]any{"pct_improved": 60.0}, "FFA-1": map[string]any{"pct_improved": 80.0}},
				"group": map[string]any{"early": map[string]any{"pct_improved": 60.0}, "higher": map[string]any{"pct_improved": 80.0}, "streams": map[string]any{"pct_improved": 65.0}},
			},
			"feat_cl_vs_feat_mse": map[string]any{
				"roi":   map[string]any{"V1v": map[string]any{"pct_improved": 55.0}, "FFA-1": map[string]any{"pct_improved": 70.0}},
				"group": map[string]any{"early": map[string]any{"pct_improved": 55.0}, "higher": map[string]any{"pct_improved": 70.0}},
			},
		},
	})
	for _, n := range []string{"feat_control", "feat_cl"} {
		p := filepath.Join(ridge, "scores", n, "subj01")
		os.MkdirAll(p, 0o755)
		if err := npy.WriteFile(filepath.Join(p, "V1v_r.npy"), []int{4}, []float32{0.1, 0.2, 0.3, 0.4}); err != nil {
			t.Fatal(err)
		}
	}
	curve := filepath.Join(dir, "tune")
	writeJSON(t, filepath.Join(curve, "curve.json"), map[string]any{"epochs": []map[string]any{{"epoch": 1, "val_loss": 2.0}, {"epoch": 2, "val_loss": 1.5}}})
	probe := filepath.Join(dir, "probe")
	writeJSON(t, filepath.Join(probe, "metrics.json"), map[string]any{"feat_control": map[string]any{"top1": 0.8}, "feat_cl": map[string]any{"top1": 0.78}})

	out := filepath.Join(dir, "out")
	os.MkdirAll(out, 0o755)
	req := &stages.Request{
		Inputs: map[string][]stages.Artifact{
			"ridge":  {{Path: ridge, Stage: "ridge"}},
			"curves": {{Path: curve, Stage: "tune_cl", Labels: map[string]string{"roi": "V1v"}}},
			"probe":  {{Path: probe, Stage: "probe", Labels: map[string]string{"dataset": "fashion"}}},
		},
		Params: stages.Params{"control": "", "cl": "", "mse": "", "title": "test"},
		OutDir: out, Progress: stages.NopProgress{}, Log: &strings.Builder{},
	}
	if err := New().Run(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if d := os.Getenv("VOXFLOW_KEEP_REPORT"); d != "" {
		// For looking at the figures by eye.
		if err := os.CopyFS(d, os.DirFS(out)); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"groups", "scatter", "rdiff", "improved", "curves-tune_cl", "probe"} {
		fh, err := os.Open(filepath.Join(out, "figures", f+".png"))
		if err != nil {
			t.Fatalf("figure %s: %v", f, err)
		}
		img, err := png.Decode(fh)
		fh.Close()
		if err != nil || img.Bounds().Dx() < 100 {
			t.Fatalf("figure %s.png is not a real image: %v", f, err)
		}
		svg, err := os.ReadFile(filepath.Join(out, "figures", f+".svg"))
		if err != nil {
			t.Fatalf("figure %s.svg: %v", f, err)
		}
		if err := validateSVG(svg); err != nil {
			t.Errorf("figure %s.svg: %v", f, err)
		}
		if f == "groups" && !strings.Contains(string(svg), "anatomical (streams)") {
			t.Errorf("the groups figure does not name the anatomical group")
		}
	}
	head, err := os.ReadFile(filepath.Join(out, "headline.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| higher | 0.1000 | 0.2500 | 0.2000 | 80.0 | 70.0 |", "% voxels feat_cl > feat_control",
		"| anatomical (streams) | 0.1500 | 0.2200 | 0.1800 | 65.0 | - |", "anatomical (streams) = the streams atlas (early, midventral"} {
		if !strings.Contains(string(head), want) {
			t.Errorf("headline lacks %q:\n%s", want, head)
		}
	}
	var m struct{ Headline map[string]map[string]float64 }
	b, _ := os.ReadFile(filepath.Join(out, "metrics.json"))
	if err := json.Unmarshal(b, &m); err != nil || m.Headline["early"]["feat_cl"] != 0.35 || m.Headline["streams"]["feat_cl"] != 0.22 {
		t.Fatalf("metrics.json headline: %v %s", err, b)
	}
}

func TestPreciseTicksTellLabelsApart(t *testing.T) {
	for _, tc := range []struct {
		lo, hi float64
		want   []string
	}{
		{0, 78, []string{"0", "25", "50", "75"}},
		{3.2575, 3.2583, nil},
		{-0.42, 0.93, nil},
	} {
		var labels []string
		seen := map[string]bool{}
		for _, tk := range (preciseTicks{}).Ticks(tc.lo, tc.hi) {
			if tk.Label == "" {
				continue
			}
			if seen[tk.Label] {
				t.Errorf("[%g, %g]: label %q repeats", tc.lo, tc.hi, tk.Label)
			}
			seen[tk.Label] = true
			labels = append(labels, tk.Label)
		}
		if len(labels) < 2 {
			t.Errorf("[%g, %g]: labels %q", tc.lo, tc.hi, labels)
		}
		if tc.want != nil && strings.Join(labels, " ") != strings.Join(tc.want, " ") {
			t.Errorf("[%g, %g]: labels %q, want %q", tc.lo, tc.hi, labels, tc.want)
		}
	}
}

// TestGroupsCaptionSaysWhenThereAreNoCIs: ridge run with bootstrap: 0
// writes no ci95; the poster's bar chart then draws no error bars and says
// why instead of showing made-up ones.
func TestGroupsCaptionSaysWhenThereAreNoCIs(t *testing.T) {
	paths := map[bool]int{}
	for _, noCI := range []bool{false, true} {
		dir := runStudy(t, studyShape{subjects: subjects(2), rois: []string{"V1v", "FFA-1"}, voxels: 10, epochs: 2, noCI: noCI})
		var m figureMeta
		b, err := os.ReadFile(filepath.Join(dir, "groups.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		svg, err := os.ReadFile(filepath.Join(dir, "groups.svg"))
		if err != nil {
			t.Fatal(err)
		}
		paths[noCI] = strings.Count(string(svg), "<path")
		switch {
		case noCI && !strings.Contains(m.Caption, "No error bars: the ridge metrics carry no bootstrap CIs"):
			t.Errorf("no CIs: caption %q", m.Caption)
		case !noCI && !strings.Contains(m.Caption, "bootstrap 95% CIs over test images, averaged over the 2 ridge inputs"):
			t.Errorf("with CIs: caption %q", m.Caption)
		}
	}
	// 3 networks x 2 groups: each error bar is a whisker and two caps.
	if d := paths[false] - paths[true]; d < 6 {
		t.Errorf("error bars add %d SVG paths, want >= 6 (with CIs %d, without %d)", d, paths[false], paths[true])
	}
}
