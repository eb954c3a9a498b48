package data

import (
	"bytes"
	"image/jpeg"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestJPEGMatchesPIL decodes JPEGs written by PIL with 4:2:0, 4:2:2 and
// 4:4:4 chroma subsampling, and a greyscale one, and compares every pixel
// with PIL's own decode: a PyTorch pipeline sees these pixels. Go's
// image/jpeg is checked to differ on 4:2:0, so the test would notice a
// silent fall-back to it.
func TestJPEGMatchesPIL(t *testing.T) {
	dir := t.TempDir()
	// Sharp saturated colour edges are where chroma upsampling differs.
	out, err := exec.Command("/usr/bin/python3", "-c", `
import sys, numpy as np
from PIL import Image
d = sys.argv[1]
rng = np.random.default_rng(3)
h, w = 75, 101
a = np.zeros((h, w, 3), np.uint8)
for _ in range(40):
    y, x = rng.integers(0, h), rng.integers(0, w)
    a[y:y+rng.integers(3, 20), x:x+rng.integers(3, 30)] = rng.integers(0, 256, 3)
a = np.clip(a.astype(int) + rng.integers(-12, 13, a.shape), 0, 255).astype(np.uint8)
im = Image.fromarray(a)
for name, sub in (("420", 2), ("422", 1), ("444", 0)):
    im.save(f"{d}/{name}.jpg", quality=85, subsampling=sub)
im.convert("L").save(f"{d}/gray.jpg", quality=90)
for name in ("420", "422", "444", "gray"):
    ref = np.asarray(Image.open(f"{d}/{name}.jpg").convert("RGB"))
    open(f"{d}/{name}.rgb", "wb").write(ref.tobytes())
`, dir).CombinedOutput()
	if err != nil {
		t.Fatalf("write JPEGs with PIL: %v\n%s", err, out)
	}
	for _, name := range []string{"420", "422", "444", "gray"} {
		path := filepath.Join(dir, name+".jpg")
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := os.ReadFile(filepath.Join(dir, name+".rgb"))
		if err != nil {
			t.Fatal(err)
		}
		img, err := decodeImageFile(path)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := toRGB(img)
		if got.W != 101 || got.H != 75 || len(got.Pix) != len(ref) {
			t.Fatalf("%s: decoded %dx%d (%d bytes), want 101x75 (%d bytes)", name, got.W, got.H, len(got.Pix), len(ref))
		}
		if worst := maxAbsDiff(got.Pix, ref); worst > 1 {
			t.Errorf("%s: max difference from PIL = %d levels, want <= 1", name, worst)
		}
		if name == "420" {
			g, err := jpeg.Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if worst := maxAbsDiff(toRGB(g).Pix, ref); worst <= 1 {
				t.Errorf("Go's image/jpeg matches PIL on 4:2:0 to %d levels: the fixture no longer tells the decoders apart", worst)
			}
		}
	}
}

// TestJPEGErrors: a truncated or garbled JPEG is an error naming the file,
// never a grey-filled image.
func TestJPEGErrors(t *testing.T) {
	dir := t.TempDir()
	var buf bytes.Buffer
	img := rgbToImage(&rgbImage{W: 64, H: 64, Pix: bytes.Repeat([]byte{200, 30, 90}, 64*64)})
	if err := jpeg.Encode(&buf, img, nil); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	cases := map[string][]byte{
		"truncated.jpg": good[:len(good)/2],
		"garbled.jpg":   append(append([]byte{}, good[:4]...), bytes.Repeat([]byte{7}, 200)...),
	}
	for name, b := range cases {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := decodeImageFile(p)
		if err == nil {
			t.Errorf("%s: decoded without error", name)
			continue
		}
		if !bytes.Contains([]byte(err.Error()), []byte(p)) {
			t.Errorf("%s: error %q does not name the file", name, err)
		}
	}
}

func maxAbsDiff(a, b []byte) int {
	worst := 0
	for i := range a {
		d := int(a[i]) - int(b[i])
		if d < 0 {
			d = -d
		}
		worst = max(worst, d)
	}
	return worst
}
