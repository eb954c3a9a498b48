package data

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/voxflow/voxflow/numerics/npy"
)

// Units of the noise ceiling files a lab has (param noise_ceiling_unit).
// The data artifact always holds fractions.
const (
	// UnitPercent is percent of the trial-averaged response's variance
	// that is signal, 0..100: how NSD publishes its noise ceilings.
	UnitPercent = "percent"
	// UnitFraction is the same share as a fraction, 0..1: what
	// `voxflow data synth` writes and the artifact holds.
	UnitFraction = "fraction"
)

// DefaultNoiseCeiling is where the algonauts source looks for noise
// ceilings when param noise_ceiling is empty: voxflow's own layout (not part
// of the Algonauts release), written by `voxflow data synth`, in fractions.
// Files there are optional; a subject without them has no ceilings.
const DefaultNoiseCeiling = "{root}/{subject}/noise_ceiling/{hemi}_noise_ceiling.npy"

// ceilingPlaceholder matches one {name} of a noise ceiling pattern.
var ceilingPlaceholder = regexp.MustCompile(`\{[^{}]*\}`)

// ceilingSource says where a subject's noise ceilings are and in which unit.
type ceilingSource struct {
	pattern string // relative to root, "{root}/" prefix removed
	unit    string
	// required is true for a pattern the spec named: missing files are an
	// error. The default location is optional.
	required bool
}

// newCeilingSource checks param noise_ceiling (pattern) and
// noise_ceiling_unit (unit). Patterns are relative to root, with or
// without a leading {root}/, and must stay inside root: root is the path
// param whose content enters the cache key, so a ceiling file outside it
// could change without the data rerunning.
func newCeilingSource(pattern, unit string) (ceilingSource, error) {
	c := ceilingSource{pattern: pattern, unit: unit, required: pattern != ""}
	if pattern == "" {
		c.pattern = DefaultNoiseCeiling
	}
	if c.unit == "" {
		c.unit = UnitFraction
	}
	if c.unit != UnitPercent && c.unit != UnitFraction {
		return c, fmt.Errorf("param noise_ceiling_unit: %q, expected %s (0..100, as NSD publishes) or %s (0..1)", unit, UnitPercent, UnitFraction)
	}
	for _, ph := range ceilingPlaceholder.FindAllString(c.pattern, -1) {
		if ph != "{root}" && ph != "{subject}" && ph != "{hemi}" {
			return c, fmt.Errorf("param noise_ceiling: unknown placeholder %s in %q, expected {root}, {subject} (e.g. subj01) and {hemi} (lh or rh)", ph, pattern)
		}
	}
	if !strings.Contains(c.pattern, "{hemi}") {
		return c, fmt.Errorf("param noise_ceiling: %q has no {hemi}: expected one file per hemisphere, e.g. %s", pattern, DefaultNoiseCeiling)
	}
	rel := strings.TrimPrefix(strings.TrimPrefix(c.pattern, "{root}"), "/")
	if strings.Contains(rel, "{root}") || filepath.IsAbs(rel) || !filepath.IsLocal(filepath.FromSlash(strings.NewReplacer("{subject}", "s", "{hemi}", "h").Replace(rel))) {
		return c, fmt.Errorf("param noise_ceiling: %q leaves root: expected a path inside root, e.g. {root}/{subject}/nc/{hemi}.npy (root's content is part of the cache key; link outside files into root)", pattern)
	}
	c.pattern = rel
	return c, nil
}

// path is the ceiling file of one subject and hemisphere.
func (c ceilingSource) path(root, subject, hemi string) string {
	return filepath.Join(root, filepath.FromSlash(strings.NewReplacer("{subject}", subject, "{hemi}", hemi).Replace(c.pattern)))
}

// describe is what the subject manifest records as the ceilings' source.
func (c ceilingSource) describe(subject string) string {
	return "{root}/" + strings.ReplaceAll(c.pattern, "{subject}", subject)
}

// read returns both hemispheres' ceilings as fractions, with their paths,
// or nils when the default location has none. The caller checks their
// lengths against the fMRI files.
func (c ceilingSource) read(root, subject string) ([2][]float32, [2]string, error) {
	var nc [2][]float32
	var paths [2]string
	for h, hemi := range hemiNames {
		p := c.path(root, subject, hemi)
		paths[h] = p
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			if !c.required {
				return [2][]float32{}, paths, nil
			}
			return nc, paths, fmt.Errorf("param noise_ceiling: %s not found (pattern %s, subject %s, hemisphere %s)", p, c.describe("{subject}"), subject, hemi)
		}
		a, err := npy.ReadFile[float32](p)
		if err != nil {
			return nc, paths, fmt.Errorf("noise ceiling: %w", err)
		}
		if len(a.Shape) != 1 {
			return nc, paths, fmt.Errorf("%s: shape %s, expected a 1-D array with one noise ceiling per vertex", p, npy.ShapeString(a.Shape))
		}
		if err := checkCeilingUnit(p, a.Data, c.unit); err != nil {
			return nc, paths, err
		}
		if c.unit == UnitPercent {
			for i := range a.Data {
				a.Data[i] /= 100
			}
		}
		nc[h] = a.Data
	}
	return nc, paths, nil
}

// checkCeilingUnit refuses values that contradict the declared unit
// instead of converting them 100x wrong: a "fraction" above 1 is a percent
// and a "percent" that never exceeds 1 is a fraction. NaN (vertices
// without an estimate) is allowed; ridge ignores those vertices.
func checkCeilingUnit(path string, v []float32, unit string) error {
	lo, hi := math.Inf(1), math.Inf(-1)
	finite := 0
	for i, x := range v {
		f := float64(x)
		if math.IsNaN(f) {
			continue
		}
		if math.IsInf(f, 0) {
			return fmt.Errorf("%s: vertex %d has noise ceiling %v, expected a finite share of variance (or NaN where unknown)", path, i, x)
		}
		lo, hi = math.Min(lo, f), math.Max(hi, f)
		finite++
	}
	if finite == 0 {
		return nil
	}
	// Float round-off in a lab's own computation may overshoot a bound a
	// little.
	const slack = 1e-4
	switch unit {
	case UnitFraction:
		if hi > 1+slack && hi <= 100+slack*100 {
			return fmt.Errorf("%s: noise_ceiling_unit is fraction (0..1) but values run from %.4g to %.4g: this looks like percent (as NSD publishes); set noise_ceiling_unit: percent", path, lo, hi)
		}
		if lo < -slack || hi > 1+slack {
			return fmt.Errorf("%s: noise ceilings from %.4g to %.4g, expected fractions of variance in 0..1 (noise_ceiling_unit: fraction)", path, lo, hi)
		}
	case UnitPercent:
		if lo < -slack*100 || hi > 100+slack*100 {
			return fmt.Errorf("%s: noise ceilings from %.4g to %.4g, expected percent of variance in 0..100 (noise_ceiling_unit: percent)", path, lo, hi)
		}
		if hi <= 1 {
			return fmt.Errorf("%s: noise_ceiling_unit is percent (0..100) but every value is <= 1 (from %.4g to %.4g): this looks like a fraction; set noise_ceiling_unit: fraction", path, lo, hi)
		}
	}
	return nil
}
