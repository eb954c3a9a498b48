package report

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voxflow/voxflow/numerics/npy"
	"github.com/voxflow/voxflow/stages"
)

// studyShape sizes a fixture study like the ones users run: one ridge
// instance per subject (as specs/demo.yaml), CL and MSE fine-tunes per
// (subject, ROI), probes of every tuned network.
type studyShape struct {
	subjects []string
	rois     []string // early ROIs first, then higher
	voxels   int      // per ROI and subject
	epochs   int
	noCI     bool // ridge ran with bootstrap: 0
}

func subjects(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("subj%02d", i+1)
	}
	return out
}

// writeStudy writes the ridge, curve and probe artifacts of a study and
// returns the report stage's request for them.
func writeStudy(t *testing.T, dir string, sh studyShape) *stages.Request {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	nets := []string{"feat_control", "feat_cl", "feat_mse"}
	gain := map[string]float64{"feat_control": 0, "feat_cl": 0.05, "feat_mse": 0.08}
	isEarly := func(r string) bool { return strings.HasPrefix(r, "V") || strings.HasPrefix(r, "hV") }
	var ridges []stages.Artifact
	for si, s := range sh.subjects {
		rdir := filepath.Join(dir, "ridge-"+s)
		roiScores := map[string]any{}
		groupSum := map[string]map[string][]float64{"early": {}, "higher": {}}
		cmpROI := map[string]any{}
		cmpMSE := map[string]any{}
		for ri, r := range sh.rois {
			base := make([]float64, sh.voxels)
			for v := range base {
				base[v] = 0.15 + 0.4*rng.Float64() + 0.02*float64(si) + 0.01*float64(ri)
			}
			perNet := map[string][]float32{}
			for _, n := range nets {
				rs := make([]float32, sh.voxels)
				for v := range rs {
					rs[v] = float32(base[v] + gain[n] + 0.05*rng.NormFloat64())
				}
				perNet[n] = rs
				p := filepath.Join(rdir, "scores", n, s)
				if err := os.MkdirAll(p, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := npy.WriteFile(filepath.Join(p, r+"_r.npy"), []int{sh.voxels}, rs); err != nil {
					t.Fatal(err)
				}
			}
			scores := map[string]any{}
			g := "higher"
			if isEarly(r) {
				g = "early"
			}
			for _, n := range nets {
				m := 0.0
				for _, x := range perNet[n] {
					m += float64(x)
				}
				m /= float64(sh.voxels)
				sc := map[string]any{"mean_r": m, "n_voxels": sh.voxels}
				if !sh.noCI {
					sc["ci95"] = []float64{m - 0.02, m + 0.025}
				}
				scores[n] = sc
				groupSum[g][n] = append(groupSum[g][n], m)
			}
			roiScores[r] = scores
			better := func(a, b string) float64 {
				k := 0
				for v := range perNet[a] {
					if perNet[a][v] > perNet[b][v] {
						k++
					}
				}
				return 100 * float64(k) / float64(sh.voxels)
			}
			cmpROI[r] = map[string]any{"pct_improved": better("feat_cl", "feat_control")}
			cmpMSE[r] = map[string]any{"pct_improved": better("feat_cl", "feat_mse")}
		}
		groups := map[string]any{}
		for g, byNet := range groupSum {
			if len(byNet) == 0 {
				continue
			}
			gs := map[string]any{}
			for n, v := range byNet {
				m := meanOf(v)
				sc := map[string]any{"mean_r": m, "n_voxels": sh.voxels * len(v)}
				if !sh.noCI {
					sc["ci95"] = []float64{m - 0.015, m + 0.02}
				}
				gs[n] = sc
			}
			groups[g] = gs
		}
		writeJSON(t, filepath.Join(rdir, "metrics.json"), map[string]any{
			"networks": nets, "baseline": "feat_control", "subjects": []string{s}, "rois": sh.rois,
			"roi": roiScores, "group": groups,
			"compare": map[string]any{
				"feat_cl_vs_feat_control": map[string]any{"roi": cmpROI},
				"feat_cl_vs_feat_mse":     map[string]any{"roi": cmpMSE},
			},
		})
		ridges = append(ridges, stages.Artifact{Path: rdir, Stage: "ridge", Labels: map[string]string{"subject": s}})
	}
	var curves []stages.Artifact
	probeM := map[string]any{"probe_control": map[string]any{"top1": 0.78}}
	for _, st := range []string{"tune_cl", "tune_mse"} {
		for si, s := range sh.subjects {
			for ri, r := range sh.rois {
				cdir := filepath.Join(dir, st, s, r)
				var eps []map[string]any
				for e := 1; e <= sh.epochs; e++ {
					loss := 4.2 - 0.3*math.Log(float64(e)) - 0.04*float64(si) + 0.05*float64(ri)
					eps = append(eps, map[string]any{"epoch": e, "val_loss": loss})
				}
				writeJSON(t, filepath.Join(cdir, "curve.json"), map[string]any{"epochs": eps})
				curves = append(curves, stages.Artifact{Path: cdir, Stage: st, Labels: map[string]string{"subject": s, "roi": r}})
				name := strings.Replace(st, "tune", "probe", 1) + "[" + r + "," + s + "]"
				probeM[name] = map[string]any{"top1": 0.74 + 0.03*rng.Float64()}
			}
		}
	}
	pdir := filepath.Join(dir, "probe")
	writeJSON(t, filepath.Join(pdir, "metrics.json"), probeM)
	out := filepath.Join(dir, "out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	return &stages.Request{
		Inputs: map[string][]stages.Artifact{
			"ridge":  ridges,
			"curves": curves,
			"probe":  {{Path: pdir, Stage: "probe"}},
		},
		Params: stages.Params{"control": "feat_control", "cl": "feat_cl", "mse": "feat_mse", "title": "fixture",
			"datasets": map[string]any{"probe": "Fashion-MNIST"}},
		OutDir: out, Progress: stages.NopProgress{}, Log: &strings.Builder{},
	}
}

// runStudy runs the report stage on a fixture study and returns its
// figures directory.
func runStudy(t *testing.T, sh studyShape) string {
	t.Helper()
	req := writeStudy(t, t.TempDir(), sh)
	if err := New().Run(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if d := os.Getenv("VOXFLOW_KEEP_REPORT"); d != "" {
		// For looking at the figures by eye.
		if err := os.CopyFS(filepath.Join(d, fmt.Sprintf("%ds%dr", len(sh.subjects), len(sh.rois))), os.DirFS(req.OutDir)); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(req.OutDir, "figures")
}
