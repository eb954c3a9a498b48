package data

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/voxflow/voxflow/stages"
)

// TestDescribe checks the schema the engine validates specs against: every
// param documented, defaults of the declared type, inside their bounds and
// enums.
func TestDescribe(t *testing.T) {
	d := New().Describe()
	if d.Kind != "data" || d.Version == "" || d.Isolate != "inline" || len(d.Outputs) != 1 || d.Outputs[0].Name != "dataset" {
		t.Fatalf("description %+v", d)
	}
	for _, p := range d.Params {
		if p.Doc == "" {
			t.Errorf("param %s has no doc", p.Name)
		}
		switch p.Type {
		case stages.TypeString, stages.TypePath:
			s, ok := p.Default.(string)
			if !ok || (p.Enum != nil && !slices.Contains(p.Enum, s)) {
				t.Errorf("param %s: default %#v not in %v", p.Name, p.Default, p.Enum)
			}
		case stages.TypeInt, stages.TypeFloat:
			f, ok := stages.ToFloat(p.Default)
			if !ok || (p.Min != nil && f < *p.Min) || (p.Max != nil && f > *p.Max) {
				t.Errorf("param %s: default %#v outside [%v, %v]", p.Name, p.Default, p.Min, p.Max)
			}
			if _, isInt := p.Default.(int64); (p.Type == stages.TypeInt) != isInt {
				t.Errorf("param %s: default %#v is not a %s", p.Name, p.Default, p.Type)
			}
		case stages.TypeStrings:
			if _, ok := p.Default.([]any); !ok {
				t.Errorf("param %s: default %#v, want []any", p.Name, p.Default)
			}
		default:
			t.Errorf("param %s: unexpected type %s", p.Name, p.Type)
		}
	}
}

func TestCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := BuildSynthetic(ctx, SynthConfig{NImages: 500, VoxelsPerROI: 10, Reps: 3}, []string{"subj01"}, Options{ImageSize: 32, ValFraction: 0.1, TestFraction: 0.1}, t.TempDir())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
}

func TestROITables(t *testing.T) {
	for name, want := range map[string][3]any{
		"V1v": {"prf-visualrois", 1, GroupEarly}, "hV4": {"prf-visualrois", 7, GroupEarly},
		"FFA-1": {"floc-faces", 2, GroupHigher}, "mTL-bodies": {"floc-bodies", 4, GroupHigher},
		"RSC": {"floc-places", 3, GroupHigher}, "mTL-words": {"floc-words", 5, GroupHigher},
		"early": {"streams", 1, GroupStreams}, "parietal": {"streams", 7, GroupStreams},
	} {
		fam, label, ok := LookupROI(name)
		if !ok || fam != want[0] || label != want[1] || ROIGroup(name) != want[2] {
			t.Errorf("%s: %s %d %s, want %v", name, fam, label, ROIGroup(name), want)
		}
	}
	if ROIGroup("V1") != "" || len(ROINames()) != 31 {
		t.Errorf("ROIGroup(V1) = %q, %d names", ROIGroup("V1"), len(ROINames()))
	}
	f := Families()
	f[0].Labels[0] = "changed"
	if ROINames()[0] != "V1v" {
		t.Error("Families returned the package's own table")
	}
}
