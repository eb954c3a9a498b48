package main

import (
	"bytes"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
)

// allCommandNames lists every command of the dispatcher and, for a group,
// each of its subcommands ("data synth"), so that a command added to
// commands() is covered by the tests below without being named in them.
func allCommandNames(prefix string, cmds map[string]command) []string {
	var names []string
	for n, c := range cmds {
		name := strings.TrimSpace(prefix + " " + n)
		names = append(names, name)
		names = append(names, allCommandNames(name, c.subs)...)
	}
	sort.Strings(names)
	return names
}

// Every command and subcommand answers help one way: -h, --help and
// `voxflow help CMD` print a usage line naming it to stdout and exit 0,
// and an unknown flag prints the usage to stderr and exits 2. None of
// them touches a cache.
func TestEveryCommandAnswersHelp(t *testing.T) {
	t.Chdir(t.TempDir())
	t.Setenv("VOXFLOW_CACHE", "")
	names := allCommandNames("", commands())
	for _, want := range []string{"run", "cache verify", "data synth"} {
		if !slices.Contains(names, want) {
			t.Fatalf("commands() does not list %q: %v", want, names)
		}
	}
	for _, name := range names {
		t.Run(strings.ReplaceAll(name, " ", "_"), func(t *testing.T) {
			words := strings.Fields(name)
			usageLine := "usage: voxflow " + name
			for _, args := range [][]string{
				slices.Concat(words, []string{"-h"}),
				slices.Concat(words, []string{"--help"}),
				slices.Concat([]string{"help"}, words),
			} {
				var out, errb bytes.Buffer
				code := mainCode(args, &out, &errb)
				if code != 0 || !strings.Contains(out.String(), usageLine) || errb.Len() > 0 {
					t.Errorf("voxflow %s: exit %d, want 0 with %q on stdout\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, usageLine, &out, &errb)
				}
			}
			var out, errb bytes.Buffer
			args := slices.Concat(words, []string{"--no-such-flag"})
			code := mainCode(args, &out, &errb)
			if code != 2 || out.Len() > 0 || !strings.Contains(errb.String(), usageLine) {
				t.Errorf("voxflow %s: exit %d, want 2 with %q on stderr only\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, usageLine, &out, &errb)
			}
		})
	}
	if _, err := os.Stat(".voxflow"); err == nil {
		t.Error("asking for help created a cache")
	}
}

// The top level follows the same convention: help asked for goes to
// stdout with exit 0; no command, an unknown command or a bad flag value
// is a usage error on stderr with exit 2.
func TestTopLevelUsage(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"-h"}, 0, "usage: voxflow COMMAND", ""},
		{[]string{"--help"}, 0, "usage: voxflow COMMAND", ""},
		{[]string{"help"}, 0, "  validate      check a spec", ""},
		{nil, 2, "", "usage: voxflow COMMAND"},
		{[]string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{[]string{"help", "frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{[]string{"run", "-j", "many", "x.yaml"}, 2, "", `invalid value "many" for flag -j`},
		{[]string{"data", "help", "synth"}, 0, "usage: voxflow data synth [flags] DIR", ""},
		{[]string{"data"}, 2, "", "voxflow data: expected a subcommand: inspect or synth"},
		{[]string{"data", "synth", "--size", "4", "out"}, 2, "", "voxflow data synth: --size 4: expected 8..2048"},
		{[]string{"version", "extra"}, 2, "", `voxflow version: unexpected argument "extra"`},
	} {
		var out, errb bytes.Buffer
		code := mainCode(tc.args, &out, &errb)
		bad := code != tc.code || !strings.Contains(out.String(), tc.stdout) || !strings.Contains(errb.String(), tc.stderr)
		if tc.stdout == "" && out.Len() > 0 || tc.stderr == "" && errb.Len() > 0 {
			bad = true
		}
		if bad {
			t.Errorf("voxflow %q: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", tc.args, code, tc.code, &out, &errb)
		}
	}
}
