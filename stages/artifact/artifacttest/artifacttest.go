// Package artifacttest writes small artifacts in voxflow's conventional layouts
// (NSD-like and classification data, network directories) for the tests of
// the kinds that read them (features, pretrain, tune-cl, tune-mse). The data carry a planted, learnable signal so that
// tests can check that training lowers the loss.
package artifacttest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/voxflow/voxflow/internal/jsonfile"
	"github.com/voxflow/voxflow/numerics/network"
	"github.com/voxflow/voxflow/numerics/npy"
	"github.com/voxflow/voxflow/stages/artifact"
)

// NSDSizes are the split sizes WriteNSD writes.
type NSDSizes struct{ Train, Val, Test int }

func writeJSON(path string, v any) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return jsonfile.Write(path, v)
}

// images draws n images 3 x s x s: a noisy background with a coloured
// square at a random place; feats returns the hidden features the
// responses are built from (channel means of the four quadrants).
func images(rng *rand.Rand, n, s int) ([]uint8, [][]float64) {
	img := make([]uint8, n*3*s*s)
	feats := make([][]float64, n)
	for i := range n {
		x0, y0, w := rng.IntN(s/2), rng.IntN(s/2), s/4+rng.IntN(s/4)
		col := [3]int{rng.IntN(256), rng.IntN(256), rng.IntN(256)}
		f := make([]float64, 12)
		for c := range 3 {
			for y := range s {
				for x := range s {
					v := rng.IntN(64)
					if x >= x0 && x < x0+w && y >= y0 && y < y0+w {
						v = col[c]
					}
					img[((i*3+c)*s+y)*s+x] = uint8(v)
					q := 2*(2*y/s) + 2*x/s
					f[c*4+q] += float64(v) / float64(s*s/4) / 255
				}
			}
		}
		feats[i] = f
	}
	return img, feats
}

// WriteNSD writes an NSD-like data artifact with one subject ("subj01")
// and the given ROIs (v voxels each, half per hemisphere) under dir.
// Responses are a fixed random linear map of the hidden features plus
// noise, z-scored per voxel with training statistics.
func WriteNSD(dir string, size int, sz NSDSizes, rois []string, v int, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, 42))
	subj := "subj01"
	splits := map[string]int{artifact.SplitTrain: sz.Train, artifact.SplitVal: sz.Val, artifact.SplitTest: sz.Test}
	feats := map[string][][]float64{}
	for _, sp := range artifact.Splits() {
		img, f := images(rng, splits[sp], size)
		feats[sp] = f
		if err := os.MkdirAll(filepath.Join(dir, subj, sp, "roi"), 0o755); err != nil {
			return err
		}
		if err := npy.WriteFile(artifact.ImagesPath(dir, subj, sp), []int{splits[sp], 3, size, size}, img); err != nil {
			return err
		}
	}
	var infos []artifact.ROIInfo
	for _, roi := range rois {
		infos = append(infos, artifact.ROIInfo{Name: roi, Family: "prf-visualrois", Group: "early", VoxelsLH: v / 2, VoxelsRH: v - v/2})
		w := make([]float64, 12*v)
		for i := range w {
			w[i] = rng.NormFloat64()
		}
		resp := map[string][]float64{}
		for _, sp := range artifact.Splits() {
			r := make([]float64, splits[sp]*v)
			for i, f := range feats[sp] {
				for j := range v {
					var s float64
					for k, x := range f {
						s += x * w[k*v+j]
					}
					r[i*v+j] = s + 0.05*rng.NormFloat64()
				}
			}
			resp[sp] = r
		}
		mean, std := make([]float64, v), make([]float64, v)
		tr := resp[artifact.SplitTrain]
		for j := range v {
			for i := range sz.Train {
				mean[j] += tr[i*v+j] / float64(sz.Train)
			}
			for i := range sz.Train {
				std[j] += math.Pow(tr[i*v+j]-mean[j], 2) / float64(sz.Train)
			}
			std[j] = math.Sqrt(std[j])
		}
		for _, sp := range artifact.Splits() {
			out := make([]float32, len(resp[sp]))
			for i := range out {
				j := i % v
				out[i] = float32((resp[sp][i] - mean[j]) / std[j])
			}
			if err := npy.WriteFile(artifact.ROIPath(dir, subj, sp, roi), []int{splits[sp], v}, out); err != nil {
				return err
			}
		}
	}
	ids := map[string][]int{}
	next := 0
	for _, sp := range artifact.Splits() {
		for range splits[sp] {
			ids[sp] = append(ids[sp], next)
			next++
		}
	}
	if err := writeJSON(filepath.Join(dir, "manifest.json"), artifact.Manifest{Kind: artifact.KindNSD, Source: "nettest", Subjects: []string{subj}, ImageSize: size}); err != nil {
		return err
	}
	return writeJSON(filepath.Join(dir, subj, "manifest.json"), artifact.SubjectManifest{
		Subject: subj, ROIs: infos, NSDIDs: ids, Splits: splits, Sources: map[string]string{}, TestSplit: "holdout", ImageSize: size,
	})
}

// WriteClassification writes a classification data artifact with k
// classes: the class sets the square's colour, so it is learnable.
func WriteClassification(dir string, size, k int, sz NSDSizes, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, 43))
	classes := make([]string, k)
	for i := range classes {
		classes[i] = fmt.Sprintf("class%d", i)
	}
	counts := map[string]int{artifact.SplitTrain: sz.Train, artifact.SplitVal: sz.Val, artifact.SplitTest: sz.Test}
	// Splits in a fixed order: they share one RNG, so map order would make
	// the images differ from run to run.
	for _, sp := range artifact.Splits() {
		n := counts[sp]
		img := make([]uint8, n*3*size*size)
		lab := make([]int32, n)
		for i := range n {
			c := rng.IntN(k)
			lab[i] = int32(c)
			x0, y0, w := rng.IntN(size/2), rng.IntN(size/2), size/3
			for ch := range 3 {
				level := 40 + 200*((c>>ch)&1)
				for y := range size {
					for x := range size {
						v := rng.IntN(48)
						if x >= x0 && x < x0+w && y >= y0 && y < y0+w {
							v = level
						}
						img[((i*3+ch)*size+y)*size+x] = uint8(v)
					}
				}
			}
		}
		if err := os.MkdirAll(filepath.Join(dir, sp), 0o755); err != nil {
			return err
		}
		if err := npy.WriteFile(artifact.ImagesPath(dir, "", sp), []int{n, 3, size, size}, img); err != nil {
			return err
		}
		if err := npy.WriteFile(artifact.LabelsPath(dir, sp), []int{n}, lab); err != nil {
			return err
		}
	}
	return writeJSON(filepath.Join(dir, "manifest.json"), artifact.Manifest{Kind: artifact.KindClassification, Source: "nettest", Classes: classes, ImageSize: size})
}

// WriteNet writes a randomly initialised network artifact for cfg.
func WriteNet(dir string, cfg network.Config, seed uint64) error {
	return artifact.SaveNet(dir, cfg, cfg.InitWeights(seed))
}
