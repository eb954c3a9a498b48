package data

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voxflow/voxflow/stages/artifact"
)

// TestShorterSideMatchesTorchvision compares resize: shorter-side with
// torchvision's Resize(n) + CenterCrop(size) on PIL images, for landscape
// and portrait PNGs and JPEGs, shrinking and enlarging, with bilinear
// (torchvision's default) and area (Pillow's BOX).
func TestShorterSideMatchesTorchvision(t *testing.T) {
	dir := t.TempDir()
	out, err := exec.Command("/usr/bin/python3", "-c", `
import sys, numpy as np
from PIL import Image
d = sys.argv[1]
rng = np.random.default_rng(7)
for name, (h, w) in (("land", (200, 301)), ("port", (263, 181)), ("small", (50, 70))):
    a = np.zeros((h, w, 3), np.uint8)
    for _ in range(60):
        y, x = rng.integers(0, h), rng.integers(0, w)
        a[y:y+rng.integers(2, 30), x:x+rng.integers(2, 40)] = rng.integers(0, 256, 3)
    a = np.clip(a.astype(int) + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    Image.fromarray(a).save(f"{d}/{name}.png")
    Image.fromarray(a).save(f"{d}/{name}.jpg", quality=90)
`, dir).CombinedOutput()
	if err != nil {
		t.Fatalf("write images with PIL: %v\n%s", err, out)
	}
	cases := []struct {
		file           string
		size, resizeTo int
		method         string
	}{
		{"land.png", 224, 0, ResampleBilinear},
		{"port.jpg", 224, 0, ResampleBilinear},
		{"land.jpg", 64, 73, ResampleBilinear},
		{"port.png", 96, 0, ResampleArea},
		{"small.png", 64, 80, ResampleBilinear}, // enlarging
	}
	for _, tc := range cases {
		name := fmt.Sprintf("%s/%d/%d/%s", tc.file, tc.size, tc.resizeTo, tc.method)
		rz := Resizer{Size: tc.size, Method: tc.method, Mode: ResizeShorterSide, To: tc.resizeTo}
		if err := rz.Check(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		path := filepath.Join(dir, tc.file)
		img, err := decodeImageFile(path)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]uint8, 3*tc.size*tc.size)
		rz.CHW(img, got)
		interp := "BILINEAR"
		if tc.method == ResampleArea {
			interp = "BOX"
		}
		ref, err := exec.Command("/usr/bin/python3", "-c", `
import sys, numpy as np
from PIL import Image
from torchvision import transforms as T
path, n, size, interp = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
mode = {"BILINEAR": T.InterpolationMode.BILINEAR, "BOX": T.InterpolationMode.BOX}[interp]
t = T.Compose([T.Resize(n, interpolation=mode), T.CenterCrop(size)])
a = np.asarray(t(Image.open(path).convert("RGB")))
sys.stdout.buffer.write(a.transpose(2, 0, 1).tobytes())
`, path, fmt.Sprint(rz.resizeTo()), fmt.Sprint(tc.size), interp).Output()
		if err != nil {
			t.Fatalf("%s: torchvision reference: %v", name, err)
		}
		if len(ref) != len(got) {
			t.Fatalf("%s: reference has %d bytes, want %d", name, len(ref), len(got))
		}
		if worst := maxAbsDiff(got, ref); worst > 1 {
			t.Errorf("%s: max difference from torchvision = %d levels, want <= 1", name, worst)
		}
	}
	if err := (Resizer{Size: 224, Mode: ResizeShorterSide, To: 200}).Check(); err == nil || !strings.Contains(err.Error(), "resize_to") {
		t.Errorf("resize_to below image_size: error %v, want one naming resize_to", err)
	}
}

// TestImageFolderPreprocessing runs the data stage on an ImageFolder of
// non-square JPEGs with torchvision's evaluation transform and no
// validation split, and checks the artifact records each row's source
// file and its preprocessing.
func TestImageFolderPreprocessing(t *testing.T) {
	root := t.TempDir()
	out, err := exec.Command("/usr/bin/python3", "-c", `
import sys, os, numpy as np
from PIL import Image
root = sys.argv[1]
rng = np.random.default_rng(1)
for c in ("cat", "dog"):
    os.makedirs(f"{root}/{c}")
    for i in range(5):
        a = rng.integers(0, 256, (90 + 7 * i, 120, 3)).astype(np.uint8)
        Image.fromarray(a).save(f"{root}/{c}/{i}.jpg")
`, root).CombinedOutput()
	if err != nil {
		t.Fatalf("write imagefolder: %v\n%s", err, out)
	}
	ds, err := runStage(t, map[string]any{
		"source": SourceImageFolder, "root": root, "image_size": int64(32),
		"resize": ResizeShorterSide, "resample": ResampleBilinear,
		"val_fraction": 0.0, "test_fraction": 0.3,
	})
	if err != nil {
		t.Fatal(err)
	}
	m, err := artifact.ReadManifest(ds)
	if err != nil {
		t.Fatal(err)
	}
	if m.Preprocess == nil || m.Preprocess.Resize != ResizeShorterSide || m.Preprocess.ResizeTo != 37 || m.Preprocess.Crop != CropCenter ||
		!strings.Contains(m.Preprocess.Normalize, "0.485") {
		t.Errorf("manifest preprocess = %+v, want shorter-side to 37, centre crop, ImageNet normalisation", m.Preprocess)
	}
	seen := map[string]bool{}
	for _, s := range artifact.Splits() {
		b, err := os.ReadFile(filepath.Join(ds, s, FilesName))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Fields(string(b))
		imgs, err := artifact.LoadImages(ds, "", s)
		if err != nil {
			t.Fatal(err)
		}
		if len(lines) != imgs.Shape[0] {
			t.Errorf("split %s: %d lines in %s for %d images", s, len(lines), FilesName, imgs.Shape[0])
		}
		if s == artifact.SplitVal && imgs.Shape[0] != 0 {
			t.Errorf("val_fraction 0: val split has %d images, want 0", imgs.Shape[0])
		}
		for _, l := range lines {
			if seen[l] {
				t.Errorf("%s listed twice", l)
			}
			seen[l] = true
			if _, err := os.Stat(filepath.Join(root, l)); err != nil {
				t.Errorf("split %s: %s does not name a source file: %v", s, l, err)
			}
		}
	}
	if len(seen) != 10 {
		t.Errorf("%d distinct source files recorded, want 10", len(seen))
	}
}
