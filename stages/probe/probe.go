// Package probe is the `probe` stage kind: how much category information a
// network's features keep. For every features artifact of a classification
// set it fits a multinomial logistic regression with L2 penalty (L-BFGS) on
// the standardised features of the train split and reports top-1 and top-k
// accuracy on the test split, one result per network.
//
// Outputs: OutDir/scores/scores.json (port `scores`) and OutDir/metrics.json, both
// a JSON object keyed by network (the producing stage's name, followed by
// its foreach labels in brackets when one stage produced several
// artifacts, e.g. "tune_cl[subj01,FFA-1]"): {"<net>": {"top1": .., "top5":
// .., "n_train": .., "n_test": .., "iterations": .., "converged": 0|1}};
// the top-k key is "top<k>" for the top_k param.
package probe

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/voxflow/voxflow/internal/jsonfile"
	"github.com/voxflow/voxflow/numerics/npy"
	"github.com/voxflow/voxflow/stages"
	"github.com/voxflow/voxflow/stages/artifact"
)

// Version changes whenever the outputs for the same inputs change.
const Version = "1"

// Stage is the probe stage kind. Its zero value is ready to use.
type Stage struct{}

// New returns the probe stage kind.
func New() stages.Stage { return Stage{} }

// Describe declares the kind.
func (Stage) Describe() stages.Description {
	return stages.Description{
		Kind:    "probe",
		Version: Version,
		Doc:     "linear probe: multinomial logistic regression on features of a classification set; top-1/top-k test accuracy per network",
		Isolate: "inline",
		Params: []stages.ParamSpec{
			{Name: "C", Type: stages.TypeFloat, Default: 1.0, Min: stages.Bound(0), Doc: "inverse L2 strength, as scikit-learn's LogisticRegression C"},
			{Name: "max_iter", Type: stages.TypeInt, Default: int64(500), Min: stages.Bound(1), Doc: "L-BFGS iteration limit"},
			{Name: "tol", Type: stages.TypeFloat, Default: 1e-6, Min: stages.Bound(0), Doc: "stop when the gradient's max-norm (objective per training image) is below"},
			{Name: "top_k", Type: stages.TypeInt, Default: int64(5), Min: stages.Bound(1), Doc: "k of the top-k accuracy"},
		},
		Inputs: []stages.PortSpec{
			{Name: "features", Many: true, Doc: "features artifacts of classification sets (<split>.npy, <split>_labels.npy, classes.json)"},
		},
		Outputs: []stages.PortSpec{
			{Name: "scores", Doc: "directory with scores.json: per network top-1/top-k test accuracy"},
		},
	}
}

// Result is one network's probe outcome.
type Result map[string]float64

// Run fits one probe per features artifact.
func (Stage) Run(ctx context.Context, req *stages.Request) error {
	arts := req.Inputs["features"]
	if len(arts) == 0 {
		return fmt.Errorf("input features: no artifacts; want features of at least one network")
	}
	cfg := FitConfig{C: req.Params.Float("C"), MaxIter: req.Params.Int("max_iter"), Tol: req.Params.Float("tol")}
	topK := req.Params.Int("top_k")
	names := netNames(arts)
	results := map[string]Result{}
	for i, a := range arts {
		req.Progress.Update(stages.Update{Phase: "fit " + names[i], Done: float64(i), Total: float64(len(arts)), Unit: "network"})
		r, err := probeOne(ctx, a.Path, cfg, topK)
		if err != nil {
			return fmt.Errorf("network %s: %w", names[i], err)
		}
		results[names[i]] = r
		fmt.Fprintf(req.Log, "probe: %s: top1 %.4f top%d %.4f (%d L-BFGS iterations, %s)\n", names[i], r["top1"], topK, r[fmt.Sprintf("top%d", topK)], int(r["iterations"]), r.stopReason())
	}
	req.Progress.Update(stages.Update{Phase: "fit", Done: float64(len(arts)), Total: float64(len(arts)), Unit: "network"})
	b, err := jsonfile.Encode(results)
	if err != nil {
		return fmt.Errorf("encode scores: %w", err)
	}
	dir := filepath.Join(req.OutDir, "scores")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	for _, p := range []string{filepath.Join(dir, "scores.json"), filepath.Join(req.OutDir, artifact.ScoresFile)} {
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
	}
	writeTable(req, names, results, topK)
	return nil
}

// stopReason says in words why L-BFGS stopped.
func (r Result) stopReason() string {
	if r["converged"] == 1 {
		return "converged"
	}
	return "iteration limit or stalled line search"
}

// netNames names each artifact by its stage, adding the foreach labels
// when a stage produced several.
func netNames(arts []stages.Artifact) []string {
	count := map[string]int{}
	for _, a := range arts {
		count[a.Stage]++
	}
	names := make([]string, len(arts))
	seen := map[string]int{}
	for i, a := range arts {
		name := a.Stage
		if count[a.Stage] > 1 {
			keys := make([]string, 0, len(a.Labels))
			for k := range a.Labels {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			vals := make([]string, len(keys))
			for j, k := range keys {
				vals[j] = a.Labels[k]
			}
			name += "[" + strings.Join(vals, ",") + "]"
		}
		seen[name]++
		if seen[name] > 1 {
			name += fmt.Sprintf("#%d", seen[name])
		}
		names[i] = name
	}
	return names
}

// featureSplit is one split of a classification features artifact.
type featureSplit struct {
	x      []float64
	n, p   int
	labels []int32
}

func loadSplit(dir, split string) (*featureSplit, error) {
	xp := artifact.FeaturesPath(dir, "", split)
	x, err := npy.ReadFile[float64](xp)
	if err != nil {
		return nil, err
	}
	if len(x.Shape) != 2 {
		return nil, fmt.Errorf("%s: shape %s, want images x features", xp, npy.ShapeString(x.Shape))
	}
	lp := artifact.FeatureLabelsPath(dir, split)
	l, err := npy.ReadFileExact[int32](lp)
	if err != nil {
		return nil, err
	}
	if len(l.Data) != x.Shape[0] {
		return nil, fmt.Errorf("%s: %d labels for %d rows of %s", lp, len(l.Data), x.Shape[0], xp)
	}
	return &featureSplit{x: x.Data, n: x.Shape[0], p: x.Shape[1], labels: l.Data}, nil
}

func probeOne(ctx context.Context, dir string, cfg FitConfig, topK int) (Result, error) {
	if _, err := artifact.ReadFeatures(dir, artifact.KindClassification); err != nil {
		return nil, err
	}
	var classes []string
	cp := filepath.Join(dir, artifact.ClassesFile)
	b, err := os.ReadFile(cp)
	if err != nil {
		return nil, fmt.Errorf("features artifact: %w", err)
	}
	if err := json.Unmarshal(b, &classes); err != nil {
		return nil, fmt.Errorf("parse %s: want a JSON list of class names: %w", cp, err)
	}
	tr, err := loadSplit(dir, "train")
	if err != nil {
		return nil, err
	}
	te, err := loadSplit(dir, "test")
	if err != nil {
		return nil, err
	}
	if te.p != tr.p {
		return nil, fmt.Errorf("%s: %d test features, %d train features", dir, te.p, tr.p)
	}
	m, err := FitLogReg(ctx, tr.x, tr.n, tr.p, tr.labels, len(classes), cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	for i, l := range te.labels {
		if l < 0 || int(l) >= len(classes) {
			return nil, fmt.Errorf("%s: test label %d of row %d, want 0 <= label < %d", dir, l, i, len(classes))
		}
	}
	acc := TopK(m.Scores(te.x, te.n), te.n, len(classes), te.labels, 1, topK)
	r := Result{"top1": acc[0], fmt.Sprintf("top%d", topK): acc[1], "n_train": float64(tr.n), "n_test": float64(te.n), "iterations": float64(m.Iterations)}
	if strings.HasPrefix(m.Status, "GradientThreshold") || strings.HasPrefix(m.Status, "FunctionConvergence") {
		r["converged"] = 1
	} else {
		r["converged"] = 0
	}
	return r, nil
}

func writeTable(req *stages.Request, names []string, results map[string]Result, topK int) {
	tw := tabwriter.NewWriter(req.Log, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "network\ttop1\ttop%d\tn_test\t\n", topK)
	for _, n := range names {
		r := results[n]
		fmt.Fprintf(tw, "%s\t%.4f\t%.4f\t%d\t\n", n, r["top1"], r[fmt.Sprintf("top%d", topK)], int(r["n_test"]))
	}
	tw.Flush()
}
