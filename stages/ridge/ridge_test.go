package ridge

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voxflow/voxflow/numerics/npy"
	"github.com/voxflow/voxflow/stages"
	"github.com/voxflow/voxflow/stages/artifact"
)

type testROI struct {
	name, group string
	lh, rh      int
}

// splitOrder fixes the order of random draws (map order is random).
var splitOrder = []string{"train", "val", "test"}

var testROIs = []testROI{{"V1v", "early", 12, 14}, {"FFA-1", "higher", 10, 10}, {"early", "streams", 9, 9}}

// writeFixture writes a one-subject data artifact whose voxels are driven
// by a hidden latent z, and two networks' features: "good" sees z with a
// little noise, "control" sees z with much more. It returns the data
// directory and features artifacts. Column j of the responses of each ROI
// is z w_j + noise, z-scored like the data stage does.
func writeFixture(t *testing.T, root string, subjects ...string) (string, []stages.Artifact) {
	t.Helper()
	if len(subjects) == 0 {
		subjects = []string{"subj01"}
	}
	rng := rand.New(rand.NewPCG(21, 12))
	splits := map[string]int{"train": 160, "val": 40, "test": 80}
	const latent = 6
	z := map[string][]float64{}
	for _, sp := range splitOrder {
		n := splits[sp]
		z[sp] = make([]float64, n*latent)
		for i := range z[sp] {
			z[sp][i] = rng.NormFloat64()
		}
	}
	dataDir := filepath.Join(root, "data")
	writeJSONFile(t, filepath.Join(dataDir, "manifest.json"), map[string]any{"kind": "nsd", "source": "test", "subjects": subjects, "image_size": 8})
	// Every subject sees the same images; their voxels differ.
	for _, subj := range subjects {
		writeSubject(t, rng, dataDir, subj, splits, z, latent)
	}
	// labels go on the artifact, netLabels into features.json.
	feature := func(name string, noise float64, labels, netLabels map[string]string) stages.Artifact {
		dir := filepath.Join(root, name+labels["roi"]+netLabels["roi"])
		writeJSONFile(t, filepath.Join(dir, "features.json"), map[string]any{"net_stage": name, "net_labels": netLabels, "layer": "output", "dim": 10, "kind": "nsd"})
		mix := make([]float64, latent*10)
		for i := range mix {
			mix[i] = rng.NormFloat64()
		}
		for _, sp := range splitOrder {
			n := splits[sp]
			x := make([]float32, n*10)
			for i := 0; i < n; i++ {
				for c := 0; c < 10; c++ {
					s := 0.0
					for k := 0; k < latent; k++ {
						s += z[sp][i*latent+k] * mix[k*10+c]
					}
					x[i*10+c] = float32(s + noise*rng.NormFloat64() + 5)
				}
			}
			for _, subj := range subjects {
				writeNpy(t, filepath.Join(dir, subj, sp+".npy"), []int{n, 10}, x)
			}
		}
		return stages.Artifact{Path: dir, Stage: name, Labels: labels}
	}
	arts := []stages.Artifact{
		feature("control", 3, nil, nil),
		feature("good", 0.1, nil, nil),
		feature("tune_cl", 0.5, map[string]string{"subject": "subj01", "roi": "V1v"}, nil),
		// A features stage without foreach: the ROI comes from the network.
		feature("tune_cl", 0.5, nil, map[string]string{"subject": "subj01", "roi": "FFA-1"}),
	}
	return dataDir, arts
}

func writeSubject(t *testing.T, rng *rand.Rand, dataDir, subj string, splits map[string]int, z map[string][]float64, latent int) {
	t.Helper()
	var rois []map[string]any
	for _, r := range testROIs {
		rois = append(rois, map[string]any{"name": r.name, "family": "f", "group": r.group, "voxels_lh": r.lh, "voxels_rh": r.rh})
		v := r.lh + r.rh
		w := make([]float64, latent*v)
		for i := range w {
			w[i] = rng.NormFloat64()
		}
		for _, sp := range splitOrder {
			n := splits[sp]
			y := make([]float32, n*v)
			for i := 0; i < n; i++ {
				for j := 0; j < v; j++ {
					s := 0.0
					for k := 0; k < latent; k++ {
						s += z[sp][i*latent+k] * w[k*v+j]
					}
					y[i*v+j] = float32(s + rng.NormFloat64())
				}
			}
			writeNpy(t, filepath.Join(dataDir, subj, sp, "roi", r.name+".npy"), []int{n, v}, y)
		}
		if r.name == "V1v" {
			nc := make([]float32, v)
			for j := range nc {
				nc[j] = 0.81
			}
			writeNpy(t, filepath.Join(dataDir, subj, "noise_ceiling", r.name+".npy"), []int{v}, nc)
		}
	}
	writeJSONFile(t, filepath.Join(dataDir, subj, "manifest.json"), map[string]any{"subject": subj, "rois": rois, "splits": splits})
}

func writeNpy(t *testing.T, path string, shape []int, data []float32) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := npy.WriteFile(path, shape, data); err != nil {
		t.Fatal(err)
	}
}

func writeJSONFile(t *testing.T, path string, v any) {
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

// params returns the declared defaults with overrides, as the engine would.
func params(over map[string]any) stages.Params {
	p := stages.Params{}
	for _, s := range New().Describe().Params {
		p[s.Name] = s.Default
	}
	for k, v := range over {
		p[k] = v
	}
	return p
}

func TestRunEndToEnd(t *testing.T) {
	root := t.TempDir()
	dataDir, arts := writeFixture(t, root)
	out := filepath.Join(root, "out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	var updates int
	req := &stages.Request{
		Instance: "ridge",
		Inputs:   map[string][]stages.Artifact{"data": {{Path: dataDir, Stage: "data"}}, "features": arts},
		Params:   params(map[string]any{"bootstrap": int64(200), "save_weights": true}),
		OutDir:   out,
		Progress: stages.ProgressFunc(func(stages.Update) { updates++ }),
		Log:      &log,
	}
	if err := New().Run(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	var m artifact.Metrics
	b, err := os.ReadFile(filepath.Join(out, "metrics.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if mt := m.Method; mt.CVScore != "r" || mt.Folds != 5 || mt.Standardise != "per-fold" || mt.Dtype != "float32" || mt.Reduce != "none" || len(mt.Alphas) != 15 {
		t.Errorf("method %+v; want the documented defaults", mt)
	}
	if strings.Join(m.ROIs, ",") != "V1v,FFA-1,early" {
		t.Errorf("rois %v, want the data's order V1v,FFA-1,early", m.ROIs)
	}
	if m.Baseline != "control" || strings.Join(m.Networks, ",") != "control,good,tune_cl" {
		t.Fatalf("networks %v baseline %q; want control,good,tune_cl with baseline control", m.Networks, m.Baseline)
	}
	for _, r := range testROIs {
		v := r.lh + r.rh
		good, ctl := m.ROI[r.name]["good"], m.ROI[r.name]["control"]
		if good == nil || ctl == nil {
			t.Fatalf("ROI %s: missing scores %v", r.name, m.ROI[r.name])
		}
		if good.MeanR < 0.8 || good.MeanR < ctl.MeanR+0.1 {
			t.Errorf("ROI %s: good mean r %.3f, control %.3f; want good > 0.8 and well above control", r.name, good.MeanR, ctl.MeanR)
		}
		if good.NVoxels != v {
			t.Errorf("ROI %s: %d voxels, want %d", r.name, good.NVoxels, v)
		}
		if len(good.CI95) != 2 || good.CI95[0] > good.MeanR || good.CI95[1] < good.MeanR {
			t.Errorf("ROI %s: ci95 %v does not bracket mean r %.3f", r.name, good.CI95, good.MeanR)
		}
		rs := readNpy(t, filepath.Join(out, "scores", "good", "subj01", r.name+"_r.npy"))
		if len(rs) != v || math.Abs(mean64(rs)-good.MeanR) > 1e-6 {
			t.Errorf("ROI %s: %s_r.npy has %d values with mean %.4f; metrics say %d, %.4f", r.name, r.name, len(rs), mean64(rs), v, good.MeanR)
		}
		if as := readNpy(t, filepath.Join(out, "scores", "good", "subj01", r.name+"_alpha.npy")); len(as) != v || as[0] <= 0 {
			t.Errorf("ROI %s: alpha file %v", r.name, as)
		}
		w, err := npy.ReadFile[float32](filepath.Join(out, "scores", "control", "subj01", r.name+"_weights.npy"))
		if err != nil || w.Shape[0] != 10 || w.Shape[1] != v {
			t.Errorf("ROI %s: weights %v, %v; want 10 x %d", r.name, err, w, v)
		}
		c := m.Compare["good_vs_control"].ROI[r.name]
		if c == nil || c.PctImproved < 90 || c.DeltaMeanR <= 0 || c.NVoxels != v {
			t.Errorf("ROI %s: good vs control %+v; want most voxels improved", r.name, c)
		}
		if c != nil && c.WilcoxonP > 0.01 {
			t.Errorf("ROI %s: Wilcoxon p = %g for a clear improvement", r.name, c.WilcoxonP)
		}
		// 200 paired resamples of the test images: a clear improvement
		// sits at the bootstrap p's floor, 2/201, with a CI above zero.
		if c != nil && (c.PBoot == nil || *c.PBoot > 0.01 || len(c.DeltaCI95) != 2 || c.DeltaCI95[0] <= 0) {
			t.Errorf("ROI %s: good vs control p_boot %v, CI %v; want a significant paired difference", r.name, c.PBoot, c.DeltaCI95)
		}
	}
	// The ROI-tuned network is used only where it was tuned.
	if m.ROI["V1v"]["tune_cl"] == nil || m.ROI["FFA-1"]["tune_cl"] == nil || m.ROI["early"]["tune_cl"] != nil {
		t.Errorf("tune_cl scored on %v, %v, %v; want V1v and FFA-1 only", m.ROI["V1v"]["tune_cl"], m.ROI["FFA-1"]["tune_cl"], m.ROI["early"]["tune_cl"])
	}
	if _, err := os.Stat(filepath.Join(out, "scores", "tune_cl", "subj01", "early_r.npy")); !os.IsNotExist(err) {
		t.Errorf("tune_cl wrote scores for the early stream ROI it was not tuned for")
	}
	if _, ok := m.Compare["good_vs_tune_cl"]; !ok {
		t.Errorf("no pairwise comparison good_vs_tune_cl in %v", keys(m.Compare))
	}
	if n := m.ROI["V1v"]["good"].MeanRNorm; n == nil || math.Abs(*n-m.ROI["V1v"]["good"].MeanR/0.9) > 1e-6 {
		t.Errorf("V1v mean_r_norm %v, want mean r / sqrt(0.81)", n)
	}
	if m.ROI["FFA-1"]["good"].MeanRNorm != nil || m.ROI["FFA-1"]["good"].NAboveCeiling != nil {
		t.Errorf("FFA-1 has no noise ceiling but got mean_r_norm or n_above_ceiling")
	}
	if m.ROI["V1v"]["good"].NAboveCeiling == nil {
		t.Errorf("V1v has noise ceilings but no n_above_ceiling")
	}
	for _, g := range []string{"early", "higher", "streams"} {
		if s := m.Group[g]["good"]; s == nil || s.NROIs != 1 || m.Compare["good_vs_control"].Group[g] == nil {
			t.Errorf("group %s: %+v", g, s)
		}
	}
	if !strings.Contains(log.String(), "V1v") || !strings.Contains(log.String(), "[higher]") {
		t.Errorf("log has no table:\n%s", log.String())
	}
	if updates == 0 {
		t.Error("no progress updates")
	}
}

func TestRunSelectsROIAndChecksBaseline(t *testing.T) {
	root := t.TempDir()
	dataDir, arts := writeFixture(t, root)
	run := func(over map[string]any) (*artifact.Metrics, error) {
		out := t.TempDir()
		req := &stages.Request{
			Inputs:   map[string][]stages.Artifact{"data": {{Path: dataDir}}, "features": arts},
			Params:   params(over),
			OutDir:   out,
			Progress: stages.NopProgress{},
			Log:      &bytes.Buffer{},
		}
		if err := New().Run(context.Background(), req); err != nil {
			return nil, err
		}
		var m artifact.Metrics
		b, _ := os.ReadFile(filepath.Join(out, "metrics.json"))
		return &m, json.Unmarshal(b, &m)
	}
	m, err := run(map[string]any{"roi": "FFA-1", "bootstrap": int64(0), "baseline": "good", "dtype": "float64", "cv_score": "r"})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.ROI) != 1 || m.ROI["FFA-1"] == nil || m.ROI["FFA-1"]["good"].CI95 != nil {
		t.Errorf("roi=FFA-1, bootstrap=0: got ROIs %v", m.ROI)
	}
	if c := m.Compare["control_vs_good"]; c == nil || c.ROI["FFA-1"].PctImproved > 10 {
		t.Errorf("control vs good baseline: %+v", c)
	}
	if _, err := run(map[string]any{"baseline": "nosuch"}); err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("unknown baseline: err = %v", err)
	}
	if _, err := run(map[string]any{"roi": "PPA"}); err == nil || !strings.Contains(err.Error(), "PPA") {
		t.Errorf("unknown ROI: err = %v", err)
	}
}

func readNpy(t *testing.T, path string) []float32 {
	t.Helper()
	a, err := npy.ReadFile[float32](path)
	if err != nil {
		t.Fatal(err)
	}
	return a.Data
}

func mean64(x []float32) float64 {
	s := 0.0
	for _, v := range x {
		s += float64(v)
	}
	return s / float64(len(x))
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestRunTwoSubjects(t *testing.T) {
	root := t.TempDir()
	dataDir, arts := writeFixture(t, root, "subj01", "subj02")
	out := t.TempDir()
	req := &stages.Request{
		Inputs:   map[string][]stages.Artifact{"data": {{Path: dataDir}}, "features": arts},
		Params:   params(map[string]any{"bootstrap": int64(50), "rois": []any{"V1v", "early"}}),
		OutDir:   out,
		Progress: stages.NopProgress{},
		Log:      &bytes.Buffer{},
	}
	if err := New().Run(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	var m artifact.Metrics
	b, _ := os.ReadFile(filepath.Join(out, "metrics.json"))
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Subject) != 2 || len(m.ROI) != 2 {
		t.Fatalf("subjects %v, ROIs %v; want 2 subjects and V1v, early", keys(m.Subject), keys(m.ROI))
	}
	for _, roi := range []string{"V1v", "early"} {
		s1, s2 := m.Subject["subj01"].ROI[roi]["good"], m.Subject["subj02"].ROI[roi]["good"]
		all := m.ROI[roi]["good"]
		if math.Abs(all.MeanR-(s1.MeanR+s2.MeanR)/2) > 1e-12 || all.NVoxels != s1.NVoxels+s2.NVoxels {
			t.Errorf("%s: pooled %+v, subjects %+v and %+v", roi, all, s1, s2)
		}
		c := m.Compare["good_vs_control"].ROI[roi]
		if c.NVoxels != all.NVoxels {
			t.Errorf("%s: comparison pools %d voxels, want %d", roi, c.NVoxels, all.NVoxels)
		}
		if st := c.Subjects; st == nil || st.N != 2 || st.DF != 1 || st.PSignFlip != 0.5 {
			t.Errorf("%s: test over subjects %+v; want 2 subjects, sign-flip p 0.5", roi, st)
		}
	}
	// tune_cl's artifacts are labelled subj01: subj02 has no tune_cl scores.
	if m.Subject["subj02"].ROI["V1v"]["tune_cl"] != nil || m.Subject["subj01"].ROI["V1v"]["tune_cl"] == nil {
		t.Errorf("tune_cl scored for the wrong subjects")
	}
	if _, err := os.Stat(filepath.Join(out, "scores", "good", "subj02", "early_r.npy")); err != nil {
		t.Error(err)
	}
}
