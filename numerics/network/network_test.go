package network

import (
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/core/tensors/numpy"
)

// python is Debian's interpreter, which has numpy and torch 1.13.
const python = "/usr/bin/python3"

func torchRef(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(python, append([]string{"testdata/torch_ref.py"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("torch reference %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func testBackend(t testing.TB) backends.Backend {
	t.Helper()
	b, err := NewBackend(BackendGo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Finalize)
	return b
}

func randomImages(seed uint64, n, size int) []uint8 {
	rng := rand.New(rand.NewPCG(seed, 1))
	img := make([]uint8, n*3*size*size)
	for i := range img {
		img[i] = uint8(rng.IntN(256))
	}
	return img
}

func saveNpy(t *testing.T, path string, tt *tensors.Tensor) {
	t.Helper()
	if err := numpy.ToNpyFile(tt, path); err != nil {
		t.Fatal(err)
	}
}

func loadNpyF32(t *testing.T, path string) ([]float32, []int) {
	t.Helper()
	tt, err := numpy.FromNpyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d, err := tensors.CopyFlatData[float32](tt)
	if err != nil {
		t.Fatal(err)
	}
	return d, tt.Shape().Dimensions
}

// relErr is max|a-b| / max|b|: the relative error of a whole output.
func relErr(a, b []float32) float64 {
	var num, den float64
	for i := range a {
		num = math.Max(num, math.Abs(float64(a[i])-float64(b[i])))
		den = math.Max(den, math.Abs(float64(b[i])))
	}
	return num / den
}

func TestParamNamesMatchTorch(t *testing.T) {
	for _, cfg := range []Config{AlexNet(1000), Mini(10)} {
		dir := t.TempDir()
		if err := cfg.Save(dir); err != nil {
			t.Fatal(err)
		}
		keys := strings.Fields(torchRef(t, "keys", filepath.Join(dir, ConfigFile)))
		var ours []string
		for _, p := range cfg.Params() {
			ours = append(ours, p.Name)
		}
		if strings.Join(keys, ",") != strings.Join(ours, ",") {
			t.Errorf("%s: names differ from torch state_dict keys:\n ours  %v\n torch %v", cfg.Arch, ours, keys)
		}
	}
}

func TestSafetensorsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	cfg := Mini(7)
	if err := cfg.Save(dir); err != nil {
		t.Fatal(err)
	}
	// torch writes, we read: names, shapes and values must be torch's own.
	tp := filepath.Join(dir, "torch.safetensors")
	torchRef(t, "write", filepath.Join(dir, ConfigFile), "3", tp)
	w, _, err := ReadSafetensors(tp)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckWeights(cfg.Params(), w); err != nil {
		t.Fatal(err)
	}
	// we write and read back: bit-identical, metadata preserved.
	gp := filepath.Join(dir, "go.safetensors")
	if err := WriteSafetensors(gp, w, map[string]string{"arch": cfg.Arch}); err != nil {
		t.Fatal(err)
	}
	w2, meta, err := ReadSafetensors(gp)
	if err != nil {
		t.Fatal(err)
	}
	if meta["arch"] != cfg.Arch {
		t.Errorf("metadata = %v", meta)
	}
	for k, v := range w {
		v2 := w2[k]
		if !sameShape(v.Shape, v2.Shape) {
			t.Fatalf("%s: shape %v -> %v", k, v.Shape, v2.Shape)
		}
		for i := range v.Data {
			if math.Float32bits(v.Data[i]) != math.Float32bits(v2.Data[i]) {
				t.Fatalf("%s[%d]: %v -> %v", k, i, v.Data[i], v2.Data[i])
			}
		}
	}
	// A truncated file is an error naming the file, not a panic.
	b, _ := os.ReadFile(gp)
	bad := filepath.Join(dir, "bad.safetensors")
	os.WriteFile(bad, b[:len(b)/2], 0o644)
	if _, _, err := ReadSafetensors(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("truncated file: err = %v", err)
	}
}

// forwardParity runs our forward pass and torch's on the same weights and
// images.
func forwardParity(t *testing.T, cfg Config, n int) {
	dir := t.TempDir()
	if err := cfg.Save(dir); err != nil {
		t.Fatal(err)
	}
	w := cfg.InitWeights(11)
	wp := filepath.Join(dir, WeightsFile)
	if err := WriteSafetensors(wp, w, nil); err != nil {
		t.Fatal(err)
	}
	img := randomImages(5, n, cfg.ImageSize)
	ip := filepath.Join(dir, "images.npy")
	saveNpy(t, ip, tensors.FromFlatDataAndDimensions(img, n, 3, cfg.ImageSize, cfg.ImageSize))
	op := filepath.Join(dir, "out.npy")
	torchRef(t, "forward", filepath.Join(dir, ConfigFile), wp, ip, op)
	ref, shape := loadNpyF32(t, op)

	pr, err := NewPredictor(testBackend(t), cfg, w, "output")
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	got, d, err := pr.Run(img, n)
	if err != nil {
		t.Fatal(err)
	}
	if d != shape[1] || len(got) != len(ref) {
		t.Fatalf("output %d x %d, torch %v", n, d, shape)
	}
	if e := relErr(got, ref); e > 1e-4 {
		t.Errorf("%s: relative error vs torch %.3g > 1e-4", cfg.Arch, e)
	} else {
		t.Logf("%s: relative error vs torch %.3g", cfg.Arch, e)
	}
}

func TestForwardParityMini(t *testing.T) { forwardParity(t, Mini(1000), 4) }

func TestForwardParityAlexNet(t *testing.T) {
	if testing.Short() {
		t.Skip("full AlexNet parity writes 244 MB of weights")
	}
	forwardParity(t, AlexNet(1000), 1)
}

func TestLayersCapture(t *testing.T) {
	cfg := Mini(10)
	w := cfg.InitWeights(1)
	img := randomImages(2, 2, cfg.ImageSize)
	b := testBackend(t)
	want := map[string]int{"features.2": 16 * 14 * 14, "features.12": 64 * 2 * 2, "avgpool": 256, "classifier.5": 256, "output": 10}
	names := make([]string, 0, len(want))
	for k := range want {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, layer := range names {
		pr, err := NewPredictor(b, cfg, w, layer)
		if err != nil {
			t.Fatal(err)
		}
		out, d, err := pr.Run(img, 2)
		pr.Close()
		if err != nil {
			t.Fatal(err)
		}
		if d != want[layer] || len(out) != 2*d {
			t.Errorf("layer %s: dim %d, want %d", layer, d, want[layer])
		}
	}
	if _, err := NewPredictor(b, cfg, w, "fc7"); err == nil {
		t.Error("unknown layer accepted")
	}
}

func TestInitWeightsKaiming(t *testing.T) {
	cfg := Mini(10)
	w, err := cfg.InitWeightsScheme(3, InitKaiming)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckWeights(cfg.Params(), w); err != nil {
		t.Fatal(err)
	}
	std := func(x []float32) float64 {
		var s float64
		for _, v := range x {
			s += float64(v) * float64(v)
		}
		return math.Sqrt(s / float64(len(x)))
	}
	// features.3: 48 x 16 x 5 x 5, fan_out 48*25.
	if got, want := std(w["features.3.weight"].Data), math.Sqrt(2.0/(48*25)); math.Abs(got-want) > 0.1*want {
		t.Errorf("features.3.weight std %.4g, want %.4g", got, want)
	}
	if got := std(w["classifier.4.weight"].Data); math.Abs(got-0.01) > 0.001 {
		t.Errorf("classifier.4.weight std %.4g, want 0.01", got)
	}
	if got := std(w["features.0.bias"].Data); got != 0 {
		t.Errorf("bias not zero: std %g", got)
	}
	if _, err := cfg.InitWeightsScheme(3, "xavier"); err == nil {
		t.Error("unknown scheme accepted")
	}
}
