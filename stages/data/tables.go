package data

import (
	"fmt"
	"slices"
	"strings"
)

// ROI groups used when results are averaged over ROIs.
const (
	GroupEarly   = "early"   // prf-visualrois: V1v .. hV4
	GroupHigher  = "higher"  // floc-* category-selective ROIs
	GroupStreams = "streams" // anatomical streams
)

// Family is one Algonauts 2023 ROI mask family: the file
// roi_masks/{lh,rh}.<Name>_challenge_space.npy holds, per vertex, 0 outside
// every ROI or k for Labels[k-1].
type Family struct {
	Name   string
	Group  string
	Labels []string
}

// families are the Algonauts 2023 label tables (the release's
// mapping_<family>.npy pickles, transcribed so we never unpickle).
var families = []Family{
	{"prf-visualrois", GroupEarly, []string{"V1v", "V1d", "V2v", "V2d", "V3v", "V3d", "hV4"}},
	{"floc-bodies", GroupHigher, []string{"EBA", "FBA-1", "FBA-2", "mTL-bodies"}},
	{"floc-faces", GroupHigher, []string{"OFA", "FFA-1", "FFA-2", "mTL-faces", "aTL-faces"}},
	{"floc-places", GroupHigher, []string{"OPA", "PPA", "RSC"}},
	{"floc-words", GroupHigher, []string{"OWFA", "VWFA-1", "VWFA-2", "mfs-words", "mTL-words"}},
	{"streams", GroupStreams, []string{"early", "midventral", "midlateral", "midparietal", "ventral", "lateral", "parietal"}},
}

// Families returns the ROI mask families with their label tables, in
// canonical order. The result is a fresh copy.
func Families() []Family {
	out := make([]Family, len(families))
	for i, f := range families {
		out[i] = Family{f.Name, f.Group, slices.Clone(f.Labels)}
	}
	return out
}

// ROINames returns every ROI name in canonical order (family order, then
// label order).
func ROINames() []string {
	var names []string
	for _, f := range families {
		names = append(names, f.Labels...)
	}
	return names
}

// LookupROI returns the family and 1-based mask label of an ROI name.
// Names are case-sensitive, as in the release ("early" is a stream, not a
// group, when asked here).
func LookupROI(name string) (family string, label int, ok bool) {
	for _, f := range families {
		if i := slices.Index(f.Labels, name); i >= 0 {
			return f.Name, i + 1, true
		}
	}
	return "", 0, false
}

// ROIGroup returns the group ("early", "higher" or "streams") of an ROI name,
// or "" for an unknown name.
func ROIGroup(name string) string {
	for _, f := range families {
		if slices.Contains(f.Labels, name) {
			return f.Group
		}
	}
	return ""
}

// ROIFamily returns the mask family of an ROI name, or "" if unknown.
func ROIFamily(name string) string {
	f, _, _ := LookupROI(name)
	return f
}

// unknownROIError lists the valid names so the user can fix the spec.
func unknownROIError(name, where string) error {
	return fmt.Errorf("%s: unknown ROI %q: expected one of %s", where, name, strings.Join(ROINames(), ", "))
}
