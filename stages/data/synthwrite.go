package data

import (
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/voxflow/voxflow/internal/jsonfile"
	"github.com/voxflow/voxflow/numerics/npy"
	"github.com/voxflow/voxflow/stages/artifact"
)

// SynthSubjectNames returns subj01 .. subjNN.
func SynthSubjectNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("subj%02d", i+1)
	}
	return out
}

// synthNSDID gives synthetic image i an NSD-like id distinct from its index,
// so readers are seen to carry ids rather than positions.
func synthNSDID(i int) int { return (i*7 + 3) % 73000 }

// synthSubjectInput adapts a generated subject to the artifact writer. Only
// the first cfg.NImages images carry fMRI in the synthetic source; the test
// split is a seeded hold-out, as for an Algonauts release without test fMRI.
//
// sub is nil for an images part: the images (the same for every subject of
// a seed) need none of the subject's responses.
func synthSubjectInput(si *synthImages, name string, sub *synthSubject, cfg SynthConfig, size int) *subjectInput {
	n := cfg.NImages
	ids := make([]int, n)
	for i := range ids {
		ids[i] = synthNSDID(i)
	}
	in := &subjectInput{
		Subject: name,
		Train: imageSet{
			N:      n,
			NSDIDs: ids,
			Image: func(i int, dst []uint8) error {
				renderScene(si.scenes[i], size).toCHW8(dst)
				return nil
			},
		},
	}
	in.Extra = func(dir string, splits map[string][]int, _ *imageSet) error {
		return writeTruth(dir, si, splits)
	}
	if sub == nil {
		return in
	}
	in.Masks = sub.Masks
	in.MaskName = func(fam string, h int) string {
		return fmt.Sprintf("synthetic %s mask of %s (%s)", fam, sub.Name, hemiNames[h])
	}
	in.NoiseCeiling, in.TrueNoiseCeiling = sub.NC, sub.TrueNC
	in.NCSource, in.NCUnit = "synthetic: estimated from the repeated trials of the training images", UnitFraction
	for h := range 2 {
		in.Train.FMRI[h] = &memRows{name: fmt.Sprintf("synthetic %s fMRI of %s", hemiNames[h], sub.Name), data: sub.FMRI[h], cols: sub.Verts[h]}
	}
	return in
}

// writeTruth writes the hidden content of every image per split:
// truth/<split>_category.npy (int32, index into SceneCategories) and
// truth/<split>_attribute.npy (float32, the fine attribute in [0,1]).
func writeTruth(dir string, si *synthImages, splits map[string][]int) error {
	d := filepath.Join(dir, "truth")
	if err := os.MkdirAll(d, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", d, err)
	}
	for _, s := range artifact.Splits() {
		cats := make([]int32, len(splits[s]))
		attrs := make([]float32, len(splits[s]))
		for j, i := range splits[s] {
			cats[j] = int32(si.scenes[i].Cat)
			attrs[j] = float32(si.scenes[i].Attr)
		}
		if err := npy.WriteFile(filepath.Join(d, s+"_category.npy"), []int{len(cats)}, cats); err != nil {
			return err
		}
		if err := npy.WriteFile(filepath.Join(d, s+"_attribute.npy"), []int{len(attrs)}, attrs); err != nil {
			return err
		}
	}
	return jsonfile.Write(filepath.Join(d, "categories.json"), SceneCategories())
}

// SynthAlgonautsOptions configures WriteSynthAlgonauts.
type SynthAlgonautsOptions struct {
	Config   SynthConfig
	Subjects []string
	// Size is the PNG side length (the release's is 425).
	Size int
	// TestFMRI also writes test_split/test_fmri, which the public release
	// withholds.
	TestFMRI bool
}

// WriteSynthAlgonauts writes a synthetic dataset in the Algonauts 2023 file
// layout under root: per subject, training PNGs and lh/rh training fMRI
// (trial-averaged, float32), test PNGs (and test fMRI if asked), and the
// roi_masks of every family. It also writes noise_ceiling/{lh,rh}_noise_ceiling.npy,
// a voxflow extension the reader uses when present.
func WriteSynthAlgonauts(ctx context.Context, root string, opt SynthAlgonautsOptions) error {
	cfg := opt.Config
	total := cfg.NImages + cfg.NTest
	si, err := newSynthImages(ctx, cfg.Seed, total, true)
	if err != nil {
		return err
	}
	for _, name := range opt.Subjects {
		sub, err := newSynthSubject(ctx, si, name, cfg, nil)
		if err != nil {
			return err
		}
		dir := filepath.Join(root, name)
		for _, d := range []string{algoTrainImages, algoTestImages, "training_split/training_fmri", "roi_masks", "noise_ceiling"} {
			if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
				return fmt.Errorf("create %s: %w", filepath.Join(dir, d), err)
			}
		}
		if cfg.NTest > 0 && opt.TestFMRI {
			if err := os.MkdirAll(filepath.Join(dir, "test_split/test_fmri"), 0o755); err != nil {
				return fmt.Errorf("create test_fmri: %w", err)
			}
		}
		for h, hemi := range hemiNames {
			v := sub.Verts[h]
			train := sub.FMRI[h][:cfg.NImages*v]
			if err := npy.WriteFile(filepath.Join(dir, fmt.Sprintf(algoTrainFMRI, hemi)), []int{cfg.NImages, v}, train); err != nil {
				return err
			}
			if cfg.NTest > 0 && opt.TestFMRI {
				if err := npy.WriteFile(filepath.Join(dir, fmt.Sprintf(algoTestFMRI, hemi)), []int{cfg.NTest, v}, sub.FMRI[h][cfg.NImages*v:]); err != nil {
					return err
				}
			}
			for _, fam := range families {
				if err := npy.WriteFile(filepath.Join(dir, fmt.Sprintf(algoMask, hemi, fam.Name)), []int{v}, sub.Masks[fam.Name][h]); err != nil {
					return err
				}
			}
			if err := npy.WriteFile(filepath.Join(dir, fmt.Sprintf(algoNoiseCeiling, hemi)), []int{v}, sub.NC[h]); err != nil {
				return err
			}
		}
		if err := writePNGs(ctx, si, dir, cfg, opt.Size); err != nil {
			return err
		}
	}
	return nil
}

// writePNGs renders and encodes every image in parallel.
func writePNGs(ctx context.Context, si *synthImages, dir string, cfg SynthConfig, size int) error {
	total := cfg.NImages + cfg.NTest
	workers := runtime.GOMAXPROCS(0)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			img := image.NewRGBA(image.Rect(0, 0, size, size))
			chw := make([]uint8, 3*size*size)
			for i := w; i < total; i += workers {
				if err := ctx.Err(); err != nil {
					errs[w] = err
					return
				}
				renderScene(si.scenes[i], size).toCHW8(chw)
				plane := size * size
				for p := range plane {
					img.Pix[4*p], img.Pix[4*p+1], img.Pix[4*p+2], img.Pix[4*p+3] = chw[p], chw[plane+p], chw[2*plane+p], 255
				}
				var path string
				if i < cfg.NImages {
					path = filepath.Join(dir, algoTrainImages, fmt.Sprintf("train-%04d_nsd-%05d.png", i+1, synthNSDID(i)))
				} else {
					j := i - cfg.NImages
					path = filepath.Join(dir, algoTestImages, fmt.Sprintf("test-%04d_nsd-%05d.png", j+1, synthNSDID(i)))
				}
				f, err := os.Create(path)
				if err != nil {
					errs[w] = fmt.Errorf("create %s: %w", path, err)
					return
				}
				err = enc.Encode(f, img)
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					errs[w] = fmt.Errorf("write %s: %w", path, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
