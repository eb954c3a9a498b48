package artifact

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/voxflow/voxflow/internal/jsonfile"
	"github.com/voxflow/voxflow/numerics/npy"
)

// Dataset kinds in manifest.json.
const (
	KindNSD            = "nsd"
	KindClassification = "classification"
)

// Split names. Test images are never in train or val.
const (
	SplitTrain = "train"
	SplitVal   = "val"
	SplitTest  = "test"
)

// Parts of an NSD-like data artifact (param `part`). A study keeps one
// images part per subject and one responses part per (subject, ROI), and a
// join (the data kind with input `parts`) assembles the standard layout
// from them, so adding an ROI leaves every existing join byte-identical.
const (
	PartAll       = "all"       // images and responses: the standard layout
	PartImages    = "images"    // one subject's images per split, no responses
	PartResponses = "responses" // one subject's responses (and noise ceilings), no images
)

// Splits lists the split names in canonical order.
func Splits() []string { return []string{SplitTrain, SplitVal, SplitTest} }

// Manifest is a data artifact's top-level manifest.json.
type Manifest struct {
	Kind   string `json:"kind"` // KindNSD or KindClassification
	Source string `json:"source"`
	// Part is PartImages or PartResponses for a part artifact; "" for the
	// standard layout every later stage reads.
	Part      string   `json:"part,omitempty"`
	Subjects  []string `json:"subjects,omitempty"` // nsd
	Classes   []string `json:"classes,omitempty"`  // classification
	ImageSize int      `json:"image_size"`
	// Preprocess says how images.npy was made from the source files and
	// what a network does to it before its first layer.
	Preprocess *Preprocess `json:"preprocess,omitempty"`
}

// Normalization is what every network in voxflow (and torchvision's
// pretrained AlexNet) does to images.npy before the first layer.
const Normalization = "x/255, then (x - mean)/std per channel with ImageNet's mean [0.485, 0.456, 0.406] and std [0.229, 0.224, 0.225] (torchvision's Normalize); images.npy itself holds uint8 RGB, N x 3 x H x W"

// Preprocess records an artifact's image preprocessing.
type Preprocess struct {
	Resize   string `json:"resize"`              // squash | shorter-side
	ResizeTo int    `json:"resize_to,omitempty"` // shorter-side: length before the crop
	Crop     string `json:"crop,omitempty"`      // shorter-side: center
	Resample string `json:"resample"`            // area | bilinear
	Decoder  string `json:"decoder"`
	// Normalize is applied by the networks, not stored in the artifact.
	Normalize string `json:"normalize"`
}

// ROIInfo describes one ROI of a subject in the artifact.
type ROIInfo struct {
	Name     string `json:"name"`
	Family   string `json:"family"`
	Group    string `json:"group"`
	VoxelsLH int    `json:"voxels_lh"`
	VoxelsRH int    `json:"voxels_rh"`
	// Dropped counts voxels removed by nonfinite: drop-voxels.
	Dropped int `json:"dropped,omitempty"`
}

// Voxels is the ROI's voxel count, left then right hemisphere.
func (r ROIInfo) Voxels() int { return r.VoxelsLH + r.VoxelsRH }

// SubjectManifest is <subject>/manifest.json of an NSD-like data artifact.
type SubjectManifest struct {
	Subject string           `json:"subject"`
	ROIs    []ROIInfo        `json:"rois"`
	NSDIDs  map[string][]int `json:"nsd_ids"`
	Splits  map[string]int   `json:"splits"`
	// Sources maps source paths (relative to the source root) to BLAKE3
	// hex digests, for provenance.
	Sources map[string]string `json:"sources"`
	// TestSplit says where test came from: "release" (the source's own test
	// split with fMRI) or "holdout" (seeded hold-out from training).
	TestSplit string `json:"test_split"`
	// NoiseCeiling is "" when no noise ceilings are known, else what the
	// values mean (fraction of variance of the trial-averaged response).
	NoiseCeiling string `json:"noise_ceiling,omitempty"`
	// NoiseCeilingSource is where the ceilings came from: the path pattern
	// (param noise_ceiling) with the subject filled in, or the synthetic
	// generator. NoiseCeilingUnit is the unit the source held them in
	// (percent or fraction); the artifact's files are always fractions.
	NoiseCeilingSource string `json:"noise_ceiling_source,omitempty"`
	NoiseCeilingUnit   string `json:"noise_ceiling_unit,omitempty"`
	ImageSize          int    `json:"image_size"`
	// Split is set in part artifacts only: how the rows were assigned to
	// splits, so that a join can check that its parts agree.
	Split *SplitInfo `json:"split,omitempty"`
}

// SplitInfo records a subject's split assignment in a part artifact. Two
// parts made from the same source with the same seed and fractions have
// equal SplitInfo (and NSD ids); a join refuses parts that differ.
type SplitInfo struct {
	Seed         int64   `json:"seed"`
	ValFraction  float64 `json:"val_fraction"`
	TestFraction float64 `json:"test_fraction"`
	// Images counts the source's images (training, then the release's
	// test split when it has fMRI).
	Images int `json:"images"`
	// Rows maps each split to the BLAKE3 hex digest of its rows' sources,
	// one line per row: the image file relative to the source root, or
	// nsd-<id> for generated images.
	Rows map[string]string `json:"rows"`
}

// ROI returns the named ROI's info.
func (m *SubjectManifest) ROI(name string) (ROIInfo, bool) {
	for _, r := range m.ROIs {
		if r.Name == name {
			return r, true
		}
	}
	return ROIInfo{}, false
}

// ReadManifest reads dir/manifest.json of a data artifact.
func ReadManifest(dir string) (*Manifest, error) {
	var m Manifest
	if err := jsonfile.Read(filepath.Join(dir, "manifest.json"), &m); err != nil {
		return nil, err
	}
	if m.Kind != KindNSD && m.Kind != KindClassification {
		return nil, fmt.Errorf("%s: kind %q, expected %q or %q", filepath.Join(dir, "manifest.json"), m.Kind, KindNSD, KindClassification)
	}
	return &m, nil
}

// ReadSubjectManifest reads <dir>/manifest.json, where dir is a subject's
// directory inside an NSD-like data artifact (dataset/subj01).
func ReadSubjectManifest(dir string) (*SubjectManifest, error) {
	var m SubjectManifest
	if err := jsonfile.Read(filepath.Join(dir, "manifest.json"), &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// ResolveSubject picks the subject of an NSD-like data artifact that a
// stage instance works on: subject when set (it must be in the manifest),
// else the artifact's only subject.
func ResolveSubject(dataset, subject string) (string, error) {
	m, err := ReadManifest(dataset)
	if err != nil {
		return "", err
	}
	if m.Kind != KindNSD {
		return "", fmt.Errorf("data artifact %s: kind %q, want %q (fMRI responses)", dataset, m.Kind, KindNSD)
	}
	if subject != "" {
		for _, s := range m.Subjects {
			if s == subject {
				return subject, nil
			}
		}
		return "", fmt.Errorf("data artifact %s: no subject %q (have %v)", dataset, subject, m.Subjects)
	}
	if len(m.Subjects) != 1 {
		return "", fmt.Errorf("data artifact %s has subjects %v: set param subject (or foreach over subject)", dataset, m.Subjects)
	}
	return m.Subjects[0], nil
}

// ImagesPath is the images.npy of a split: dataset/subject/split/images.npy
// for NSD-like artifacts, dataset/split/images.npy for classification ones
// (subject "").
func ImagesPath(dataset, subject, split string) string {
	return filepath.Join(dataset, subject, split, "images.npy")
}

// ROIPath is dataset/subject/split/roi/<roi>.npy.
func ROIPath(dataset, subject, split, roi string) string {
	return filepath.Join(dataset, subject, split, "roi", roi+".npy")
}

// NoiseCeilingPath is dataset/subject/noise_ceiling/<roi>.npy.
func NoiseCeilingPath(dataset, subject, roi string) string {
	return filepath.Join(dataset, subject, "noise_ceiling", roi+".npy")
}

// TrueNoiseCeilingPath is the synthetic source's planted noise ceiling,
// dataset/subject/truth/noise_ceiling/<roi>.npy.
func TrueNoiseCeilingPath(dataset, subject, roi string) string {
	return filepath.Join(dataset, subject, "truth", "noise_ceiling", roi+".npy")
}

// LabelsPath is dataset/split/labels.npy of a classification artifact.
func LabelsPath(dataset, split string) string {
	return filepath.Join(dataset, split, "labels.npy")
}

// LoadImages reads a split's uint8 N x 3 x H x W images. Use subject "" for
// classification artifacts. It holds the whole split in memory; stream
// large ones with npy.Open(ImagesPath(...)).
func LoadImages(dataset, subject, split string) (*npy.Array[uint8], error) {
	a, err := npy.ReadFileExact[uint8](ImagesPath(dataset, subject, split))
	if err != nil {
		return nil, partHint(dataset, err)
	}
	if len(a.Shape) != 4 || a.Shape[1] != 3 {
		return nil, fmt.Errorf("%s: shape %s, expected N x 3 x H x W", ImagesPath(dataset, subject, split), npy.ShapeString(a.Shape))
	}
	return a, nil
}

// LoadROI reads a split's float32 N x v responses for one ROI.
func LoadROI(dataset, subject, split, roi string) (*npy.Array[float32], error) {
	p := ROIPath(dataset, subject, split, roi)
	a, err := npy.ReadFileExact[float32](p)
	if err != nil {
		return nil, partHint(dataset, err)
	}
	if len(a.Shape) != 2 {
		return nil, fmt.Errorf("%s: shape %s, expected images x voxels", p, npy.ShapeString(a.Shape))
	}
	return a, nil
}

// partHint explains a missing file of a part artifact: a stage that needs
// images and responses was given one part instead of a join of both.
func partHint(dataset string, err error) error {
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	m, merr := ReadManifest(dataset)
	if merr != nil || m.Part == "" {
		return err
	}
	return fmt.Errorf("%w (this data artifact is part: %s only: join it with the other part in a data stage whose input parts lists both, and read the join)", err, m.Part)
}

// LoadNoiseCeiling reads an ROI's per-voxel noise ceilings (fraction of the
// trial-averaged response's variance that is signal). It returns nil, nil
// when the artifact has none.
func LoadNoiseCeiling(dataset, subject, roi string) ([]float32, error) {
	p := NoiseCeilingPath(dataset, subject, roi)
	if _, err := os.Stat(p); os.IsNotExist(err) {
		return nil, nil
	}
	a, err := npy.ReadFileExact[float32](p)
	if err != nil {
		return nil, err
	}
	return a.Data, nil
}

// LoadLabels reads a classification split's int32 labels.
func LoadLabels(dataset, split string) ([]int32, error) {
	a, err := npy.ReadFileExact[int32](LabelsPath(dataset, split))
	if err != nil {
		return nil, err
	}
	return a.Data, nil
}
