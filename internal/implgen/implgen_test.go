package implgen

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// writeModule lays out a small module: two kinds (a imports lib and embeds
// a file; b imports nothing), an unrelated package, and a builtin package
// whose Stages lists the kinds the way stages/builtin does.
func writeModule(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":          "module example.com/m\n\ngo 1.22\n",
		"lib/lib.go":      "package lib\n\n// Scale is used by kind a.\nfunc Scale(x int) int { return 2 * x }\n",
		"lib/lib_test.go": "package lib\n",
		"kinds/a/a.go": "package a\n\nimport (\n\t_ \"embed\"\n\n\t\"example.com/m/lib\"\n)\n\n//go:embed table.txt\nvar table string\n\n" +
			"// New returns the kind.\nfunc New() int { return lib.Scale(len(table)) }\n",
		"kinds/a/table.txt":  "1 2 3\n",
		"kinds/a/a_test.go":  "package a\n",
		"kinds/a/a_other.go": "//go:build windows\n\npackage a\n",
		"kinds/b/b.go":       "package b\n\n// New returns the kind.\nfunc New() int { return 1 }\n",
		"unrelated/u.go":     "package unrelated\n",
		"builtin/builtin.go": "package builtin\n\nimport (\n\t\"example.com/m/kinds/a\"\n\tkb \"example.com/m/kinds/b\"\n)\n\n" +
			"// Stages lists the kinds.\nfunc Stages() []int { return []int{a.New(), kb.New()} }\n",
	}
	for name, body := range files {
		write(t, filepath.Join(dir, name), body)
	}
	return dir
}

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func generate(t *testing.T, dir string) *Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := Generate(ctx, filepath.Join(dir, "builtin"))
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return r
}

// digests returns package -> entry for r.
func digests(r *Result) map[string]Entry {
	out := map[string]Entry{}
	for _, e := range r.Entries {
		out[strings.TrimPrefix(e.Package, "example.com/m/")] = e
	}
	return out
}

func TestSourceDigestFollowsTheKindsCode(t *testing.T) {
	dir := writeModule(t)
	base := digests(generate(t, dir))
	if len(base) != 2 || base["kinds/a"].Source == "" || base["kinds/b"].Source == "" || base["kinds/a"].Source == base["kinds/b"].Source {
		t.Fatalf("want distinct digests for kinds/a and kinds/b, got %+v", base)
	}
	if e := base["kinds/a"]; e.Identity != e.Source {
		t.Fatalf("without neutral declarations the identity is the source digest: %+v", e)
	}
	cases := []struct {
		file, body string
		changes    []string // kinds whose source digest must change
	}{
		{"lib/lib.go", "package lib\n\n// Scale is used by kind a.\nfunc Scale(x int) int { return 3 * x }\n", []string{"kinds/a"}},
		{"kinds/a/table.txt", "1 2 3 4\n", []string{"kinds/a"}},
		{"kinds/a/a_other.go", "//go:build windows\n\npackage a\n\nconst x = 1\n", []string{"kinds/a"}},
		{"kinds/b/b.go", "package b\n\n// New returns the kind.\nfunc New() int { return 2 }\n", []string{"kinds/b"}},
		{"kinds/b/extra.go", "package b\n", []string{"kinds/b"}},
		// Tests, unrelated packages and the builtin package itself are
		// not part of any kind's code.
		{"kinds/a/a_test.go", "package a\n\nfunc helper() {}\n", nil},
		{"lib/lib_test.go", "package lib\n\nfunc helper() {}\n", nil},
		{"unrelated/u.go", "package unrelated\n\nconst y = 2\n", nil},
		{"builtin/other.go", "package builtin\n", nil},
	}
	prev := base
	for _, c := range cases {
		write(t, filepath.Join(dir, c.file), c.body)
		got := digests(generate(t, dir))
		for _, k := range []string{"kinds/a", "kinds/b"} {
			changed := got[k].Source != prev[k].Source
			if want := slices.Contains(c.changes, k); changed != want {
				t.Errorf("after editing %s: %s digest changed = %v, want %v", c.file, k, changed, want)
			}
		}
		prev = got
	}
}

func TestNeutralDeclarationKeepsTheIdentity(t *testing.T) {
	dir := writeModule(t)
	bdir := filepath.Join(dir, "builtin")
	record := func(r *Result) {
		t.Helper()
		write(t, filepath.Join(bdir, GeneratedFile), string(r.Source))
	}
	r0 := generate(t, dir)
	if len(r0.Stale()) != 2 {
		t.Fatalf("nothing recorded yet, so both kinds are stale; got %v", r0.Stale())
	}
	record(r0)
	if s := generate(t, dir).Stale(); len(s) != 0 {
		t.Fatalf("just recorded, yet stale: %v", s)
	}
	orig := digests(r0)["kinds/a"]

	// A refactor of a: stale until regenerated or declared.
	write(t, filepath.Join(dir, "kinds/a/a.go"), strings.Replace(readFile(t, filepath.Join(dir, "kinds/a/a.go")), "// New returns the kind.", "// New returns kind a.", 1))
	r1 := generate(t, dir)
	if s := r1.Stale(); !slices.Equal(s, []string{"kinds/a"}) {
		t.Fatalf("after editing kinds/a, Stale = %v; want [kinds/a]", s)
	}
	if got := digests(r1)["kinds/a"]; got.Identity != got.Source || got.Identity == orig.Identity {
		t.Fatalf("regenerating without a declaration must give a new identity: %+v (was %+v)", got, orig)
	}
	if _, err := Declare(r1, bdir, []string{"b"}, "nothing changed"); err == nil || !strings.Contains(err.Error(), "has not changed") {
		t.Errorf("declaring an unchanged kind neutral: err = %v; want a refusal", err)
	}
	if _, err := Declare(r1, bdir, []string{"a"}, ""); err == nil {
		t.Error("a declaration without a reason was accepted")
	}
	if _, err := Declare(r1, bdir, []string{"nosuch"}, "why"); err == nil || !strings.Contains(err.Error(), "no builtin kind") {
		t.Errorf("declaring an unknown kind neutral: err = %v; want a refusal", err)
	}
	decl, err := Declare(r1, bdir, []string{"a"}, "doc comment only")
	if err != nil {
		t.Fatalf("Declare: %v", err)
	}
	if len(decl) != 1 || decl[0].From != orig.Source || decl[0].Package != "kinds/a" {
		t.Fatalf("declared %+v; want kinds/a from %s", decl, orig.Source)
	}
	r2 := generate(t, dir)
	a2 := digests(r2)["kinds/a"]
	if a2.Identity != orig.Identity || a2.Source == orig.Source {
		t.Fatalf("after the neutral declaration: %+v; want the new source with the old identity %s", a2, orig.Identity)
	}
	if !strings.Contains(readFile(t, filepath.Join(bdir, NeutralFile)), "kinds/a: "+orig.Source+" -> "+a2.Source+": doc comment only") {
		t.Errorf("neutral.txt does not record the declaration:\n%s", readFile(t, filepath.Join(bdir, NeutralFile)))
	}
	record(r2)

	// A real change after the refactor gets a new identity again.
	write(t, filepath.Join(dir, "kinds/a/table.txt"), "9 9 9\n")
	a3 := digests(generate(t, dir))["kinds/a"]
	if a3.Identity != a3.Source || a3.Identity == orig.Identity {
		t.Fatalf("a real change after a neutral one must change the identity: %+v", a3)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestIdentityOfFollowsDeclarationsBack(t *testing.T) {
	d := func(c byte) string { return strings.Repeat(string(c), 64) }
	neutral := []Neutral{
		{Package: "stages/ridge", From: d('a'), To: d('b')},
		{Package: "stages/ridge", From: d('b'), To: d('c')},
		{Package: "stages/data", From: d('x'), To: d('c')}, // another package's digests do not count
		{Package: "stages/probe", From: d('e'), To: d('f')},
		{Package: "stages/probe", From: d('f'), To: d('e')}, // a cycle ends
	}
	for _, c := range []struct{ pkg, src, want string }{
		{"stages/ridge", d('c'), d('a')},
		{"stages/ridge", d('b'), d('a')},
		{"stages/ridge", d('a'), d('a')},
		{"stages/ridge", d('d'), d('d')},
		{"stages/data", d('c'), d('x')},
		{"stages/probe", d('e'), d('f')},
	} {
		if got := IdentityOf(c.pkg, c.src, neutral); got != c.want {
			t.Errorf("IdentityOf(%s, %.1s...) = %.1s...; want %.1s...", c.pkg, c.src, got, c.want)
		}
	}
}

func TestParseNeutralNamesTheBadLine(t *testing.T) {
	good := "# comment\n\nstages/ridge: " + strings.Repeat("a", 64) + " -> " + strings.Repeat("b", 64) + ": split solver.go\n"
	ns, err := ParseNeutral(strings.NewReader(good), "neutral.txt")
	if err != nil || len(ns) != 1 || ns[0].Reason != "split solver.go" || ns[0].String() != strings.TrimSpace(strings.Split(good, "\n")[2]) {
		t.Fatalf("ParseNeutral(good) = %+v, %v", ns, err)
	}
	_, err = ParseNeutral(strings.NewReader(good+"stages/ridge: abc -> def: short digests\n"), "neutral.txt")
	if err == nil || !strings.Contains(err.Error(), "neutral.txt:4") {
		t.Fatalf("ParseNeutral(bad) = %v; want an error naming neutral.txt:4", err)
	}
}
