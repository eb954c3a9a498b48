package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/voxflow/voxflow/numerics/npy"
	"github.com/voxflow/voxflow/plugins"
	"github.com/voxflow/voxflow/stages"
)

// binary is the plugin built by TestMain: the tests go through a real
// plugin process, as the engine does.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "voxflow-pca-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "voxflow-pca")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	code := 1
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build voxflow-pca:", err)
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// lowRank writes n x d float32 features with three planted directions of
// well separated variance, so the top components are well defined.
func lowRank(t *testing.T, rng *rand.Rand, w [][]float64, path string, n int) {
	t.Helper()
	d := len(w[0])
	out := make([]float32, 0, n*d)
	for i := 0; i < n; i++ {
		row := make([]float64, d)
		for c, scale := range []float64{10, 5, 2} {
			z := scale * rng.NormFloat64()
			for j := range row {
				row[j] += z * w[c][j]
			}
		}
		for j := range row {
			out = append(out, float32(row[j]+0.1*rng.NormFloat64()+3))
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := npy.WriteFile(path, []int{n, d}, out); err != nil {
		t.Fatal(err)
	}
}

func writeJSONFile(t *testing.T, path string, v any) {
	t.Helper()
	b, _ := json.Marshal(v)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// fixtures writes an NSD features artifact (two subjects) and a
// classification one.
func fixtures(t *testing.T) (nsd, cls string) {
	rng := rand.New(rand.NewPCG(1, 2))
	const d = 12
	w := make([][]float64, 3)
	for c := range w {
		w[c] = make([]float64, d)
		for j := range w[c] {
			w[c][j] = rng.NormFloat64() / math.Sqrt(d)
		}
	}
	nsd = filepath.Join(t.TempDir(), "nsd")
	for _, subj := range []string{"subj01", "subj02"} {
		for split, n := range map[string]int{"train": 80, "val": 10, "test": 20} {
			lowRank(t, rng, w, filepath.Join(nsd, subj, split+".npy"), n)
		}
	}
	writeJSONFile(t, filepath.Join(nsd, "features.json"), map[string]any{"net_stage": "tune_cl", "layer": "output", "dim": d, "kind": "nsd"})
	cls = filepath.Join(t.TempDir(), "cls")
	for split, n := range map[string]int{"train": 50, "test": 30} {
		lowRank(t, rng, w, filepath.Join(cls, split+".npy"), n)
		labels := make([]int32, n)
		for i := range labels {
			labels[i] = int32(i % 3)
		}
		if err := npy.WriteFile(filepath.Join(cls, split+"_labels.npy"), []int{n}, labels); err != nil {
			t.Fatal(err)
		}
	}
	writeJSONFile(t, filepath.Join(cls, "classes.json"), []string{"a", "b", "c"})
	writeJSONFile(t, filepath.Join(cls, "features.json"), map[string]any{"net_stage": "pretrained", "layer": "output", "dim": d, "kind": "classification"})
	return nsd, cls
}

func run(t *testing.T, params stages.Params, inputs ...stages.Artifact) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := plugins.Open(ctx, binary)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ss := c.Stages()
	if len(ss) != 1 || ss[0].Describe().Kind != "pca" {
		t.Fatalf("plugin provides %v, want kind pca", c.Descriptions())
	}
	out := t.TempDir()
	var log strings.Builder
	err = ss[0].Run(ctx, &stages.Request{
		Instance: "pca", Inputs: map[string][]stages.Artifact{"features": inputs},
		Params: params, OutDir: out, Progress: stages.NopProgress{}, Log: &log,
	})
	t.Logf("plugin log:\n%s", log.String())
	return out, err
}

// sklearnProjection projects every split of dir with scikit-learn's PCA fit
// on dir/train.npy: the reference implementation.
func sklearnProjection(t *testing.T, dir string, k int, splits []string) map[string][][]float64 {
	t.Helper()
	script := `
import json, sys, numpy as np
from sklearn.decomposition import PCA
d, k = sys.argv[1], int(sys.argv[2])
p = PCA(n_components=k, svd_solver="full").fit(np.load(d + "/train.npy").astype(np.float64))
print(json.dumps({s: p.transform(np.load(d + "/" + s + ".npy").astype(np.float64)).tolist() for s in sys.argv[3:]}))
`
	out, err := exec.Command("/usr/bin/python3", append([]string{"-c", script, dir, fmt.Sprint(k)}, splits...)...).Output()
	if err != nil {
		t.Fatalf("sklearn reference: %v", err)
	}
	var ref map[string][][]float64
	if err := json.Unmarshal(out, &ref); err != nil {
		t.Fatal(err)
	}
	return ref
}

// sameUpToSign compares projections column by column, allowing each
// component its sign (SVD leaves it free).
func sameUpToSign(t *testing.T, name string, got *npy.Array[float32], want [][]float64) {
	t.Helper()
	if got.Shape[0] != len(want) || got.Shape[1] != len(want[0]) {
		t.Fatalf("%s: shape %v, want %d x %d", name, got.Shape, len(want), len(want[0]))
	}
	for c := 0; c < got.Shape[1]; c++ {
		sign := 1.0
		if float64(got.Row(0)[c])*want[0][c] < 0 {
			sign = -1
		}
		for i := range want {
			g, w := sign*float64(got.Row(i)[c]), want[i][c]
			if math.Abs(g-w) > 1e-3*(1+math.Abs(w)) {
				t.Fatalf("%s[%d,%d] = %v, sklearn %v", name, i, c, g, w)
			}
		}
	}
}

func TestPCAMatchesSklearnThroughThePlugin(t *testing.T) {
	nsd, cls := fixtures(t)
	out, err := run(t, stages.Params{"components": int64(3)},
		stages.Artifact{Path: nsd, Stage: "features_cl", Labels: map[string]string{"roi": "FFA-1"}},
		stages.Artifact{Path: cls, Stage: "features_probe"})
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(out, "features")
	var index []indexEntry
	b, err := os.ReadFile(filepath.Join(root, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &index); err != nil {
		t.Fatal(err)
	}
	want := []indexEntry{{Dir: "features_cl,roi=FFA-1", Stage: "features_cl", Labels: map[string]string{"roi": "FFA-1"}}, {Dir: "features_probe", Stage: "features_probe"}}
	if !reflect.DeepEqual(index, want) {
		t.Errorf("index %+v, want %+v", index, want)
	}

	for _, subj := range []string{"subj01", "subj02"} {
		ref := sklearnProjection(t, filepath.Join(nsd, subj), 3, []string{"train", "val", "test"})
		for split, w := range ref {
			a, err := npy.ReadFileExact[float32](filepath.Join(root, "features_cl,roi=FFA-1", subj, split+".npy"))
			if err != nil {
				t.Fatal(err)
			}
			sameUpToSign(t, subj+"/"+split, a, w)
		}
	}
	ref := sklearnProjection(t, cls, 3, []string{"train", "test"})
	for split, w := range ref {
		a, err := npy.ReadFileExact[float32](filepath.Join(root, "features_probe", split+".npy"))
		if err != nil {
			t.Fatal(err)
		}
		sameUpToSign(t, split, a, w)
		labels, err := npy.ReadFileExact[int32](filepath.Join(root, "features_probe", split+"_labels.npy"))
		if err != nil || labels.Data[4] != 1 {
			t.Errorf("%s labels not copied: %v", split, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "features_probe", "classes.json")); err != nil {
		t.Error(err)
	}

	var info map[string]any
	b, _ = os.ReadFile(filepath.Join(root, "features_cl,roi=FFA-1", "features.json"))
	if err := json.Unmarshal(b, &info); err != nil {
		t.Fatal(err)
	}
	if info["dim"] != 3.0 || info["kind"] != "nsd" || info["net_stage"] != "tune_cl" {
		t.Errorf("features.json %v: want dim 3 and the input's other fields", info)
	}
	var metrics map[string]map[string]map[string]float64
	b, _ = os.ReadFile(filepath.Join(out, "metrics.json"))
	if err := json.Unmarshal(b, &metrics); err != nil {
		t.Fatal(err)
	}
	// Three planted directions hold almost all the variance.
	if r := metrics["explained_variance_ratio"]["features_cl,roi=FFA-1"]["subj01"]; r < 0.95 || r > 1 {
		t.Errorf("explained variance ratio %v, want > 0.95", r)
	}
}

func TestPCAOneInputIsAFeaturesArtifact(t *testing.T) {
	nsd, _ := fixtures(t)
	out, err := run(t, stages.Params{"components": int64(2)}, stages.Artifact{Path: nsd, Stage: "features"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := npy.ReadFileExact[float32](filepath.Join(out, "features", "subj02", "test.npy"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a.Shape, []int{20, 2}) {
		t.Errorf("shape %v, want [20 2]", a.Shape)
	}
	if _, err := os.Stat(filepath.Join(out, "features", "features.json")); err != nil {
		t.Error(err)
	}
}

func TestPCATooManyComponents(t *testing.T) {
	nsd, _ := fixtures(t)
	_, err := run(t, stages.Params{"components": int64(13)}, stages.Artifact{Path: nsd, Stage: "features"})
	var se *plugins.StageError
	if !errors.As(err, &se) || !strings.Contains(se.Message, "components = 13") || !strings.Contains(se.Message, "want components <= 12") {
		t.Fatalf("want a stage error naming the param and the limit, got %v", err)
	}
}
