package spec

import (
	"strings"
	"testing"

	"github.com/voxflow/voxflow/stages"
)

// TestPathParamsResolveAgainstSpecDir checks that path params become
// absolute against the spec's directory (whatever the working directory),
// that "" and NotPaths words stay as written, that list elements (globs
// included) resolve one by one, and that a non-string is refused as a
// string param would be.
func TestPathParamsResolveAgainstSpecDir(t *testing.T) {
	kinds := KindsOf(stages.Description{
		Kind: "reader", Version: "1",
		Params: []stages.ParamSpec{
			{Name: "root", Type: stages.TypePath, Default: ""},
			{Name: "init", Type: stages.TypePath, Default: "random", NotPaths: []string{"random"}},
			{Name: "files", Type: stages.TypePaths, Default: []any{}},
			{Name: "abs", Type: stages.TypePath, Default: "/data/../data/x"},
		},
	})
	src := "name: p\nstages:\n  r:\n    uses: reader\n    with: {root: data/nsd, files: ['conf/*.cfg', ../w.bin, '']}\n"
	s, err := Parse("/proj/specs/p.yaml", []byte(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	g, err := Expand(s, kinds)
	if err != nil {
		t.Fatal(err)
	}
	p := g.Instances[0].Params
	if got := p.String("root"); got != "/proj/specs/data/nsd" {
		t.Errorf("root %q, want /proj/specs/data/nsd", got)
	}
	if got := p.String("init"); got != "random" {
		t.Errorf("init %q, want the word random kept", got)
	}
	if got := p.String("abs"); got != "/data/x" {
		t.Errorf("abs %q, want /data/x (cleaned)", got)
	}
	if got := strings.Join(p.Strings("files"), ","); got != "/proj/specs/conf/*.cfg,/proj/w.bin," {
		t.Errorf("files %q", got)
	}

	bad, err := Parse("/proj/p.yaml", []byte("name: p\nstages:\n  r:\n    uses: reader\n    with: {root: 3, files: data}\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Expand(bad, kinds)
	if err == nil || !strings.Contains(err.Error(), `param "root": expected string, got`) || !strings.Contains(err.Error(), `param "files": expected []path (a list of paths)`) {
		t.Fatalf("bad path params: %v", err)
	}
}
