package probe

import (
	"bytes"
	"context"
	"encoding/json"
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
)

// writeFeatures writes a classification features artifact: k classes with
// random means in p dimensions, spread by noise (larger noise = a worse
// network), plus a few uninformative, differently scaled features.
func writeFeatures(t *testing.T, dir string, seed uint64, noise float64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 5))
	const k, p = 8, 24
	means := make([]float64, k*p)
	for i := range means {
		means[i] = rng.NormFloat64()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, split := range []string{"train", "test"} {
		n := map[string]int{"train": 480, "test": 400}[split]
		x := make([]float32, n*p)
		y := make([]int32, n)
		for i := 0; i < n; i++ {
			c := rng.IntN(k)
			y[i] = int32(c)
			for j := 0; j < p; j++ {
				x[i*p+j] = float32((means[c*p+j] + noise*rng.NormFloat64()) * float64(1+j%4))
			}
		}
		if err := npy.WriteFile(filepath.Join(dir, split+".npy"), []int{n, p}, x); err != nil {
			t.Fatal(err)
		}
		if err := npy.WriteFile(filepath.Join(dir, split+"_labels.npy"), []int{n}, y); err != nil {
			t.Fatal(err)
		}
	}
	classes := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	for name, v := range map[string]any{"classes.json": classes, "features.json": map[string]any{"kind": "classification", "dim": p, "layer": "output"}} {
		b, _ := json.Marshal(v)
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func runProbe(t *testing.T, arts []stages.Artifact, over map[string]any) (map[string]map[string]float64, string) {
	t.Helper()
	p := stages.Params{}
	for _, s := range New().Describe().Params {
		p[s.Name] = s.Default
	}
	for k, v := range over {
		p[k] = v
	}
	out := t.TempDir()
	var log bytes.Buffer
	req := &stages.Request{Inputs: map[string][]stages.Artifact{"features": arts}, Params: p, OutDir: out, Progress: stages.NopProgress{}, Log: &log}
	if err := New().Run(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	var m map[string]map[string]float64
	b, err := os.ReadFile(filepath.Join(out, "metrics.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	s, err := os.ReadFile(filepath.Join(out, "scores", "scores.json"))
	if err != nil || !bytes.Equal(s, b) {
		t.Errorf("scores/scores.json differs from metrics.json (%v)", err)
	}
	return m, log.String()
}

// TestProbeMatchesSklearn: top-1 accuracy within 1 point of sklearn's
// LogisticRegression on the same features, for a weak and a strong penalty.
func TestProbeMatchesSklearn(t *testing.T) {
	dir := t.TempDir()
	writeFeatures(t, dir, 1, 1.6)
	for _, c := range []float64{1, 0.01} {
		m, _ := runProbe(t, []stages.Artifact{{Path: dir, Stage: "pretrained"}}, map[string]any{"C": c})
		out, err := exec.Command("/usr/bin/python3", "testdata/sklearn_logreg.py", dir, strconv.FormatFloat(c, 'g', -1, 64)).CombinedOutput()
		if err != nil {
			t.Fatalf("sklearn reference: %v\n%s", err, out)
		}
		ref, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
		if err != nil {
			t.Fatalf("sklearn reference printed %q", out)
		}
		got := m["pretrained"]["top1"]
		t.Logf("C=%g: top1 %.4f, sklearn %.4f", c, got, ref)
		if math.Abs(got-ref) > 0.01 {
			t.Errorf("C=%g: top1 %.4f, sklearn %.4f; want within 1 point", c, got, ref)
		}
		if ref < 0.3 || ref > 0.95 {
			t.Errorf("C=%g: fixture accuracy %.3f is too easy or too hard to tell probes apart", c, ref)
		}
		if m["pretrained"]["converged"] != 1 {
			t.Errorf("C=%g: L-BFGS did not converge: %v", c, m["pretrained"])
		}
	}
}

func TestProbeRanksNetworks(t *testing.T) {
	root := t.TempDir()
	good, bad := filepath.Join(root, "good"), filepath.Join(root, "bad")
	writeFeatures(t, good, 2, 0.5)
	writeFeatures(t, bad, 2, 2.5)
	arts := []stages.Artifact{
		{Path: bad, Stage: "pretrained"},
		{Path: good, Stage: "tune_cl", Labels: map[string]string{"roi": "FFA-1", "subject": "subj01"}},
		{Path: bad, Stage: "tune_cl", Labels: map[string]string{"roi": "V1v", "subject": "subj01"}},
	}
	m, log := runProbe(t, arts, map[string]any{"top_k": int64(3)})
	g, b := m["tune_cl[FFA-1,subj01]"], m["pretrained"]
	if g == nil || b == nil || m["tune_cl[V1v,subj01]"] == nil {
		t.Fatalf("results keyed %v; want pretrained, tune_cl[FFA-1,subj01], tune_cl[V1v,subj01]", m)
	}
	if g["top1"] < b["top1"]+0.2 {
		t.Errorf("good features top1 %.3f, bad %.3f; want a clear gap", g["top1"], b["top1"])
	}
	for name, r := range m {
		if r["top3"] < r["top1"] || r["top3"] > 1 || r["n_test"] != 400 || r["n_train"] != 480 {
			t.Errorf("%s: %v", name, r)
		}
	}
	if !strings.Contains(log, "tune_cl[FFA-1,subj01]") || !strings.Contains(log, "top3") {
		t.Errorf("log has no table:\n%s", log)
	}
}

func TestTopK(t *testing.T) {
	scores := []float64{
		0.1, 0.7, 0.2, // label 2: second
		0.9, 0.05, 0.05, // label 0: first
		0.2, 0.3, 0.5, // label 0: third
	}
	got := TopK(scores, 3, 3, []int32{2, 0, 0}, 1, 2, 3)
	want := []float64{1.0 / 3, 2.0 / 3, 1}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-12 {
			t.Fatalf("TopK = %v, want %v", got, want)
		}
	}
}
