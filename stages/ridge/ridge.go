// Package ridge is the `ridge` stage kind: voxel-wise encoding models.
// For every network (a features artifact), subject and ROI it fits one
// L2-penalised linear regression per voxel from the network's features on
// the training images, with each voxel's penalty chosen by K-fold
// cross-validation, scores Pearson r per voxel on the test images, and
// compares networks: per subject a paired bootstrap over test images
// (every network scored on the same resamples, voxels kept together) gives
// the CI and p of each mean-r difference, and a fit of several subjects
// tests the differences with subjects as the unit; % of voxels improved
// and a Wilcoxon signed-rank p over voxels stay as descriptive numbers
// (voxels are not independent samples).
//
// The solver (solver.go, basis.go) follows himalaya's RidgeCV: one
// decomposition per fold and GEMMs for all alphas and voxels at once,
// batched over voxels so memory never scales with voxels x alphas x images.
// The decomposition is a thin SVD of the fold's standardised training
// features, computed in float64 from the p x p Gram matrix when p <= n
// (primal) or from the n x n kernel matrix when p > n (dual), so any layer
// width works; dtype float32 then runs the voxel GEMMs in float32 on that
// float64 basis, which keeps per-voxel test r within 1e-4 of float64 at
// every alpha (solving the normal equations in float32 would square the
// features' condition number).
//
// Conventions (see specs/README.md, "The ridge stage"): contiguous K-fold
// CV within the training rows; features standardised per fold with the
// fold's training statistics (a held-out fold never informs the scaling
// it is scored under) and, for the refit, with all training rows'; each
// voxel's alpha chosen by mean held-out Pearson r (cv_score: r) by default.
//
// Training rows are the data artifact's train split, plus its val split
// when merge_val is true (the default): the networks never saw test images,
// and ridge has no use for a separate validation split since alphas are
// chosen by cross-validation within the training rows. Scores always come
// from the test split.
//
// Outputs, under OutDir/scores (port `scores`), per network N (the
// producing stage's name), subject S and ROI R:
//
//	N/S/R_r.npy        float32 v_r   test Pearson r per voxel (lh then rh)
//	N/S/R_alpha.npy    float32 v_r   chosen penalty per voxel
//	N/S/R_weights.npy  float32 D x v_r  with save_weights, on standardised
//	                   features (x - feature_mean) / feature_scale
//	N/S/feature_mean.npy, N/S/feature_scale.npy  with save_weights
//
// and OutDir/metrics.json, whose structure is artifact.Metrics; the layout
// is package artifact's (VoxelScoresDir, ScoresFile), which report reads.
package ridge

import (
	"context"
	"fmt"
	"math"

	"github.com/voxflow/voxflow/numerics/linalg"
	"github.com/voxflow/voxflow/stages"
)

// Version changes whenever the outputs for the same inputs change.
//
// 2: per-fold standardisation, cv_score r by default, float64 basis for
// float32 fits, dual form for wide layers, the reduce param.
// 3: metrics: p_boot and subjects_test on comparisons, n_above_ceiling on
// scores, wilcoxon_p renamed wilcoxon_p_descriptive.
const Version = "3"

// Stage is the ridge stage kind. Its zero value is ready to use.
type Stage struct{}

// New returns the ridge stage kind.
func New() stages.Stage { return Stage{} }

func defaultAlphas() []any {
	out := make([]any, 15)
	for i := range out {
		out[i] = math.Pow(10, -1+7*float64(i)/14)
	}
	return out
}

// Describe declares the kind.
func (Stage) Describe() stages.Description {
	return stages.Description{
		Kind:    "ridge",
		Version: Version,
		Doc:     "voxel-wise ridge encoding models with per-voxel CV alphas (held-out r, per-fold standardisation, dual form for layers wider than the images); test Pearson r per voxel, ROI/group summaries and network comparisons",
		// Its own process, so that it can give OpenBLAS every CPU it was
		// granted without fighting the accel backend's single-thread setting.
		Isolate: "process",
		Params: []stages.ParamSpec{
			{Name: "subject", Type: stages.TypeString, Default: "", Doc: "subject to fit; \"\" fits every subject of the data"},
			{Name: "rois", Type: stages.TypeStrings, Default: []any{}, Doc: "ROIs to fit; empty fits every ROI with voxels"},
			{Name: "roi", Type: stages.TypeString, Default: "", Doc: "a single ROI (bound by foreach); overrides rois"},
			{Name: "alphas", Type: stages.TypeFloats, Default: defaultAlphas(), Min: stages.Bound(0), Doc: "candidate penalties on standardised features (default logspace(-1, 6, 15): from near-OLS to near-zero weights for a few thousand images)"},
			{Name: "folds", Type: stages.TypeInt, Default: int64(5), Min: stages.Bound(2), Doc: "K of the K-fold CV within the training rows that picks each voxel's alpha; contiguous folds without shuffling (sklearn KFold): deterministic, and rows acquired together stay in one fold; 5 as in most encoding-model work"},
			{Name: "cv_score", Type: stages.TypeString, Default: ScoreR, Enum: []string{ScoreR, ScoreMSE}, Doc: "what CV maximises per voxel: r = mean held-out Pearson r (default: the quantity reported, the field's usual choice), mse = lowest mean held-out squared error"},
			{Name: "reduce", Type: stages.TypeString, Default: ReduceNone, Doc: "reduce the features before ridge: none (default: ridge handles any width, in the dual form when features outnumber images), pool:N (average each channel's map to NxN, torch AdaptiveAvgPool2d bins; conv layers and avgpool only, features stored C x H x W), pca:K (first K principal components of the centred features, fitted on the training images only)"},
			{Name: "merge_val", Type: stages.TypeBool, Default: true, Doc: "train on the train and val splits together (the networks never saw test images; alphas come from CV, so a separate val split has no use here)"},
			{Name: "baseline", Type: stages.TypeString, Default: "", Doc: "stage name of the control network's features; default the first features input"},
			{Name: "save_weights", Type: stages.TypeBool, Default: false, Doc: "also write per-voxel weights (D x v) per network and ROI, on features standardised with all training rows"},
			{Name: "bootstrap", Type: stages.TypeInt, Default: int64(1000), Min: stages.Bound(0), Doc: "bootstrap resamples of the test images (drawn once per subject and shared by every network, all voxels together) for 95% CIs of mean r and paired CIs and p-values (p_boot) of every network difference; 0 skips them"},
			{Name: "seed", Type: stages.TypeInt, Default: int64(0), Doc: "seed of the bootstrap resampling"},
			{Name: "dtype", Type: stages.TypeString, Default: "float32", Enum: []string{"float32", "float64"}, Doc: "precision of the per-voxel GEMMs (the decomposition is always float64): float32 (default) halves the memory of the voxel-sized arrays and runs float32 GEMMs, and agrees with float64 to 1e-4 in test r at every alpha; float64 reproduces a float64 reference to round-off"},
			{Name: "voxel_batch", Type: stages.TypeInt, Default: int64(0), Min: stages.Bound(0), Doc: "voxels solved at once; 0 sizes batches to ~128 MB of work arrays"},
		},
		Inputs: []stages.PortSpec{
			{Name: "data", Doc: "an NSD-like data artifact (train/val/test ROI responses)"},
			{Name: "features", Many: true, Doc: "features artifacts of several networks on the same data; one with a roi label serves only that ROI"},
		},
		Outputs: []stages.PortSpec{
			{Name: "scores", Doc: "per network/subject/ROI: <R>_r.npy, <R>_alpha.npy, optional <R>_weights.npy"},
		},
	}
}

// options are the Run params, decoded once.
type options struct {
	subject     string
	rois        []string
	cfg         Config
	mergeVal    bool
	baseline    string
	saveWeights bool
	bootstrap   int
	seed        uint64
	float64     bool
	reduce      reduction
}

func decodeParams(p stages.Params) (options, error) {
	red, err := parseReduction(p.String("reduce"))
	if err != nil {
		return options{}, err
	}
	o := options{
		reduce:      red,
		subject:     p.String("subject"),
		rois:        p.Strings("rois"),
		mergeVal:    p.Bool("merge_val"),
		baseline:    p.String("baseline"),
		saveWeights: p.Bool("save_weights"),
		bootstrap:   p.Int("bootstrap"),
		seed:        uint64(p.Int("seed")),
		float64:     p.String("dtype") == "float64",
		cfg: Config{
			Alphas:     p.Floats("alphas"),
			Folds:      p.Int("folds"),
			Score:      p.String("cv_score"),
			VoxelBatch: p.Int("voxel_batch"),
		},
	}
	if r := p.String("roi"); r != "" {
		o.rois = []string{r}
	}
	return o, nil
}

// Run fits every network, subject and ROI and writes scores and metrics.
func (Stage) Run(ctx context.Context, req *stages.Request) error {
	linalg.SetThreads(req.Resources.CPUs)
	opt, err := decodeParams(req.Params)
	if err != nil {
		return err
	}
	data := req.Inputs["data"]
	if len(data) != 1 {
		return fmt.Errorf("input data: got %d artifacts, want exactly one data artifact", len(data))
	}
	nets, err := groupNetworks(req.Inputs["features"])
	if err != nil {
		return err
	}
	if opt.baseline == "" {
		opt.baseline = nets.names[0]
	} else if _, ok := nets.arts[opt.baseline]; !ok {
		return fmt.Errorf("param baseline %q: no features input from a stage of that name (have %v)", opt.baseline, nets.names)
	}
	j := &job{req: req, opt: opt, dataDir: data[0].Path, nets: nets, cells: map[cellKey]*cell{}}
	if err := j.run(ctx); err != nil {
		return err
	}
	m := j.metrics()
	if err := writeMetrics(req.OutDir, m); err != nil {
		return err
	}
	writeTable(req.Log, m)
	return nil
}
