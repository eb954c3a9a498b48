package engine

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voxflow/voxflow/cache"
	"github.com/voxflow/voxflow/engine/spec"
	"github.com/voxflow/voxflow/stages"
)

// readerStage declares the three shapes of path param: a directory, a file
// that may be the word "random", and a list of globs.
type readerStage struct{}

func (readerStage) Describe() stages.Description {
	return stages.Description{
		Kind: "reader", Version: "1", Isolate: "inline",
		Params: []stages.ParamSpec{
			{Name: "root", Type: stages.TypePath, Default: ""},
			{Name: "init", Type: stages.TypePath, Default: "random", NotPaths: []string{"random"}},
			{Name: "files", Type: stages.TypePaths, Default: []any{}},
		},
		Outputs: []stages.PortSpec{{Name: "out"}},
	}
}

func (readerStage) Run(ctx context.Context, req *stages.Request) error {
	return os.WriteFile(filepath.Join(req.OutDir, "out"), []byte(req.Params.String("root")), 0o644)
}

// TestPathParamsKeyedByContent checks at the engine level what the CLI
// test checks end to end: path params resolve against the spec's
// directory, their content is in the key, words such as "random" are not
// fingerprinted, and plan names the file that changed.
func TestPathParamsKeyedByContent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	write := func(rel, content string) {
		t.Helper()
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("data/a.npy", "a")
	write("data/sub/b.npy", "b")
	write("conf/x.cfg", "x")
	specPath := filepath.Join(dir, "reader.yaml")
	write("reader.yaml", "name: reader\nparams: {init: random}\nstages:\n  s:\n    uses: reader\n    with: {root: data, init: '${params.init}', files: ['conf/*.cfg', missing.txt]}\n")
	store, err := cache.Open(ctx, filepath.Join(dir, ".voxflow"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	reg := NewRegistry([]stages.Stage{readerStage{}}, nil)
	load := func(sets ...string) *Project {
		t.Helper()
		p, err := Load(ctx, reg, specPath, spec.Options{Sets: sets})
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		return p
	}
	p := load()
	inst := p.Graph.Instances[0]
	if got := inst.Params.String("root"); got != filepath.Join(dir, "data") {
		t.Fatalf("root %q: want it absolute against the spec's directory", got)
	}
	files, err := fingerprintParams(ctx, store, newPathMemo(), p.Kinds["s"], inst.Params, false)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, f.Param+"="+strings.TrimPrefix(f.Path, dir)+":"+f.Manifest.Type)
	}
	if strings.Join(got, " ") != "root=/data:dir files=/conf/x.cfg:file files=/missing.txt:missing" {
		t.Fatalf("fingerprinted %v; want root, the glob's match and the missing file, not init=random", got)
	}

	run := func(p *Project) *RunResult {
		t.Helper()
		res, err := (&Runner{Store: store, Display: discardDisplay{}}).Run(ctx, p, RunOptions{Jobs: 1, SpecPath: specPath})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	plan := func(p *Project) PlanItem {
		t.Helper()
		items, err := Plan(ctx, store, p, nil)
		if err != nil {
			t.Fatal(err)
		}
		return items[0]
	}
	if res := run(p); res.Executed != 1 {
		t.Fatalf("first run: %+v", res)
	}
	if it := plan(load()); it.Action != ActionCached {
		t.Fatalf("unchanged: %+v", it)
	}
	write("data/sub/b.npy", "B")
	if it := plan(load()); it.Action != ActionRun || strings.Join(it.Reasons, "; ") != "input file changed: sub/b.npy" {
		t.Fatalf("after an edit: %+v", it)
	}
	if res := run(load()); res.Executed != 1 {
		t.Fatalf("run after an edit: %+v", res)
	}
	// A weights file for init: keyed by content from then on.
	write("w.bin", "w1")
	if res := run(load("params.init=w.bin")); res.Executed != 1 {
		t.Fatalf("run with init w.bin: %+v", res)
	}
	write("w.bin", "w2")
	if it := plan(load("params.init=w.bin")); it.Action != ActionRun || strings.Join(it.Reasons, "; ") != "input file changed: "+filepath.Join(dir, "w.bin") {
		t.Fatalf("after replacing w.bin: %+v", it)
	}
	write("missing.txt", "now here")
	if it := plan(load("params.init=w.bin")); it.Action != ActionRun || strings.Join(it.Reasons, "; ") != "input file added: "+filepath.Join(dir, "missing.txt")+"; input file changed: "+filepath.Join(dir, "w.bin") {
		t.Fatalf("after creating a declared file: %+v", it)
	}
}
