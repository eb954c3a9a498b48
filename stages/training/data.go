package training

import (
	"fmt"

	"github.com/voxflow/voxflow/numerics/network"
	"github.com/voxflow/voxflow/stages/artifact"
)

// ROISplit is one split of one subject's images and one ROI's responses,
// images already resized to the network's input size.
type ROISplit struct {
	N      int
	Images []uint8   // N x 3 x S x S
	Voxels []float32 // N x V
}

// ROIData is the training and validation data for tuning one network on
// one (subject, ROI). Test images are deliberately not loaded.
type ROIData struct {
	Subject, ROI string
	V            int // voxels in the ROI
	Train, Val   ROISplit
}

// loadROIData reads the train and val splits of (subject, roi) from an
// NSD-like data artifact, resizing images to size.
func loadROIData(dataset, subject, roi string, size int) (*ROIData, error) {
	subject, err := artifact.ResolveSubject(dataset, subject)
	if err != nil {
		return nil, err
	}
	if roi == "" {
		return nil, fmt.Errorf("param roi is empty: set it (or foreach over roi)")
	}
	d := &ROIData{Subject: subject, ROI: roi}
	for _, sp := range []struct {
		name string
		dst  *ROISplit
	}{{artifact.SplitTrain, &d.Train}, {artifact.SplitVal, &d.Val}} {
		img, err := artifact.LoadImages(dataset, subject, sp.name)
		if err != nil {
			return nil, err
		}
		vox, err := artifact.LoadROI(dataset, subject, sp.name, roi)
		if err != nil {
			return nil, err
		}
		n := img.Shape[0]
		if vox.Shape[0] != n {
			return nil, fmt.Errorf("%s: %d response rows for %d images", artifact.ROIPath(dataset, subject, sp.name, roi), vox.Shape[0], n)
		}
		if img.Shape[2] != img.Shape[3] {
			return nil, fmt.Errorf("%s: images %dx%d, want square", artifact.ImagesPath(dataset, subject, sp.name), img.Shape[2], img.Shape[3])
		}
		d.V = vox.Shape[1]
		*sp.dst = ROISplit{N: n, Images: network.ResizeImages(img.Data, n, img.Shape[2], size), Voxels: vox.Data}
	}
	return d, nil
}

// ClassSplit is one split of a classification data artifact.
type ClassSplit struct {
	N      int
	Images []uint8 // N x 3 x S x S
	Labels []int32
}

// LoadClassSplit reads one split of a classification data artifact,
// resizing images to size.
func LoadClassSplit(dataset, split string, size int) (*ClassSplit, error) {
	img, err := artifact.LoadImages(dataset, "", split)
	if err != nil {
		return nil, err
	}
	lab, err := artifact.LoadLabels(dataset, split)
	if err != nil {
		return nil, err
	}
	n := img.Shape[0]
	if len(lab) != n {
		return nil, fmt.Errorf("%s: %d labels for %d images", artifact.LabelsPath(dataset, split), len(lab), n)
	}
	return &ClassSplit{N: n, Images: network.ResizeImages(img.Data, n, img.Shape[2], size), Labels: lab}, nil
}
