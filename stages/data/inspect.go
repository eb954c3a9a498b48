package data

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/voxflow/voxflow/numerics/npy"
	"github.com/voxflow/voxflow/stages/artifact"
)

// Layouts Inspect recognises.
const (
	LayoutAlgonauts      = "algonauts"
	LayoutNSD            = "nsd-artifact"
	LayoutClassification = "classification-artifact"
)

// Summary is a quick look at a dataset directory, for `voxflow data inspect`.
type Summary struct {
	Path      string           `json:"path"`
	Layout    string           `json:"layout"`
	Source    string           `json:"source,omitempty"`
	Part      string           `json:"part,omitempty"` // images or responses for a part artifact
	ImageSize int              `json:"image_size,omitempty"`
	Subjects  []SubjectSummary `json:"subjects,omitempty"`
	Classes   []ClassSummary   `json:"classes,omitempty"`
}

// SubjectSummary describes one subject.
type SubjectSummary struct {
	Name string `json:"name"`
	// Images counts images per split: train/val/test for artifacts,
	// train/test for an Algonauts root.
	Images map[string]int `json:"images"`
	// TestSplit is "release" or "holdout" for artifacts; for an Algonauts
	// root, whether test fMRI exists ("release" or "no test fMRI").
	TestSplit string `json:"test_split"`
	// FMRI gives the shape of each fMRI file of an Algonauts subject.
	FMRI map[string]string `json:"fmri,omitempty"`
	ROIs []ROISummary      `json:"rois"`
}

// ROISummary describes one ROI of a subject.
type ROISummary struct {
	Name     string `json:"name"`
	Group    string `json:"group"`
	VoxelsLH int    `json:"voxels_lh"`
	VoxelsRH int    `json:"voxels_rh"`
	// NoiseCeiling is the mean noise ceiling (fraction) over the ROI's
	// voxels, nil when unknown.
	NoiseCeiling *float64 `json:"noise_ceiling,omitempty"`
}

// ClassSummary counts one class's images per split.
type ClassSummary struct {
	Name   string         `json:"name"`
	Images map[string]int `json:"images"`
}

// Inspect summarises a data artifact (a directory with manifest.json), an
// Algonauts 2023 root (holding subjNN/), or one Algonauts subject folder.
func Inspect(path string) (*Summary, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("inspect: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("inspect %s: not a directory (expected a data artifact or an Algonauts root)", path)
	}
	if _, err := os.Stat(filepath.Join(path, "manifest.json")); err == nil {
		return inspectArtifact(path)
	}
	if _, err := os.Stat(filepath.Join(path, "training_split")); err == nil {
		sub, err := inspectAlgonautsSubject(filepath.Dir(path), filepath.Base(path))
		if err != nil {
			return nil, err
		}
		return &Summary{Path: path, Layout: LayoutAlgonauts, Subjects: []SubjectSummary{*sub}}, nil
	}
	subjects, err := AlgonautsSubjects(path)
	if err != nil {
		return nil, err
	}
	if len(subjects) == 0 {
		return nil, fmt.Errorf("inspect %s: expected a data artifact (manifest.json), an Algonauts root (subjNN/training_split/) or a subject folder", path)
	}
	s := &Summary{Path: path, Layout: LayoutAlgonauts}
	for _, name := range subjects {
		sub, err := inspectAlgonautsSubject(path, name)
		if err != nil {
			return nil, err
		}
		s.Subjects = append(s.Subjects, *sub)
	}
	return s, nil
}

func inspectArtifact(path string) (*Summary, error) {
	m, err := artifact.ReadManifest(path)
	if err != nil {
		return nil, err
	}
	s := &Summary{Path: path, Source: m.Source, Part: m.Part, ImageSize: m.ImageSize}
	if m.Kind == artifact.KindClassification {
		s.Layout = LayoutClassification
		for _, c := range m.Classes {
			s.Classes = append(s.Classes, ClassSummary{Name: c, Images: map[string]int{}})
		}
		for _, split := range artifact.Splits() {
			labels, err := artifact.LoadLabels(path, split)
			if err != nil {
				return nil, err
			}
			for i, l := range labels {
				if l < 0 || int(l) >= len(s.Classes) {
					return nil, fmt.Errorf("%s: label %d at %d, expected 0..%d", artifact.LabelsPath(path, split), l, i, len(s.Classes)-1)
				}
				s.Classes[l].Images[split]++
			}
		}
		return s, nil
	}
	s.Layout = LayoutNSD
	for _, name := range m.Subjects {
		sm, err := artifact.ReadSubjectManifest(filepath.Join(path, name))
		if err != nil {
			return nil, err
		}
		sub := SubjectSummary{Name: name, Images: sm.Splits, TestSplit: sm.TestSplit}
		for _, r := range sm.ROIs {
			rs := ROISummary{Name: r.Name, Group: r.Group, VoxelsLH: r.VoxelsLH, VoxelsRH: r.VoxelsRH}
			nc, err := artifact.LoadNoiseCeiling(path, name, r.Name)
			if err != nil {
				return nil, err
			}
			rs.NoiseCeiling = meanOf(nc)
			sub.ROIs = append(sub.ROIs, rs)
		}
		s.Subjects = append(s.Subjects, sub)
	}
	return s, nil
}

func meanOf(x []float32) *float64 {
	if len(x) == 0 {
		return nil
	}
	var s float64
	for _, v := range x {
		s += float64(v)
	}
	s /= float64(len(x))
	return &s
}

// inspectAlgonautsSubject reads only headers, file names and masks: it is
// quick even on a full release.
func inspectAlgonautsSubject(root, name string) (*SubjectSummary, error) {
	dir := filepath.Join(root, name)
	sub := &SubjectSummary{Name: name, Images: map[string]int{}, FMRI: map[string]string{}, TestSplit: "no test fMRI"}
	trainPaths, _, err := listPNGs(filepath.Join(dir, algoTrainImages), trainPNG)
	if err != nil {
		return nil, err
	}
	sub.Images[artifact.SplitTrain] = len(trainPaths)
	if testPaths, _, err := listPNGs(filepath.Join(dir, algoTestImages), testPNG); err == nil {
		sub.Images[artifact.SplitTest] = len(testPaths)
	}
	for _, f := range []string{algoTrainFMRI, algoTestFMRI} {
		for _, hemi := range hemiNames {
			p := filepath.Join(dir, fmt.Sprintf(f, hemi))
			h, err := npyHeader(p)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, err
			}
			sub.FMRI[strings.TrimSuffix(filepath.Base(p), ".npy")] = h.DType.String() + " " + npy.ShapeString(h.Shape)
			if f == algoTestFMRI {
				sub.TestSplit = "release"
			}
		}
	}
	var nc [2][]float32
	for h, hemi := range hemiNames {
		if a, err := npy.ReadFile[float32](filepath.Join(dir, fmt.Sprintf(algoNoiseCeiling, hemi))); err == nil {
			nc[h] = a.Data
		}
	}
	for _, fam := range families {
		var masks [2][]int32
		for h, hemi := range hemiNames {
			p := filepath.Join(dir, fmt.Sprintf(algoMask, hemi, fam.Name))
			if _, err := os.Stat(p); err != nil {
				continue
			}
			if masks[h], err = readMask(p, len(fam.Labels)); err != nil {
				return nil, err
			}
		}
		for li, roi := range fam.Labels {
			rs := ROISummary{Name: roi, Group: fam.Group}
			var vals []float32
			for h := range 2 {
				for v, l := range masks[h] {
					if int(l) == li+1 {
						if h == 0 {
							rs.VoxelsLH++
						} else {
							rs.VoxelsRH++
						}
						if nc[h] != nil && v < len(nc[h]) {
							vals = append(vals, nc[h][v])
						}
					}
				}
			}
			if rs.VoxelsLH+rs.VoxelsRH > 0 {
				rs.NoiseCeiling = meanOf(vals)
				sub.ROIs = append(sub.ROIs, rs)
			}
		}
	}
	return sub, nil
}

func npyHeader(path string) (npy.Header, error) {
	f, err := npy.Open(path)
	if err != nil {
		return npy.Header{}, err
	}
	defer f.Close()
	return f.Header, nil
}

// WriteText prints the summary for people.
func (s *Summary) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "%s: %s\n", s.Path, s.Layout)
	if s.Source != "" {
		fmt.Fprintf(tw, "source: %s\n", s.Source)
	}
	if s.Part != "" {
		fmt.Fprintf(tw, "part: %s (join it with the other part before tuning or ridge)\n", s.Part)
	}
	if s.ImageSize > 0 {
		fmt.Fprintf(tw, "image size: %d\n", s.ImageSize)
	}
	if len(s.Classes) > 0 {
		fmt.Fprintf(tw, "%d classes\nclass\ttrain\tval\ttest\n", len(s.Classes))
		for _, c := range s.Classes {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\n", c.Name, c.Images[artifact.SplitTrain], c.Images[artifact.SplitVal], c.Images[artifact.SplitTest])
		}
	}
	for _, sub := range s.Subjects {
		var parts []string
		for _, split := range artifact.Splits() {
			if n, ok := sub.Images[split]; ok {
				parts = append(parts, fmt.Sprintf("%s %d", split, n))
			}
		}
		fmt.Fprintf(tw, "\n%s: images %s (test split: %s)\n", sub.Name, strings.Join(parts, ", "), sub.TestSplit)
		for _, k := range slices.Sorted(maps.Keys(sub.FMRI)) {
			fmt.Fprintf(tw, "  %s: %s\n", k, sub.FMRI[k])
		}
		fmt.Fprintf(tw, "  ROI\tgroup\tvoxels lh\trh\tnoise ceiling\n")
		for _, r := range sub.ROIs {
			nc := "-"
			if r.NoiseCeiling != nil {
				nc = fmt.Sprintf("%.3f", *r.NoiseCeiling)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%s\n", r.Name, r.Group, r.VoxelsLH, r.VoxelsRH, nc)
		}
	}
	return tw.Flush()
}
