package ridge

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"

	"github.com/voxflow/voxflow/numerics/linalg"
	"github.com/voxflow/voxflow/numerics/npy"
	"github.com/voxflow/voxflow/numerics/stats"
	"github.com/voxflow/voxflow/stages"
	"github.com/voxflow/voxflow/stages/artifact"
)

// networks groups features artifacts by producing stage, in input order.
type networks struct {
	names []string
	arts  map[string][]featArt
}

// featArt is a features artifact with the labels that say which subject
// and ROI it serves: the artifact's own foreach labels, completed by the
// labels of the network it was computed from (features.json net_labels),
// so a features stage that does not fan out over ROIs still passes on
// that its network was tuned for one ROI.
type featArt struct {
	stages.Artifact
	labels map[string]string
}

func groupNetworks(arts []stages.Artifact) (*networks, error) {
	if len(arts) == 0 {
		return nil, fmt.Errorf("input features: no artifacts; want features of at least one network")
	}
	n := &networks{arts: map[string][]featArt{}}
	for _, a := range arts {
		if a.Stage == "" {
			return nil, fmt.Errorf("input features: artifact %s has no producing stage name", a.Path)
		}
		info, err := artifact.ReadFeatures(a.Path, artifact.KindNSD)
		if err != nil {
			return nil, fmt.Errorf("input features: %w", err)
		}
		labels := map[string]string{}
		for k, v := range info.NetLabels {
			labels[k] = v
		}
		for k, v := range a.Labels {
			labels[k] = v
		}
		if _, ok := n.arts[a.Stage]; !ok {
			n.names = append(n.names, a.Stage)
		}
		n.arts[a.Stage] = append(n.arts[a.Stage], featArt{a, labels})
	}
	return n, nil
}

// pick returns network net's artifact for subject and roi: one labelled
// with that roi (a network tuned for it) if any, else an unlabelled one.
// Artifacts labelled with another subject or roi never match. ok is false
// when the network has no artifact for this ROI.
func (n *networks) pick(net, subject, roi string) (stages.Artifact, bool, error) {
	var exact, general []stages.Artifact
	for _, a := range n.arts[net] {
		if s, has := a.labels["subject"]; has && s != subject {
			continue
		}
		r, has := a.labels["roi"]
		switch {
		case has && r == roi:
			exact = append(exact, a.Artifact)
		case !has:
			general = append(general, a.Artifact)
		}
	}
	cands := exact
	if len(cands) == 0 {
		cands = general
	}
	switch len(cands) {
	case 0:
		return stages.Artifact{}, false, nil
	case 1:
		return cands[0], true, nil
	}
	return stages.Artifact{}, false, fmt.Errorf("input features: %d artifacts of stage %s match subject %s, ROI %s; want one (label them by subject/roi)", len(cands), net, subject, roi)
}

// roiSet is one subject's selected ROIs and their concatenated responses.
type roiSet struct {
	infos  []artifact.ROIInfo
	offset []int // column offset of each ROI in ytr / yte
	v      int   // total columns
	ytr    []float32
	yte    []float32
	ntr    int
	nte    int
	nc     [][]float32
	// trainSplits are the splits whose rows are the training rows, in order.
	trainSplits []string
}

type cellKey struct{ subject, roi, net string }

// cell is one network's result on one subject's ROI.
type cell struct {
	group string
	r     []float64
	nc    []float32 // noise ceiling per voxel (fraction of variance), nil if unknown
	boot  []float64 // mean r per bootstrap resample, nil without bootstrap
	nte   int       // test images r was computed over (its sampling error)
}

// job is the state of one Run.
type job struct {
	req      *stages.Request
	opt      options
	dataDir  string
	nets     *networks
	subjects []string
	roiOrder []string
	groups   map[string]string // ROI name -> group
	cells    map[cellKey]*cell
}

func (j *job) run(ctx context.Context) error {
	mf, err := artifact.ReadManifest(j.dataDir)
	if err != nil {
		return fmt.Errorf("input data: %w", err)
	}
	if mf.Kind != artifact.KindNSD {
		return fmt.Errorf("input data: kind %q, want %q (ROI responses to images)", mf.Kind, artifact.KindNSD)
	}
	j.subjects = mf.Subjects
	if j.opt.subject != "" {
		if !slices.Contains(mf.Subjects, j.opt.subject) {
			return fmt.Errorf("param subject %q: not in the data (have %v)", j.opt.subject, mf.Subjects)
		}
		j.subjects = []string{j.opt.subject}
	}
	j.groups = map[string]string{}
	for _, s := range j.subjects {
		if err := j.runSubject(ctx, s); err != nil {
			return fmt.Errorf("subject %s: %w", s, err)
		}
	}
	return nil
}

func (j *job) loadROIs(subject string) (*roiSet, error) {
	dir := filepath.Join(j.dataDir, subject)
	sm, err := artifact.ReadSubjectManifest(dir)
	if err != nil {
		return nil, err
	}
	var infos []artifact.ROIInfo
	if len(j.opt.rois) == 0 {
		for _, r := range sm.ROIs {
			if r.Voxels() > 0 {
				infos = append(infos, r)
			}
		}
	} else {
		for _, name := range j.opt.rois {
			r, ok := sm.ROI(name)
			if !ok {
				return nil, fmt.Errorf("ROI %q: not in %s", name, filepath.Join(dir, "manifest.json"))
			}
			if r.Voxels() == 0 {
				fmt.Fprintf(j.req.Log, "ridge: %s %s has no voxels, skipped\n", subject, name)
				continue
			}
			infos = append(infos, r)
		}
	}
	if len(infos) == 0 {
		return nil, fmt.Errorf("no ROI with voxels selected")
	}
	trainSplits := []string{artifact.SplitTrain}
	if j.opt.mergeVal && sm.Splits[artifact.SplitVal] > 0 {
		trainSplits = append(trainSplits, artifact.SplitVal)
	}
	rs := &roiSet{infos: infos, trainSplits: trainSplits}
	var tr, te [][]float32
	var widths []int
	for _, r := range infos {
		var parts []*npy.Array[float32]
		for _, sp := range trainSplits {
			a, err := artifact.LoadROI(j.dataDir, subject, sp, r.Name)
			if err != nil {
				return nil, err
			}
			parts = append(parts, a)
		}
		a, err := artifact.LoadROI(j.dataDir, subject, artifact.SplitTest, r.Name)
		if err != nil {
			return nil, err
		}
		v := a.Shape[1]
		var rows []float32
		for _, p := range parts {
			if p.Shape[1] != v {
				return nil, fmt.Errorf("ROI %s: %d voxels in one split, %d in test", r.Name, p.Shape[1], v)
			}
			rows = append(rows, p.Data...)
		}
		tr, te, widths = append(tr, rows), append(te, a.Data), append(widths, v)
		rs.ntr, rs.nte = len(rows)/max(v, 1), a.Shape[0]
		nc, err := artifact.LoadNoiseCeiling(j.dataDir, subject, r.Name)
		if err != nil {
			return nil, err
		}
		if nc != nil && len(nc) != v {
			return nil, fmt.Errorf("%s: %d values for %d voxels", artifact.NoiseCeilingPath(j.dataDir, subject, r.Name), len(nc), v)
		}
		rs.nc = append(rs.nc, nc)
	}
	for _, w := range widths {
		rs.offset = append(rs.offset, rs.v)
		rs.v += w
	}
	rs.ytr = interleave(tr, widths, rs.ntr)
	rs.yte = interleave(te, widths, rs.nte)
	return rs, nil
}

// interleave concatenates row-major n x w_i blocks column-wise.
func interleave(blocks [][]float32, widths []int, n int) []float32 {
	total := 0
	for _, w := range widths {
		total += w
	}
	out := make([]float32, n*total)
	off := 0
	for b, blk := range blocks {
		w := widths[b]
		for i := 0; i < n; i++ {
			copy(out[i*total+off:i*total+off+w], blk[i*w:(i+1)*w])
		}
		off += w
	}
	return out
}

func (j *job) runSubject(ctx context.Context, subject string) error {
	rs, err := j.loadROIs(subject)
	if err != nil {
		return err
	}
	for _, r := range rs.infos {
		if _, seen := j.groups[r.Name]; !seen {
			j.roiOrder = append(j.roiOrder, r.Name)
			j.groups[r.Name] = r.Group
		}
	}
	var counts []float64
	if j.opt.bootstrap > 0 {
		h := fnv.New64a()
		h.Write([]byte(subject))
		counts = stats.BootstrapCounts(rand.New(rand.NewPCG(j.opt.seed, h.Sum64())), j.opt.bootstrap, rs.nte)
	}
	for _, net := range j.nets.names {
		// ROIs served by the same artifact are fitted together: one
		// decomposition per fold serves them all.
		byArt := map[string][]int{}
		var order []string
		arts := map[string]stages.Artifact{}
		for i, r := range rs.infos {
			a, ok, err := j.nets.pick(net, subject, r.Name)
			if err != nil {
				return err
			}
			if !ok {
				fmt.Fprintf(j.req.Log, "ridge: network %s has no features for %s %s, skipped\n", net, subject, r.Name)
				continue
			}
			if _, seen := byArt[a.Path]; !seen {
				order = append(order, a.Path)
				arts[a.Path] = a
			}
			byArt[a.Path] = append(byArt[a.Path], i)
		}
		for _, path := range order {
			if err := j.fitArtifact(ctx, net, subject, arts[path], rs, byArt[path], counts); err != nil {
				return fmt.Errorf("network %s: %w", net, err)
			}
		}
	}
	return nil
}

func (j *job) fitArtifact(ctx context.Context, net, subject string, art stages.Artifact, rs *roiSet, rois []int, counts []float64) error {
	var xtr []float32
	p := -1
	for _, sp := range rs.trainSplits {
		a, err := artifact.LoadFeatures(art.Path, subject, sp)
		if err != nil {
			return err
		}
		if p >= 0 && a.Shape[1] != p {
			return fmt.Errorf("features %s: %d features in %s, %d in train", art.Path, a.Shape[1], sp, p)
		}
		p = a.Shape[1]
		xtr = append(xtr, a.Data...)
	}
	if n := len(xtr) / p; n != rs.ntr {
		return fmt.Errorf("features %s: %d training images (%v), the data has %d responses", art.Path, n, rs.trainSplits, rs.ntr)
	}
	te, err := artifact.LoadFeatures(art.Path, subject, artifact.SplitTest)
	if err != nil {
		return err
	}
	if te.Shape[0] != rs.nte || te.Shape[1] != p {
		return fmt.Errorf("features %s: test is %s, want %d x %d", art.Path, npy.ShapeString(te.Shape), rs.nte, p)
	}
	if j.opt.reduce.kind != ReduceNone {
		info, err := artifact.ReadFeatures(art.Path, artifact.KindNSD)
		if err != nil {
			return err
		}
		p0 := p
		xtr, te.Data, p, err = j.opt.reduce.reduce(ctx, info, xtr, rs.ntr, te.Data, rs.nte, p)
		if err != nil {
			return fmt.Errorf("features %s (layer %s): %w", art.Path, info.Layer, err)
		}
		fmt.Fprintf(j.req.Log, "ridge: %s %s layer %s: %d features reduced by %s to %d\n", net, subject, info.Layer, p0, j.opt.reduce, p)
	}
	// Columns of the ROIs this artifact serves.
	var cols []int
	for _, i := range rois {
		w := rs.width(i)
		for c := 0; c < w; c++ {
			cols = append(cols, rs.offset[i]+c)
		}
	}
	ytr, yte := rs.ytr, rs.yte
	if len(cols) != rs.v {
		ytr, yte = gather(rs.ytr, rs.v, cols), gather(rs.yte, rs.v, cols)
	}
	v := len(cols)
	cfg := j.opt.cfg
	cfg.KeepWeights = j.opt.saveWeights
	phase := fmt.Sprintf("%s %s", net, subject)
	cfg.Progress = func(ph string, done, total int) {
		j.req.Progress.Update(stages.Update{Phase: phase + " " + ph, Done: float64(done), Total: float64(total), Unit: "voxel"})
	}
	var res *fitResult
	if j.opt.float64 {
		res, err = fitPredict(ctx, widen(xtr), rs.ntr, p, widen(ytr), v, widen(te.Data), rs.nte, widen(yte), cfg)
	} else {
		res, err = fitPredict(ctx, xtr, rs.ntr, p, ytr, v, te.Data, rs.nte, yte, cfg)
	}
	if err != nil {
		return fmt.Errorf("ridge on %s (%d training images x %d features, %d voxels): %w", art.Path, rs.ntr, p, v, err)
	}
	dir := artifact.VoxelScoresDir(j.req.OutDir, net, subject)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if j.opt.saveWeights {
		if err := npy.WriteFile(filepath.Join(dir, "feature_mean.npy"), []int{p}, res.mean); err != nil {
			return err
		}
		if err := npy.WriteFile(filepath.Join(dir, "feature_scale.npy"), []int{p}, res.scale); err != nil {
			return err
		}
	}
	off := 0
	for _, i := range rois {
		info := rs.infos[i]
		w := rs.width(i)
		r := res.r[off : off+w]
		if err := npy.WriteFile(artifact.VoxelRPath(j.req.OutDir, net, subject, info.Name), []int{w}, narrow(r)); err != nil {
			return err
		}
		if err := npy.WriteFile(filepath.Join(dir, info.Name+"_alpha.npy"), []int{w}, narrow(res.alpha[off:off+w])); err != nil {
			return err
		}
		if j.opt.saveWeights {
			wt := make([]float32, p*w)
			for k := 0; k < p; k++ {
				copy(wt[k*w:(k+1)*w], res.weights[k*v+off:k*v+off+w])
			}
			if err := npy.WriteFile(filepath.Join(dir, info.Name+"_weights.npy"), []int{p, w}, wt); err != nil {
				return err
			}
		}
		c := &cell{group: info.Group, r: r, nc: rs.nc[i], nte: rs.nte}
		if counts != nil {
			pc := gather(res.pred, v, seq(off, w))
			oc := gather(yte, v, seq(off, w))
			c.boot = stats.BootstrapMeanR(counts, j.opt.bootstrap, pc, oc, rs.nte, w)
		}
		j.cells[cellKey{subject, info.Name, net}] = c
		off += w
	}
	return nil
}

func (rs *roiSet) width(i int) int {
	if i+1 < len(rs.offset) {
		return rs.offset[i+1] - rs.offset[i]
	}
	return rs.v - rs.offset[i]
}

// fitResult is a fit's per-voxel outcome, in float32 for the artifacts.
type fitResult struct {
	alpha, r    []float64
	pred        []float32 // nte x v
	weights     []float32 // p x v
	mean, scale []float32
}

func fitPredict[T linalg.Float](ctx context.Context, xtr []T, n, p int, ytr []T, v int, xte []T, nte int, yte []T, cfg Config) (*fitResult, error) {
	m, err := FitCV(ctx, xtr, n, p, ytr, v, v, xte, nte, cfg)
	if err != nil {
		return nil, err
	}
	return &fitResult{
		alpha:   m.Alpha,
		r:       stats.PearsonCols(m.Pred, yte, nte, v),
		pred:    toF32(m.Pred),
		weights: toF32(m.Weights),
		mean:    toF32(m.Mean),
		scale:   toF32(m.Scale),
	}, nil
}

func toF32[T linalg.Float](x []T) []float32 {
	if y, ok := any(x).([]float32); ok {
		return y
	}
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(v)
	}
	return out
}

func widen(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

func narrow(x []float64) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(v)
	}
	return out
}

func seq(from, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = from + i
	}
	return out
}

// gather copies the listed columns of a row-major matrix with w columns.
func gather(y []float32, w int, cols []int) []float32 {
	n := len(y) / max(w, 1)
	out := make([]float32, n*len(cols))
	for i := 0; i < n; i++ {
		row := y[i*w : (i+1)*w]
		dst := out[i*len(cols) : (i+1)*len(cols)]
		for k, c := range cols {
			dst[k] = row[c]
		}
	}
	return out
}
