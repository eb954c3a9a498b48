package python_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/voxflow/voxflow/plugins"
	"github.com/voxflow/voxflow/stages"
	"github.com/voxflow/voxflow/stages/builtin"
)

// TestTorchKindsDeclareTheGoSchema: every param, input and output of the
// Go kinds that voxflow-torch serves is declared by the plugin with the
// same type, default, bounds and choices, so a spec moves a stage between
// the two with its `uses:` line alone. The plugin may add params of its
// own (device, amp, channels_last).
func TestTorchKindsDeclareTheGoSchema(t *testing.T) {
	c, err := plugins.Open(context.Background(), "voxflow-torch")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	goKinds := map[string]stages.Description{}
	for _, s := range builtin.Stages() {
		goKinds[s.Describe().Kind] = s.Describe()
	}
	served := 0
	for _, s := range c.Stages() {
		td := s.Describe()
		gd, ok := goKinds[td.Kind]
		if !ok {
			t.Errorf("voxflow-torch serves %s, which is no Go kind", td.Kind)
			continue
		}
		served++
		tp := map[string]stages.ParamSpec{}
		for _, p := range td.Params {
			tp[p.Name] = p
		}
		for _, gp := range gd.Params {
			p, ok := tp[gp.Name]
			if !ok {
				t.Errorf("%s: the plugin lacks param %s", td.Kind, gp.Name)
				continue
			}
			if p.Type != gp.Type || fmt.Sprint(p.Default) != fmt.Sprint(gp.Default) || p.Required != gp.Required ||
				!sameBound(p.Min, gp.Min) || !sameBound(p.Max, gp.Max) || !slices.Equal(p.Enum, gp.Enum) || !slices.Equal(p.NotPaths, gp.NotPaths) {
				t.Errorf("%s param %s: plugin {%s %v req=%v min=%v max=%v enum=%v notpaths=%v}, Go {%s %v req=%v min=%v max=%v enum=%v notpaths=%v}",
					td.Kind, gp.Name, p.Type, p.Default, p.Required, deref(p.Min), deref(p.Max), p.Enum, p.NotPaths,
					gp.Type, gp.Default, gp.Required, deref(gp.Min), deref(gp.Max), gp.Enum, gp.NotPaths)
			}
		}
		for _, ports := range [][2][]stages.PortSpec{{gd.Inputs, td.Inputs}, {gd.Outputs, td.Outputs}} {
			for _, gpt := range ports[0] {
				i := slices.IndexFunc(ports[1], func(p stages.PortSpec) bool { return p.Name == gpt.Name })
				if i < 0 || ports[1][i].Many != gpt.Many || ports[1][i].Optional != gpt.Optional {
					t.Errorf("%s: port %s differs or is missing in the plugin", td.Kind, gpt.Name)
				}
			}
		}
	}
	if served != 4 {
		t.Errorf("voxflow-torch serves %d of pretrain, tune-cl, tune-mse and features", served)
	}
}

func sameBound(a, b *float64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}
