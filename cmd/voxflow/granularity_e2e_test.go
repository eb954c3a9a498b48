package main

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/voxflow/voxflow/numerics/npy"
	"github.com/voxflow/voxflow/stages/data"
)

// granularitySpec is the demo's data layout at test size, on an Algonauts
// release: images per subject, responses per (subject, ROI), joins per
// (subject, ROI) for tuning and per subject for ridge. %[1]s is the
// release root, %[2]s the ROI list.
const granularitySpec = `name: granularity
params:
  subjects: [subj01, subj02]
  rois: %[2]s
x-nsd: &nsd {source: algonauts, root: %[1]s, image_size: 32, seed: 5}
stages:
  nsd_images:
    uses: data
    foreach: {subject: ${params.subjects}}
    with: {<<: *nsd, part: images}
  nsd_resp:
    uses: data
    foreach: {subject: ${params.subjects}, roi: ${params.rois}}
    with: {<<: *nsd, part: responses}
  nsd:
    uses: data
    foreach: {subject: ${params.subjects}, roi: ${params.rois}}
    inputs: {parts: [nsd_images.dataset, nsd_resp.dataset]}
  nsd_subject:
    uses: data
    foreach: {subject: ${params.subjects}}
    inputs: {parts: [nsd_images.dataset, nsd_resp.dataset]}
  control:
    uses: pretrain
    with: {arch: alexnet-mini, epochs: 0, seed: 5}
  tune_cl:
    uses: tune-cl
    inputs: {data: nsd.dataset, init: control.net}
    foreach: {subject: ${params.subjects}, roi: ${params.rois}}
    with: {v1: 16, v2: 8, batch_size: 32, epochs: 1, seed: 5}
  feat_control:
    uses: features
    inputs: {data: nsd_images.dataset, net: control.net}
    foreach: {subject: ${params.subjects}}
  feat_cl:
    uses: features
    inputs: {data: nsd_images.dataset, net: tune_cl.net}
    foreach: tune_cl
  ridge:
    uses: ridge
    inputs: {data: nsd_subject.dataset, features: [feat_control.features, feat_cl.features]}
    foreach: {subject: ${params.subjects}}
    with: {baseline: feat_control, alphas: {logspace: [0, 3, 4]}, folds: 3}
`

// planLine is "run|cached  INSTANCE  why".
var planLine = regexp.MustCompile(`(?m)^(run|cached)\s+(\S+)`)

// planned maps each instance of a plan to "run" or "cached".
func planned(t *testing.T, out string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, g := range planLine.FindAllStringSubmatch(out, -1) {
		m[g[2]] = g[1]
	}
	if len(m) == 0 {
		t.Fatalf("no plan lines in:\n%s", out)
	}
	return m
}

// TestGranularityAddROIRerunsOnlyItsInstances runs a study laid out as
// images per subject and responses per (subject, ROI), adds an ROI, and
// checks with plan that every existing instance stays cached: only the new
// ROI's instances run, with the per-subject join and ridge that fan in its
// responses. Then, on a release where one subject's ROI has no vertices,
// --keep-going fails that (subject, ROI) and skips only what needs it.
func TestGranularityAddROIRerunsOnlyItsInstances(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "release")
	cfg := data.SynthConfig{Seed: 3, NImages: 60, VoxelsPerROI: 6, Reps: 2}
	if err := data.WriteSynthAlgonauts(context.Background(), root, data.SynthAlgonautsOptions{Config: cfg, Subjects: []string{"subj01", "subj02"}, Size: 32}); err != nil {
		t.Fatal(err)
	}
	spec := filepath.Join(dir, "g.yaml")
	writeFile(t, spec, fmt.Sprintf(granularitySpec, root, "[V1v, FFA-1]"))
	r := vox(t, dir, "run", spec, "--plain")
	if r.code != 0 || !strings.Contains(r.stdout, "0 failed") {
		t.Fatalf("first run:\n%s", r)
	}
	before := planned(t, vox(t, dir, "plan", spec).stdout)

	writeFile(t, spec, fmt.Sprintf(granularitySpec, root, "[V1v, FFA-1, PPA]"))
	r = vox(t, dir, "plan", spec)
	if r.code != 0 {
		t.Fatalf("plan:\n%s", r)
	}
	after := planned(t, r.stdout)
	var wantRun []string
	for _, s := range []string{"subj01", "subj02"} {
		for _, st := range []string{"nsd_resp", "nsd", "tune_cl", "feat_cl"} {
			wantRun = append(wantRun, st+"["+s+",PPA]")
		}
		wantRun = append(wantRun, "nsd_subject["+s+"]", "ridge["+s+"]")
	}
	for inst, state := range before {
		if state != "cached" {
			t.Errorf("before the change, %s is %s", inst, state)
		}
		if want := map[bool]string{true: "run", false: "cached"}[slices.Contains(wantRun, inst)]; after[inst] != want {
			t.Errorf("after adding PPA, %s is %q, want %s", inst, after[inst], want)
		}
	}
	for _, inst := range wantRun {
		if after[inst] != "run" {
			t.Errorf("after adding PPA, %s is %q, want run", inst, after[inst])
		}
	}
	if len(after) != len(before)+8 {
		t.Errorf("%d instances after adding an ROI, want %d + 8 new:\n%s", len(after), len(before), r.stdout)
	}

	// subj02's FFA-1 loses its vertices: only what needs that pair fails.
	for _, h := range []string{"lh", "rh"} {
		p := filepath.Join(root, "subj02/roi_masks", h+".floc-faces_challenge_space.npy")
		a, err := npy.ReadFile[float32](p)
		if err != nil {
			t.Fatal(err)
		}
		for i, l := range a.Data {
			if l == 2 { // FFA-1
				a.Data[i] = 0
			}
		}
		if err := npy.WriteFile(p, a.Shape, a.Data); err != nil {
			t.Fatal(err)
		}
	}
	r = vox(t, dir, "run", spec, "--keep-going", "--plain")
	if r.code == 0 || !strings.Contains(r.stdout, "ROI FFA-1 has no vertices") {
		t.Fatalf("run with an empty ROI should fail naming it:\n%s", r)
	}
	res := planned(t, vox(t, dir, "plan", spec).stdout)
	broken := []string{"nsd_resp[subj02,FFA-1]", "nsd[subj02,FFA-1]", "tune_cl[subj02,FFA-1]", "feat_cl[subj02,FFA-1]", "nsd_subject[subj02]", "ridge[subj02]"}
	for inst, state := range res {
		want := "cached"
		if slices.Contains(broken, inst) {
			want = "run"
		}
		if state != want {
			t.Errorf("after --keep-going, %s is %s, want %s (only subj02's FFA-1 and what fans it in should be missing)", inst, state, want)
		}
	}
	if want := fmt.Sprintf("1 failed, %d skipped", len(broken)-1); !strings.Contains(r.stdout, want) {
		t.Errorf("run summary lacks %q:\n%s", want, r.stdout)
	}
}

// TestPlanWarnsUnschedulable checks that a local plan warns, with the fix,
// about instances a run with its budgets could not schedule (GPUs, memory),
// once per stage; and not about what is cached or fits.
func TestPlanWarnsUnschedulable(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "w.yaml"), `name: w
stages:
  train:
    uses: command
    foreach: {roi: [V1v, FFA-1, PPA]}
    with: {cmd: 'echo ${each.roi} > o.txt', outs: [o.txt]}
    resources: {gpus: 1}
  big:
    uses: command
    with: {cmd: 'echo big > o.txt', outs: [o.txt]}
    resources: {memory: 8GiB}
  small:
    uses: command
    with: {cmd: 'echo small > o.txt', outs: [o.txt]}
`)
	r := vox(t, dir, "plan", "w.yaml", "--memory", "4GiB")
	gpu := "warning: train[V1v] (and 2 more instances of train) needs 1 GPU(s), this run has 0 (set --gpus"
	mem := "warning: big needs 8192 MB of memory, this run allows 4096 MB"
	if r.code != 0 || !strings.Contains(r.stderr, gpu) || !strings.Contains(r.stderr, mem) || strings.Count(r.stderr, "warning:") != 2 {
		t.Fatalf("plan should warn once about train's GPUs and once about big's memory:\n%s", r)
	}
	if strings.Contains(r.stdout, "warning") || !strings.Contains(r.stdout, "5 to run") {
		t.Errorf("warnings belong on stderr, the plan table on stdout:\n%s", r)
	}
	if r := vox(t, dir, "plan", "w.yaml", "--gpus", "1"); r.code != 0 || strings.Contains(r.stderr, "warning") {
		t.Errorf("with --gpus 1 and no memory budget nothing should warn:\n%s", r)
	}
	if r := vox(t, dir, "run", "w.yaml", "--gpus", "1", "--plain"); r.code != 0 {
		t.Fatalf("run:\n%s", r)
	}
	if r := vox(t, dir, "plan", "w.yaml", "--memory", "1GiB"); r.code != 0 || strings.Contains(r.stderr, "warning") {
		t.Errorf("cached instances need no resources; no warning expected:\n%s", r)
	}
}

// TestAlgonautsSpecCPUVariant checks the shipped study spec: as written it
// asks for GPUs, and a local plan says so with the fix; its cpu variant
// asks for none and fits a laptop's 8 GiB, so plan has nothing to warn
// about.
func TestAlgonautsSpecCPUVariant(t *testing.T) {
	spec, err := filepath.Abs("../../specs/nsd-algonauts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	r := vox(t, t.TempDir(), "plan", spec, "--cache", cache)
	gpu := regexp.MustCompile(`warning: tune_cl\[subj01,V1v\] \(and \d+ more instances of tune_cl\) needs 1 GPU\(s\), this run has 0 \(set --gpus`)
	if r.code != 0 || !gpu.MatchString(r.stderr) {
		t.Fatalf("plan of the GPU study on a machine without GPUs should warn:\n%s", r)
	}
	r = vox(t, t.TempDir(), "plan", spec, "--cache", cache, "--variant", "cpu", "--memory", "8GiB")
	if r.code != 0 || strings.Contains(r.stderr, "warning") || !regexp.MustCompile(`(?m)^run\s+tune_cl\[subj02,FFA-1\]`).MatchString(r.stdout) {
		t.Fatalf("the cpu variant should plan its fine-tunes with none needing a GPU or more than 8 GiB:\n%s", r)
	}
}
