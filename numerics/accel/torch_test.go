package accel

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// python is the Debian interpreter with numpy and torch (the pyenv one on
// PATH has neither).
const python = "/usr/bin/python3"

// runTorch writes the named float32 arrays to a temp dir, runs script there
// with /usr/bin/python3 (helpers ld(name, *shape) and sv(name, tensor) are
// predefined), and returns the arrays named in outs.
func runTorch(t *testing.T, script string, ins map[string][]float32, outs ...string) map[string][]float32 {
	t.Helper()
	if _, err := os.Stat(python); err != nil {
		t.Fatalf("reference needs %s with torch (Debian python3-torch): %v", python, err)
	}
	dir := t.TempDir()
	for name, v := range ins {
		buf := make([]byte, 4*len(v))
		for i, f := range v {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(f))
		}
		if err := os.WriteFile(filepath.Join(dir, name+".bin"), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	prelude := `import numpy as np, torch, torch.nn.functional as F
torch.set_num_threads(1)
def ld(n, *s): return torch.from_numpy(np.fromfile(n + ".bin", dtype="<f4").reshape(s).astype(np.float64)).requires_grad_(True)
def sv(n, x): np.asarray(x.detach().numpy(), dtype="<f4").tofile(n + ".bin")
`
	cmd := exec.Command(python, "-c", prelude+script)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("torch reference failed: %v\n%s", err, out)
	}
	res := map[string][]float32{}
	for _, name := range outs {
		buf, err := os.ReadFile(filepath.Join(dir, name+".bin"))
		if err != nil {
			t.Fatalf("torch reference output %s: %v", name, err)
		}
		v := make([]float32, len(buf)/4)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(buf[4*i:]))
		}
		res[name] = v
	}
	return res
}

func randn(rng *rand.Rand, n int, scale float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64()) * scale
	}
	return v
}

// assertClose fails unless got and want agree within tol relative to the
// largest magnitude in want (elementwise relative error is meaningless for
// entries that are zero by construction, such as unselected pool inputs).
func assertClose(t *testing.T, name string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, expected %d", name, len(got), len(want))
	}
	scale := 0.0
	for _, w := range want {
		scale = max(scale, math.Abs(float64(w)))
	}
	if scale == 0 {
		scale = 1
	}
	worst, at := 0.0, 0
	for i := range got {
		if d := math.Abs(float64(got[i]-want[i])) / scale; d > worst || math.IsNaN(d) {
			worst, at = d, i
		}
	}
	if worst > tol || math.IsNaN(worst) {
		t.Fatalf("%s: max relative error %.3g at %d (got %g, want %g), tolerance %g", name, worst, at, got[at], want[at], tol)
	}
}
