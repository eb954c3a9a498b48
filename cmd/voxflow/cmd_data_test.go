package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voxflow/voxflow/stages/data"
)

func TestCmdDataSynthAndInspect(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "algo")
	var out, errb bytes.Buffer
	if err := dataSynth(ctx, []string{"--subjects", "2", "--images", "30", "--size", "24", "--voxels", "4", "--seed", "9", root}, &out, &errb); err != nil {
		t.Fatalf("synth: %v\n%s", err, errb.String())
	}
	out.Reset()
	if err := dataInspect(ctx, []string{root}, &out, &errb); err != nil {
		t.Fatalf("inspect: %v", err)
	}
	text := out.String()
	for _, want := range []string{"algonauts", "subj01: images train 30, test 3 (test split: no test fMRI)", "subj02:", "lh_training_fmri: float32 (30, ", "FFA-1", "higher", "parietal"} {
		if !strings.Contains(text, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, text)
		}
	}

	// JSON, on an artifact built by the data stage from the same files.
	art := filepath.Join(t.TempDir(), "art")
	if err := dataSynth(ctx, []string{"--layout", "artifact", "--images", "40", "--size", "16", "--voxels", "4", art}, &out, &errb); err != nil {
		t.Fatalf("synth artifact: %v", err)
	}
	out.Reset()
	if err := dataInspect(ctx, []string{"--json", art}, &out, &errb); err != nil {
		t.Fatalf("inspect artifact: %v", err)
	}
	var s data.Summary
	if err := json.Unmarshal(out.Bytes(), &s); err != nil {
		t.Fatalf("inspect --json: %v\n%s", err, out.String())
	}
	if s.Layout != data.LayoutNSD || len(s.Subjects) != 1 || s.Subjects[0].Images["train"]+s.Subjects[0].Images["val"]+s.Subjects[0].Images["test"] != 40 || s.ImageSize != 16 {
		t.Fatalf("summary %+v", s)
	}
	if r := s.Subjects[0].ROIs[0]; r.NoiseCeiling == nil || *r.NoiseCeiling <= 0 || *r.NoiseCeiling >= 1 || r.VoxelsLH+r.VoxelsRH == 0 {
		t.Fatalf("ROI summary %+v", r)
	}
}

func TestCmdDataErrors(t *testing.T) {
	ctx := context.Background()
	var out, errb bytes.Buffer
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "expected a subcommand"},
		{[]string{"frobnicate"}, `unknown subcommand "frobnicate"`},
		{[]string{"inspect"}, "expected one PATH"},
		{[]string{"inspect", t.TempDir()}, "expected a data artifact (manifest.json), an Algonauts root"},
		{[]string{"synth", "--layout", "bids", t.TempDir()}, `--layout "bids": expected algonauts or artifact`},
		{[]string{"synth", "--size", "4", t.TempDir()}, "--size 4: expected 8..2048"},
	} {
		err := runGroup(ctx, "data", dataCommands(), tc.args, &out, &errb)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("data %v: error %v, want %q", tc.args, err, tc.want)
		}
	}
}
