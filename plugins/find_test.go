package plugins_test

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/voxflow/voxflow/plugins"
)

func TestFindListsExecutablePluginFiles(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	for _, f := range []struct {
		path string
		mode os.FileMode
	}{
		{filepath.Join(a, "voxflow-pca"), 0o755},
		{filepath.Join(a, "voxflow-alpha"), 0o755},
		{filepath.Join(a, "voxflow-notes.txt"), 0o644},
		{filepath.Join(a, "python3"), 0o755},
		{filepath.Join(b, "voxflow-shuffle"), 0o755},
	} {
		if err := os.WriteFile(f.path, []byte("#!/bin/sh\n"), f.mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(b, "voxflow-dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := plugins.Find(a, filepath.Join(a, "missing"), b, a)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(a, "voxflow-alpha"), filepath.Join(a, "voxflow-pca"), filepath.Join(b, "voxflow-shuffle")}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Find = %v, want %v", got, want)
	}
}
