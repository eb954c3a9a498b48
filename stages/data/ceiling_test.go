package data

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voxflow/voxflow/numerics/npy"
	"github.com/voxflow/voxflow/stages/artifact"
)

// writeCeilings writes the fixture's noise ceilings (fractions, in
// voxflow's default location) scaled by scale to pattern's files.
func writeCeilings(t *testing.T, root, pattern string, scale float32) {
	t.Helper()
	for _, hemi := range hemiNames {
		a, err := npy.ReadFile[float32](filepath.Join(root, "subj01", "noise_ceiling", hemi+"_noise_ceiling.npy"))
		if err != nil {
			t.Fatal(err)
		}
		for i := range a.Data {
			a.Data[i] *= scale
		}
		p := filepath.Join(root, strings.NewReplacer("{subject}", "subj01", "{hemi}", hemi).Replace(pattern))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := npy.WriteFile(p, a.Shape, a.Data); err != nil {
			t.Fatal(err)
		}
	}
}

// TestNoiseCeilingUnits reads noise ceilings through the data stage from a
// lab's own location in percent (as NSD publishes) and in fractions, and
// requires the artifact's fractions to equal those read from voxflow's
// default location; values contradicting the declared unit fail, naming
// the file.
func TestNoiseCeilingUnits(t *testing.T) {
	root := algoFixture(t)
	ref, err := runStage(t, algoParams(root, map[string]any{"rois": []any{"V1v", "FFA-1"}}))
	if err != nil {
		t.Fatal(err)
	}
	refM, err := artifact.ReadSubjectManifest(filepath.Join(ref, "subj01"))
	if err != nil {
		t.Fatal(err)
	}
	if refM.NoiseCeilingUnit != UnitFraction || refM.NoiseCeilingSource != "{root}/subj01/noise_ceiling/{hemi}_noise_ceiling.npy" {
		t.Fatalf("default location recorded as %q in %q", refM.NoiseCeilingSource, refM.NoiseCeilingUnit)
	}
	const pct = "nsd/{subject}/{hemi}.nc_percent.npy"
	const frac = "nsd/{subject}/{hemi}.nc_fraction.npy"
	writeCeilings(t, root, pct, 100)
	writeCeilings(t, root, frac, 1)
	// The default files must not be what the stage reads below.
	for _, hemi := range hemiNames {
		rm(t, root, "subj01/noise_ceiling/"+hemi+"_noise_ceiling.npy")
	}
	for _, tc := range []struct{ pattern, unit string }{{"{root}/" + pct, UnitPercent}, {frac, UnitFraction}} {
		got, err := runStage(t, algoParams(root, map[string]any{"rois": []any{"V1v", "FFA-1"}, "noise_ceiling": tc.pattern, "noise_ceiling_unit": tc.unit}))
		if err != nil {
			t.Fatalf("%s in %s: %v", tc.pattern, tc.unit, err)
		}
		m, err := artifact.ReadSubjectManifest(filepath.Join(got, "subj01"))
		if err != nil {
			t.Fatal(err)
		}
		wantSrc := "{root}/" + strings.ReplaceAll(strings.TrimPrefix(tc.pattern, "{root}/"), "{subject}", "subj01")
		if m.NoiseCeilingUnit != tc.unit || m.NoiseCeilingSource != wantSrc || m.NoiseCeiling == "" {
			t.Errorf("%s: manifest records source %q unit %q, want %q %q", tc.unit, m.NoiseCeilingSource, m.NoiseCeilingUnit, wantSrc, tc.unit)
		}
		if _, ok := m.Sources["nsd/subj01/lh.nc_"+tc.unit+".npy"]; !ok {
			t.Errorf("%s: ceiling file not among the manifest's sources", tc.unit)
		}
		for _, roi := range []string{"V1v", "FFA-1"} {
			w, err := artifact.LoadNoiseCeiling(ref, "subj01", roi)
			if err != nil {
				t.Fatal(err)
			}
			g, err := artifact.LoadNoiseCeiling(got, "subj01", roi)
			if err != nil {
				t.Fatal(err)
			}
			if len(g) != len(w) || len(w) == 0 {
				t.Fatalf("%s %s: %d ceilings, want %d", tc.unit, roi, len(g), len(w))
			}
			for i := range w {
				if math.Abs(float64(g[i]-w[i])) > 1e-6 {
					t.Fatalf("%s %s voxel %d: ceiling %v, want the fraction %v", tc.unit, roi, i, g[i], w[i])
				}
			}
		}
	}

	for _, tc := range []struct{ pattern, unit, want string }{
		{pct, UnitFraction, "looks like percent"},
		{frac, UnitPercent, "looks like a fraction"},
		{"nsd/{subject}/{hemi}.missing.npy", UnitPercent, "not found"},
		{"../{subject}/{hemi}.npy", UnitPercent, "leaves root"},
		{"nsd/{subject}/lh.npy", UnitPercent, "no {hemi}"},
		{"nsd/{subj}/{hemi}.npy", UnitPercent, "unknown placeholder {subj}"},
	} {
		_, err := runStage(t, algoParams(root, map[string]any{"noise_ceiling": tc.pattern, "noise_ceiling_unit": tc.unit}))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s in %s: error %v, want one saying %q", tc.pattern, tc.unit, err, tc.want)
			continue
		}
		t.Logf("%s in %s: %v", tc.pattern, tc.unit, err)
		if strings.HasPrefix(tc.want, "looks like") && !strings.Contains(err.Error(), filepath.Join(root, "nsd", "subj01", "lh")) {
			t.Errorf("%s: error %v does not name the file", tc.pattern, err)
		}
	}
	// The synthetic source has no ceiling files to point at.
	if _, err := runStage(t, map[string]any{"n_images": int64(20), "noise_ceiling": pct}); err == nil || !strings.Contains(err.Error(), "noise_ceiling") {
		t.Errorf("synthetic source with noise_ceiling: error %v", err)
	}
}

// TestNoiseCeilingFsaverage reads percent ceilings given on every fsaverage
// vertex (NSD's own surface) and maps them to the challenge space with the
// release's roi_masks/<hemi>.all-vertices_fsaverage_space.npy.
func TestNoiseCeilingFsaverage(t *testing.T) {
	root := algoFixture(t)
	ref, err := runStage(t, algoParams(root, map[string]any{"rois": []any{"V1v"}}))
	if err != nil {
		t.Fatal(err)
	}
	for _, hemi := range hemiNames {
		a, err := npy.ReadFile[float32](filepath.Join(root, "subj01", "noise_ceiling", hemi+"_noise_ceiling.npy"))
		if err != nil {
			t.Fatal(err)
		}
		// Every other fsaverage vertex is outside the challenge space and
		// holds a value that would be wrong if it leaked through.
		var mask []float64
		var vals []float32
		for _, x := range a.Data {
			mask, vals = append(mask, 0, 1), append(vals, 99, 100*x)
		}
		if err := npy.WriteFile(filepath.Join(root, "subj01", "roi_masks", hemi+".all-vertices_fsaverage_space.npy"), []int{len(mask)}, mask); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(root, "fsavg"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := npy.WriteFile(filepath.Join(root, "fsavg", "subj01."+hemi+".npy"), []int{len(vals)}, vals); err != nil {
			t.Fatal(err)
		}
	}
	got, err := runStage(t, algoParams(root, map[string]any{"rois": []any{"V1v"}, "noise_ceiling": "fsavg/{subject}.{hemi}.npy", "noise_ceiling_unit": UnitPercent}))
	if err != nil {
		t.Fatal(err)
	}
	w, err := artifact.LoadNoiseCeiling(ref, "subj01", "V1v")
	if err != nil {
		t.Fatal(err)
	}
	g, err := artifact.LoadNoiseCeiling(got, "subj01", "V1v")
	if err != nil {
		t.Fatal(err)
	}
	if len(g) != len(w) || len(w) == 0 {
		t.Fatalf("%d ceilings, want %d", len(g), len(w))
	}
	for i := range w {
		if math.Abs(float64(g[i]-w[i])) > 1e-6 {
			t.Fatalf("voxel %d: ceiling %v, want %v (from the challenge-space vertex)", i, g[i], w[i])
		}
	}
	m, err := artifact.ReadSubjectManifest(filepath.Join(got, "subj01"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Sources["subj01/roi_masks/lh.all-vertices_fsaverage_space.npy"]; !ok {
		t.Errorf("the fsaverage mask used is not among the manifest's sources")
	}
}
