package data

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/voxflow/voxflow/numerics/npy"
	"github.com/voxflow/voxflow/stages/artifact"
)

func TestSyntheticDeterministic(t *testing.T) {
	params := map[string]any{"source": SourceSynthetic, "n_images": int64(120), "n_subjects": int64(1), "voxels_per_roi": int64(8), "seed": int64(5), "image_size": int64(32)}
	a, err := runStage(t, params)
	if err != nil {
		t.Fatal(err)
	}
	b, err := runStage(t, params)
	if err != nil {
		t.Fatal(err)
	}
	params["seed"] = int64(6)
	c, err := runStage(t, params)
	if err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{"subj01/train/images.npy", "subj01/test/roi/FFA-1.npy", "subj01/noise_ceiling/V1v.npy", "subj01/manifest.json"} {
		x, _ := os.ReadFile(filepath.Join(a, rel))
		y, _ := os.ReadFile(filepath.Join(b, rel))
		z, _ := os.ReadFile(filepath.Join(c, rel))
		if len(x) == 0 || !bytes.Equal(x, y) {
			t.Errorf("%s differs between two runs with the same seed", rel)
		}
		if bytes.Equal(x, z) {
			t.Errorf("%s identical for seeds 5 and 6", rel)
		}
	}
}

// TestSyntheticStatistics checks that what can be measured in the
// generator's output matches what was planted: noise ceilings estimated
// from repeats track the true ones, category ROIs prefer their category,
// early ROIs do not, and higher ROIs are tuned within their category.
func TestSyntheticStatistics(t *testing.T) {
	dir, err := runStage(t, map[string]any{"source": SourceSynthetic, "n_images": int64(1500), "n_subjects": int64(1), "voxels_per_roi": int64(60), "seed": int64(3), "test_fraction": 0.2})
	if err != nil {
		t.Fatal(err)
	}
	m, err := artifact.ReadSubjectManifest(filepath.Join(dir, "subj01"))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.ROIs) != len(ROINames()) || m.Splits[artifact.SplitTest] != 300 || m.Splits[artifact.SplitVal] != 120 || m.Splits[artifact.SplitTrain] != 1080 {
		t.Fatalf("manifest: %d ROIs, splits %v", len(m.ROIs), m.Splits)
	}

	// Noise ceilings: estimated vs planted, over all voxels of all ROIs.
	var est, truth []float64
	for _, r := range m.ROIs {
		e, err := artifact.LoadNoiseCeiling(dir, "subj01", r.Name)
		if err != nil || len(e) != r.Voxels() {
			t.Fatalf("noise ceiling %s: %d values for %d voxels, %v", r.Name, len(e), r.Voxels(), err)
		}
		tr, err := npy.ReadFileExact[float32](artifact.TrueNoiseCeilingPath(dir, "subj01", r.Name))
		if err != nil {
			t.Fatal(err)
		}
		for i := range e {
			est = append(est, float64(e[i]))
			truth = append(truth, float64(tr.Data[i]))
		}
	}
	t.Logf("noise ceiling: r(est, planted) = %.3f over %d voxels, planted sd %.3f", pearson(est, truth), len(est), stddev(truth))
	if r := pearson(est, truth); r < 0.95 {
		t.Errorf("estimated vs planted noise ceiling: r = %.3f, want > 0.95", r)
	}
	var mad float64
	for i := range est {
		mad += math.Abs(est[i] - truth[i])
	}
	mad /= float64(len(est))
	if mad > 0.05 {
		t.Errorf("mean |estimated - planted| noise ceiling = %.3f, want < 0.05", mad)
	}
	if sd := stddev(truth); sd < 0.1 {
		t.Errorf("planted noise ceilings barely vary (sd %.3f): expected a spread as in NSD", sd)
	}

	// Selectivity: mean z-scored response to the preferred category minus
	// the mean to other images, per ROI, on the test split.
	cats, err := npy.ReadFileExact[int32](filepath.Join(dir, "subj01", "truth", "test_category.npy"))
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := npy.ReadFileExact[float32](filepath.Join(dir, "subj01", "truth", "test_attribute.npy"))
	if err != nil {
		t.Fatal(err)
	}
	selectivity := func(roi string, cat int) float64 {
		a, err := artifact.LoadROI(dir, "subj01", artifact.SplitTest, roi)
		if err != nil {
			t.Fatal(err)
		}
		var in, out float64
		var nIn, nOut int
		for i := range a.Rows() {
			row := a.Row(i)
			var mean float64
			for _, x := range row {
				mean += float64(x)
			}
			mean /= float64(len(row))
			if int(cats.Data[i]) == cat {
				in, nIn = in+mean, nIn+1
			} else {
				out, nOut = out+mean, nOut+1
			}
		}
		return in/float64(nIn) - out/float64(nOut)
	}
	for roi, cat := range map[string]int{"FFA-1": CatFaces, "OFA": CatFaces, "EBA": CatBodies, "PPA": CatPlaces, "VWFA-1": CatWords} {
		t.Logf("%s selectivity for %s: %.2f SD", roi, SceneCategories()[cat], selectivity(roi, cat))
		if s := selectivity(roi, cat); s < 0.8 {
			t.Errorf("%s: selectivity for %s = %.2f SD, want > 0.8", roi, SceneCategories()[cat], s)
		}
	}
	for _, roi := range []string{"V1v", "V2d"} {
		t.Logf("%s face selectivity: %.2f SD", roi, selectivity(roi, CatFaces))
		if s := selectivity(roi, CatFaces); math.Abs(s) > 0.4 {
			t.Errorf("%s: face selectivity %.2f SD, want an early ROI near 0", roi, s)
		}
	}

	// Within-category tuning: FFA-1 voxels' responses to faces vary with
	// the face attribute (their tuning curves), which is what a tuned
	// network can learn and a category detector cannot.
	a, err := artifact.LoadROI(dir, "subj01", artifact.SplitTest, "FFA-1")
	if err != nil {
		t.Fatal(err)
	}
	tuned := 0
	for v := range a.RowLen() {
		var bins [4]float64
		var counts [4]int
		for i := range a.Rows() {
			if cats.Data[i] == CatFaces {
				b := min(3, int(attrs.Data[i]*4))
				bins[b] += float64(a.Row(i)[v])
				counts[b]++
			}
		}
		lo, hi := math.Inf(1), math.Inf(-1)
		for b := range bins {
			m := bins[b] / float64(max(1, counts[b]))
			lo, hi = min(lo, m), max(hi, m)
		}
		if hi-lo > 0.7 {
			tuned++
		}
	}
	t.Logf("FFA-1: %d of %d voxels tuned to the face attribute; mean |est-planted| NC %.3f", tuned, a.RowLen(), mad)
	if frac := float64(tuned) / float64(a.RowLen()); frac < 0.5 {
		t.Errorf("only %.0f%% of FFA-1 voxels vary by > 0.7 SD across face attributes, want most", 100*frac)
	}

	// Retinotopy: left-hemisphere V1v voxels see the upper right of the
	// image, so their responses follow edge energy there, not in the
	// lower left.
	imgs, err := artifact.LoadImages(dir, "subj01", artifact.SplitTest)
	if err != nil {
		t.Fatal(err)
	}
	quad := func(i int, right, upper bool) float64 {
		c := newCanvas(imgs.Shape[2])
		for j, p := range imgs.Row(i) {
			c.Pix[j] = float32(p) / 255
		}
		f := edgeEnergy(c)
		var s float64
		for k := range featOri {
			for gy := range featGrid {
				for gx := range featGrid {
					if (gx >= featGrid/2) == right && (gy < featGrid/2) == upper {
						s += float64(f[k*featGrid*featGrid+gy*featGrid+gx])
					}
				}
			}
		}
		return s
	}
	ur, ll := make([]float64, imgs.Rows()), make([]float64, imgs.Rows())
	for i := range ur {
		ur[i], ll[i] = quad(i, true, true), quad(i, false, false)
	}
	v1, err := artifact.LoadROI(dir, "subj01", artifact.SplitTest, "V1v")
	if err != nil {
		t.Fatal(err)
	}
	info, _ := m.ROI("V1v")
	var rUR, rLL float64
	for v := range info.VoxelsLH {
		col := make([]float64, v1.Rows())
		for i := range col {
			col[i] = float64(v1.Row(i)[v])
		}
		rUR += pearson(col, ur) / float64(info.VoxelsLH)
		rLL += pearson(col, ll) / float64(info.VoxelsLH)
	}
	t.Logf("lh V1v: mean r with upper-right edge energy %.2f, lower-left %.2f", rUR, rLL)
	if rUR < 0.2 || rUR < rLL+0.15 {
		t.Errorf("lh V1v voxels: r with upper-right edge energy %.2f, lower-left %.2f: want the upper right to drive them", rUR, rLL)
	}

	// Z-scoring used training statistics: train columns have mean 0, sd 1.
	tr, err := artifact.LoadROI(dir, "subj01", artifact.SplitTrain, "V1v")
	if err != nil {
		t.Fatal(err)
	}
	for v := range tr.RowLen() {
		col := make([]float64, tr.Rows())
		for i := range col {
			col[i] = float64(tr.Row(i)[v])
		}
		if mu, sd := mean(col), stddev(col); math.Abs(mu) > 1e-4 || math.Abs(sd-1) > 1e-3 {
			t.Fatalf("V1v voxel %d train mean %.5f sd %.5f, want 0 and 1", v, mu, sd)
		}
	}
}

func mean(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}

func stddev(x []float64) float64 {
	m := mean(x)
	var s float64
	for _, v := range x {
		s += (v - m) * (v - m)
	}
	return math.Sqrt(s / float64(len(x)))
}

func pearson(x, y []float64) float64 {
	mx, my := mean(x), mean(y)
	var sxy, sxx, syy float64
	for i := range x {
		sxy += (x[i] - mx) * (y[i] - my)
		sxx += (x[i] - mx) * (x[i] - mx)
		syy += (y[i] - my) * (y[i] - my)
	}
	return sxy / math.Sqrt(sxx*syy)
}
