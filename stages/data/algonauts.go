package data

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/zeebo/blake3"

	"github.com/voxflow/voxflow/numerics/npy"
	"github.com/voxflow/voxflow/stages/artifact"
)

// Algonauts 2023 file layout, relative to a subject folder (root/subjNN).
const (
	algoTrainFMRI   = "training_split/training_fmri/%s_training_fmri.npy"
	algoTrainImages = "training_split/training_images"
	algoTestFMRI    = "test_split/test_fmri/%s_test_fmri.npy"
	algoTestImages  = "test_split/test_images"
	algoMask        = "roi_masks/%s.%s_challenge_space.npy"
	// algoNoiseCeiling is a voxflow extension (not in the release): per
	// vertex noise ceilings as a fraction, written by `voxflow data synth`;
	// DefaultNoiseCeiling, the noise_ceiling param's default, names it.
	algoNoiseCeiling = "noise_ceiling/%s_noise_ceiling.npy"
)

var (
	trainPNG = regexp.MustCompile(`^train-(\d+)_nsd-(\d+)\.png$`)
	testPNG  = regexp.MustCompile(`^test-(\d+)_nsd-(\d+)\.png$`)
)

// AlgonautsSubjects lists the subjNN folders under an Algonauts root.
func AlgonautsSubjects(root string) ([]string, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("algonauts root: %w", err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() && regexp.MustCompile(`^subj\d+$`).MatchString(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// npyRows streams a 2-D float .npy file row by row.
type npyRows struct {
	f *npy.File
}

func (r *npyRows) Name() string { return r.f.Path() }
func (r *npyRows) Cols() int    { return r.f.Header.Shape[1] }
func (r *npyRows) Next(dst []float32) error {
	return npy.ReadRows(r.f, dst)
}

// openFMRI opens an images x vertices fMRI file and checks its shape
// against the image count.
func openFMRI(path string, nImages int, imagesDir string) (*npyRows, error) {
	f, err := npy.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("missing fMRI file %s: expected an images x vertices float32 .npy", path)
		}
		return nil, err
	}
	h := f.Header
	if len(h.Shape) != 2 || (h.DType != npy.Float32 && h.DType != npy.Float64) {
		f.Close()
		return nil, fmt.Errorf("%s: %s array of shape %s, expected a 2-D float32 images x vertices array", path, h.DType, npy.ShapeString(h.Shape))
	}
	if h.Shape[0] != nImages {
		f.Close()
		return nil, fmt.Errorf("%s: %d rows, expected %d (one per PNG in %s)", path, h.Shape[0], nImages, imagesDir)
	}
	return &npyRows{f: f}, nil
}

// listPNGs returns the PNGs of an Algonauts image folder in index order,
// with their NSD ids.
func listPNGs(dir string, pat *regexp.Regexp) ([]string, []int, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("image folder: %w", err)
	}
	type item struct {
		idx, nsd int
		name     string
	}
	var items []item
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".png") {
			continue
		}
		m := pat.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, nil, fmt.Errorf("%s: unexpected image name %q: expected names like %s", dir, e.Name(),
				map[bool]string{true: "train-0001_nsd-00013.png", false: "test-0001_nsd-00845.png"}[pat == trainPNG])
		}
		idx, _ := strconv.Atoi(m[1])
		nsd, _ := strconv.Atoi(m[2])
		items = append(items, item{idx, nsd, e.Name()})
	}
	sort.Slice(items, func(a, b int) bool { return items[a].idx < items[b].idx })
	paths := make([]string, len(items))
	ids := make([]int, len(items))
	for i, it := range items {
		if it.idx != i+1 {
			return nil, nil, fmt.Errorf("%s: image %s has index %d, expected %d (indices must run 1..N without gaps or repeats)", dir, it.name, it.idx, i+1)
		}
		paths[i] = filepath.Join(dir, it.name)
		ids[i] = it.nsd
	}
	return paths, ids, nil
}

// readMask reads a per-vertex integer label mask.
func readMask(path string, nLabels int) ([]int32, error) {
	a, err := npy.ReadFile[float64](path)
	if err != nil {
		return nil, err
	}
	if len(a.Shape) != 1 {
		return nil, fmt.Errorf("%s: shape %s, expected a 1-D array with one label per vertex", path, npy.ShapeString(a.Shape))
	}
	out := make([]int32, len(a.Data))
	for i, x := range a.Data {
		if x != math.Trunc(x) || x < 0 || x > float64(nLabels) {
			return nil, fmt.Errorf("%s: vertex %d has label %v, expected an integer in 0..%d", path, i, x, nLabels)
		}
		out[i] = int32(x)
	}
	return out, nil
}

// hashFile returns the BLAKE3 hex digest of a file.
func hashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	defer f.Close()
	h := blake3.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// algonautsSubject is an open Algonauts subject; Close releases its files.
type algonautsSubject struct {
	in      subjectInput
	files   []*npyRows
	pngHash []string // digests of train then test PNGs, filled while decoding
	pngRel  []string
	dir     string
	ncPaths []string // the noise ceiling files read, none without ceilings
}

func (s *algonautsSubject) Close() {
	for _, f := range s.files {
		f.f.Close()
	}
}

// openAlgonauts validates a subject folder and prepares streaming readers.
// Nothing large is read yet.
// maxImages > 0 keeps only the first maxImages images of each split (a
// rehearsal on a subset); the fMRI files must still have a row per image.
func openAlgonauts(root, subject string, rz Resizer, maxImages int) (_ *algonautsSubject, err error) {
	dir := filepath.Join(root, subject)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		have, _ := AlgonautsSubjects(root)
		return nil, fmt.Errorf("algonauts: subject folder %s not found (expected %s/%s with training_split/ and roi_masks/; found subjects: %s)",
			dir, root, subject, strings.Join(have, ", "))
	}
	s := &algonautsSubject{dir: dir}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	s.in.Subject = subject
	s.in.Sources = map[string]string{}
	rel := func(p string) string {
		r, err := filepath.Rel(root, p)
		if err != nil {
			return p
		}
		return filepath.ToSlash(r)
	}
	s.in.MaskName = func(fam string, h int) string {
		return filepath.Join(dir, fmt.Sprintf(algoMask, hemiNames[h], fam))
	}

	trainDir := filepath.Join(dir, algoTrainImages)
	trainPaths, trainIDs, err := listPNGs(trainDir, trainPNG)
	if err != nil {
		return nil, err
	}
	if len(trainPaths) == 0 {
		return nil, fmt.Errorf("%s: no training images, expected train-NNNN_nsd-NNNNN.png files", trainDir)
	}
	nTrainFiles := len(trainPaths)
	if maxImages > 0 && len(trainPaths) > maxImages {
		trainPaths, trainIDs = trainPaths[:maxImages], trainIDs[:maxImages]
	}
	all := trainPaths
	for h := range 2 {
		p := filepath.Join(dir, fmt.Sprintf(algoTrainFMRI, hemiNames[h]))
		r, err := openFMRI(p, nTrainFiles, trainDir)
		if err != nil {
			return nil, err
		}
		s.files = append(s.files, r)
		s.in.Train.FMRI[h] = r
	}
	s.in.Train.N, s.in.Train.NSDIDs = len(trainPaths), trainIDs

	// The release's test split counts only when it has fMRI.
	testDir := filepath.Join(dir, algoTestImages)
	lhTest := filepath.Join(dir, fmt.Sprintf(algoTestFMRI, "lh"))
	if _, err := os.Stat(lhTest); err == nil {
		testPaths, testIDs, err := listPNGs(testDir, testPNG)
		if err != nil {
			return nil, err
		}
		nTestFiles := len(testPaths)
		if maxImages > 0 && len(testPaths) > maxImages {
			testPaths, testIDs = testPaths[:maxImages], testIDs[:maxImages]
		}
		t := &imageSet{N: len(testPaths), NSDIDs: testIDs}
		for h := range 2 {
			p := filepath.Join(dir, fmt.Sprintf(algoTestFMRI, hemiNames[h]))
			r, err := openFMRI(p, nTestFiles, testDir)
			if err != nil {
				return nil, err
			}
			s.files = append(s.files, r)
			t.FMRI[h] = r
		}
		s.in.Test = t
		all = append(append([]string{}, trainPaths...), testPaths...)
	}
	s.pngHash = make([]string, len(all))
	s.pngRel = make([]string, len(all))
	for i, p := range all {
		s.pngRel[i] = rel(p)
	}
	imageFn := func(offset int, paths []string) func(int, []uint8) error {
		return func(i int, dst []uint8) error {
			p := paths[i]
			b, err := os.ReadFile(p)
			if err != nil {
				return fmt.Errorf("read image: %w", err)
			}
			sum := blake3.Sum256(b)
			s.pngHash[offset+i] = hex.EncodeToString(sum[:])
			img, err := decodePNGBytes(p, b)
			if err != nil {
				return err
			}
			rz.CHW(img, dst)
			return nil
		}
	}
	s.in.Train.Image = imageFn(0, trainPaths)
	s.in.Train.Files = s.pngRel[:len(trainPaths)]
	if s.in.Test != nil {
		s.in.Test.Image = imageFn(len(trainPaths), all[len(trainPaths):])
		s.in.Test.Files = s.pngRel[len(trainPaths):]
	}

	s.in.Masks = map[string][2][]int32{}
	for _, fam := range families {
		var m [2][]int32
		var missing []string
		for h := range 2 {
			p := s.in.MaskName(fam.Name, h)
			if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
				missing = append(missing, p)
				continue
			}
			if m[h], err = readMask(p, len(fam.Labels)); err != nil {
				return nil, err
			}
		}
		switch len(missing) {
		case 0:
			s.in.Masks[fam.Name] = m
		case 1:
			return nil, fmt.Errorf("missing ROI mask %s (its other hemisphere exists)", missing[0])
		}
	}
	if len(s.in.Masks) == 0 {
		return nil, fmt.Errorf("%s: no ROI masks found, expected files like %s", filepath.Join(dir, "roi_masks"), s.in.MaskName("prf-visualrois", 0))
	}

	return s, nil
}

// readNoiseCeiling reads the subject's noise ceilings from c (as
// fractions) and checks them against the fMRI files' columns.
func (s *algonautsSubject) readNoiseCeiling(root string, c ceilingSource) error {
	nc, paths, err := c.read(root, s.in.Subject)
	if err != nil || nc[0] == nil {
		return err
	}
	for h := range 2 {
		p, a := paths[h], nc[h]
		fm := s.in.Train.FMRI[h]
		if len(a) != fm.Cols() {
			if sel, err := s.toChallengeSpace(h, a, fm.Cols()); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			} else if sel != nil {
				nc[h], a = sel, sel
			}
		}
		if len(a) != fm.Cols() {
			// The ROI masks (one label per vertex) tell which of the two
			// files is wrong: a malformed fMRI file must not be blamed on
			// the noise ceiling.
			for _, m := range s.in.Masks {
				if len(m[h]) == len(a) {
					return fmt.Errorf("malformed fMRI file %s: %d columns, expected %d (one per vertex, as in the ROI masks and %s)", fm.Name(), fm.Cols(), len(a), p)
				}
				break
			}
			return fmt.Errorf("%s: %d values, expected %d (one per vertex, as the columns of %s)", p, len(a), fm.Cols(), fm.Name())
		}
	}
	s.in.NoiseCeiling = nc
	s.ncPaths = append(s.ncPaths, paths[:]...)
	s.in.NCSource, s.in.NCUnit = c.describe(s.in.Subject), c.unit
	return nil
}

// algoFsaverageMask is the release's mask of the challenge-space
// vertices among fsaverage's (one 0/1 value per fsaverage vertex).
const algoFsaverageMask = "roi_masks/%s.all-vertices_fsaverage_space.npy"

// toChallengeSpace maps per-vertex values given on all fsaverage vertices
// (NSD's own surface, e.g. its noise ceilings converted to .npy) to the
// challenge space with the release's fsaverage mask, when the mask exists
// and its length matches. It returns nil when there is nothing to map.
func (s *algonautsSubject) toChallengeSpace(h int, vals []float32, cols int) ([]float32, error) {
	mp := filepath.Join(s.dir, fmt.Sprintf(algoFsaverageMask, hemiNames[h]))
	if _, err := os.Stat(mp); err != nil {
		return nil, nil
	}
	m, err := npy.ReadFile[float64](mp)
	if err != nil || len(m.Data) != len(vals) {
		return nil, err
	}
	out := make([]float32, 0, cols)
	for i, x := range m.Data {
		if x != 0 {
			out = append(out, vals[i])
		}
	}
	if len(out) != cols {
		return nil, fmt.Errorf("%d values on fsaverage vertices, of which %s marks %d, expected %d (the columns of %s)", len(vals), mp, len(out), cols, s.in.Train.FMRI[h].Name())
	}
	s.ncPaths = append(s.ncPaths, mp)
	return out, nil
}

// digestSources hashes the subject's non-image source files (the images are
// hashed while decoded) and merges the image digests.
//
// A part records the sources it read: an images part the images, a
// responses part the rest, so a join's sources are the full artifact's.
func (s *algonautsSubject) digestSources(root string, opt Options) error {
	var paths []string
	if !opt.wantResponses() {
		s.mergeImageDigests()
		return nil
	}
	for _, f := range s.files {
		paths = append(paths, f.Name())
	}
	for fam := range s.in.Masks {
		// A responses part of some ROIs records only their families' masks:
		// an edit to another family's mask file must not change the part
		// (and rerun every fine-tune downstream of it). The full artifact
		// keeps recording every mask, as it always has.
		if opt.Part == artifact.PartResponses && len(opt.ROIs) > 0 && !slices.ContainsFunc(opt.ROIs, func(r string) bool { return ROIFamily(r) == fam }) {
			continue
		}
		paths = append(paths, s.in.MaskName(fam, 0), s.in.MaskName(fam, 1))
	}
	paths = append(paths, s.ncPaths...)
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make([]error, len(paths))
	for i, p := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := hashFile(p)
			if err != nil {
				errs[i] = err
				return
			}
			r, _ := filepath.Rel(root, p)
			mu.Lock()
			s.in.Sources[filepath.ToSlash(r)] = d
			mu.Unlock()
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	s.mergeImageDigests()
	return nil
}

// mergeImageDigests adds the digests of the images decoded so far (none in
// a responses part).
func (s *algonautsSubject) mergeImageDigests() {
	for i, r := range s.pngRel {
		if s.pngHash[i] != "" {
			s.in.Sources[r] = s.pngHash[i]
		}
	}
}
