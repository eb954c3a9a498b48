package ridge

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/voxflow/voxflow/numerics/npy"
	"github.com/voxflow/voxflow/stages"
	"github.com/voxflow/voxflow/stages/artifact"
)

func TestParseReduction(t *testing.T) {
	for in, want := range map[string]string{"": "none", "none": "none", "pool:6": "pool:6", "pca:100": "pca:100"} {
		r, err := parseReduction(in)
		if err != nil || r.String() != want {
			t.Errorf("%q: %v, %v; want %s", in, r, err, want)
		}
	}
	for _, bad := range []string{"pool", "pool:0", "pca:-1", "pca:x", "svd:3", "pool:2:3"} {
		if _, err := parseReduction(bad); err == nil || !strings.Contains(err.Error(), "pool:N") {
			t.Errorf("%q: err = %v, want one naming the accepted forms", bad, err)
		}
	}
}

// TestMapShape checks the derived map shapes against AlexNet's known ones
// (torchvision at 224 px: features.2 is 64x27x27, features.12 256x6x6) and
// alexnet-mini's 2x2 final map at 64 px.
func TestMapShape(t *testing.T) {
	for _, tc := range []struct {
		arch       string
		size       int
		layer      string
		dim, c, hw int
	}{
		{"alexnet", 224, "features.0", 64 * 55 * 55, 64, 55},
		{"alexnet", 224, "features.2", 64 * 27 * 27, 64, 27},
		{"alexnet", 224, "features.4", 192 * 27 * 27, 192, 27},
		{"alexnet", 224, "features.5", 192 * 13 * 13, 192, 13},
		{"alexnet", 224, "features.11", 256 * 13 * 13, 256, 13},
		{"alexnet", 224, "features.12", 9216, 256, 6},
		{"alexnet", 224, "avgpool", 9216, 256, 6},
		{"alexnet-mini", 64, "features.12", 256, 64, 2},
	} {
		c, hw, err := mapShape(&artifact.Features{Arch: tc.arch, ImageSize: tc.size, Layer: tc.layer, Dim: tc.dim})
		if err != nil || c != tc.c || hw != tc.hw {
			t.Errorf("%s %d %s: %d x %d x %d, %v; want %d x %d x %d", tc.arch, tc.size, tc.layer, c, hw, hw, err, tc.c, tc.hw, tc.hw)
		}
	}
	if _, _, err := mapShape(&artifact.Features{Arch: "alexnet", ImageSize: 224, Layer: "classifier.1", Dim: 4096}); err == nil || !strings.Contains(err.Error(), "pca:K") {
		t.Errorf("pool on a classifier layer: err = %v", err)
	}
	if c, hw, err := mapShape(&artifact.Features{Layer: "x", Shape: []int{64, 7, 7}, Dim: 3136}); err != nil || c != 64 || hw != 7 {
		t.Errorf("features.json shape: %d, %d, %v", c, hw, err)
	}
}

// TestPoolMatchesTorch compares pool:N with torch's adaptive_avg_pool2d,
// on sizes whose bins overlap (27 -> 6) and do not (12 -> 4).
func TestPoolMatchesTorch(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 5))
	cases := []struct{ n, c, side, out int }{{3, 5, 27, 6}, {2, 4, 12, 4}, {2, 3, 6, 6}}
	dir := t.TempDir()
	maps := make([][]float32, len(cases))
	for i, tc := range cases {
		maps[i] = make([]float32, tc.n*tc.c*tc.side*tc.side)
		for k := range maps[i] {
			maps[i][k] = float32(rng.NormFloat64())
		}
		writeNpy(t, filepath.Join(dir, fmt.Sprintf("maps_%d_%d.npy", i, tc.out)), []int{tc.n, tc.c, tc.side, tc.side}, maps[i])
	}
	cmd := exec.Command("/usr/bin/python3", "testdata/reduce_reference.py", "pool", dir, "0")
	if out, err := cmd.CombinedOutput(); err != nil {
		if cmd.ProcessState != nil && cmd.ProcessState.ExitCode() == 3 {
			t.Skip("python3-torch is not installed")
		}
		t.Fatalf("torch reference: %v\n%s", err, out)
	}
	for i, tc := range cases {
		want := readNpy(t, filepath.Join(dir, fmt.Sprintf("pooled_%d.npy", i)))
		got := poolMaps(maps[i], tc.n, tc.c, tc.side, tc.out)
		if len(got) != len(want) {
			t.Fatalf("%+v: %d values, torch %d", tc, len(got), len(want))
		}
		for k := range want {
			if math.Abs(float64(got[k]-want[k])) > 1e-5 {
				t.Fatalf("%+v: value %d = %g, torch %g", tc, k, got[k], want[k])
			}
		}
	}
}

// TestPCAMatchesSklearn compares pca:K with sklearn's PCA fitted on the
// training rows (scores equal up to each component's sign), with fewer and
// with more features than rows, and checks that test rows do not move the
// training scores (PCA is fitted on training images only).
func TestPCAMatchesSklearn(t *testing.T) {
	for _, tc := range []struct{ n, nt, p, k int }{{120, 30, 40, 8}, {50, 20, 90, 10}} {
		x, _ := illConditioned(2, tc.n, tc.nt, tc.p, 1)
		xf := f32(x)
		xtr, xte := xf[:tc.n*tc.p], xf[tc.n*tc.p:]
		dir := t.TempDir()
		writeNpy(t, filepath.Join(dir, "x.npy"), []int{tc.n, tc.p}, xtr)
		writeNpy(t, filepath.Join(dir, "xtest.npy"), []int{tc.nt, tc.p}, xte)
		if out, err := exec.Command("/usr/bin/python3", "testdata/reduce_reference.py", "pca", dir, strconv.Itoa(tc.k)).CombinedOutput(); err != nil {
			t.Fatalf("sklearn reference: %v\n%s", err, out)
		}
		red := reduction{kind: ReducePCA, k: tc.k}
		tr, te, k, err := red.reduce(context.Background(), &artifact.Features{}, xtr, tc.n, xte, tc.nt, tc.p)
		if err != nil || k != tc.k {
			t.Fatalf("reduce: %v, width %d", err, k)
		}
		for name, pair := range map[string][2][]float32{"tr": {tr, nil}, "te": {te, nil}} {
			ref, err := npy.ReadFile[float64](filepath.Join(dir, name+".npy"))
			if err != nil {
				t.Fatal(err)
			}
			got := pair[0]
			rows := len(got) / k
			for c := 0; c < k; c++ {
				// Sign of the component from the training scores' largest entry.
				sign, scale := 1.0, 0.0
				for i := 0; i < rows; i++ {
					scale = math.Max(scale, math.Abs(ref.Data[i*k+c]))
				}
				if dot := dotCol(got, ref.Data, rows, k, c); dot < 0 {
					sign = -1
				}
				for i := 0; i < rows; i++ {
					if d := math.Abs(sign*float64(got[i*k+c]) - ref.Data[i*k+c]); d > 1e-3*scale {
						t.Fatalf("%+v %s: component %d row %d = %g, sklearn %g", tc, name, c, i, sign*float64(got[i*k+c]), ref.Data[i*k+c])
					}
				}
			}
		}
		// Other test rows leave the training scores unchanged.
		other := make([]float32, len(xte))
		for i := range other {
			other[i] = xte[i] * 3
		}
		tr2, _, _, err := red.reduce(context.Background(), &artifact.Features{}, xtr, tc.n, other, tc.nt, tc.p)
		if err != nil {
			t.Fatal(err)
		}
		for i := range tr {
			if tr[i] != tr2[i] {
				t.Fatalf("training score %d changed with the test rows: %g vs %g", i, tr[i], tr2[i])
			}
		}
	}
	// 20 rows of random features have rank 19 once centred.
	rng := rand.New(rand.NewPCG(6, 6))
	_, _, _, err := reduction{kind: ReducePCA, k: 25}.reduce(context.Background(), &artifact.Features{}, randn(rng, 20*30, 1), 20, nil, 0, 30)
	if err == nil || !strings.Contains(err.Error(), "rank 19") {
		t.Errorf("pca:25 of 20 rows: err = %v, want one about the rank", err)
	}
}

func dotCol(a []float32, b []float64, rows, k, c int) float64 {
	s := 0.0
	for i := 0; i < rows; i++ {
		s += float64(a[i*k+c]) * b[i*k+c]
	}
	return s
}

// TestRunWideLayer runs the stage on 3,136 features for 200 training
// images in float32: the width at which the old solver failed with
// "LAPACK ?syevd info=-8". It now takes the dual form; pool:3 and pca:20
// reduce it first, and pool on a non-map layer is refused by name.
func TestRunWideLayer(t *testing.T) {
	root := t.TempDir()
	dataDir, arts := writeFixture(t, root)
	// Widen the "good" network's 10 features to 64 channels of 7x7 maps.
	good := arts[1]
	wide := filepath.Join(root, "wide")
	rng := rand.New(rand.NewPCG(8, 8))
	const p = 64 * 7 * 7
	mix := make([]float32, 10*p)
	for i := range mix {
		mix[i] = float32(rng.NormFloat64())
	}
	for _, sp := range splitOrder {
		a, err := npy.ReadFile[float32](filepath.Join(good.Path, "subj01", sp+".npy"))
		if err != nil {
			t.Fatal(err)
		}
		n := a.Shape[0]
		x := make([]float32, n*p)
		for i := 0; i < n; i++ {
			for c := 0; c < 10; c++ {
				for j := 0; j < p; j++ {
					x[i*p+j] += a.Data[i*10+c] * mix[c*p+j]
				}
			}
			for j := 0; j < p; j++ {
				x[i*p+j] += 0.5 * float32(rng.NormFloat64())
			}
		}
		writeNpy(t, filepath.Join(wide, "subj01", sp+".npy"), []int{n, p}, x)
	}
	writeJSONFile(t, filepath.Join(wide, "features.json"), map[string]any{"net_stage": "wide", "layer": "features.12", "dim": p, "kind": "nsd", "shape": []int{64, 7, 7}})
	run := func(reduce string, inputs ...stages.Artifact) (*artifact.Metrics, string, error) {
		out := t.TempDir()
		var log bytes.Buffer
		req := &stages.Request{
			Inputs:   map[string][]stages.Artifact{"data": {{Path: dataDir}}, "features": inputs},
			Params:   params(map[string]any{"bootstrap": int64(0), "reduce": reduce}),
			OutDir:   out,
			Progress: stages.NopProgress{},
			Log:      &log,
		}
		if err := New().Run(context.Background(), req); err != nil {
			return nil, log.String(), err
		}
		var m artifact.Metrics
		b, err := os.ReadFile(filepath.Join(out, "metrics.json"))
		if err != nil {
			return nil, "", err
		}
		return &m, log.String(), json.Unmarshal(b, &m)
	}
	for _, reduce := range []string{"none", "pool:3", "pca:20"} {
		m, log, err := run(reduce, stages.Artifact{Path: wide, Stage: "wide"})
		if err != nil {
			t.Fatalf("reduce %s: %v", reduce, err)
		}
		for _, r := range testROIs {
			if s := m.ROI[r.name]["wide"]; s == nil || !(s.MeanR > 0.5) {
				t.Errorf("reduce %s, ROI %s: wide network scores %+v; want mean r > 0.5", reduce, r.name, s)
			}
		}
		if reduce != "none" && !strings.Contains(log, "reduced by "+reduce) {
			t.Errorf("reduce %s: the log does not say so:\n%s", reduce, log)
		}
	}
	if _, _, err := run("pool:8", stages.Artifact{Path: wide, Stage: "wide"}); err == nil || !strings.Contains(err.Error(), "7x7") {
		t.Errorf("pool:8 of 7x7 maps: err = %v", err)
	}
	if _, _, err := run("pool:2", arts[0]); err == nil || !strings.Contains(err.Error(), "classifier") {
		t.Errorf("pool on the control's output layer: err = %v, want a message that pool is for conv layers", err)
	}
}
