package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/voxflow/voxflow/stages/data"
)

// dataCommands are the subcommands of `voxflow data`.
func dataCommands() map[string]command {
	return map[string]command{
		"inspect": {run: dataInspect, help: "summarise a data artifact or an Algonauts 2023 root: subjects, images per split, ROIs with voxel counts and noise ceilings, class counts"},
		"synth":   {run: dataSynth, help: "write a synthetic NSD-like dataset with a planted ground truth"},
	}
}

// dataInspect is `voxflow data inspect PATH`.
func dataInspect(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("data inspect", "[--json] PATH", stdout, stderr)
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	path, err := onePositional(pos, "PATH")
	if err != nil {
		return err
	}
	s, err := data.Inspect(path)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
	return s.WriteText(stdout)
}

// dataSynth is `voxflow data synth DIR`.
func dataSynth(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("data synth", "[flags] DIR", stdout, stderr)
	layout := fs.String("layout", "algonauts", "file layout: algonauts (the Algonauts 2023 release: PNGs, lh/rh fMRI, roi_masks) or artifact (a data artifact)")
	subjects := fs.Int("subjects", 1, "number of subjects (subj01..)")
	images := fs.Int("images", 2000, "training images with fMRI per subject")
	size := fs.Int("size", 64, "image side in pixels (the real release: 425)")
	seed := fs.Int64("seed", 0, "seed: the same seed gives the same dataset")
	voxels := fs.Int("voxels", 40, "mean voxels per ROI over both hemispheres")
	nTest := fs.Int("test", -1, "algonauts layout: test images (default images/10)")
	testFMRI := fs.Bool("test-fmri", false, "algonauts layout: also write test_split/test_fmri (the public release withholds it)")
	fullShape := fs.Bool("full-shape", false, "algonauts layout: one subject at the release's real shape (9,841 + 159 images at 425 px, 19,004 lh and 20,544 rh vertices, ROIs of ~300 vertices per hemisphere), to time a real run; overrides --images, --test, --size and --voxels")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	dir, err := onePositional(pos, "output DIR")
	if err != nil {
		return err
	}
	if *fullShape {
		if *layout != "algonauts" {
			return &exitError{code: 2, err: fmt.Errorf("--full-shape needs --layout algonauts, have %q", *layout)}
		}
		fsc := data.FullShape()
		*images, *nTest, *size, *voxels = fsc.NImages, fsc.NTest, data.FullShapeImageSize, fsc.VoxelsPerROI
	}
	switch {
	case *subjects < 1 || *subjects > 99:
		return &exitError{code: 2, err: fmt.Errorf("--subjects %d: expected 1..99", *subjects)}
	case *images < 3:
		return &exitError{code: 2, err: fmt.Errorf("--images %d: expected at least 3", *images)}
	case *size < 8 || *size > 2048:
		return &exitError{code: 2, err: fmt.Errorf("--size %d: expected 8..2048", *size)}
	case *voxels < 2:
		return &exitError{code: 2, err: fmt.Errorf("--voxels %d: expected at least 2", *voxels)}
	}
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return fmt.Errorf("%s is not empty: expected a new or empty directory", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	names := data.SynthSubjectNames(*subjects)
	cfg := data.SynthConfig{Seed: *seed, NImages: *images, VoxelsPerROI: *voxels, Reps: 3}
	if *fullShape {
		cfg.Vertices = data.FullShape().Vertices
	}
	switch *layout {
	case "algonauts":
		cfg.NTest = *nTest
		if cfg.NTest < 0 {
			cfg.NTest = max(1, *images/10)
		}
		err = data.WriteSynthAlgonauts(ctx, dir, data.SynthAlgonautsOptions{Config: cfg, Subjects: names, Size: *size, TestFMRI: *testFMRI})
	case "artifact":
		_, err = data.BuildSynthetic(ctx, cfg, names, data.Options{ImageSize: *size, ValFraction: 0.1, TestFraction: 0.1, Seed: *seed}, dir)
	default:
		return &exitError{code: 2, err: fmt.Errorf("--layout %q: expected algonauts or artifact", *layout)}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote synthetic %s dataset to %s: %d subjects x %d images at %dx%d (seed %d)\n", *layout, dir, *subjects, *images, *size, *size, *seed)
	return nil
}
