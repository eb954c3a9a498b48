// Package implgen computes the implementation identities of voxflow's
// builtin stage kinds from their source code, so that a cache key changes
// when the code that produced a result changes, without anyone having to
// remember a version bump.
//
// A kind's *source digest* is the BLAKE3 of every file that is compiled
// into its package and into the packages it imports from the same module
// (or from a module replaced by a local directory), transitively: non-test
// Go, C, C++, header, assembly and syso files, files excluded by build
// constraints on this platform (so the digest is the same on every
// platform), and the files the packages embed. Modules fetched at a version
// enter as "path@version" with their go.sum hash, so upgrading a dependency
// the kind links changes its digest and upgrading one it does not link
// leaves it alone. Paths are relative to the module root, so the digest is
// the same on every machine.
//
// A kind's *identity*, the digest that goes into cache keys, is its source
// digest unless a change was declared output-neutral: a neutral.txt line
// "stages/ridge: OLD -> NEW: reason" says that code whose source digest is
// NEW computes exactly what code with digest OLD computed, so the identity
// of NEW is the identity of OLD (followed back through any earlier
// declarations). The generator appends such lines only when asked to
// (-neutral KIND -reason TEXT), so a refactor keeps every cached result and
// leaves a reviewed, dated record of why; any other change gets a new
// identity and the kind's results are recomputed.
package implgen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/zeebo/blake3"
)

// File names inside the builtin package's directory.
const (
	// GeneratedFile holds the recorded digests, written by the generator.
	GeneratedFile = "impl_gen.go"
	// NeutralFile lists the changes declared output-neutral, one a line.
	NeutralFile = "neutral.txt"
)

// Entry is what the generated file records for one builtin kind's package.
type Entry struct {
	Package  string // import path of the package that implements the kind
	Source   string // hex BLAKE3 of the package's source closure
	Identity string // hex digest used in cache keys
}

// Neutral is one change declared output-neutral: code with source digest
// To computes what code with source digest From computed.
type Neutral struct {
	Package string // module-relative directory, e.g. "stages/ridge"
	From    string
	To      string
	Reason  string
}

// String formats n as its neutral.txt line.
func (n Neutral) String() string {
	return fmt.Sprintf("%s: %s -> %s: %s", n.Package, n.From, n.To, n.Reason)
}

var neutralLine = regexp.MustCompile(`^([^\s:]+): ([0-9a-f]{64}) -> ([0-9a-f]{64}): (\S.*)$`)

// ParseNeutral reads neutral.txt: blank lines and lines starting with '#'
// are skipped; every other line is "PKGDIR: FROM -> TO: reason". name is
// used in error messages.
func ParseNeutral(r io.Reader, name string) ([]Neutral, error) {
	var out []Neutral
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := neutralLine.FindStringSubmatch(line)
		if m == nil {
			return nil, fmt.Errorf("%s:%d: want \"PKGDIR: FROM -> TO: reason\" with 64-hex digests, got %q", name, n, line)
		}
		out = append(out, Neutral{Package: m[1], From: m[2], To: m[3], Reason: m[4]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

// readNeutral reads dir/neutral.txt; a missing file declares nothing.
func readNeutral(dir string) ([]Neutral, error) {
	p := filepath.Join(dir, NeutralFile)
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("neutral declarations: %w", err)
	}
	defer f.Close()
	return ParseNeutral(f, p)
}

// IdentityOf returns the identity of code with source digest source in the
// package at module-relative dir pkgDir: the source digest itself, or,
// where a neutral declaration leads to it, the identity of the code it was
// declared equivalent to. A later declaration overrides an earlier one with
// the same To; cycles stop at the first digest seen twice.
func IdentityOf(pkgDir, source string, neutral []Neutral) string {
	cur := source
	seen := map[string]bool{cur: true}
	for {
		next := ""
		for _, n := range neutral {
			if n.Package == pkgDir && n.To == cur {
				next = n.From
			}
		}
		if next == "" || seen[next] {
			return cur
		}
		seen[next] = true
		cur = next
	}
}

// listPackage is the part of `go list -json` output the digests need.
type listPackage struct {
	ImportPath string
	Name       string
	Dir        string
	Standard   bool
	Module     *listModule
	Deps       []string
	Error      *struct{ Err string }

	GoFiles, CgoFiles, CFiles, CXXFiles, MFiles, HFiles, FFiles, SFiles []string
	SwigFiles, SwigCXXFiles, SysoFiles, EmbedFiles                      []string
	IgnoredGoFiles, IgnoredOtherFiles                                   []string
}

type listModule struct {
	Path    string
	Version string
	Dir     string
	Main    bool
	Replace *listModule
}

// closure is the code of one root package as the digest sees it.
type closure struct {
	files   []srcFile // sorted by name
	modules []string  // "path@version h1:..." for versioned dependencies
}

// srcFile is one file of a closure.
type srcFile struct {
	name string // "<module path>/<slash path within the module>"
	abs  string
}

// goList runs `go list -deps -json` on the roots from dir with a pinned
// build configuration, so that the digest does not depend on the caller's
// GOFLAGS, GOOS or CGO_ENABLED.
func goList(ctx context.Context, dir string, roots []string) (map[string]*listPackage, error) {
	args := append([]string{"list", "-deps", "-json"}, roots...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=readonly", "GOWORK=off", "GOOS=linux", "GOARCH=amd64", "CGO_ENABLED=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list -deps -json %s (in %s): %w\n%s", strings.Join(roots, " "), dir, err, stderr.Bytes())
	}
	pkgs := map[string]*listPackage{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("go list output: %w", err)
		}
		if p.Error != nil {
			return nil, fmt.Errorf("go list: package %s: %s", p.ImportPath, p.Error.Err)
		}
		pkgs[p.ImportPath] = &p
	}
	return pkgs, nil
}

// sourceFiles returns a package's non-test source and embedded files,
// including those build constraints exclude on this platform.
func (p *listPackage) sourceFiles() []string {
	var names []string
	for _, l := range [][]string{p.GoFiles, p.CgoFiles, p.CFiles, p.CXXFiles, p.MFiles, p.HFiles, p.FFiles, p.SFiles,
		p.SwigFiles, p.SwigCXXFiles, p.SysoFiles, p.EmbedFiles, p.IgnoredGoFiles, p.IgnoredOtherFiles} {
		for _, n := range l {
			if !strings.HasSuffix(n, "_test.go") {
				names = append(names, n)
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// goSum maps "path version" to its go.sum hash for the module at modDir.
func goSum(modDir string) (map[string]string, error) {
	b, err := os.ReadFile(filepath.Join(modDir, "go.sum"))
	if errors.Is(err, os.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dependency versions: %w", err)
	}
	sums := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && !strings.HasSuffix(f[1], "/go.mod") {
			sums[f[0]+" "+f[1]] = f[2]
		}
	}
	return sums, nil
}

// Sources computes the source digest of each root package (import paths),
// running `go list` in dir. It returns import path -> hex digest and the
// path of the main module the roots belong to.
func Sources(ctx context.Context, dir string, roots []string) (map[string]string, string, error) {
	pkgs, err := goList(ctx, dir, roots)
	if err != nil {
		return nil, "", err
	}
	var main *listModule
	for _, r := range roots {
		if p := pkgs[r]; p != nil && p.Module != nil && p.Module.Main {
			main = p.Module
		} else {
			return nil, "", fmt.Errorf("go list in %s: %s is not in the main module; builtin kinds must be", dir, r)
		}
	}
	sums, err := goSum(main.Dir)
	if err != nil {
		return nil, "", err
	}
	out := map[string]string{}
	for _, r := range roots {
		c, err := collect(pkgs[r], pkgs, sums)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", r, err)
		}
		d, err := c.digest()
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", r, err)
		}
		out[r] = d
	}
	return out, main.Path, nil
}

// collect gathers the files and module versions root's code depends on.
func collect(root *listPackage, pkgs map[string]*listPackage, sums map[string]string) (*closure, error) {
	c := &closure{}
	mods := map[string]bool{}
	for _, ip := range append([]string{root.ImportPath}, root.Deps...) {
		p := pkgs[ip]
		if p == nil {
			return nil, fmt.Errorf("go list lists %s as a dependency but not the package itself", ip)
		}
		if p.Standard || p.Module == nil {
			continue // the toolchain is not part of the digest
		}
		m := p.Module
		if m.Replace != nil {
			m = m.Replace
		}
		if !p.Module.Main && m.Version != "" {
			mods[m.Path+"@"+m.Version+" "+sums[m.Path+" "+m.Version]] = true
			continue
		}
		// The main module, or a module replaced by a local directory: its
		// code is hashed like the kind's own.
		modDir := m.Dir
		if modDir == "" {
			modDir = p.Module.Dir
		}
		for _, name := range p.sourceFiles() {
			abs := filepath.Join(p.Dir, name)
			rel, err := filepath.Rel(modDir, abs)
			if err != nil || strings.HasPrefix(rel, "..") {
				return nil, fmt.Errorf("package %s: file %s lies outside its module %s", ip, abs, modDir)
			}
			c.files = append(c.files, srcFile{name: path.Join(p.Module.Path, filepath.ToSlash(rel)), abs: abs})
		}
	}
	for m := range mods {
		c.modules = append(c.modules, m)
	}
	sort.Strings(c.modules)
	sort.Slice(c.files, func(a, b int) bool { return c.files[a].name < c.files[b].name })
	return c, nil
}

// digest hashes the closure: a versioned header, then each file's path,
// length and bytes, then each module version, all length-framed so that no
// two different closures hash the same stream.
func (c *closure) digest() (string, error) {
	h := blake3.New()
	fmt.Fprintf(h, "voxflow implementation digest v1\n")
	for _, f := range c.files {
		b, err := os.ReadFile(f.abs)
		if err != nil {
			return "", fmt.Errorf("hashing sources: %w", err)
		}
		fmt.Fprintf(h, "file %q %d\n", f.name, len(b))
		h.Write(b)
	}
	for _, m := range c.modules {
		fmt.Fprintf(h, "module %q\n", m)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Roots finds the packages whose New() the function Stages in the Go
// package at dir calls: the packages implementing the builtin kinds. It
// also returns the name of that Go package.
func Roots(dir string) (roots []string, pkgName string, err error) {
	fset := token.NewFileSet()
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, "", fmt.Errorf("builtin package: %w", err)
	}
	for _, e := range ents {
		n := e.Name()
		if !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") || n == GeneratedFile {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, n), nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, "", fmt.Errorf("builtin package: %w", err)
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Recv != nil || fd.Name.Name != "Stages" || fd.Body == nil {
				continue
			}
			roots, err := stagesCalls(fset, f, fd)
			return roots, f.Name.Name, err
		}
	}
	return nil, "", fmt.Errorf("builtin package %s: no func Stages lists the builtin kinds", dir)
}

// stagesCalls resolves every PKG.New call in fd to PKG's import path.
func stagesCalls(fset *token.FileSet, f *ast.File, fd *ast.FuncDecl) ([]string, error) {
	imports := map[string]string{}
	for _, im := range f.Imports {
		p, _ := strconv.Unquote(im.Path.Value)
		name := path.Base(p)
		if im.Name != nil {
			name = im.Name.Name
		}
		imports[name] = p
	}
	var roots []string
	var bad error
	ast.Inspect(fd.Body, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok || sel.Sel.Name != "New" {
			return true
		}
		id, ok := sel.X.(*ast.Ident)
		if !ok {
			return true
		}
		p, ok := imports[id.Name]
		if !ok {
			bad = fmt.Errorf("%s: %s.New: no import named %s", fset.Position(call.Pos()), id.Name, id.Name)
			return false
		}
		roots = append(roots, p)
		return true
	})
	if bad != nil {
		return nil, bad
	}
	if len(roots) == 0 {
		return nil, fmt.Errorf("%s: func Stages calls no PKG.New()", fset.Position(fd.Pos()))
	}
	slices.Sort(roots)
	return slices.Compact(roots), nil
}

// Recorded reads the entries recorded in a generated file's source.
func Recorded(src []byte, name string) ([]Entry, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	var out []Entry
	var bad error
	ast.Inspect(f, func(n ast.Node) bool {
		kv, ok := n.(*ast.KeyValueExpr)
		if !ok || bad != nil {
			return bad == nil
		}
		lit, ok := kv.Key.(*ast.BasicLit)
		val, ok2 := kv.Value.(*ast.CompositeLit)
		if !ok || !ok2 || lit.Kind != token.STRING {
			return true
		}
		e := Entry{}
		e.Package, _ = strconv.Unquote(lit.Value)
		for _, el := range val.Elts {
			field, ok := el.(*ast.KeyValueExpr)
			if !ok {
				continue
			}
			k, _ := field.Key.(*ast.Ident)
			v, _ := field.Value.(*ast.BasicLit)
			if k == nil || v == nil {
				continue
			}
			s, _ := strconv.Unquote(v.Value)
			switch k.Name {
			case "source":
				e.Source = s
			case "identity":
				e.Identity = s
			}
		}
		if e.Source == "" || e.Identity == "" {
			bad = fmt.Errorf("%s: entry %q: want both source and identity digests", fset.Position(kv.Pos()), e.Package)
			return false
		}
		out = append(out, e)
		return false
	})
	return out, bad
}

// Result is one generator run's view of the builtin package at a dir.
type Result struct {
	Module   string  // the main module's path
	Entries  []Entry // current digests, sorted by package
	Neutral  []Neutral
	Recorded []Entry // what the generated file on disk records (nil if none)
	Source   []byte  // the generated file as it should read now
}

// Stale lists the packages whose recorded entry differs from the current
// one (missing, changed source or changed identity), and any recorded
// package that no longer implements a kind.
func (r *Result) Stale() []string {
	rec := map[string]Entry{}
	for _, e := range r.Recorded {
		rec[e.Package] = e
	}
	var out []string
	for _, e := range r.Entries {
		if rec[e.Package] != e {
			out = append(out, r.Rel(e.Package))
		}
		delete(rec, e.Package)
	}
	for p := range rec {
		out = append(out, r.Rel(p)+" (no longer a builtin kind)")
	}
	sort.Strings(out)
	return out
}

// Rel returns an import path relative to the module, e.g. "stages/ridge".
func (r *Result) Rel(importPath string) string {
	if s, ok := strings.CutPrefix(importPath, r.Module+"/"); ok {
		return s
	}
	return importPath
}

// Generate computes the digests of the builtin kinds listed by the Go
// package at dir and renders the generated file, without writing anything.
func Generate(ctx context.Context, dir string) (*Result, error) {
	roots, pkgName, err := Roots(dir)
	if err != nil {
		return nil, err
	}
	sources, mod, err := Sources(ctx, dir, roots)
	if err != nil {
		return nil, err
	}
	neutral, err := readNeutral(dir)
	if err != nil {
		return nil, err
	}
	r := &Result{Module: mod, Neutral: neutral}
	for _, p := range roots {
		r.Entries = append(r.Entries, Entry{Package: p, Source: sources[p], Identity: IdentityOf(r.Rel(p), sources[p], neutral)})
	}
	if r.Source, err = render(pkgName, r.Entries); err != nil {
		return nil, err
	}
	if old, err := os.ReadFile(filepath.Join(dir, GeneratedFile)); err == nil {
		if r.Recorded, err = Recorded(old, filepath.Join(dir, GeneratedFile)); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("recorded digests: %w", err)
	}
	return r, nil
}

// header explains the file to whoever opens it; it is the design in brief.
const header = `// Code generated by "go generate ./stages/builtin" (internal/implgen); DO NOT EDIT.

// Implementation identities of the builtin stage kinds.
//
// A builtin kind's implementation string in cache keys is
// "builtin:<kind>:<stage version>:<identity>". source is the BLAKE3 of the
// kind package's code and of every package of this module it imports,
// transitively (non-test .go, .c, .h, .s files and embedded files), plus the
// versions and go.sum hashes of the dependency modules it links. identity is
// that digest, unless a change was declared output-neutral in neutral.txt,
// in which case it stays what it was before the change.
//
//   - Change a kind's code and forget to regenerate: TestImplDigestsAreCurrent
//     (make test) fails: "run go generate ./stages/builtin".
//   - Regenerate (make generate) after a change that can alter outputs: the
//     identity becomes the new source digest, every cached result of the kind
//     is recomputed and plan says "implementation changed: <kind>".
//   - A change that cannot alter outputs (a refactor, comments, a moved
//     file), from the repository root:
//     go run ./internal/implgen/cmd/implgen -dir stages/builtin -neutral ridge -reason "why"
//     appends "stages/ridge: OLD -> NEW: why" to neutral.txt and keeps the
//     old identity, so cached results stay valid and the declaration is
//     reviewed with the change.
`

// render writes the generated file for entries.
func render(pkgName string, entries []Entry) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(header)
	fmt.Fprintf(&b, "\npackage %s\n\n", pkgName)
	b.WriteString("// identities maps each builtin kind's package to its digests.\n")
	b.WriteString("func identities() map[string]identity {\n\treturn map[string]identity{\n")
	for _, e := range entries {
		fmt.Fprintf(&b, "\t\t%q: {source: %q, identity: %q},\n", e.Package, e.Source, e.Identity)
	}
	b.WriteString("\t}\n}\n")
	src, err := format.Source(b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("generated file does not format: %w", err)
	}
	return src, nil
}

// Declare appends a neutral declaration to dir/neutral.txt for each package
// named in pkgs (a module-relative directory such as "stages/ridge", its
// last element "ridge", a kind name such as "tune-cl" whose package is
// tunecl, or "all" for every package whose code changed) from its recorded
// source digest to its current one. It refuses a package whose code did not
// change or that has no recorded digest (a new kind has nothing to keep).
func Declare(r *Result, dir string, pkgs []string, reason string) ([]Neutral, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" || strings.ContainsAny(reason, "\r\n") {
		return nil, errors.New("-reason: want one line saying why the change cannot alter outputs")
	}
	rec := map[string]Entry{}
	for _, e := range r.Recorded {
		rec[e.Package] = e
	}
	var decl []Neutral
	for _, name := range pkgs {
		matched := false
		for _, e := range r.Entries {
			rel := r.Rel(e.Package)
			if name != "all" && name != rel && name != path.Base(rel) && strings.ReplaceAll(name, "-", "") != path.Base(rel) {
				continue
			}
			matched = true
			old, ok := rec[e.Package]
			switch {
			case !ok:
				if name != "all" {
					return nil, fmt.Errorf("-neutral %s: %s has no recorded digest to keep (a new kind); run the generator without -neutral", name, rel)
				}
			case old.Source == e.Source:
				if name != "all" {
					return nil, fmt.Errorf("-neutral %s: the code of %s has not changed since the digests were recorded", name, rel)
				}
			default:
				decl = append(decl, Neutral{Package: rel, From: old.Source, To: e.Source, Reason: reason})
			}
		}
		if !matched {
			return nil, fmt.Errorf("-neutral %s: no builtin kind's package is called that", name)
		}
	}
	if len(decl) == 0 {
		return nil, errors.New("-neutral: no package named has changed code; nothing to declare")
	}
	p := filepath.Join(dir, NeutralFile)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("neutral declarations: %w", err)
	}
	var b strings.Builder
	if st, err := f.Stat(); err == nil && st.Size() == 0 {
		b.WriteString(neutralHeader)
	}
	for _, n := range decl {
		b.WriteString(n.String() + "\n")
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return nil, fmt.Errorf("neutral declarations: %s: %w", p, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("neutral declarations: %s: %w", p, err)
	}
	return decl, nil
}

// neutralHeader starts a new neutral.txt.
const neutralHeader = `# Changes declared output-neutral: code with source digest NEW computes what
# code with digest OLD computed, so the kind keeps OLD's identity and its
# cached results. Written by the implgen -neutral flag; see impl_gen.go.
# PKGDIR: OLD -> NEW: reason
`
