package data

import (
	"bytes"
	"compress/gzip"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/voxflow/voxflow/stages/artifact"
)

func TestSyntheticCategories(t *testing.T) {
	dir, err := runStage(t, map[string]any{"source": SourceSyntheticCategories, "n_images": int64(160), "n_classes": int64(8), "image_size": int64(32), "seed": int64(2)})
	if err != nil {
		t.Fatal(err)
	}
	m, err := artifact.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.Kind != artifact.KindClassification || !reflect.DeepEqual(m.Classes, shapeClasses()[:8]) || m.ImageSize != 32 {
		t.Fatalf("manifest %+v", m)
	}
	total := 0
	counts := make([]int, 8)
	for _, s := range artifact.Splits() {
		img, err := artifact.LoadImages(dir, "", s)
		if err != nil {
			t.Fatal(err)
		}
		lab, err := artifact.LoadLabels(dir, s)
		if err != nil {
			t.Fatal(err)
		}
		if img.Rows() != len(lab) || img.Shape[2] != 32 {
			t.Fatalf("%s: images %v, %d labels", s, img.Shape, len(lab))
		}
		for _, l := range lab {
			counts[l]++
		}
		total += len(lab)
	}
	if total != 160 {
		t.Fatalf("%d images, want 160", total)
	}
	for k, c := range counts {
		if c != 20 {
			t.Fatalf("class %d has %d images, want 20 (balanced)", k, c)
		}
	}
	// Every image is drawn afresh: no two are the same.
	img, _ := artifact.LoadImages(dir, "", artifact.SplitTrain)
	seen := map[string]bool{}
	for i := range img.Rows() {
		seen[string(img.Row(i))] = true
	}
	if len(seen) != img.Rows() {
		t.Fatalf("%d distinct images among %d", len(seen), img.Rows())
	}
}

// TestIDXFashionMNIST reads Debian's dataset-fashion-mnist and compares
// pixels and labels with numpy's reading of the same gzipped idx files.
func TestIDXFashionMNIST(t *testing.T) {
	const root = "/usr/share/datasets/fashion-mnist"
	if _, err := os.Stat(root); err != nil {
		t.Fatalf("%s missing: install the Debian package dataset-fashion-mnist (%v)", root, err)
	}
	dir, err := runStage(t, map[string]any{"source": SourceIDX, "root": root, "image_size": int64(28), "max_images": int64(200), "val_fraction": 0.25})
	if err != nil {
		t.Fatal(err)
	}
	m, err := artifact.ReadManifest(dir)
	if err != nil || !reflect.DeepEqual(m.Classes, FashionMNISTClasses()) {
		t.Fatalf("manifest %+v %v", m, err)
	}
	test, err := artifact.LoadImages(dir, "", artifact.SplitTest)
	if err != nil {
		t.Fatal(err)
	}
	labels, err := artifact.LoadLabels(dir, artifact.SplitTest)
	if err != nil {
		t.Fatal(err)
	}
	if test.Rows() != 200 || len(labels) != 200 {
		t.Fatalf("test: %v images, %d labels", test.Shape, len(labels))
	}
	val, _ := artifact.LoadLabels(dir, artifact.SplitVal)
	train, _ := artifact.LoadLabels(dir, artifact.SplitTrain)
	if len(val) != 50 || len(train) != 150 {
		t.Fatalf("train %d, val %d, want 150 and 50", len(train), len(val))
	}
	out, err := exec.Command("/usr/bin/python3", "-c", `
import gzip, numpy as np, sys
r = sys.argv[1]
img = np.frombuffer(gzip.open(r + "/t10k-images-idx3-ubyte.gz").read()[16:], np.uint8).reshape(-1, 28, 28)[:200]
lab = np.frombuffer(gzip.open(r + "/t10k-labels-idx1-ubyte.gz").read()[8:], np.uint8)[:200]
sys.stdout.buffer.write(np.repeat(img[:, None], 3, axis=1).tobytes() + lab.astype("<i4").tobytes())
`, root).Output()
	if err != nil {
		t.Fatal(err)
	}
	n := 200 * 3 * 28 * 28
	if !bytes.Equal(test.Data, out[:n]) {
		t.Fatal("test images differ from numpy's reading of the idx file")
	}
	for i, l := range labels {
		if int32(out[n+4*i]) != l {
			t.Fatalf("label %d = %d, numpy %d", i, l, out[n+4*i])
		}
	}
}

func TestIDXErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := runStage(t, map[string]any{"source": SourceIDX, "root": dir}); err == nil || !strings.Contains(err.Error(), "missing train-images-idx3-ubyte (or train-images-idx3-ubyte.gz)") {
		t.Fatalf("missing file error = %v", err)
	}
	// A truncated gzip idx file and a wrong magic.
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte{0, 0, 8, 3, 0, 0, 0, 10, 0, 0, 0, 28, 0, 0, 0, 28, 1, 2, 3})
	zw.Close()
	os.WriteFile(filepath.Join(dir, "train-images-idx3-ubyte.gz"), b.Bytes(), 0o644)
	os.WriteFile(filepath.Join(dir, "train-labels-idx1-ubyte"), []byte{0, 0, 8, 1, 0, 0, 0, 10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0}, 0o644)
	_, err := runStage(t, map[string]any{"source": SourceIDX, "root": dir})
	if err == nil || !strings.Contains(err.Error(), "train-images-idx3-ubyte.gz: truncated idx data: expected 7840 bytes") {
		t.Fatalf("truncated error = %v", err)
	}
	os.WriteFile(filepath.Join(dir, "train-images-idx3-ubyte.gz"), []byte{0, 0, 9, 3}, 0o644)
	_, err = runStage(t, map[string]any{"source": SourceIDX, "root": dir})
	if err == nil || !strings.Contains(err.Error(), "expected a gzip-compressed idx file") {
		t.Fatalf("bad gzip error = %v", err)
	}
}

func TestImageFolder(t *testing.T) {
	root := t.TempDir()
	write := func(class, name string, c color.RGBA, useJPEG bool) {
		os.MkdirAll(filepath.Join(root, class), 0o755)
		img := image.NewRGBA(image.Rect(0, 0, 20, 12))
		for i := 0; i < len(img.Pix); i += 4 {
			img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, 255
		}
		f, err := os.Create(filepath.Join(root, class, name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if useJPEG {
			err = jpeg.Encode(f, img, &jpeg.Options{Quality: 95})
		} else {
			err = png.Encode(f, img)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 {
		write("apples", "a"+string(rune('0'+i))+".png", color.RGBA{200, 10, 10, 255}, false)
		write("leaves", "l"+string(rune('0'+i))+".jpg", color.RGBA{10, 200, 10, 255}, true)
	}
	os.WriteFile(filepath.Join(root, "apples", "notes.txt"), []byte("ignored"), 0o644)
	dir, err := runStage(t, map[string]any{"source": SourceImageFolder, "root": root, "image_size": int64(8), "val_fraction": 0.2, "test_fraction": 0.2})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := artifact.ReadManifest(dir)
	if !reflect.DeepEqual(m.Classes, []string{"apples", "leaves"}) {
		t.Fatalf("classes %v", m.Classes)
	}
	n := 0
	for _, s := range artifact.Splits() {
		img, err := artifact.LoadImages(dir, "", s)
		if err != nil {
			t.Fatal(err)
		}
		lab, _ := artifact.LoadLabels(dir, s)
		for i, l := range lab {
			red, green := img.Row(i)[0], img.Row(i)[64]
			if (l == 0) != (red > 150 && green < 60) {
				t.Fatalf("%s image %d: label %d but red %d green %d", s, i, l, red, green)
			}
		}
		n += len(lab)
	}
	if n != 20 {
		t.Fatalf("%d images, want 20", n)
	}
	// An empty class folder and a corrupt image are named in the error.
	os.MkdirAll(filepath.Join(root, "empty"), 0o755)
	if _, err := runStage(t, map[string]any{"source": SourceImageFolder, "root": root}); err == nil || !strings.Contains(err.Error(), "empty: no .png, .jpg or .jpeg images") {
		t.Fatalf("empty class error = %v", err)
	}
	os.Remove(filepath.Join(root, "empty"))
	os.WriteFile(filepath.Join(root, "leaves", "l3.jpg"), []byte("not a jpeg"), 0o644)
	if _, err := runStage(t, map[string]any{"source": SourceImageFolder, "root": root}); err == nil || !strings.Contains(err.Error(), "l3.jpg") {
		t.Fatalf("corrupt image error = %v", err)
	}
}
