package data

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/zeebo/blake3"

	"github.com/voxflow/voxflow/internal/jsonfile"
	"github.com/voxflow/voxflow/numerics/npy"
	"github.com/voxflow/voxflow/stages"
	"github.com/voxflow/voxflow/stages/artifact"
)

// Non-finite policies.
const (
	NonFiniteError = "error"       // fail, naming the file and the count
	NonFiniteDrop  = "drop-voxels" // drop every voxel with a non-finite value
)

// rowSource yields the rows (one per image) of an images x vertices matrix.
type rowSource interface {
	Name() string // the file, for errors
	Cols() int
	Next(dst []float32) error
}

// imageSet is one source split: images, their NSD ids and, when known, the
// fMRI of both hemispheres (row i belongs to image i).
type imageSet struct {
	N      int
	NSDIDs []int
	// Image fills dst (3 x size x size, CHW) with image i at the requested
	// output size; it is called concurrently.
	Image func(i int, dst []uint8) error
	FMRI  [2]rowSource // lh, rh; zero when the split has no fMRI
	// Files names image i's source file, relative to the source root;
	// nil for generated images. Written as <split>/files.txt, one line
	// per row of images.npy, so every row can be traced to its file.
	Files []string
}

// subjectInput is what a source (Algonauts files or the synthetic
// generator) hands to the artifact writer.
type subjectInput struct {
	Subject string
	Train   imageSet
	// Test has fMRI when the source ships a test split with responses;
	// otherwise nil and a seeded hold-out of Train is used.
	Test *imageSet
	// Masks maps a family name to per-vertex labels of lh and rh.
	Masks map[string][2][]int32
	// MaskName names a family's mask file of one hemisphere, for errors.
	MaskName func(family string, hemi int) string
	// NoiseCeiling is per-vertex noise ceiling (fraction), lh and rh; nil
	// when unknown. TrueNoiseCeiling is the synthetic source's planted one.
	NoiseCeiling, TrueNoiseCeiling [2][]float32
	// NCSource and NCUnit say where NoiseCeiling came from and in which
	// unit the source held it (it is converted to fractions on reading).
	NCSource, NCUnit string
	Sources          map[string]string
	// Extra, when set, writes additional files into the subject directory
	// (the synthetic source's ground truth), given each split's source
	// indices.
	Extra func(dir string, splits map[string][]int, test *imageSet) error
	// Finish runs after every source byte was read and before the manifest
	// is written (the Algonauts reader completes Sources there).
	Finish func() error
}

// Options are the settings shared by every source; they mirror the stage's
// params of the same names.
type Options struct {
	ROIs         []string // nil: all with vertices
	ImageSize    int
	Resample     string
	Resize       string // ResizeSquash ("") or ResizeShorterSide
	ResizeTo     int    // shorter-side: length before the crop; 0: ImageSize*256/224
	ValFraction  float64
	TestFraction float64
	Seed         int64
	NonFinite    string
	// MaxImages > 0 (algonauts) keeps the first MaxImages images of each
	// source split; 0 keeps all.
	MaxImages int
	// NoiseCeiling (algonauts) is the path pattern of the noise ceiling
	// files ("" for DefaultNoiseCeiling) and NoiseCeilingUnit their unit
	// (UnitPercent or UnitFraction; "" is fraction).
	NoiseCeiling, NoiseCeilingUnit string
	// Part is PartAll ("" too), PartImages or PartResponses.
	Part     string
	Workers  int
	Progress stages.Progress // nil: no progress reports
	Log      io.Writer       // nil: discard
}

// withDefaults fills nil hooks and zero sizes so callers outside the engine
// (the CLI, tests) can leave them out.
func (o Options) withDefaults() Options {
	if o.Progress == nil {
		o.Progress = stages.NopProgress{}
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.Resample == "" {
		o.Resample = ResampleArea
	}
	if o.NonFinite == "" {
		o.NonFinite = NonFiniteError
	}
	return o
}

// preprocess records these options in a manifest.
func (o Options) preprocess() *artifact.Preprocess {
	rz := o.resizer()
	p := &artifact.Preprocess{Resize: ResizeSquash, Resample: o.Resample, Normalize: artifact.Normalization,
		Decoder: "JPEG: libjpeg-turbo (as PIL); PNG: Go image/png"}
	if rz.Mode == ResizeShorterSide {
		p.Resize, p.ResizeTo, p.Crop = ResizeShorterSide, rz.resizeTo(), CropCenter
	}
	return p
}

// resizer is how these options turn a decoded image into the output size.
func (o Options) resizer() Resizer {
	return Resizer{Size: o.ImageSize, Method: o.Resample, Mode: o.Resize, To: o.ResizeTo}
}

var hemiNames = [2]string{"lh", "rh"}

// roiSel is one selected ROI: its vertex indices per hemisphere.
type roiSel struct {
	info  artifact.ROIInfo
	verts [2][]int
}

// selectROIs resolves the requested ROI names against the masks.
func selectROIs(in *subjectInput, want []string) ([]roiSel, error) {
	available := func(name string) (roiSel, error) {
		fam, label, ok := LookupROI(name)
		if !ok {
			return roiSel{}, unknownROIError(name, "param rois of subject "+in.Subject)
		}
		masks, ok := in.Masks[fam]
		if !ok {
			return roiSel{}, fmt.Errorf("subject %s: ROI %s needs mask family %s: %s and %s not found", in.Subject, name, fam, in.MaskName(fam, 0), in.MaskName(fam, 1))
		}
		s := roiSel{info: artifact.ROIInfo{Name: name, Family: fam, Group: ROIGroup(name)}}
		for h := range 2 {
			for v, l := range masks[h] {
				if int(l) == label {
					s.verts[h] = append(s.verts[h], v)
				}
			}
		}
		s.info.VoxelsLH, s.info.VoxelsRH = len(s.verts[0]), len(s.verts[1])
		return s, nil
	}
	var out []roiSel
	if len(want) == 0 {
		for _, name := range ROINames() {
			if _, ok := in.Masks[ROIFamily(name)]; !ok {
				continue
			}
			s, err := available(name)
			if err != nil {
				return nil, err
			}
			if s.info.Voxels() > 0 {
				out = append(out, s)
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("subject %s: no ROI has vertices in any mask", in.Subject)
		}
		return out, nil
	}
	for _, name := range want {
		s, err := available(name)
		if err != nil {
			return nil, err
		}
		if s.info.Voxels() == 0 {
			return nil, fmt.Errorf("subject %s: ROI %s has no vertices in %s or %s", in.Subject, name, in.MaskName(s.info.Family, 0), in.MaskName(s.info.Family, 1))
		}
		out = append(out, s)
	}
	return out, nil
}

// assignSplits returns, per split, the source indices (ascending). Indices
// of the release test split are into in.Test; the others into in.Train.
func assignSplits(nTrain int, haveTest bool, nTest int, valFrac, testFrac float64, seed int64) map[string][]int {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x766f78666c6f77))
	perm := rng.Perm(nTrain)
	out := map[string][]int{}
	rest := perm
	if haveTest {
		out[artifact.SplitTest] = seq(nTest)
	} else {
		k := int(math.Round(testFrac * float64(nTrain)))
		out[artifact.SplitTest] = slices.Sorted(slices.Values(perm[:k]))
		rest = perm[k:]
	}
	k := int(math.Round(valFrac * float64(len(rest))))
	out[artifact.SplitVal] = slices.Sorted(slices.Values(rest[:k]))
	out[artifact.SplitTrain] = slices.Sorted(slices.Values(rest[k:]))
	return out
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// wantImages and wantResponses say what opt.Part writes.
func (o Options) wantImages() bool    { return o.Part != artifact.PartResponses }
func (o Options) wantResponses() bool { return o.Part != artifact.PartImages }

// isPart says whether opt.Part makes a part artifact.
func (o Options) isPart() bool {
	return o.Part == artifact.PartImages || o.Part == artifact.PartResponses
}

// buildSubject writes one subject of an NSD-like data artifact into dir:
// images and responses, or only one of them for a part (opt.Part). Both
// parts assign rows to splits with the same assignSplits call, so a join
// of an images part and a responses part equals the full artifact.
func buildSubject(ctx context.Context, in *subjectInput, opt Options, dir string) (*artifact.SubjectManifest, error) {
	var rois []roiSel
	if opt.wantResponses() {
		if err := checkFMRI(in); err != nil {
			return nil, err
		}
		var err error
		if rois, err = selectROIs(in, opt.ROIs); err != nil {
			return nil, err
		}
	}
	nTest := 0
	if in.Test != nil {
		nTest = in.Test.N
	}
	splits := assignSplits(in.Train.N, in.Test != nil, nTest, opt.ValFraction, opt.TestFraction, opt.Seed)
	for _, s := range artifact.Splits() {
		if len(splits[s]) == 0 {
			return nil, fmt.Errorf("subject %s: split %s is empty (%d training images, val_fraction %g, test_fraction %g): expected at least one image per split",
				in.Subject, s, in.Train.N, opt.ValFraction, opt.TestFraction)
		}
	}
	// where[i] = (split, row) of training source image i.
	where := make([]slot, in.Train.N)
	for _, s := range []string{artifact.SplitTrain, artifact.SplitVal} {
		for r, i := range splits[s] {
			where[i] = slot{s, r}
		}
	}
	if in.Test == nil {
		for r, i := range splits[artifact.SplitTest] {
			where[i] = slot{artifact.SplitTest, r}
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	haveNC := in.NoiseCeiling[0] != nil && in.NoiseCeiling[1] != nil
	if opt.wantResponses() {
		if err := writeResponses(ctx, in, opt, dir, rois, splits, where); err != nil {
			return nil, err
		}
	}
	if opt.wantImages() {
		if err := writeSubjectImages(ctx, in, opt, dir, splits, func(i int) (string, int) { s := where[i]; return s.split, s.row }); err != nil {
			return nil, err
		}
	}

	if in.Finish != nil {
		if err := in.Finish(); err != nil {
			return nil, err
		}
	}
	m := &artifact.SubjectManifest{
		Subject:   in.Subject,
		NSDIDs:    map[string][]int{},
		Splits:    map[string]int{},
		Sources:   in.Sources,
		TestSplit: "holdout",
		ImageSize: opt.ImageSize,
	}
	if !opt.wantImages() {
		// A responses part does not depend on the image size, so changing
		// it leaves the part (and every join of it) as it was.
		m.ImageSize = 0
	}
	if m.Sources == nil {
		m.Sources = map[string]string{}
	}
	if in.Test != nil {
		m.TestSplit = "release"
	}
	if haveNC && opt.wantResponses() {
		m.NoiseCeiling = "fraction of the variance of the trial-averaged response that is signal"
		m.NoiseCeilingSource, m.NoiseCeilingUnit = in.NCSource, in.NCUnit
	}
	for _, r := range rois {
		m.ROIs = append(m.ROIs, r.info)
	}
	for _, s := range artifact.Splits() {
		m.Splits[s] = len(splits[s])
		ids := in.Train.NSDIDs
		if s == artifact.SplitTest && in.Test != nil {
			ids = in.Test.NSDIDs
		}
		m.NSDIDs[s] = make([]int, len(splits[s]))
		for j, i := range splits[s] {
			m.NSDIDs[s][j] = ids[i]
		}
	}
	if opt.isPart() {
		m.Split = splitInfo(in, opt, splits)
	}
	if in.Extra != nil && opt.wantImages() {
		if err := in.Extra(dir, splits, in.Test); err != nil {
			return nil, err
		}
	}
	if err := jsonfile.Write(filepath.Join(dir, "manifest.json"), m); err != nil {
		return nil, err
	}
	return m, nil
}

// slot is where a source image lands: its split and row there.
type slot struct {
	split string
	row   int
}

// splitInfo records the split assignment of a part artifact.
func splitInfo(in *subjectInput, opt Options, splits map[string][]int) *artifact.SplitInfo {
	si := &artifact.SplitInfo{Seed: opt.Seed, ValFraction: opt.ValFraction, TestFraction: opt.TestFraction, Images: in.Train.N, Rows: map[string]string{}}
	if in.Test != nil {
		si.Images += in.Test.N
	}
	for _, s := range artifact.Splits() {
		set := &in.Train
		if s == artifact.SplitTest && in.Test != nil {
			set = in.Test
		}
		h := blake3.New()
		for _, i := range splits[s] {
			if set.Files != nil {
				fmt.Fprintf(h, "%s\n", set.Files[i])
			} else {
				fmt.Fprintf(h, "nsd-%d\n", set.NSDIDs[i])
			}
		}
		si.Rows[s] = hex.EncodeToString(h.Sum(nil))
	}
	return si
}

// checkFMRI checks that the fMRI files, masks and test split agree on the
// vertex counts.
func checkFMRI(in *subjectInput) error {
	if in.Train.FMRI[0] == nil || in.Train.FMRI[1] == nil {
		return fmt.Errorf("subject %s: training split has no fMRI", in.Subject)
	}
	for fam, m := range in.Masks {
		for h := range 2 {
			if want := in.Train.FMRI[h].Cols(); len(m[h]) != want {
				return fmt.Errorf("%s: mask has %d vertices, expected %d (the columns of %s)", in.MaskName(fam, h), len(m[h]), want, in.Train.FMRI[h].Name())
			}
		}
	}
	if in.Test != nil {
		for h := range 2 {
			if a, b := in.Test.FMRI[h].Cols(), in.Train.FMRI[h].Cols(); a != b {
				return fmt.Errorf("%s: %d vertices, expected %d as in %s", in.Test.FMRI[h].Name(), a, b, in.Train.FMRI[h].Name())
			}
		}
	}
	return nil
}

// writeResponses writes the selected ROIs' responses (z-scored with train
// statistics) and noise ceilings of every split into dir.
func writeResponses(ctx context.Context, in *subjectInput, opt Options, dir string, rois []roiSel, splits map[string][]int, where []slot) error {
	// Responses: one pass over the fMRI rows, scattered into per-ROI
	// matrices, so only the selected vertices are ever held.
	resp := make([]map[string][]float32, len(rois))
	for k, r := range rois {
		resp[k] = map[string][]float32{}
		for _, s := range artifact.Splits() {
			resp[k][s] = make([]float32, len(splits[s])*r.info.Voxels())
		}
	}
	bad := make([][]int, len(rois)) // non-finite count per ROI voxel
	for k, r := range rois {
		bad[k] = make([]int, r.info.Voxels())
	}
	type badFile struct {
		count     int
		row, vert int
	}
	badFiles := map[string]*badFile{}
	scan := func(set *imageSet, place func(i int) slot) error {
		rows := [2][]float32{make([]float32, set.FMRI[0].Cols()), make([]float32, set.FMRI[1].Cols())}
		for i := range set.N {
			if i%256 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
				opt.Progress.Update(stages.Update{Phase: "fmri " + in.Subject, Done: float64(i), Total: float64(set.N), Unit: "img"})
			}
			for h := range 2 {
				if err := set.FMRI[h].Next(rows[h]); err != nil {
					return err
				}
			}
			sl := place(i)
			for k, r := range rois {
				v := r.info.Voxels()
				dst := resp[k][sl.split][sl.row*v : (sl.row+1)*v]
				c := 0
				for h := range 2 {
					for _, vi := range r.verts[h] {
						x := rows[h][vi]
						if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
							bad[k][c]++
							name := set.FMRI[h].Name()
							if badFiles[name] == nil {
								badFiles[name] = &badFile{row: i, vert: vi}
							}
							badFiles[name].count++
						}
						dst[c] = x
						c++
					}
				}
			}
		}
		return nil
	}
	if err := scan(&in.Train, func(i int) slot { return where[i] }); err != nil {
		return err
	}
	if in.Test != nil {
		if err := scan(in.Test, func(i int) slot { return slot{artifact.SplitTest, i} }); err != nil {
			return err
		}
	}
	if len(badFiles) > 0 && opt.NonFinite != NonFiniteDrop {
		names := slices.Sorted(func(yield func(string) bool) {
			for n := range badFiles {
				if !yield(n) {
					return
				}
			}
		})
		var parts []string
		for _, n := range names {
			b := badFiles[n]
			parts = append(parts, fmt.Sprintf("%s: %d non-finite values in the selected ROIs' vertices (first at image row %d, vertex %d)", n, b.count, b.row, b.vert))
		}
		return fmt.Errorf("%s; expected finite responses (set nonfinite: drop-voxels to drop those voxels)", strings.Join(parts, "; "))
	}

	haveNC := in.NoiseCeiling[0] != nil && in.NoiseCeiling[1] != nil
	haveTrue := in.TrueNoiseCeiling[0] != nil && in.TrueNoiseCeiling[1] != nil
	for k := range rois {
		r := &rois[k]
		keep := make([]int, 0, r.info.Voxels())
		for c, n := range bad[k] {
			if n == 0 {
				keep = append(keep, c)
			}
		}
		if dropped := r.info.Voxels() - len(keep); dropped > 0 {
			fmt.Fprintf(opt.Log, "subject %s ROI %s: dropped %d of %d voxels with non-finite responses\n", in.Subject, r.info.Name, dropped, r.info.Voxels())
			if len(keep) == 0 {
				return fmt.Errorf("subject %s ROI %s: every voxel has non-finite responses", in.Subject, r.info.Name)
			}
			lhKept := 0
			for _, c := range keep {
				if c < r.info.VoxelsLH {
					lhKept++
				}
			}
			r.info.Dropped = dropped
			r.info.VoxelsLH, r.info.VoxelsRH = lhKept, len(keep)-lhKept
			v0 := len(bad[k])
			for _, s := range artifact.Splits() {
				resp[k][s] = selectCols(resp[k][s], v0, keep)
			}
		}
		v := len(keep)
		zscore(resp[k], v)
		for _, s := range artifact.Splits() {
			d := filepath.Join(dir, s, "roi")
			if err := os.MkdirAll(d, 0o755); err != nil {
				return fmt.Errorf("create %s: %w", d, err)
			}
			if err := npy.WriteFile(filepath.Join(d, r.info.Name+".npy"), []int{len(splits[s]), v}, resp[k][s]); err != nil {
				return err
			}
			resp[k][s] = nil // let the GC have it before the next ROI
		}
		writeNC := func(nc [2][]float32, sub string) error {
			vals := make([]float32, 0, v)
			c := 0
			for h := range 2 {
				for _, vi := range r.verts[h] {
					if bad[k][c] == 0 {
						vals = append(vals, nc[h][vi])
					}
					c++
				}
			}
			d := filepath.Join(dir, sub)
			if err := os.MkdirAll(d, 0o755); err != nil {
				return fmt.Errorf("create %s: %w", d, err)
			}
			return npy.WriteFile(filepath.Join(d, r.info.Name+".npy"), []int{v}, vals)
		}
		if haveNC {
			if err := writeNC(in.NoiseCeiling, "noise_ceiling"); err != nil {
				return err
			}
		}
		if haveTrue {
			if err := writeNC(in.TrueNoiseCeiling, filepath.Join("truth", "noise_ceiling")); err != nil {
				return err
			}
		}
	}

	return nil
}

// selectCols keeps columns keep of an n x v0 row-major matrix.
func selectCols(a []float32, v0 int, keep []int) []float32 {
	n := len(a) / v0
	out := make([]float32, n*len(keep))
	for i := range n {
		for j, c := range keep {
			out[i*len(keep)+j] = a[i*v0+c]
		}
	}
	return out
}

// zscore standardises every voxel (column) of every split with the mean and
// standard deviation of the train split, so no test information leaks into
// the scaling. Constant voxels become zero.
func zscore(splits map[string][]float32, v int) {
	train := splits[artifact.SplitTrain]
	n := len(train) / v
	mean := make([]float64, v)
	m2 := make([]float64, v)
	for i := range n {
		row := train[i*v : (i+1)*v]
		for j, x := range row {
			mean[j] += float64(x)
		}
	}
	for j := range mean {
		mean[j] /= float64(n)
	}
	for i := range n {
		row := train[i*v : (i+1)*v]
		for j, x := range row {
			d := float64(x) - mean[j]
			m2[j] += d * d
		}
	}
	inv := make([]float64, v)
	for j := range inv {
		sd := math.Sqrt(m2[j] / float64(n))
		if sd > 0 {
			inv[j] = 1 / sd
		}
	}
	for _, a := range splits {
		for i := 0; i < len(a); i += v {
			row := a[i : i+v]
			for j, x := range row {
				row[j] = float32((float64(x) - mean[j]) * inv[j])
			}
		}
	}
}

// writeSubjectImages streams every image, resized, into its split's
// images.npy.
func writeSubjectImages(ctx context.Context, in *subjectInput, opt Options, dir string, splits map[string][]int, where func(i int) (string, int)) error {
	size := opt.ImageSize
	rowLen := 3 * size * size
	writers := map[string]*npy.Writer[uint8]{}
	defer func() {
		for _, w := range writers {
			w.Abort()
		}
	}()
	for _, s := range artifact.Splits() {
		d := filepath.Join(dir, s)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
		w, err := npy.Create[uint8](filepath.Join(d, "images.npy"), []int{len(splits[s]), 3, size, size})
		if err != nil {
			return err
		}
		writers[s] = w
	}
	total := in.Train.N
	if in.Test != nil {
		total += in.Test.N
	}
	done := 0
	report := func() {
		done++
		if done%64 == 0 || done == total {
			opt.Progress.Update(stages.Update{Phase: "images " + in.Subject, Done: float64(done), Total: float64(total), Unit: "img"})
		}
	}
	// Rows must arrive at each writer in ascending row order; source order
	// gives that because every split's indices are sorted.
	err := produceOrdered(ctx, in.Train.N, opt.Workers, rowLen, in.Train.Image, func(i int, buf []uint8) error {
		s, _ := where(i)
		report()
		return writers[s].Write(buf)
	})
	if err != nil {
		return err
	}
	if in.Test != nil {
		err := produceOrdered(ctx, in.Test.N, opt.Workers, rowLen, in.Test.Image, func(i int, buf []uint8) error {
			report()
			return writers[artifact.SplitTest].Write(buf)
		})
		if err != nil {
			return err
		}
	}
	for _, s := range artifact.Splits() {
		w := writers[s]
		delete(writers, s)
		if err := w.Close(); err != nil {
			return err
		}
	}
	if in.Train.Files == nil {
		return nil
	}
	files := map[string][]string{}
	for i, f := range in.Train.Files {
		s, _ := where(i)
		files[s] = append(files[s], f)
	}
	if in.Test != nil {
		files[artifact.SplitTest] = in.Test.Files
	}
	for _, s := range artifact.Splits() {
		if err := writeLines(filepath.Join(dir, s, FilesName), files[s]); err != nil {
			return err
		}
	}
	return nil
}

// FilesName is the per-split list of source files, one per images.npy row.
const FilesName = "files.txt"

// writeLines writes one line per entry (an empty file for none).
func writeLines(path string, lines []string) error {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
