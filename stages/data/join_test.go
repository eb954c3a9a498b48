package data

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/voxflow/voxflow/stages"
	"github.com/voxflow/voxflow/stages/artifact"
)

// readTree maps every file under dir (relative path) to its bytes.
func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		out[rel] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sameTree fails unless two directories hold the same files, byte for byte.
func sameTree(t *testing.T, got, want string) {
	t.Helper()
	sameFiles(t, readTree(t, got), readTree(t, want))
}

// sameFiles fails unless two trees read by readTree are equal.
func sameFiles(t *testing.T, g, w map[string][]byte) {
	t.Helper()
	var names []string
	for n := range w {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if b, ok := g[n]; !ok {
			t.Errorf("join lacks %s", n)
		} else if !bytes.Equal(b, w[n]) {
			t.Errorf("%s differs from the full artifact's:\n%.400s\nwant\n%.400s", n, b, w[n])
		}
	}
	for n := range g {
		if _, ok := w[n]; !ok {
			t.Errorf("join has %s, the full artifact does not", n)
		}
	}
}

func art(stage, path string, labels map[string]string) stages.Artifact {
	return stages.Artifact{Path: path, Stage: stage, Output: OutputPort, Labels: labels}
}

// TestJoinEqualsAll builds one subject's images part and one responses part
// per ROI, joins them, and checks the join is byte-identical to the full
// artifact of the same subject and ROIs, for both NSD-like sources. It
// also checks what makes a study cheap to extend: the images part has no
// responses and the responses part no images, and a responses part does
// not change with the image size.
func TestJoinEqualsAll(t *testing.T) {
	rois := []string{"V1v", "FFA-1"}
	synth := map[string]any{"source": SourceSynthetic, "n_images": int64(60), "voxels_per_roi": int64(6), "image_size": int64(16), "seed": int64(3)}
	for _, tc := range []struct {
		name   string
		params map[string]any
	}{
		{"synthetic", synth},
		{"algonauts", algoParams(algoFixture(t), nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			with := func(extra map[string]any) map[string]any {
				p := map[string]any{"subject": "subj01"}
				for k, v := range tc.params {
					p[k] = v
				}
				for k, v := range extra {
					p[k] = v
				}
				return p
			}
			full, err := runStage(t, with(map[string]any{"rois": []any{rois[0], rois[1]}}))
			if err != nil {
				t.Fatal(err)
			}
			images, err := runStage(t, with(map[string]any{"part": artifact.PartImages}))
			if err != nil {
				t.Fatal(err)
			}
			parts := []stages.Artifact{art("nsd_images", images, map[string]string{"subject": "subj01"})}
			for _, r := range rois {
				resp, err := runStage(t, with(map[string]any{"part": artifact.PartResponses, "roi": r}))
				if err != nil {
					t.Fatal(err)
				}
				parts = append(parts, art("nsd_resp", resp, map[string]string{"subject": "subj01", "roi": r}))
			}
			for n := range readTree(t, images) {
				if strings.Contains(n, "roi/") || strings.Contains(n, "noise_ceiling") {
					t.Errorf("images part has %s", n)
				}
			}
			for n := range readTree(t, parts[1].Path) {
				if strings.HasSuffix(n, "images.npy") || strings.HasSuffix(n, FilesName) {
					t.Errorf("responses part has %s", n)
				}
			}
			joined, err := runStageWith(t, nil, map[string][]stages.Artifact{PartsPort: parts})
			if err != nil {
				t.Fatal(err)
			}
			// A responses part records only its ROIs' mask families among
			// its sources; the full artifact records every mask.
			want := readTree(t, full)
			var sm artifact.SubjectManifest
			if err := json.Unmarshal(want["subj01/manifest.json"], &sm); err != nil {
				t.Fatal(err)
			}
			dropped := 0
			for src := range sm.Sources {
				if strings.Contains(src, "roi_masks/") && !strings.Contains(src, ".prf-visualrois_") && !strings.Contains(src, ".floc-faces_") {
					delete(sm.Sources, src)
					dropped++
				}
			}
			if tc.name == "algonauts" && dropped == 0 {
				t.Error("the full artifact records no other mask families")
			}
			b, err := json.MarshalIndent(&sm, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			want["subj01/manifest.json"] = append(b, '\n')
			sameFiles(t, readTree(t, joined), want)
			if b1, b2 := readFile(t, filepath.Join(filepath.Dir(joined), "metrics.json")), readFile(t, filepath.Join(filepath.Dir(full), "metrics.json")); !bytes.Equal(b1, b2) {
				t.Errorf("join metrics %s, full artifact's %s", b1, b2)
			}

			if tc.name == "synthetic" {
				// A synthetic responses part generates only its ROIs'
				// vertices; they must be those of a full generation.
				every, err := runStage(t, with(nil))
				if err != nil {
					t.Fatal(err)
				}
				ev := readTree(t, every)
				for n, b := range readTree(t, parts[2].Path) {
					if strings.HasSuffix(n, ".npy") && !bytes.Equal(b, ev[n]) {
						t.Errorf("%s of a one-ROI responses part differs from the artifact of every ROI", n)
					}
				}
			}

			// The image size is not the responses' business.
			resp2, err := runStage(t, with(map[string]any{"part": artifact.PartResponses, "roi": rois[1], "image_size": int64(24)}))
			if err != nil {
				t.Fatal(err)
			}
			sameTree(t, resp2, parts[2].Path)

			// Reading responses from an images part says what to do.
			if _, err := artifact.LoadROI(images, "subj01", artifact.SplitTrain, "V1v"); err == nil || !strings.Contains(err.Error(), "part: images only: join it") {
				t.Errorf("LoadROI on an images part: %v", err)
			}
		})
	}
}

// TestJoinRefusesMismatchedParts checks the join's checks: parts split with
// different seeds, a subject without images, a duplicate ROI, a full
// artifact among the parts, and part with a join.
func TestJoinRefusesMismatchedParts(t *testing.T) {
	base := map[string]any{"source": SourceSynthetic, "n_images": int64(40), "voxels_per_roi": int64(4), "image_size": int64(8), "seed": int64(3), "subject": "subj01"}
	run := func(extra map[string]any) string {
		p := map[string]any{}
		for k, v := range base {
			p[k] = v
		}
		for k, v := range extra {
			p[k] = v
		}
		d, err := runStage(t, p)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	images := art("nsd_images", run(map[string]any{"part": artifact.PartImages}), map[string]string{"subject": "subj01"})
	v1 := art("nsd_resp", run(map[string]any{"part": artifact.PartResponses, "roi": "V1v"}), map[string]string{"subject": "subj01", "roi": "V1v"})
	seed8 := art("nsd_resp8", run(map[string]any{"part": artifact.PartResponses, "roi": "PPA", "seed": int64(8)}), map[string]string{"subject": "subj01", "roi": "PPA"})
	val := art("nsd_val", run(map[string]any{"part": artifact.PartResponses, "roi": "PPA", "val_fraction": 0.2}), map[string]string{"subject": "subj01", "roi": "PPA"})
	full := art("nsd", run(map[string]any{"rois": []any{"V1v"}}), nil)
	for _, tc := range []struct {
		name   string
		parts  []stages.Artifact
		params map[string]any
		want   []string
	}{
		{"seed", []stages.Artifact{images, seed8}, nil, []string{"nsd_images[subject=subj01] and nsd_resp8[roi=PPA,subject=subj01] split subject subj01's images differently", "seed 3 vs 8"}},
		{"two sources", []stages.Artifact{images, v1, seed8}, nil, []string{"expected responses of one source"}},
		{"val_fraction", []stages.Artifact{images, val}, nil, []string{"nsd_val[roi=PPA,subject=subj01]", "val_fraction 0.1 vs 0.2"}},
		{"no images", []stages.Artifact{v1}, nil, []string{"subject subj01 has responses (nsd_resp[roi=V1v,subject=subj01]) but no images part"}},
		{"no responses", []stages.Artifact{images}, nil, []string{"no responses part"}},
		{"duplicate ROI", []stages.Artifact{images, v1, v1}, nil, []string{"ROI V1v of subject subj01 is in both"}},
		{"full artifact", []stages.Artifact{images, full}, nil, []string{"input parts nsd: a full data artifact, expected a part"}},
		{"part and parts", []stages.Artifact{images, v1}, map[string]any{"part": artifact.PartImages}, []string{"param part: images with input parts"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runStageWith(t, tc.params, map[string][]stages.Artifact{PartsPort: tc.parts})
			if err == nil {
				t.Fatal("join succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	if _, err := runStage(t, map[string]any{"source": SourceSyntheticCategories, "n_images": int64(40), "image_size": int64(8), "part": artifact.PartImages}); err == nil || !strings.Contains(err.Error(), "applies to NSD-like sources") {
		t.Errorf("part images of a classification set: %v", err)
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAlgonautsMaxImages checks the rehearsal subset: max_images keeps the
// first N images of a subject, responses and images alike.
func TestAlgonautsMaxImages(t *testing.T) {
	root := algoFixture(t)
	d, err := runStage(t, algoParams(root, map[string]any{"max_images": int64(30), "rois": []any{"V1v"}}))
	if err != nil {
		t.Fatal(err)
	}
	m, err := artifact.ReadSubjectManifest(filepath.Join(d, "subj01"))
	if err != nil {
		t.Fatal(err)
	}
	first := map[int]bool{}
	for i := range 30 {
		first[synthNSDID(i)] = true
	}
	n := 0
	for _, s := range artifact.Splits() {
		n += m.Splits[s]
		a, err := artifact.LoadROI(d, "subj01", s, "V1v")
		if err != nil {
			t.Fatal(err)
		}
		if a.Shape[0] != m.Splits[s] {
			t.Errorf("split %s: %d response rows for %d images", s, a.Shape[0], m.Splits[s])
		}
		for _, id := range m.NSDIDs[s] {
			if !first[id] {
				t.Errorf("split %s has NSD id %d, not among the first 30 images", s, id)
			}
		}
	}
	if n != 30 || len(m.Sources) == 0 {
		t.Errorf("%d images in all splits, want 30; %d sources", n, len(m.Sources))
	}
	pngs := 0
	for src := range m.Sources {
		if strings.HasSuffix(src, ".png") {
			pngs++
		}
	}
	if pngs != 30 {
		t.Errorf("%d PNGs among the sources, want the 30 read", pngs)
	}
}

// TestInspectPart checks that `voxflow data inspect` names a part.
func TestInspectPart(t *testing.T) {
	d, err := runStage(t, map[string]any{"source": SourceSynthetic, "n_images": int64(30), "voxels_per_roi": int64(4), "image_size": int64(8), "subject": "subj01", "part": artifact.PartResponses, "roi": "PPA"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Inspect(d)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := s.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if s.Part != artifact.PartResponses || len(s.Subjects) != 1 || len(s.Subjects[0].ROIs) != 1 || !strings.Contains(b.String(), "part: responses") {
		t.Errorf("inspect of a responses part:\n%s", b.String())
	}
}
