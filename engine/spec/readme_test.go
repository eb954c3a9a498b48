package spec

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/voxflow/voxflow/stages"
	"github.com/voxflow/voxflow/stages/command"
)

// readmeSpecs returns the complete specs (```yaml blocks starting with
// "name:") of specs/README.md.
func readmeSpecs(t testing.TB) []string {
	data, err := os.ReadFile(filepath.Join("..", "..", "specs", "README.md"))
	if err != nil {
		t.Fatalf("read specs/README.md: %v", err)
	}
	var out []string
	for _, m := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(data), -1) {
		if strings.HasPrefix(m[1], "name:") {
			out = append(out, m[1])
		}
	}
	return out
}

// readmeKinds is the real command kind plus a stand-in for the README's
// plugin example.
func readmeKinds() Kinds {
	return KindsOf(command.New().Describe(), stages.Description{
		Kind:   "pca",
		Params: []stages.ParamSpec{{Name: "components", Type: stages.TypeInt, Required: true}},
	})
}

// TestReadmeExamples keeps the language documentation honest: every
// complete example validates, and every example made only of command
// stages runs, in topological order, with the real command kind.
func TestReadmeExamples(t *testing.T) {
	specs := readmeSpecs(t)
	if len(specs) < 5 {
		t.Fatalf("found %d complete examples in specs/README.md, want at least 5", len(specs))
	}
	for _, src := range specs {
		name := strings.TrimSpace(strings.SplitN(strings.TrimPrefix(src, "name:"), "\n", 2)[0])
		t.Run(name, func(t *testing.T) {
			s, err := Parse(name+".yaml", []byte(src), Options{})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			for v := range s.Variants {
				if vs, err := Parse(name+".yaml", []byte(src), Options{Variant: v}); err != nil {
					t.Errorf("variant %s: %v", v, err)
				} else if err := Validate(vs, readmeKinds()); err != nil {
					t.Errorf("variant %s: %v", v, err)
				}
			}
			g, err := Expand(s, readmeKinds())
			if err != nil {
				t.Fatalf("Expand: %v", err)
			}
			for _, st := range s.Stages {
				if st.Uses != "command" {
					return
				}
			}
			runGraph(t, g)
		})
	}
}

// runGraph executes every instance of g with the command kind, wiring
// artifacts the way the engine does.
func runGraph(t *testing.T, g *Graph) {
	t.Helper()
	root := t.TempDir()
	dirs := map[*Instance]string{}
	for i, inst := range g.Instances {
		out := filepath.Join(root, strings.NewReplacer("[", "_", "]", "", ",", "_").Replace(inst.ID))
		if err := os.MkdirAll(out, 0o755); err != nil {
			t.Fatal(err)
		}
		dirs[inst] = out
		inputs := map[string][]stages.Artifact{}
		for port, edges := range inst.Inputs {
			for _, e := range edges {
				p := dirs[e.From]
				if e.Output != "" {
					p = filepath.Join(p, e.Output)
				}
				inputs[port] = append(inputs[port], stages.Artifact{Path: p, Stage: e.From.Stage.Name, Output: e.Output, Labels: e.From.Labels})
			}
		}
		var log strings.Builder
		req := &stages.Request{
			Instance: inst.ID, Inputs: inputs, Params: inst.Params, Labels: inst.Labels,
			OutDir: out, Progress: stages.NopProgress{}, Log: &log,
		}
		if err := command.New().Run(context.Background(), req); err != nil {
			t.Fatalf("instance %d %s: %v\nlog:\n%s", i, inst.ID, err, log.String())
		}
	}
}
