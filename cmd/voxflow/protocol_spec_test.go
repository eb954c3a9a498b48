package main

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/voxflow/voxflow/engine/spec"
	"github.com/voxflow/voxflow/stages/data"
)

// specs/nsd-algonauts.yaml declares the poster's whole protocol: every ROI
// of the three groups (early, higher, anatomical streams), probes for the 3
// best-encoded subjects chosen from ridge's scores, and an ImageNet probe
// that is off while params.imagenet_val is empty. It validates as shipped,
// with ImageNet on, and in its cpu rehearsal.
func TestNSDSpecCoversThePosterProtocol(t *testing.T) {
	path, _ := filepath.Abs("../../specs/nsd-algonauts.yaml")
	for _, args := range [][]string{
		{"validate", path},
		{"validate", path, "--set", "params.imagenet_val=/data/imagenet/val"},
		{"validate", path, "--variant", "cpu"},
	} {
		if r := vox(t, t.TempDir(), args...); r.code != 0 {
			t.Errorf("%v:\n%s", args, r)
		}
	}
	s, err := spec.Load(path, spec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rois, _ := s.Params["rois"].([]any)
	groups := map[string]int{}
	for _, f := range data.Families() {
		for _, l := range f.Labels {
			if !slices.Contains(rois, any(l)) {
				t.Errorf("params.rois lacks %s (%s, group %s)", l, f.Name, f.Group)
			}
			groups[f.Group]++
		}
	}
	if len(groups) != 3 || len(rois) != groups[data.GroupEarly]+groups[data.GroupHigher]+groups[data.GroupStreams] {
		t.Errorf("rois %v do not cover exactly the three groups %v", rois, groups)
	}
	// The tuned networks are probed for the top 3 subjects by ridge.
	for _, name := range []string{"probe_cl", "imagenet_cl"} {
		st := s.Stage(name)
		if st == nil {
			t.Fatalf("no stage %s", name)
		}
		var sel *spec.Selection
		for _, k := range st.Foreach {
			if k.Name == "subject" {
				sel = k.Select
			}
		}
		if sel == nil || sel.Mode != spec.SelectTop || sel.K != 3 || sel.Stage != "ridge" || len(st.Foreach) != 3 {
			t.Errorf("%s: want foreach subject chosen as the top 3 by ridge, got %+v", name, sel)
		}
	}
	// ImageNet: gated on the param, and probed first in the report.
	if st := s.Stage("imagenet_data"); st == nil || st.Foreach[0].Select == nil || st.Foreach[0].Select.Mode != spec.SelectAbove ||
		st.With["root"] != "" || st.With["source"] != "imagefolder" {
		t.Errorf("imagenet_data: want an imagefolder stage gated on imagenet_check, off while imagenet_val is empty: %+v", st)
	}
	var probes []string
	for _, in := range s.Stage("report").Inputs {
		if in.Port == "probe" {
			for _, r := range in.Refs {
				probes = append(probes, r.String())
			}
		}
	}
	if !slices.Equal(probes, []string{"probe_imagenet", "probe"}) {
		t.Errorf("report probes %v, want ImageNet first, then Caltech-256 and Places365", probes)
	}
}
