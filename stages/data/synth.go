package data

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
)

// SynthConfig configures the synthetic NSD-like generator. The same config
// and seed always give the same images and responses.
type SynthConfig struct {
	Seed int64
	// NImages is the number of training images (with fMRI); NTest more
	// images form the release-style test split.
	NImages, NTest int
	// VoxelsPerROI is the mean voxel count of an ROI over both hemispheres
	// (streams ROIs that contain other ROIs are larger).
	VoxelsPerROI int
	// Reps is the number of repeated trials averaged per image (NSD: 3).
	Reps int
	// Vertices, when set, pads each hemisphere (lh, rh) with vertices
	// outside every ROI up to this count, as the release's cortical surface
	// has many more vertices than ROI members (see FullShape).
	Vertices [2]int
}

// FullShape is the shape of one subject of the Algonauts 2023 release of
// NSD (subj01): 9,841 training images and 159 test images at 425 px,
// 19,004 lh and 20,544 rh vertices in challenge space, ROIs of a few
// hundred vertices per hemisphere. `voxflow data synth --full-shape`
// writes it, so that a lab can time a real run on a machine without NSD.
func FullShape() SynthConfig {
	return SynthConfig{NImages: 9841, NTest: 159, VoxelsPerROI: 600, Reps: 3, Vertices: [2]int{19004, 20544}}
}

// FullShapeImageSize is the release's PNG side.
const FullShapeImageSize = 425

// featGrid and featSize fix the resolution at which the hidden model
// sees images, so responses do not depend on the output image size.
const (
	featSize = 64
	featGrid = 8
	featOri  = 4
)

// synthImages holds every image's hidden scene and the edge-energy
// features the early-ROI model reads.
type synthImages struct {
	scenes []scene
	feats  [][]float32 // per image: featOri x featGrid x featGrid, sqrt energy
}

// newSynthImages draws n images on all cores and, when feats is set,
// analyses them for the vertex models (an images part needs only the
// scenes).
func newSynthImages(ctx context.Context, seed int64, n int, feats bool) (*synthImages, error) {
	si := &synthImages{scenes: make([]scene, n), feats: make([][]float32, n)}
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				if ctx.Err() != nil {
					return
				}
				s := newScene(seed, i)
				si.scenes[i] = s
				if feats {
					si.feats[i] = edgeEnergy(renderScene(s, featSize))
				}
			}
		}()
	}
	wg.Wait()
	return si, ctx.Err()
}

// edgeEnergy pools oriented gradient energy of the image's luminance over a
// featGrid x featGrid grid, for featOri orientations.
func edgeEnergy(c *canvas) []float32 {
	s := c.S
	plane := s * s
	lum := make([]float64, plane)
	for i := range lum {
		lum[i] = 0.299*float64(c.Pix[i]) + 0.587*float64(c.Pix[plane+i]) + 0.114*float64(c.Pix[2*plane+i])
	}
	out := make([]float32, featOri*featGrid*featGrid)
	cell := s / featGrid
	var cs, sn [featOri]float64
	for k := range featOri {
		cs[k], sn[k] = math.Cos(math.Pi*float64(k)/featOri), math.Sin(math.Pi*float64(k)/featOri)
	}
	for y := 1; y < s-1; y++ {
		for x := 1; x < s-1; x++ {
			gx := (lum[y*s+x+1] - lum[y*s+x-1]) / 2
			gy := (lum[(y+1)*s+x] - lum[(y-1)*s+x]) / 2
			g := (y/cell)*featGrid + x/cell
			for k := range featOri {
				p := gx*cs[k] + gy*sn[k]
				out[k*featGrid*featGrid+g] += float32(p * p)
			}
		}
	}
	for i, v := range out {
		out[i] = float32(math.Sqrt(float64(v) / float64(cell*cell)))
	}
	return out
}

// vertexModel is a vertex's hidden tuning.
type vertexModel struct {
	kind int // modelEdge, modelCategory, modelNoise
	// edge: retinotopic receptive field and preferred orientation.
	rfX, rfY, rfSigma, ori float64
	// category: preferred category, tuning to the fine attribute (centre,
	// width) and weak responses to other categories.
	pref        int
	mu, width   float64
	others      [numCats]float64
	edgeMix     float64
	ncsnr       float64
	familyLabel map[string]int32
}

const (
	modelEdge = iota
	modelCategory
	modelNoise
)

// synthSubject is one subject's generated data: trial-averaged responses
// of every vertex to every image (training then test), masks and noise
// ceilings.
type synthSubject struct {
	Name           string
	FMRI           [2][]float32 // images x vertices
	Verts          [2]int
	Masks          map[string][2][]int32
	NC, TrueNC     [2][]float32
	ImagesWithFMRI int
}

// subjectSeed derives a subject's seed from its name, so a subject's data do
// not depend on which other subjects are generated.
func subjectSeed(seed int64, name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return uint64(seed) ^ h.Sum64()
}

// retinotopy returns a receptive-field centre for an early ROI: the left
// hemisphere sees the right visual field; ventral ("v") ROIs the upper
// field, dorsal ("d") the lower.
func retinotopy(r *rand.Rand, roi string, hemi int) (x, y, sigma float64) {
	x = 0.5 + 0.45*r.Float64()
	if hemi == 1 {
		x = 1 - x
	}
	y = 0.05 + 0.9*r.Float64()
	switch roi[len(roi)-1] {
	case 'v':
		y = 0.05 + 0.45*r.Float64()
	case 'd':
		y = 0.5 + 0.45*r.Float64()
	}
	switch roi[:2] {
	case "V1":
		sigma = 0.06
	case "V2":
		sigma = 0.09
	case "V3":
		sigma = 0.12
	default:
		sigma = 0.18
	}
	return x, y, sigma * (0.8 + 0.4*r.Float64())
}

// familyCat maps a floc family to the category its ROIs prefer.
func familyCat(family string) int {
	switch family {
	case "floc-faces":
		return CatFaces
	case "floc-bodies":
		return CatBodies
	case "floc-places":
		return CatPlaces
	case "floc-words":
		return CatWords
	}
	return CatObjects
}

// newVertexModels lays out one hemisphere's vertices: per ROI, a hidden
// model and its labels in every mask family. Streams overlap the other
// families as in the real atlas: "early" contains the pRF ROIs, "ventral"
// the face, place and word ROIs, "lateral" the body ROIs.
func newVertexModels(r *rand.Rand, hemi, perROI, pad int) ([]vertexModel, error) {
	var vs []vertexModel
	count := func() int {
		half := float64(perROI) / 2
		return max(1, int(math.Round(half*(0.75+0.5*r.Float64()))))
	}
	snr := func(base float64) float64 {
		return min(3, max(0.05, base*math.Exp(0.5*r.NormFloat64())))
	}
	edge := func(x, y, sigma, base float64) vertexModel {
		return vertexModel{kind: modelEdge, rfX: x, rfY: y, rfSigma: sigma, ori: r.Float64() * math.Pi, ncsnr: snr(base), familyLabel: map[string]int32{}}
	}
	category := func(pref int, base float64) vertexModel {
		m := vertexModel{kind: modelCategory, pref: pref, mu: r.Float64(), width: 0.1 + 0.08*r.Float64(), edgeMix: 0.15, ncsnr: snr(base), familyLabel: map[string]int32{}}
		for c := range numCats {
			if c != pref {
				m.others[c] = 0.25 * r.Float64()
			}
		}
		m.rfX, m.rfY, m.rfSigma = 0.5, 0.5, 0.35
		return m
	}
	for _, fam := range families {
		for li, roi := range fam.Labels {
			label := int32(li + 1)
			switch {
			case fam.Name == "prf-visualrois":
				for range count() {
					x, y, s := retinotopy(r, roi, hemi)
					m := edge(x, y, s, 0.8)
					m.familyLabel[fam.Name] = label
					m.familyLabel["streams"] = 1 // early stream
					vs = append(vs, m)
				}
			case fam.Group == GroupHigher:
				for range count() {
					m := category(familyCat(fam.Name), 0.6)
					m.familyLabel[fam.Name] = label
					if fam.Name == "floc-bodies" {
						m.familyLabel["streams"] = 6 // lateral
					} else {
						m.familyLabel["streams"] = 5 // ventral
					}
					vs = append(vs, m)
				}
			default: // streams' own vertices
				for range count() {
					var m vertexModel
					switch roi {
					case "early":
						x, y, _ := retinotopy(r, "V1", hemi)
						m = edge(x, y, 0.08, 0.6)
					case "midparietal", "parietal":
						x, y, _ := retinotopy(r, "hV4", hemi)
						m = edge(x, y, 0.25, 0.4)
					case "midventral", "ventral":
						m = category([]int{CatFaces, CatPlaces, CatWords, CatObjects}[r.IntN(4)], 0.45)
					default: // midlateral, lateral
						m = category([]int{CatBodies, CatFaces, CatObjects}[r.IntN(3)], 0.45)
					}
					m.familyLabel[fam.Name] = label
					vs = append(vs, m)
				}
			}
		}
	}
	// Vertices outside every ROI, mostly noise.
	outside := len(vs) / 10
	if pad > 0 {
		if pad < len(vs)+outside {
			return nil, fmt.Errorf("synthetic %s hemisphere: %d vertices asked, but the ROIs alone take %d (lower voxels per ROI)", hemiNames[hemi], pad, len(vs)+outside)
		}
		outside = pad - len(vs)
	}
	for range outside {
		m := edge(r.Float64(), r.Float64(), 0.2, 0.15)
		m.kind = modelNoise
		vs = append(vs, m)
	}
	r.Shuffle(len(vs), func(i, j int) { vs[i], vs[j] = vs[j], vs[i] })
	return vs, nil
}

// signal returns vertex m's noise-free response to every image. Scaling
// statistics come from the first nFit images only, so adding test images
// leaves the training responses unchanged.
func (m *vertexModel) signal(si *synthImages, nFit int) []float64 {
	n := len(si.scenes)
	out := make([]float64, n)
	if m.kind == modelNoise {
		return out
	}
	// Receptive field over the feature grid, orientation tuning over bins.
	const g2 = featGrid * featGrid
	var w [featOri * g2]float64
	for k := range featOri {
		ok := math.Exp(2 * math.Cos(2*(math.Pi*float64(k)/featOri-m.ori)))
		if m.kind == modelCategory {
			ok = 1
		}
		for gy := range featGrid {
			for gx := range featGrid {
				dx := (float64(gx)+0.5)/featGrid - m.rfX
				dy := (float64(gy)+0.5)/featGrid - m.rfY
				w[k*g2+gy*featGrid+gx] = ok * math.Exp(-(dx*dx+dy*dy)/(2*m.rfSigma*m.rfSigma))
			}
		}
	}
	edge := make([]float64, n)
	for i := range n {
		var s float64
		for j, f := range si.feats[i] {
			s += w[j] * float64(f)
		}
		edge[i] = s
	}
	if m.kind == modelEdge {
		return edge
	}
	standardize(edge, nFit)
	for i, sc := range si.scenes {
		var v float64
		if sc.Cat == m.pref {
			d := (sc.Attr - m.mu) / m.width
			v = sc.Evidence * (0.35 + 0.65*math.Exp(-d*d/2))
		} else {
			v = sc.Evidence * m.others[sc.Cat]
		}
		out[i] = v + m.edgeMix*0.25*edge[i]
	}
	return out
}

// standardize makes x zero-mean, unit-variance (population) over its
// first nFit values.
func standardize(x []float64, nFit int) {
	var mean, m2 float64
	for _, v := range x[:nFit] {
		mean += v
	}
	mean /= float64(nFit)
	for _, v := range x[:nFit] {
		m2 += (v - mean) * (v - mean)
	}
	sd := math.Sqrt(m2 / float64(nFit))
	if sd == 0 {
		sd = 1
	}
	for i := range x {
		x[i] = (x[i] - mean) / sd
	}
}

// ncFromSNR is NSD's noise ceiling for the mean of n trials, as a fraction:
// ncsnr^2 / (ncsnr^2 + 1/n).
func ncFromSNR(ncsnr float64, n int) float64 {
	return ncsnr * ncsnr / (ncsnr*ncsnr + 1/float64(n))
}

// newSynthSubject generates one subject's responses to every image of si
// (the first nFMRI have fMRI). Each trial is signal (unit variance) plus
// Gaussian noise of sd 1/ncsnr; the noise ceiling is estimated from the
// repeats as NSD does and reported beside the planted one.
//
// rois, when not empty, limits the work to those ROIs' vertices: every
// vertex has its own model and noise stream, so theirs come out exactly as
// in a full generation, and the others stay zero (a responses part of one
// ROI need not generate the whole cortex).
func newSynthSubject(ctx context.Context, si *synthImages, name string, cfg SynthConfig, rois []string) (*synthSubject, error) {
	reps := max(1, cfg.Reps)
	sub := &synthSubject{Name: name, Masks: map[string][2][]int32{}, ImagesWithFMRI: len(si.scenes)}
	n := len(si.scenes)
	nFit := min(n, cfg.NImages)
	for h := range 2 {
		r := rand.New(rand.NewPCG(subjectSeed(cfg.Seed, name), uint64(h)))
		models, err := newVertexModels(r, h, cfg.VoxelsPerROI, cfg.Vertices[h])
		if err != nil {
			return nil, err
		}
		v := len(models)
		sub.Verts[h] = v
		fmri := make([]float32, n*v)
		nc := make([]float32, v)
		trueNC := make([]float32, v)
		for _, fam := range families {
			m := sub.Masks[fam.Name]
			m[h] = make([]int32, v)
			for j := range models {
				m[h][j] = models[j].familyLabel[fam.Name]
			}
			sub.Masks[fam.Name] = m
		}
		need := neededVertices(sub.Masks, h, v, rois)
		// Vertices are independent: generate them in parallel, each from
		// its own noise stream so the result does not depend on scheduling.
		var wg sync.WaitGroup
		workers := runtime.GOMAXPROCS(0)
		base := subjectSeed(cfg.Seed, name) + uint64(h)<<40
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				trials := make([]float64, reps)
				for j := w; j < v; j += workers {
					if ctx.Err() != nil {
						return
					}
					if need != nil && !need[j] {
						continue
					}
					m := &models[j]
					s := m.signal(si, nFit)
					if m.kind != modelNoise {
						standardize(s, nFit)
					}
					noiseSD := 1 / m.ncsnr
					if m.kind == modelNoise {
						noiseSD = 1
					}
					nr := rand.New(rand.NewPCG(base, uint64(j)))
					var noiseVar, sum, sum2, fitNoise, fitSum, fitSum2 float64
					for i := range n {
						var mean float64
						for t := range trials {
							trials[t] = s[i] + noiseSD*nr.NormFloat64()
							mean += trials[t]
							sum += trials[t]
							sum2 += trials[t] * trials[t]
						}
						mean /= float64(reps)
						if reps > 1 {
							var ss float64
							for _, x := range trials {
								ss += (x - mean) * (x - mean)
							}
							noiseVar += ss / float64(reps-1)
						}
						fmri[i*v+j] = float32(mean)
						if i == nFit-1 {
							// Noise ceilings describe the training images
							// only, as with the real release.
							fitNoise, fitSum, fitSum2 = noiseVar, sum, sum2
						}
					}
					noiseVar, sum, sum2 = fitNoise, fitSum, fitSum2
					total := float64(nFit * reps)
					totVar := sum2/total - (sum/total)*(sum/total)
					noiseVar /= float64(nFit)
					if reps > 1 && noiseVar > 0 {
						est := math.Sqrt(max(0, totVar-noiseVar) / noiseVar)
						nc[j] = float32(ncFromSNR(est, reps))
					}
					if m.kind != modelNoise {
						trueNC[j] = float32(ncFromSNR(m.ncsnr, reps))
					}
				}
			}()
		}
		wg.Wait()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		sub.FMRI[h], sub.NC[h], sub.TrueNC[h] = fmri, nc, trueNC
	}
	return sub, nil
}

// neededVertices marks the vertices of hemisphere h that belong to one of
// rois; nil (all) when rois is empty or names an unknown ROI, which the
// ROI selection reports.
func neededVertices(masks map[string][2][]int32, h, v int, rois []string) []bool {
	if len(rois) == 0 {
		return nil
	}
	need := make([]bool, v)
	for _, r := range rois {
		fam, label, ok := LookupROI(r)
		m, have := masks[fam]
		if !ok || !have {
			return nil
		}
		for j, l := range m[h] {
			if int(l) == label {
				need[j] = true
			}
		}
	}
	return need
}

// memRows serves rows [from, to) of an in-memory images x vertices matrix.
type memRows struct {
	name      string
	data      []float32
	cols, row int
}

func (m *memRows) Name() string { return m.name }
func (m *memRows) Cols() int    { return m.cols }
func (m *memRows) Next(dst []float32) error {
	copy(dst, m.data[m.row*m.cols:(m.row+1)*m.cols])
	m.row++
	return nil
}
