package plugins

import (
	"strings"
	"testing"

	"github.com/voxflow/voxflow/internal/valuetest"
	"github.com/voxflow/voxflow/plugins/pluginpb"
	"github.com/voxflow/voxflow/stages"
)

// Params and defaults cross the wire in the codec's bytes and come back as
// the same plain values: int64 and float64 kept apart, -0 kept, no HTML
// escaping.
func TestWireCarriesPlainValues(t *testing.T) {
	for _, c := range valuetest.Cases() {
		req := &stages.Request{Instance: "x", Params: stages.Params{"v": c.Value}}
		pb, err := requestToPB("k", req)
		if err != nil {
			t.Errorf("%s: %v", c.Name, err)
			continue
		}
		if want := `{"v":` + c.JSON + `}`; pb.GetParamsJson() != want {
			t.Errorf("%s: params cross as %s, want %s", c.Name, pb.GetParamsJson(), want)
		}
		back, err := requestFromPB(pb)
		if err != nil || !valuetest.Same(map[string]any(back.Params), map[string]any{"v": c.Value}) {
			t.Errorf("%s: params came back as %#v, %v; want %#v", c.Name, back.Params, err, c.Value)
		}
		if c.Value == nil {
			continue // a nil default means "no default"
		}
		d := stages.Description{Kind: "k", Params: []stages.ParamSpec{{Name: "p", Type: stages.TypeAny, Default: c.Value}}}
		dpb, err := descriptionToPB(d)
		if err != nil {
			t.Errorf("%s: default: %v", c.Name, err)
			continue
		}
		dback, err := descriptionFromPB(dpb)
		if err != nil || !valuetest.Same(dback.Params[0].Default, c.Value) {
			t.Errorf("%s: default came back as %#v, %v; want %#v", c.Name, dback.Params[0].Default, err, c.Value)
		}
	}
}

// Go-typed defaults arrive in plain form.
func TestWireDefaultsArrivePlain(t *testing.T) {
	d := stages.Description{Kind: "k", Params: []stages.ParamSpec{
		{Name: "rois", Default: []string{"V1v", "FFA-1"}},
		{Name: "alphas", Default: []float64{0.1, 3}},
		{Name: "n", Default: 7},
	}}
	pb, err := descriptionToPB(d)
	if err != nil {
		t.Fatal(err)
	}
	back, err := descriptionFromPB(pb)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []any{[]any{"V1v", "FFA-1"}, []any{0.1, 3.0}, int64(7)} {
		if got := back.Params[i].Default; !valuetest.Same(got, want) {
			t.Errorf("default %s = %#v, want %#v", d.Params[i].Name, got, want)
		}
	}
}

func TestWireRefusesNonPlainValues(t *testing.T) {
	for _, c := range valuetest.Bads() {
		_, err := requestToPB("k", &stages.Request{Instance: "x", Params: c.Value.(map[string]any)})
		if err == nil || !strings.Contains(err.Error(), c.Path+":") {
			t.Errorf("%s: want an error naming %s, got %v", c.Name, c.Path, err)
		}
	}
	bad := &pluginpb.RunRequest{Instance: "x", ParamsJson: `{"n": 1e999}`}
	if _, err := requestFromPB(bad); err == nil || !strings.Contains(err.Error(), "$.n") {
		t.Errorf("params beyond float64 decoded: %v", err)
	}
}
