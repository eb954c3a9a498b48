// Package data is the `data` stage kind: it turns what a lab has on disk
// (the Algonauts 2023 release of NSD, image classification sets) or a
// synthetic generator with a planted ground truth into the data artifact
// every later stage reads. The artifact's format (manifests, paths and
// loaders) is package stages/artifact's, so that the kinds reading it need
// not import this one.
//
// Artifact layout (output port "dataset"), NSD-like sources:
//
//	manifest.json                      artifact.Manifest{kind: "nsd", ...}
//	<subject>/manifest.json            artifact.SubjectManifest
//	<subject>/<split>/images.npy       uint8 N x 3 x H x W
//	<subject>/<split>/roi/<ROI>.npy    float32 N x v, z-scored with train statistics, lh then rh voxels
//	<subject>/noise_ceiling/<ROI>.npy  float32 v, fraction of variance (when known)
//	<subject>/truth/...                synthetic only: planted noise ceilings, per-image category and attribute
//
// Parts (param part, NSD-like sources): an images part holds the
// subjects' images (<split>/images.npy, files.txt, synthetic truth of the
// images) and a responses part the ROIs' responses and noise ceilings, each
// with manifest.json{part: ...} and <subject>/manifest.json recording the
// split (artifact.SplitInfo). A data instance with input "parts" joins one images
// part per subject with responses parts into the layout above, equal byte
// for byte to part "all" of the same subjects and ROIs (JoinParts).
//
// Classification sources:
//
//	manifest.json                      artifact.Manifest{kind: "classification", classes: [...]}
//	<split>/images.npy, <split>/labels.npy (int32)
package data

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/voxflow/voxflow/internal/jsonfile"
	"github.com/voxflow/voxflow/stages"
	"github.com/voxflow/voxflow/stages/artifact"
)

// Source names (param `source`).
const (
	SourceAlgonauts           = "algonauts"
	SourceSynthetic           = "synthetic"
	SourceImageFolder         = "imagefolder"
	SourceIDX                 = "idx"
	SourceSyntheticCategories = "synthetic-categories"
)

// OutputPort is the name of the stage's only output.
const OutputPort = "dataset"

// PartsPort is the optional input of part artifacts to join.
const PartsPort = "parts"

type stage struct{}

// New returns the `data` stage kind.
func New() stages.Stage { return stage{} }

// Describe declares the kind's params and its one output.
func (stage) Describe() stages.Description {
	return stages.Description{
		Kind:    "data",
		Version: "3",
		Doc:     "load NSD (Algonauts 2023 layout), a synthetic NSD-like set, or a classification set into .npy arrays; or NSD in parts (images per subject, responses per ROI) and their join",
		Isolate: "inline",
		Params: []stages.ParamSpec{
			{Name: "source", Type: stages.TypeString, Default: SourceSynthetic,
				Enum: []string{SourceAlgonauts, SourceSynthetic, SourceImageFolder, SourceIDX, SourceSyntheticCategories},
				Doc:  "where the data come from"},
			{Name: "root", Type: stages.TypePath, Default: "",
				Doc: "algonauts: release root holding subjNN/; imagefolder: root/class/*.png|jpg; idx: folder of *-ubyte(.gz) files (e.g. /usr/share/datasets/fashion-mnist); relative to the spec's directory; its content is part of the key"},
			{Name: "subjects", Type: stages.TypeStrings, Default: []any{},
				Doc: "subjects to load; empty: every subjNN folder (algonauts) or subj01..subjNN (synthetic, n_subjects)"},
			{Name: "subject", Type: stages.TypeString, Default: "",
				Doc: "a single subject (bound by foreach); overrides subjects"},
			{Name: "rois", Type: stages.TypeStrings, Default: []any{},
				Doc: "ROI names to extract; empty: every ROI with vertices"},
			{Name: "roi", Type: stages.TypeString, Default: "",
				Doc: "a single ROI (bound by foreach); overrides rois"},
			{Name: "part", Type: stages.TypeString, Default: artifact.PartAll, Enum: []string{artifact.PartAll, artifact.PartImages, artifact.PartResponses},
				Doc: "NSD-like sources: all (images and responses, the layout later stages read), images (the subjects' images per split, no responses: independent of the ROI list) or responses (the ROIs' responses and noise ceilings, no images); a data stage with input parts joins them into the full layout"},
			{Name: "image_size", Type: stages.TypeInt, Default: int64(0), Min: stages.Bound(0), Max: stages.Bound(2048),
				Doc: "output image side; 0: source default (224 algonauts and imagefolder, 64 synthetic, synthetic-categories and idx)"},
			{Name: "resample", Type: stages.TypeString, Default: ResampleArea, Enum: []string{ResampleArea, ResampleBilinear},
				Doc: "resampling when resizing images: area (coverage-weighted box filter) or bilinear; with resize: shorter-side, Pillow's antialiased BOX or BILINEAR (bilinear = torchvision's Resize default)"},
			{Name: "resize", Type: stages.TypeString, Default: ResizeSquash, Enum: []string{ResizeSquash, ResizeShorterSide},
				Doc: "squash: scale the whole image to image_size (aspect ratio not kept; NSD images are square); shorter-side: torchvision's eval transform, shorter side to resize_to then a centre crop of image_size (Resize(256) + CenterCrop(224) with resample: bilinear)"},
			{Name: "resize_to", Type: stages.TypeInt, Default: int64(0), Min: stages.Bound(0), Max: stages.Bound(8192),
				Doc: "resize: shorter-side: the shorter side's length before the crop; 0: image_size*256/224 (256 for 224)"},
			{Name: "crop", Type: stages.TypeString, Default: CropCenter, Enum: []string{CropCenter},
				Doc: "resize: shorter-side: where the image_size crop is taken (center, as torchvision's CenterCrop)"},
			{Name: "val_fraction", Type: stages.TypeFloat, Default: 0.1, Min: stages.Bound(0), Max: stages.Bound(0.9),
				Doc: "fraction of training images held out as the validation split (early stopping, alpha choice)"},
			{Name: "test_fraction", Type: stages.TypeFloat, Default: 0.1, Min: stages.Bound(0), Max: stages.Bound(0.9),
				Doc: "seeded hold-out used as the test split when the source has no test split with responses/labels"},
			{Name: "seed", Type: stages.TypeInt, Default: int64(0), Doc: "seed for splits and synthetic data"},
			{Name: "nonfinite", Type: stages.TypeString, Default: NonFiniteError, Enum: []string{NonFiniteError, NonFiniteDrop},
				Doc: "what to do with NaN/Inf responses: fail, or drop the affected voxels"},
			{Name: "n_images", Type: stages.TypeInt, Default: int64(2000), Min: stages.Bound(3), Max: stages.Bound(1e6),
				Doc: "synthetic: images with fMRI per subject; synthetic-categories: images in all"},
			{Name: "n_subjects", Type: stages.TypeInt, Default: int64(2), Min: stages.Bound(1), Max: stages.Bound(99),
				Doc: "synthetic: number of subjects when subjects is empty"},
			{Name: "voxels_per_roi", Type: stages.TypeInt, Default: int64(40), Min: stages.Bound(2), Max: stages.Bound(100000),
				Doc: "synthetic: mean voxels per ROI (both hemispheres)"},
			{Name: "reps", Type: stages.TypeInt, Default: int64(3), Min: stages.Bound(1), Max: stages.Bound(20),
				Doc: "synthetic: repeated trials averaged per image (noise ceilings need at least 2)"},
			{Name: "n_classes", Type: stages.TypeInt, Default: int64(10), Min: stages.Bound(2), Max: stages.Bound(float64(len(shapeClasses()))),
				Doc: "synthetic-categories: number of shape classes"},
			{Name: "classes", Type: stages.TypeStrings, Default: []any{},
				Doc: "idx: class names by label; empty: Fashion-MNIST names when root mentions fashion, else the label numbers"},
			{Name: "noise_ceiling", Type: stages.TypeString, Default: "",
				Doc: "algonauts: where each subject's per-vertex noise ceilings are, a path pattern inside root with placeholders {root} (the root param), {subject} (subj01) and {hemi} (lh, rh): one 1-D .npy per subject and hemisphere, a value per vertex of the challenge space (as the fMRI columns) or of all fsaverage vertices (NSD's surface; mapped with the release's roi_masks/{hemi}.all-vertices_fsaverage_space.npy), NaN where unknown; e.g. {root}/{subject}/nc/{hemi}.npy (link files kept elsewhere into root: root's content is part of the cache key); the files must exist. Empty: voxflow's own layout " + DefaultNoiseCeiling + " in fractions (what voxflow data synth writes), used where present"},
			{Name: "noise_ceiling_unit", Type: stages.TypeString, Default: UnitFraction, Enum: []string{UnitFraction, UnitPercent},
				Doc: "algonauts: the unit of the noise_ceiling files: percent (0..100, of the trial-averaged response's variance that is signal, as NSD publishes) or fraction (0..1); values that contradict it are an error (a fraction above 1 looks like percent, a percent never above 1 like a fraction); the artifact holds fractions and its subject manifest records the source and unit"},
			{Name: "max_images", Type: stages.TypeInt, Default: int64(0), Min: stages.Bound(0),
				Doc: "idx: use at most this many images of each file; imagefolder: of each class; algonauts: the first this many images of each subject's training (and test) split, for a rehearsal on a subset (0: all)"},
		},
		Inputs: []stages.PortSpec{{Name: PartsPort, Many: true, Optional: true,
			Doc: "part artifacts to join (part: images and part: responses of the same source, seed and fractions): one images part per subject and the responses parts of its ROIs; when bound, the stage joins them and its source params are not used"}},
		Outputs: []stages.PortSpec{{Name: OutputPort, Doc: "data artifact (see package data for the layout)"}},
	}
}

// Run builds the data artifact under req.OutDir/dataset.
func (s stage) Run(ctx context.Context, req *stages.Request) error {
	p := req.Params
	out := filepath.Join(req.OutDir, OutputPort)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", out, err)
	}
	part := p.String("part")
	if parts := req.Inputs[PartsPort]; len(parts) > 0 {
		if part != artifact.PartAll {
			return fmt.Errorf("param part: %s with input %s: a join writes the full layout, expected part: %s (or no parts input)", part, PartsPort, artifact.PartAll)
		}
		metrics, err := JoinParts(ctx, parts, out)
		if err != nil {
			return err
		}
		return jsonfile.Write(filepath.Join(req.OutDir, "metrics.json"), metrics)
	}
	workers := req.Resources.CPUs
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	source := p.String("source")
	if part != artifact.PartAll && source != SourceAlgonauts && source != SourceSynthetic {
		return fmt.Errorf("param part: %s applies to NSD-like sources (%s, %s), not source %s; expected part: %s", part, SourceAlgonauts, SourceSynthetic, source, artifact.PartAll)
	}
	size := p.Int("image_size")
	if size == 0 {
		size = 64
		if source == SourceAlgonauts || source == SourceImageFolder {
			size = 224
		}
	}
	root := p.String("root")
	if root == "" && (source == SourceAlgonauts || source == SourceImageFolder || source == SourceIDX) {
		return fmt.Errorf("param root: required for source %s", source)
	}
	subjects := p.Strings("subjects")
	if one := p.String("subject"); one != "" {
		subjects = []string{one}
	}
	rois := p.Strings("rois")
	if one := p.String("roi"); one != "" {
		rois = []string{one}
	}
	opt := Options{
		Part:             part,
		ROIs:             rois,
		ImageSize:        size,
		Resample:         p.String("resample"),
		Resize:           p.String("resize"),
		ResizeTo:         p.Int("resize_to"),
		ValFraction:      p.Float("val_fraction"),
		TestFraction:     p.Float("test_fraction"),
		Seed:             int64(p.Int("seed")),
		NonFinite:        p.String("nonfinite"),
		MaxImages:        p.Int("max_images"),
		NoiseCeiling:     p.String("noise_ceiling"),
		NoiseCeilingUnit: p.String("noise_ceiling_unit"),
		Workers:          workers,
		Progress:         req.Progress,
		Log:              req.Log,
	}
	if err := opt.resizer().Check(); err != nil {
		return err
	}
	if source != SourceAlgonauts && (opt.NoiseCeiling != "" || opt.NoiseCeilingUnit != UnitFraction) {
		return fmt.Errorf("params noise_ceiling, noise_ceiling_unit: apply to source %s (files a lab has), not source %s; expected them unset", SourceAlgonauts, source)
	}
	var metrics map[string]any
	var err error
	switch source {
	case SourceAlgonauts:
		metrics, err = BuildAlgonauts(ctx, root, subjects, opt, out)
	case SourceSynthetic:
		if len(subjects) == 0 {
			subjects = SynthSubjectNames(p.Int("n_subjects"))
		}
		cfg := SynthConfig{Seed: opt.Seed, NImages: p.Int("n_images"), VoxelsPerROI: p.Int("voxels_per_roi"), Reps: p.Int("reps")}
		metrics, err = BuildSynthetic(ctx, cfg, subjects, opt, out)
	default:
		c := classOptions{
			Source:    source,
			Root:      root,
			NImages:   p.Int("n_images"),
			NClasses:  p.Int("n_classes"),
			Classes:   p.Strings("classes"),
			MaxImages: p.Int("max_images"),
			Options:   opt,
		}
		metrics, err = buildClassification(ctx, c, out)
	}
	if err != nil {
		return err
	}
	return jsonfile.Write(filepath.Join(req.OutDir, "metrics.json"), metrics)
}

// manifest is the top-level manifest of an NSD-like artifact or part.
func (o Options) manifest(source string, subjects []string) artifact.Manifest {
	m := artifact.Manifest{Kind: artifact.KindNSD, Source: source, Subjects: subjects, ImageSize: o.ImageSize, Preprocess: o.preprocess()}
	if o.isPart() {
		m.Part = o.Part
	}
	if !o.wantImages() {
		m.ImageSize, m.Preprocess = 0, nil
	}
	return m
}

// nsdMetrics summarises the subjects written.
func nsdMetrics(ms []*artifact.SubjectManifest) map[string]any {
	images := map[string]any{}
	voxels, rois := 0, 0
	for _, m := range ms {
		for s, n := range m.Splits {
			prev, _ := images[s].(int)
			images[s] = prev + n
		}
		rois = max(rois, len(m.ROIs))
		for _, r := range m.ROIs {
			voxels += r.Voxels()
		}
	}
	return map[string]any{"subjects": len(ms), "images": images, "rois": rois, "voxels": voxels}
}

// BuildAlgonauts converts the named subjects (all subjNN folders when
// empty) of an Algonauts 2023 release under root into an NSD-like data
// artifact at out. It returns summary metrics.
func BuildAlgonauts(ctx context.Context, root string, subjects []string, opt Options, out string) (map[string]any, error) {
	if st, err := os.Stat(root); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("algonauts root %s: not a directory (expected the release folder holding subj01/ ... subj08/)", root)
	}
	if len(subjects) == 0 {
		var err error
		if subjects, err = AlgonautsSubjects(root); err != nil {
			return nil, err
		}
		if len(subjects) == 0 {
			return nil, fmt.Errorf("algonauts root %s: no subjNN folders", root)
		}
	}
	opt = opt.withDefaults()
	ceilings, err := newCeilingSource(opt.NoiseCeiling, opt.NoiseCeilingUnit)
	if err != nil {
		return nil, err
	}
	var ms []*artifact.SubjectManifest
	for _, name := range subjects {
		s, err := openAlgonauts(root, name, opt.resizer(), opt.MaxImages)
		if err != nil {
			return nil, err
		}
		if opt.wantResponses() {
			// An images part never reads responses or their ceilings.
			if err := s.readNoiseCeiling(root, ceilings); err != nil {
				s.Close()
				return nil, fmt.Errorf("subject %s: %w", name, err)
			}
		}
		s.in.Finish = func() error { return s.digestSources(root, opt) }
		fmt.Fprintf(opt.Log, "%s: %d training images, test split %v\n", name, s.in.Train.N, s.in.Test != nil)
		m, err := buildSubject(ctx, &s.in, opt, filepath.Join(out, name))
		s.Close()
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	if err := jsonfile.Write(filepath.Join(out, "manifest.json"), opt.manifest(SourceAlgonauts+":"+root, subjects)); err != nil {
		return nil, err
	}
	return nsdMetrics(ms), nil
}

// BuildSynthetic generates an NSD-like data artifact with a planted ground
// truth at out.
func BuildSynthetic(ctx context.Context, cfg SynthConfig, subjects []string, opt Options, out string) (map[string]any, error) {
	cfg.NTest = 0
	opt = opt.withDefaults()
	si, err := newSynthImages(ctx, cfg.Seed, cfg.NImages, opt.wantResponses())
	if err != nil {
		return nil, err
	}
	var ms []*artifact.SubjectManifest
	for _, name := range subjects {
		var sub *synthSubject
		if opt.wantResponses() {
			if sub, err = newSynthSubject(ctx, si, name, cfg, opt.ROIs); err != nil {
				return nil, err
			}
		}
		m, err := buildSubject(ctx, synthSubjectInput(si, name, sub, cfg, opt.ImageSize), opt, filepath.Join(out, name))
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	src := fmt.Sprintf("synthetic:seed=%d,n_images=%d,voxels_per_roi=%d,reps=%d", cfg.Seed, cfg.NImages, cfg.VoxelsPerROI, cfg.Reps)
	if opt.Part == artifact.PartImages {
		// The images depend on these two only; a join takes its source
		// from the responses parts.
		src = fmt.Sprintf("synthetic:seed=%d,n_images=%d", cfg.Seed, cfg.NImages)
	}
	if err := jsonfile.Write(filepath.Join(out, "manifest.json"), opt.manifest(src, subjects)); err != nil {
		return nil, err
	}
	return nsdMetrics(ms), nil
}
