package data

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/voxflow/voxflow/internal/jsonfile"
	"github.com/voxflow/voxflow/stages"
	"github.com/voxflow/voxflow/stages/artifact"
)

// A join assembles the standard NSD-like layout from part artifacts: per
// subject one images part and the responses parts of its ROIs. Its output
// is byte-identical to the `all` artifact of the same subjects and ROIs (in
// the parts' order), so every later stage reads it unchanged, and a join
// that gains no new part stays byte-identical when the spec gains an ROI:
// the downstream instances keyed on it stay cached.

// joinPart is one input part.
type joinPart struct {
	name string // the producing instance, for errors
	path string
	m    *artifact.Manifest
}

// subjectParts is what a join has for one subject.
type subjectParts struct {
	images     *joinPart
	imagesM    *artifact.SubjectManifest
	responses  []*joinPart
	responsesM []*artifact.SubjectManifest
}

// artifactName names an input artifact by its producing stage and labels,
// e.g. nsd_resp[roi=V1v,subject=subj01].
func artifactName(a stages.Artifact) string {
	if len(a.Labels) == 0 {
		if a.Stage == "" {
			return a.Path
		}
		return a.Stage
	}
	keys := make([]string, 0, len(a.Labels))
	for k := range a.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = k + "=" + a.Labels[k]
	}
	return a.Stage + "[" + strings.Join(keys, ",") + "]"
}

// JoinParts joins part artifacts (part: images and part: responses) into a
// standard NSD-like data artifact at out, checking that each subject's
// parts assign the same images to the same rows of every split. It returns
// the same summary metrics as a full build.
func JoinParts(ctx context.Context, parts []stages.Artifact, out string) (map[string]any, error) {
	var order []string
	subj := map[string]*subjectParts{}
	var source, sourceFrom string
	var imageSize int
	var pre *artifact.Preprocess
	var preFrom string
	for _, a := range parts {
		p := &joinPart{name: artifactName(a), path: a.Path}
		m, err := artifact.ReadManifest(a.Path)
		if err != nil {
			return nil, fmt.Errorf("input %s %s: %w", PartsPort, p.name, err)
		}
		p.m = m
		if m.Kind != artifact.KindNSD || (m.Part != artifact.PartImages && m.Part != artifact.PartResponses) {
			what := "a full data artifact"
			if m.Kind != artifact.KindNSD {
				what = "a " + m.Kind + " artifact"
			}
			return nil, fmt.Errorf("input %s %s: %s, expected a part (a data stage with part: %s or part: %s)", PartsPort, p.name, what, artifact.PartImages, artifact.PartResponses)
		}
		switch m.Part {
		case artifact.PartResponses:
			if source == "" {
				source, sourceFrom = m.Source, p.name
			} else if m.Source != source {
				return nil, fmt.Errorf("input %s: %s comes from %q but %s from %q: expected responses of one source", PartsPort, p.name, m.Source, sourceFrom, source)
			}
		case artifact.PartImages:
			if pre == nil {
				imageSize, pre, preFrom = m.ImageSize, m.Preprocess, p.name
			} else if m.ImageSize != imageSize || !reflect.DeepEqual(m.Preprocess, pre) {
				return nil, fmt.Errorf("input %s: %s and %s have different image sizes or preprocessing (%d vs %d px): expected images made alike", PartsPort, p.name, preFrom, m.ImageSize, imageSize)
			}
		}
		for _, s := range m.Subjects {
			sm, err := artifact.ReadSubjectManifest(filepath.Join(a.Path, s))
			if err != nil {
				return nil, fmt.Errorf("input %s %s: %w", PartsPort, p.name, err)
			}
			sp := subj[s]
			if sp == nil {
				sp = &subjectParts{}
				subj[s] = sp
				order = append(order, s)
			}
			if m.Part == artifact.PartImages {
				if sp.images != nil {
					return nil, fmt.Errorf("input %s: two images parts for subject %s, %s and %s: expected one per subject", PartsPort, s, sp.images.name, p.name)
				}
				sp.images, sp.imagesM = p, sm
				continue
			}
			for k, prev := range sp.responsesM {
				for _, r := range sm.ROIs {
					if _, dup := prev.ROI(r.Name); dup {
						return nil, fmt.Errorf("input %s: ROI %s of subject %s is in both %s and %s: expected each ROI once", PartsPort, r.Name, s, sp.responses[k].name, p.name)
					}
				}
			}
			sp.responses, sp.responsesM = append(sp.responses, p), append(sp.responsesM, sm)
		}
	}
	if len(order) == 0 {
		return nil, fmt.Errorf("input %s: no subjects in %d artifacts", PartsPort, len(parts))
	}
	var ms []*artifact.SubjectManifest
	for _, s := range order {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		m, err := joinSubject(ctx, s, subj[s], filepath.Join(out, s))
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	if err := jsonfile.Write(filepath.Join(out, "manifest.json"), artifact.Manifest{Kind: artifact.KindNSD, Source: source, Subjects: order, ImageSize: imageSize, Preprocess: pre}); err != nil {
		return nil, err
	}
	return nsdMetrics(ms), nil
}

// joinSubject checks one subject's parts against each other and writes its
// directory of the joined artifact.
func joinSubject(ctx context.Context, subject string, sp *subjectParts, dir string) (*artifact.SubjectManifest, error) {
	if sp.images == nil {
		return nil, fmt.Errorf("input %s: subject %s has responses (%s) but no images part: expected a data stage with part: %s for it among the parts", PartsPort, subject, sp.responses[0].name, artifact.PartImages)
	}
	if len(sp.responses) == 0 {
		return nil, fmt.Errorf("input %s: subject %s has images (%s) but no responses part: expected at least one data stage with part: %s for it among the parts", PartsPort, subject, sp.images.name, artifact.PartResponses)
	}
	im := sp.imagesM
	for k, rm := range sp.responsesM {
		if why := splitMismatch(im, rm); why != "" {
			return nil, fmt.Errorf("input %s: %s and %s split subject %s's images differently (%s): expected parts made from the same source with the same seed, val_fraction and test_fraction",
				PartsPort, sp.images.name, sp.responses[k].name, subject, why)
		}
	}
	jm := &artifact.SubjectManifest{
		Subject:   subject,
		NSDIDs:    im.NSDIDs,
		Splits:    im.Splits,
		Sources:   map[string]string{},
		TestSplit: im.TestSplit,
		ImageSize: im.ImageSize,
	}
	for _, m := range append([]*artifact.SubjectManifest{im}, sp.responsesM...) {
		for k, v := range m.Sources {
			jm.Sources[k] = v
		}
	}
	for _, rm := range sp.responsesM {
		jm.ROIs = append(jm.ROIs, rm.ROIs...)
		if jm.NoiseCeiling == "" {
			jm.NoiseCeiling = rm.NoiseCeiling
			jm.NoiseCeilingSource, jm.NoiseCeilingUnit = rm.NoiseCeilingSource, rm.NoiseCeilingUnit
		}
	}
	from := map[string]string{} // file -> part it came from
	for _, p := range append([]*joinPart{sp.images}, sp.responses...) {
		if err := copySubjectDir(ctx, filepath.Join(p.path, subject), dir, p.name, from); err != nil {
			return nil, err
		}
	}
	if err := jsonfile.Write(filepath.Join(dir, "manifest.json"), jm); err != nil {
		return nil, err
	}
	return jm, nil
}

// splitMismatch says how two parts' split assignments differ, "" when
// they agree.
func splitMismatch(a, b *artifact.SubjectManifest) string {
	if a.Split == nil || b.Split == nil {
		return "a part without a recorded split"
	}
	x, y := a.Split, b.Split
	switch {
	case x.Seed != y.Seed:
		return fmt.Sprintf("seed %d vs %d", x.Seed, y.Seed)
	case x.ValFraction != y.ValFraction:
		return fmt.Sprintf("val_fraction %g vs %g", x.ValFraction, y.ValFraction)
	case x.TestFraction != y.TestFraction:
		return fmt.Sprintf("test_fraction %g vs %g", x.TestFraction, y.TestFraction)
	case x.Images != y.Images:
		return fmt.Sprintf("%d vs %d source images", x.Images, y.Images)
	case a.TestSplit != b.TestSplit:
		return fmt.Sprintf("test split %s vs %s", a.TestSplit, b.TestSplit)
	}
	for _, s := range artifact.Splits() {
		if !slices.Equal(a.NSDIDs[s], b.NSDIDs[s]) {
			return fmt.Sprintf("split %s holds different NSD ids", s)
		}
		if x.Rows[s] != y.Rows[s] {
			return fmt.Sprintf("split %s's rows come from different files", s)
		}
	}
	return ""
}

// copySubjectDir copies every file under src except its manifest.json into
// dst, refusing a file another part already wrote (from records who did).
// The cache stores identical content once, so the copies cost no space
// there.
func copySubjectDir(ctx context.Context, src, dst, part string, from map[string]string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("input %s %s: %w", PartsPort, part, err)
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			if err := os.MkdirAll(filepath.Join(dst, rel), 0o755); err != nil {
				return fmt.Errorf("create %s: %w", filepath.Join(dst, rel), err)
			}
			return nil
		}
		if rel == "manifest.json" {
			return nil
		}
		if prev, ok := from[rel]; ok {
			return fmt.Errorf("input %s: %s and %s both have %s: expected each file in one part", PartsPort, prev, part, rel)
		}
		from[rel] = part
		if err := ctx.Err(); err != nil {
			return err
		}
		return copyPlain(path, filepath.Join(dst, rel))
	})
}

// copyPlain copies a regular file to a new file with mode 0644.
func copyPlain(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("read %s: %w", src, err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("create %s: %w", dst, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	return nil
}
