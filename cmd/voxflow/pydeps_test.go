package main

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// pyPackages maps a Python module the tests import to the Debian package
// that installs it for /usr/bin/python3. The longest dotted prefix of an
// import wins (google.protobuf before google).
func pyPackages() map[string]string {
	return map[string]string{
		"numpy":           "python3-numpy",
		"PIL":             "python3-pil",
		"torch":           "python3-torch",
		"torchvision":     "python3-torchvision",
		"sklearn":         "python3-sklearn",
		"scipy":           "python3-scipy",
		"grpc":            "python3-grpcio",
		"google.protobuf": "python3-protobuf",
		"grpc_tools":      "python3-grpc-tools",
	}
}

var (
	pyImport     = regexp.MustCompile(`^\s*import\s+([A-Za-z_][\w.]*(?:\s+as\s+\w+)?(?:\s*,\s*[A-Za-z_][\w.]*(?:\s+as\s+\w+)?)*)\s*(?:#.*)?$`)
	pyFromImport = regexp.MustCompile(`^\s*from\s+([A-Za-z_][\w.]*)\s+import\s`)
	depsList     = regexp.MustCompile(`(?s)pkgs=\(([^)]*)\)`)
)

// pyUse is one Python import found in the repository.
type pyUse struct {
	module string // as imported, e.g. torch.nn.functional
	where  string // file:line
}

// pythonImports returns the modules imported by Python source text, one
// statement per line or per ';'.
func pythonImports(src, file string, line int) []pyUse {
	var out []pyUse
	for i, l := range strings.Split(src, "\n") {
		for _, stmt := range strings.Split(l, ";") {
			where := fmt.Sprintf("%s:%d", file, line+i)
			if m := pyFromImport.FindStringSubmatch(stmt); m != nil {
				if !strings.HasPrefix(m[1], ".") {
					out = append(out, pyUse{m[1], where})
				}
				continue
			}
			if m := pyImport.FindStringSubmatch(stmt); m != nil {
				for _, part := range strings.Split(m[1], ",") {
					out = append(out, pyUse{strings.Fields(part)[0], where})
				}
			}
		}
	}
	return out
}

// goTestPython returns the Python imports in the string literals of a Go
// test file that runs python (a script or `-c` snippets).
func goTestPython(path string) ([]pyUse, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if !strings.Contains(string(src), "python") {
		return nil, nil
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	var out []pyUse
	ast.Inspect(f, func(n ast.Node) bool {
		lit, ok := n.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return true
		}
		s, err := strconv.Unquote(lit.Value)
		if err != nil {
			return true
		}
		out = append(out, pythonImports(s, path, fset.Position(lit.Pos()).Line)...)
		return true
	})
	return out, nil
}

// TestPythonModulesOfTestsAreInstalledByDeps finds every Python module
// that the tests' Python code imports (scripts under the repository and
// snippets in Go tests) and checks that .ci/deps.sh installs its Debian
// package, then imports them all with /usr/bin/python3: a test that needs
// PIL must not pass only because the developer's machine had it.
func TestPythonModulesOfTestsAreInstalledByDeps(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	deps, err := os.ReadFile(filepath.Join(root, ".ci", "deps.sh"))
	if err != nil {
		t.Fatal(err)
	}
	m := depsList.FindSubmatch(deps)
	if m == nil {
		t.Fatal(".ci/deps.sh: no pkgs=( ... ) list of Debian packages")
	}
	installed := map[string]bool{}
	for _, p := range strings.Fields(string(m[1])) {
		installed[p] = true
	}
	const python = "/usr/bin/python3"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, "-c", `import sys; print("\n".join(sorted(sys.stdlib_module_names)))`).Output()
	if err != nil {
		t.Fatalf("%s: %v (.ci/deps.sh installs Debian's python3 with its numpy etc.)", python, err)
	}
	stdlib := map[string]bool{}
	for _, s := range strings.Fields(string(out)) {
		stdlib[s] = true
	}

	var uses []pyUse
	// Modules the repository holds itself (torch_ref.py beside the script
	// that imports it, the plugins/python/voxflow_plugin package) need no
	// Debian package.
	local := map[string]bool{}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); p != root && (strings.HasPrefix(name, ".") || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		switch {
		case strings.HasSuffix(p, "_test.go"):
			u, err := goTestPython(p)
			uses = append(uses, u...)
			return err
		case strings.HasSuffix(p, ".py"):
			local[strings.TrimSuffix(d.Name(), ".py")] = true
			if d.Name() == "__init__.py" {
				local[filepath.Base(filepath.Dir(p))] = true
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			uses = append(uses, pythonImports(string(b), p, 1)...)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(uses) == 0 {
		t.Fatal("found no Python imports at all; the scan is broken (stages/ridge/testdata/*.py import numpy)")
	}
	for _, u := range uses {
		// Report places relative to the repository.
		file, line, _ := strings.Cut(u.where, ":")
		if rel, err := filepath.Rel(root, file); err == nil {
			u.where = rel + ":" + line
		}
	}
	toImport, problems := checkPyDeps(uses, installed, stdlib, local)
	for _, p := range problems {
		t.Error(p)
	}
	mods := make([]string, 0, len(toImport))
	for mod := range toImport {
		mods = append(mods, mod)
	}
	sort.Strings(mods)
	// One interpreter imports them all; a failure names the module.
	script := "import importlib, sys\nfor m in sys.argv[1:]:\n    try:\n        importlib.import_module(m)\n    except Exception as e:\n        print('%s: %s' % (m, e))\n"
	out, err = exec.CommandContext(ctx, python, append([]string{"-c", script}, mods...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s importing %v: %v\n%s", python, mods, err, out)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l == "" {
			continue
		}
		mod, _, _ := strings.Cut(l, ":")
		t.Errorf("%s cannot import %s (used at %s): %s; run .ci/deps.sh", python, mod, toImport[mod], l)
	}
	t.Logf("%d Python imports; third-party modules imported: %s", len(uses), strings.Join(mods, " "))
}

// checkPyDeps maps each import to its Debian package and returns the
// third-party modules to import (with a place that uses each) and one
// problem per import whose package deps.sh lacks or that the table does
// not know.
func checkPyDeps(uses []pyUse, installed, stdlib, local map[string]bool) (toImport map[string]string, problems []string) {
	pkgs := pyPackages()
	toImport = map[string]string{}
	for _, u := range uses {
		top, _, _ := strings.Cut(u.module, ".")
		if stdlib[top] || local[top] {
			continue
		}
		pkg := ""
		for name := u.module; name != ""; {
			if p, ok := pkgs[name]; ok {
				pkg = p
				break
			}
			i := strings.LastIndex(name, ".")
			if i < 0 {
				break
			}
			name = name[:i]
		}
		switch {
		case pkg == "":
			problems = append(problems, fmt.Sprintf("%s imports Python module %q, which is neither in Python's standard library nor in the module -> Debian package table: "+
				"add it to pyPackages in cmd/voxflow/pydeps_test.go with the Debian package that provides it for /usr/bin/python3 (apt-cache search python3-%s), "+
				"and add that package to pkgs in .ci/deps.sh", u.where, u.module, strings.ToLower(top)))
			continue
		case !installed[pkg]:
			problems = append(problems, fmt.Sprintf("%s imports Python module %q from Debian package %s, which .ci/deps.sh does not install: add %s to pkgs in .ci/deps.sh",
				u.where, u.module, pkg, pkg))
		}
		if _, ok := toImport[u.module]; !ok {
			toImport[u.module] = u.where
		}
	}
	return toImport, problems
}

func TestCheckPyDepsNamesWhatToAdd(t *testing.T) {
	uses := []pyUse{{"PIL", "a_test.go:3"}, {"google.protobuf.internal", "b.py:1"}, {"json", "c.py:2"}, {"torch_ref", "d.py:5"}, {"yaml", "e.py:9"}}
	installed := map[string]bool{"python3-protobuf": true}
	_, problems := checkPyDeps(uses, installed, map[string]bool{"json": true}, map[string]bool{"torch_ref": true})
	if len(problems) != 2 {
		t.Fatalf("want 2 problems (PIL's package not installed, yaml unknown), got %q", problems)
	}
	if !strings.Contains(problems[0], "a_test.go:3") || !strings.Contains(problems[0], "add python3-pil to pkgs in .ci/deps.sh") {
		t.Errorf("missing package: %s", problems[0])
	}
	if !strings.Contains(problems[1], `"yaml"`) || !strings.Contains(problems[1], "add it to pyPackages") {
		t.Errorf("unknown module: %s", problems[1])
	}
}

func TestPythonImportsParsesSnippets(t *testing.T) {
	got := pythonImports("import numpy as np, torch, torch.nn.functional as F\nfrom PIL import Image; import sys\n# import nothing\nx = 'import'\nfrom . import local", "f.py", 1)
	var mods []string
	for _, u := range got {
		mods = append(mods, u.module)
	}
	want := "numpy torch torch.nn.functional PIL sys"
	if strings.Join(mods, " ") != want {
		t.Fatalf("got %v, want %s", mods, want)
	}
}
