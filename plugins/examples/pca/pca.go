package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat"

	"github.com/voxflow/voxflow/numerics/npy"
	"github.com/voxflow/voxflow/stages"
)

// Stage is the pca kind.
type Stage struct{}

// Describe declares the kind.
func (Stage) Describe() stages.Description {
	one := 1.0
	return stages.Description{
		Kind:    "pca",
		Version: "1",
		Doc:     "project features onto their top principal components, fit on the train split",
		Isolate: "process",
		Params: []stages.ParamSpec{
			{Name: "components", Type: stages.TypeInt, Default: int64(64), Min: &one, Doc: "principal components kept"},
		},
		Inputs: []stages.PortSpec{
			{Name: "features", Many: true, Doc: "features artifacts (NSD or classification layout)"},
		},
		Outputs: []stages.PortSpec{
			{Name: "features", Doc: "the projected features, same layout; one sub-directory per input when there are several"},
		},
	}
}

// Run fits and applies PCA to every input.
func (Stage) Run(ctx context.Context, req *stages.Request) error {
	k := req.Params.Int("components")
	ins := req.Inputs["features"]
	if len(ins) == 0 {
		return fmt.Errorf("input features: no artifacts; want at least one features artifact")
	}
	out := filepath.Join(req.OutDir, "features")
	metrics := map[string]any{}
	var index []indexEntry
	for i, in := range ins {
		dst, name := out, dirName(in)
		if len(ins) > 1 {
			dst = filepath.Join(out, name)
			index = append(index, indexEntry{Dir: name, Stage: in.Stage, Labels: in.Labels})
		}
		req.Progress.Update(stages.Update{Phase: "pca " + name, Done: float64(i), Total: float64(len(ins)), Unit: "input"})
		evr, err := reduce(ctx, in.Path, dst, k, req.Log)
		if err != nil {
			return fmt.Errorf("input features from %s (%s): %w", in.Stage, in.Path, err)
		}
		metrics[name] = evr
	}
	req.Progress.Update(stages.Update{Phase: "pca", Done: float64(len(ins)), Total: float64(len(ins)), Unit: "input"})
	if len(ins) > 1 {
		if err := writeJSON(filepath.Join(out, "index.json"), index); err != nil {
			return err
		}
	}
	return writeJSON(filepath.Join(req.OutDir, "metrics.json"), map[string]any{"explained_variance_ratio": metrics})
}

type indexEntry struct {
	Dir    string            `json:"dir"`
	Stage  string            `json:"stage"`
	Labels map[string]string `json:"labels,omitempty"`
}

// dirName names an input's sub-directory: its stage, then its labels, so
// that per-ROI networks of one stage stay apart.
func dirName(a stages.Artifact) string {
	name := a.Stage
	if name == "" {
		name = filepath.Base(a.Path)
	}
	keys := make([]string, 0, len(a.Labels))
	for k := range a.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		name += "," + k + "=" + a.Labels[k]
	}
	return strings.NewReplacer("/", "_", string(filepath.Separator), "_").Replace(name)
}

// reduce writes the PCA-reduced copy of the features artifact src at dst and
// returns the explained variance ratio kept per fit ("" for a root fit).
func reduce(ctx context.Context, src, dst string, k int, log io.Writer) (map[string]float64, error) {
	var info map[string]any
	b, err := os.ReadFile(filepath.Join(src, "features.json"))
	if err != nil {
		return nil, fmt.Errorf("read features.json: %w", err)
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, fmt.Errorf("parse %s: %w", filepath.Join(src, "features.json"), err)
	}
	evr := map[string]float64{}
	err = filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			if _, err := os.Stat(filepath.Join(path, "train.npy")); err == nil {
				r, err := fitDir(path, target, k)
				if err != nil {
					return err
				}
				group := filepath.ToSlash(rel)
				if group == "." {
					group = "all"
				}
				evr[group] = r
				fmt.Fprintf(log, "pca %s: %d components keep %.1f%% of the train variance\n", group, k, 100*r)
			}
			return nil
		}
		switch {
		case rel == "features.json":
			return nil // rewritten below
		case isFeatureFile(path) && fileExists(filepath.Join(filepath.Dir(path), "train.npy")):
			return nil // projected by fitDir
		case isFeatureFile(path):
			return fmt.Errorf("%s: no train.npy beside it to fit the components on; want every features directory to hold a train split", path)
		}
		return copyFile(path, target)
	})
	if err != nil {
		return nil, err
	}
	info["dim"] = k
	info["pca"] = map[string]any{"components": k, "fit_split": "train", "explained_variance_ratio": evr}
	return evr, writeJSON(filepath.Join(dst, "features.json"), info)
}

// isFeatureFile tells feature matrices from the labels beside them.
func isFeatureFile(path string) bool {
	return strings.HasSuffix(path, ".npy") && !strings.HasSuffix(path, "_labels.npy")
}

// fitDir fits PCA on dir/train.npy and writes every feature split of dir,
// projected, to target. It returns the explained variance ratio kept.
func fitDir(dir, target string, k int) (float64, error) {
	train, err := load(filepath.Join(dir, "train.npy"))
	if err != nil {
		return 0, err
	}
	n, d := train.Dims()
	if k > min(n, d) {
		return 0, fmt.Errorf("param components = %d: %s has %d images x %d features; want components <= %d", k, filepath.Join(dir, "train.npy"), n, d, min(n, d))
	}
	var pc stat.PC
	if !pc.PrincipalComponents(train, nil) {
		return 0, fmt.Errorf("PCA of %s did not converge", filepath.Join(dir, "train.npy"))
	}
	var vecs mat.Dense
	pc.VectorsTo(&vecs)
	basis := mat.DenseCopyOf(vecs.Slice(0, d, 0, k))
	orient(basis)
	vars := pc.VarsTo(nil)
	var kept, total float64
	for i, v := range vars {
		total += v
		if i < k {
			kept += v
		}
	}
	mean := make([]float64, d)
	for j := range mean {
		mean[j] = stat.Mean(mat.Col(nil, j, train), nil)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if e.IsDir() || !isFeatureFile(p) {
			continue
		}
		x := train
		if e.Name() != "train.npy" {
			if x, err = load(p); err != nil {
				return 0, err
			}
			if _, xd := x.Dims(); xd != d {
				return 0, fmt.Errorf("%s has %d features, train.npy %d; want the same", p, xd, d)
			}
		}
		if err := project(x, mean, basis, filepath.Join(target, e.Name())); err != nil {
			return 0, err
		}
	}
	if total == 0 {
		return 0, nil
	}
	return kept / total, nil
}

// orient flips each component so that its largest loading is positive:
// SVD signs are arbitrary, and a rerun must give the same bytes so that the
// cache sees the same artifact.
func orient(basis *mat.Dense) {
	d, k := basis.Dims()
	for c := 0; c < k; c++ {
		best := 0.0
		for r := 0; r < d; r++ {
			if v := basis.At(r, c); math.Abs(v) > math.Abs(best) {
				best = v
			}
		}
		if best < 0 {
			for r := 0; r < d; r++ {
				basis.Set(r, c, -basis.At(r, c))
			}
		}
	}
}

// project writes (x - mean) * basis as float32 to path.
func project(x *mat.Dense, mean []float64, basis *mat.Dense, path string) error {
	n, d := x.Dims()
	_, k := basis.Dims()
	centred := mat.NewDense(n, d, nil)
	centred.Apply(func(_, j int, v float64) float64 { return v - mean[j] }, x)
	var z mat.Dense
	z.Mul(centred, basis)
	out := make([]float32, 0, n*k)
	for i := 0; i < n; i++ {
		for j := 0; j < k; j++ {
			out = append(out, float32(z.At(i, j)))
		}
	}
	return npy.WriteFile(path, []int{n, k}, out)
}

func load(path string) (*mat.Dense, error) {
	a, err := npy.ReadFile[float32](path)
	if err != nil {
		return nil, err
	}
	if len(a.Shape) != 2 || a.Shape[0] == 0 {
		return nil, fmt.Errorf("%s: shape %s, want images x features", path, npy.ShapeString(a.Shape))
	}
	data := make([]float64, len(a.Data))
	for i, v := range a.Data {
		data[i] = float64(v)
	}
	return mat.NewDense(a.Shape[0], a.Shape[1], data), nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
