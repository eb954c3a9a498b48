package artifact

import (
	"fmt"
	"path/filepath"

	"github.com/voxflow/voxflow/internal/jsonfile"
	"github.com/voxflow/voxflow/numerics/npy"
)

// A features artifact holds one network layer's outputs on every split of
// a data artifact:
//
//	features.json   Features
//	NSD:            <subject>/<split>.npy   float32 N x D
//	classification: <split>.npy float32 N x D, <split>_labels.npy int32 N, classes.json
const (
	FeaturesFile = "features.json"
	ClassesFile  = "classes.json"
)

// Features is a features artifact's features.json.
type Features struct {
	NetStage  string            `json:"net_stage"`
	NetLabels map[string]string `json:"net_labels,omitempty"`
	Layer     string            `json:"layer"`
	Dim       int               `json:"dim"`
	Kind      string            `json:"kind"` // the data artifact's: KindNSD or KindClassification
	Subjects  []string          `json:"subjects,omitempty"`
	Classes   []string          `json:"classes,omitempty"`
	Arch      string            `json:"arch"`
	ImageSize int               `json:"image_size"`
	// Shape is the [C, H, W] of a conv layer's map when recorded; ridge's
	// reduce: pool derives it from Arch and Layer otherwise.
	Shape []int `json:"shape,omitempty"`
}

// ReadFeatures reads dir/features.json and checks that the features were
// computed on a data artifact of the given kind ("" accepts any).
func ReadFeatures(dir, kind string) (*Features, error) {
	var f Features
	p := filepath.Join(dir, FeaturesFile)
	if err := jsonfile.Read(p, &f); err != nil {
		return nil, fmt.Errorf("features artifact: %w", err)
	}
	if kind != "" && f.Kind != kind {
		return nil, fmt.Errorf("%s: kind %q, want %q", p, f.Kind, kind)
	}
	return &f, nil
}

// FeaturesPath is a split's feature matrix: dir/subject/split.npy, or
// dir/split.npy for a classification artifact (subject "").
func FeaturesPath(dir, subject, split string) string {
	return filepath.Join(dir, subject, split+".npy")
}

// FeatureLabelsPath is a classification split's labels, dir/split_labels.npy.
func FeatureLabelsPath(dir, split string) string {
	return filepath.Join(dir, split+"_labels.npy")
}

// LoadFeatures reads a split's N x D features as float32.
func LoadFeatures(dir, subject, split string) (*npy.Array[float32], error) {
	f := FeaturesPath(dir, subject, split)
	a, err := npy.ReadFile[float32](f)
	if err != nil {
		return nil, err
	}
	if len(a.Shape) != 2 {
		return nil, fmt.Errorf("%s: shape %s, want images x features", f, npy.ShapeString(a.Shape))
	}
	return a, nil
}
