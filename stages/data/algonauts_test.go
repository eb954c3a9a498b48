package data

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/zeebo/blake3"

	"github.com/voxflow/voxflow/numerics/npy"
	"github.com/voxflow/voxflow/stages/artifact"
)

// fixtureCfg is the small synthetic Algonauts release the reader tests use.
var fixtureCfg = SynthConfig{Seed: 11, NImages: 60, NTest: 8, VoxelsPerROI: 6, Reps: 3}

const fixtureSize = 40

var (
	fixtureOnce sync.Once
	fixtureDir  string
	fixtureErr  error
)

// algoFixture returns a fresh copy of a synthetic dataset in the Algonauts
// layout (subj01, no test fMRI), which the test may damage.
func algoFixture(t *testing.T) string {
	t.Helper()
	fixtureOnce.Do(func() {
		fixtureDir, fixtureErr = os.MkdirTemp("", "voxflow-algo-fixture")
		if fixtureErr == nil {
			fixtureErr = WriteSynthAlgonauts(context.Background(), fixtureDir, SynthAlgonautsOptions{Config: fixtureCfg, Subjects: []string{"subj01"}, Size: fixtureSize})
		}
	})
	if fixtureErr != nil {
		t.Fatal(fixtureErr)
	}
	dst := t.TempDir()
	err := filepath.WalkDir(fixtureDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(fixtureDir, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range []string{fixtureDir, benchRoot} {
		if d != "" {
			os.RemoveAll(d)
		}
	}
	os.Exit(code)
}

func algoParams(root string, extra map[string]any) map[string]any {
	p := map[string]any{"source": SourceAlgonauts, "root": root, "image_size": int64(fixtureSize), "seed": int64(fixtureCfg.Seed)}
	for k, v := range extra {
		p[k] = v
	}
	return p
}

// TestAlgonautsRoundTrip writes a synthetic dataset in the Algonauts file
// layout, reads it back with the Algonauts reader, and requires exactly
// the artifact the synthetic source builds directly from memory.
func TestAlgonautsRoundTrip(t *testing.T) {
	root := algoFixture(t)
	got, err := runStage(t, algoParams(root, nil))
	if err != nil {
		t.Fatal(err)
	}
	want, err := runStage(t, map[string]any{"source": SourceSynthetic, "subjects": []any{"subj01"}, "n_images": int64(fixtureCfg.NImages),
		"voxels_per_roi": int64(fixtureCfg.VoxelsPerROI), "reps": int64(fixtureCfg.Reps), "seed": int64(fixtureCfg.Seed), "image_size": int64(fixtureSize)})
	if err != nil {
		t.Fatal(err)
	}
	gm, err := artifact.ReadSubjectManifest(filepath.Join(got, "subj01"))
	if err != nil {
		t.Fatal(err)
	}
	wm, err := artifact.ReadSubjectManifest(filepath.Join(want, "subj01"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gm.ROIs, wm.ROIs) || !reflect.DeepEqual(gm.NSDIDs, wm.NSDIDs) || !reflect.DeepEqual(gm.Splits, wm.Splits) || gm.TestSplit != "holdout" {
		t.Fatalf("manifests differ:\nalgonauts %+v\nsynthetic %+v", gm, wm)
	}
	if gm.NSDIDs[artifact.SplitTest][0] != synthNSDID(indexOf(t, gm.NSDIDs[artifact.SplitTest][0])) {
		t.Fatalf("NSD ids not carried from file names: %v", gm.NSDIDs[artifact.SplitTest])
	}
	for _, s := range artifact.Splits() {
		same(t, artifact.ImagesPath(got, "subj01", s), artifact.ImagesPath(want, "subj01", s))
		for _, r := range gm.ROIs {
			same(t, artifact.ROIPath(got, "subj01", s, r.Name), artifact.ROIPath(want, "subj01", s, r.Name))
		}
	}
	for _, r := range gm.ROIs {
		same(t, artifact.NoiseCeilingPath(got, "subj01", r.Name), artifact.NoiseCeilingPath(want, "subj01", r.Name))
	}
	// Provenance: every source file is listed with its BLAKE3 digest.
	wantSources := 2 + 2*len(Families()) + 2 + fixtureCfg.NImages // fMRI, masks, noise ceilings, training PNGs
	if len(gm.Sources) != wantSources {
		t.Errorf("%d sources in manifest, want %d", len(gm.Sources), wantSources)
	}
	for _, rel := range []string{"subj01/training_split/training_fmri/lh_training_fmri.npy", "subj01/training_split/training_images/train-0002_nsd-00010.png", "subj01/roi_masks/rh.floc-faces_challenge_space.npy"} {
		b, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		sum := blake3.Sum256(b)
		if gm.Sources[rel] != hex.EncodeToString(sum[:]) {
			t.Errorf("source %s: digest %q, want %x", rel, gm.Sources[rel], sum)
		}
	}
	top, err := artifact.ReadManifest(got)
	if err != nil || top.Kind != artifact.KindNSD || !reflect.DeepEqual(top.Subjects, []string{"subj01"}) || top.ImageSize != fixtureSize {
		t.Fatalf("top manifest %+v, %v", top, err)
	}
}

func indexOf(t *testing.T, nsd int) int {
	t.Helper()
	if (nsd-3)%7 != 0 {
		t.Fatalf("NSD id %d is not a synthetic id", nsd)
	}
	return (nsd - 3) / 7
}

func same(t *testing.T, a, b string) {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(x, y) {
		t.Errorf("%s and %s differ", a, b)
	}
}

// TestAlgonautsReleaseTestSplit uses test_fmri when the release has it:
// the test split is the release's, and train/val only hold training images.
func TestAlgonautsReleaseTestSplit(t *testing.T) {
	root := t.TempDir()
	if err := WriteSynthAlgonauts(context.Background(), root, SynthAlgonautsOptions{Config: fixtureCfg, Subjects: []string{"subj02"}, Size: 24, TestFMRI: true}); err != nil {
		t.Fatal(err)
	}
	dir, err := runStage(t, algoParams(root, map[string]any{"image_size": int64(16), "rois": []any{"V1v", "FFA-1"}, "val_fraction": 0.2}))
	if err != nil {
		t.Fatal(err)
	}
	m, err := artifact.ReadSubjectManifest(filepath.Join(dir, "subj02"))
	if err != nil {
		t.Fatal(err)
	}
	if m.TestSplit != "release" || m.Splits[artifact.SplitTest] != fixtureCfg.NTest || m.Splits[artifact.SplitVal] != 12 || m.Splits[artifact.SplitTrain] != 48 || len(m.ROIs) != 2 {
		t.Fatalf("manifest %+v", m)
	}
	for j, id := range m.NSDIDs[artifact.SplitTest] {
		if id != synthNSDID(fixtureCfg.NImages+j) {
			t.Fatalf("test NSD ids %v", m.NSDIDs[artifact.SplitTest])
		}
	}
	seen := map[int]bool{}
	for _, s := range []string{artifact.SplitTrain, artifact.SplitVal} {
		for _, id := range m.NSDIDs[s] {
			if seen[id] || indexOf(t, id) >= fixtureCfg.NImages {
				t.Fatalf("image %d duplicated or a test image in %s", id, s)
			}
			seen[id] = true
		}
	}
	img, err := artifact.LoadImages(dir, "subj02", artifact.SplitTest)
	if err != nil || npy.ShapeString(img.Shape) != "(8, 3, 16, 16)" {
		t.Fatalf("test images %v %v", img.Shape, err)
	}
	r, err := artifact.LoadROI(dir, "subj02", artifact.SplitTest, "FFA-1")
	if err != nil || r.Rows() != fixtureCfg.NTest || r.RowLen() != m.ROIs[1].Voxels() {
		t.Fatalf("test FFA-1 %v %v", r.Shape, err)
	}
}

// TestResizeMatchesReference checks area resampling against a numpy
// implementation of its definition (each output pixel is the coverage-
// weighted mean of the source pixels under it, as OpenCV's INTER_AREA when
// shrinking) and bilinear against PIL's BILINEAR when enlarging (PIL
// antialiases when shrinking, x/image does not).
func TestResizeMatchesReference(t *testing.T) {
	root := algoFixture(t)
	png := filepath.Join(root, "subj01/training_split/training_images/train-0001_nsd-00003.png")
	img, err := decodePNG(png)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method string
		size   int
		tol    int
	}{{ResampleArea, 17, 1}, {ResampleArea, 40, 0}, {ResampleArea, 64, 1}, {ResampleBilinear, 64, 3}} {
		dst := make([]uint8, 3*tc.size*tc.size)
		resizeCHW(img, tc.size, tc.method, dst)
		out, err := exec.Command("/usr/bin/python3", "-c", `
import sys, numpy as np
from PIL import Image
im = Image.open(sys.argv[1]).convert("RGB")
n, method = int(sys.argv[2]), sys.argv[3]
if method == "bilinear":
    a = np.asarray(im.resize((n, n), Image.BILINEAR))
else:
    src = np.asarray(im).astype(np.float64)
    def weights(m, n):
        w = np.zeros((n, m))
        s = m / n
        for o in range(n):
            for j in range(m):
                w[o, j] = max(0.0, min((o + 1) * s, j + 1) - max(o * s, j)) / s
        return w
    wy, wx = weights(src.shape[0], n), weights(src.shape[1], n)
    a = np.clip(np.floor(np.einsum("oy,yxc,px->opc", wy, src, wx) + 0.5), 0, 255).astype(np.uint8)
sys.stdout.buffer.write(a.transpose(2, 0, 1).tobytes())
`, png, fmt.Sprint(tc.size), tc.method).Output()
		if err != nil {
			t.Fatalf("reference: %v", err)
		}
		worst := 0
		for i := range dst {
			worst = max(worst, int(math.Abs(float64(dst[i])-float64(out[i]))))
		}
		if worst > tc.tol {
			t.Errorf("%s to %d: max difference from reference = %d, want <= %d", tc.method, tc.size, worst, tc.tol)
		}
	}
}

// TestAlgonautsBadInputs damages the fixture one way at a time and checks
// that the error names the file and says what was expected.
func TestAlgonautsBadInputs(t *testing.T) {
	const subj = "subj01"
	lhFMRI := filepath.Join(subj, "training_split/training_fmri/lh_training_fmri.npy")
	rhFMRI := filepath.Join(subj, "training_split/training_fmri/rh_training_fmri.npy")
	faceMask := filepath.Join(subj, "roi_masks/lh.floc-faces_challenge_space.npy")
	firstPNG := filepath.Join(subj, "training_split/training_images/train-0001_nsd-00003.png")
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, root string)
		params map[string]any
		want   []string
	}{
		{"missing subject", nil, map[string]any{"subjects": []any{"subj01", "subj07"}},
			[]string{"subject folder", "subj07 not found", "found subjects: subj01"}},
		{"missing fMRI file", func(t *testing.T, root string) { rm(t, root, rhFMRI) }, nil,
			[]string{"missing fMRI file", "rh_training_fmri.npy", "images x vertices"}},
		{"row count", func(t *testing.T, root string) {
			rm(t, root, filepath.Join(subj, "training_split/training_images/train-0060_nsd-00416.png"))
		}, nil, []string{"lh_training_fmri.npy: 60 rows, expected 59", "training_images"}},
		{"image index gap", func(t *testing.T, root string) {
			rm(t, root, filepath.Join(subj, "training_split/training_images/train-0030_nsd-00206.png"))
		}, nil, []string{"train-0031_nsd-00213.png has index 31, expected 30"}},
		{"bad image name", func(t *testing.T, root string) {
			write(t, root, filepath.Join(subj, "training_split/training_images/cat.png"), []byte("x"))
		}, nil, []string{`unexpected image name "cat.png"`, "train-0001_nsd-00013.png"}},
		{"mask length", func(t *testing.T, root string) {
			if err := npy.WriteFile(filepath.Join(root, faceMask), []int{5}, []int32{0, 1, 2, 0, 0}); err != nil {
				t.Fatal(err)
			}
		}, nil, []string{"lh.floc-faces_challenge_space.npy: mask has 5 vertices, expected", "columns of", "lh_training_fmri.npy"}},
		{"mask labels", func(t *testing.T, root string) {
			if err := npy.WriteFile(filepath.Join(root, faceMask), []int{2}, []float64{0, 9}); err != nil {
				t.Fatal(err)
			}
		}, nil, []string{"lh.floc-faces_challenge_space.npy: vertex 1 has label 9, expected an integer in 0..5"}},
		{"missing one mask hemisphere", func(t *testing.T, root string) { rm(t, root, faceMask) }, nil,
			[]string{"missing ROI mask", "lh.floc-faces_challenge_space.npy"}},
		{"unknown ROI", nil, map[string]any{"rois": []any{"V1v", "FFA"}},
			[]string{`unknown ROI "FFA"`, "expected one of V1v, V1d", "FFA-1", "parietal"}},
		{"ROI family absent", func(t *testing.T, root string) {
			rm(t, root, faceMask)
			rm(t, root, strings.Replace(faceMask, "lh.", "rh.", 1))
		}, map[string]any{"rois": []any{"FFA-1"}}, []string{"ROI FFA-1 needs mask family floc-faces", "lh.floc-faces_challenge_space.npy"}},
		{"non-finite", func(t *testing.T, root string) { poison(t, root, lhFMRI, "V1v") }, map[string]any{"rois": []any{"V1v", "V2v"}},
			[]string{"lh_training_fmri.npy: 2 non-finite values", "first at image row 3", "nonfinite: drop-voxels"}},
		{"truncated npy", func(t *testing.T, root string) {
			b, _ := os.ReadFile(filepath.Join(root, rhFMRI))
			write(t, root, rhFMRI, b[:len(b)-100])
		}, nil, []string{"rh_training_fmri.npy", "truncated"}},
		{"not an npy", func(t *testing.T, root string) { write(t, root, lhFMRI, []byte("hello, world")) }, nil,
			[]string{"lh_training_fmri.npy", "not a .npy file"}},
		{"fMRI dtype", func(t *testing.T, root string) {
			if err := npy.WriteFile(filepath.Join(root, lhFMRI), []int{60, 2}, make([]int32, 120)); err != nil {
				t.Fatal(err)
			}
		}, nil, []string{"lh_training_fmri.npy: int32 array of shape (60, 2), expected a 2-D float32"}},
		{"fMRI vertex count", func(t *testing.T, root string) {
			if err := npy.WriteFile(filepath.Join(root, lhFMRI), []int{60, 2}, make([]float32, 120)); err != nil {
				t.Fatal(err)
			}
		}, nil, []string{"malformed fMRI file", "lh_training_fmri.npy: 2 columns, expected", "lh_noise_ceiling.npy"}},
		{"truncated PNG", func(t *testing.T, root string) {
			b, _ := os.ReadFile(filepath.Join(root, firstPNG))
			write(t, root, firstPNG, b[:len(b)/2])
		}, nil, []string{"decode PNG", "train-0001_nsd-00003.png", "truncated"}},
		{"not a PNG", func(t *testing.T, root string) { write(t, root, firstPNG, []byte("GIF89a.....")) }, nil,
			[]string{"decode PNG", "train-0001_nsd-00003.png", "expected a PNG"}},
		{"empty split", nil, map[string]any{"val_fraction": 0.0}, []string{"split val is empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := algoFixture(t)
			if tc.damage != nil {
				tc.damage(t, root)
			}
			_, err := runStage(t, algoParams(root, tc.params))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

// TestNonFiniteDropVoxels drops exactly the poisoned voxel.
func TestNonFiniteDropVoxels(t *testing.T) {
	root := algoFixture(t)
	poison(t, root, "subj01/training_split/training_fmri/lh_training_fmri.npy", "V1v")
	dir, err := runStage(t, algoParams(root, map[string]any{"nonfinite": NonFiniteDrop, "rois": []any{"V1v", "V2v"}}))
	if err != nil {
		t.Fatal(err)
	}
	m, err := artifact.ReadSubjectManifest(filepath.Join(dir, "subj01"))
	if err != nil {
		t.Fatal(err)
	}
	clean, err := runStage(t, algoParams(algoFixture(t), map[string]any{"rois": []any{"V1v", "V2v"}}))
	if err != nil {
		t.Fatal(err)
	}
	cm, _ := artifact.ReadSubjectManifest(filepath.Join(clean, "subj01"))
	v1, _ := m.ROI("V1v")
	c1, _ := cm.ROI("V1v")
	if v1.Dropped != 1 || v1.VoxelsLH != c1.VoxelsLH-1 || v1.VoxelsRH != c1.VoxelsRH {
		t.Fatalf("V1v after drop %+v, clean %+v", v1, c1)
	}
	if v2, _ := m.ROI("V2v"); v2.Dropped != 0 {
		t.Fatalf("V2v lost voxels: %+v", v2)
	}
	a, err := artifact.LoadROI(dir, "subj01", artifact.SplitTrain, "V1v")
	if err != nil || a.RowLen() != v1.Voxels() {
		t.Fatalf("V1v array %v for %d voxels: %v", a.Shape, v1.Voxels(), err)
	}
	for _, x := range a.Data {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			t.Fatal("non-finite value survived")
		}
	}
	nc, err := artifact.LoadNoiseCeiling(dir, "subj01", "V1v")
	if err != nil || len(nc) != v1.Voxels() {
		t.Fatalf("noise ceiling %d values for %d voxels: %v", len(nc), v1.Voxels(), err)
	}
}

// poison sets two values of the first lh vertex of roi to NaN and +Inf.
func poison(t *testing.T, root, rel, roi string) {
	t.Helper()
	fam, label, _ := LookupROI(roi)
	mask, err := npy.ReadFile[int32](filepath.Join(root, "subj01", "roi_masks", "lh."+fam+"_challenge_space.npy"))
	if err != nil {
		t.Fatal(err)
	}
	v := -1
	for i, l := range mask.Data {
		if int(l) == label {
			v = i
			break
		}
	}
	p := filepath.Join(root, rel)
	a, err := npy.ReadFile[float32](p)
	if err != nil {
		t.Fatal(err)
	}
	a.Data[3*a.RowLen()+v] = float32(math.NaN())
	a.Data[7*a.RowLen()+v] = float32(math.Inf(1))
	if err := npy.WriteFile(p, a.Shape, a.Data); err != nil {
		t.Fatal(err)
	}
}

func rm(t *testing.T, root, rel string) {
	t.Helper()
	if err := os.Remove(filepath.Join(root, rel)); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, root, rel string, b []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(root, rel), b, 0o644); err != nil {
		t.Fatal(err)
	}
}
