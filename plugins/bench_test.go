package plugins_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/voxflow/voxflow/plugins"
	"github.com/voxflow/voxflow/plugins/internal/teststages"
	"github.com/voxflow/voxflow/stages"
)

// BenchmarkNoop measures what isolation costs: a stage that does nothing,
// called in-process, through a running plugin process, and with the
// plugin started and stopped around each call (the engine's one process
// per instance).
func BenchmarkNoop(b *testing.B) {
	ctx := context.Background()
	req := func(b *testing.B) *stages.Request {
		return &stages.Request{Instance: "noop", OutDir: b.TempDir(), Params: stages.Params{}, Progress: stages.NopProgress{}}
	}
	b.Run("inline", func(b *testing.B) {
		var s stages.Stage = teststages.Noop{}
		r := req(b)
		for b.Loop() {
			if err := s.Run(ctx, r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("plugin-call", func(b *testing.B) {
		c, err := plugins.Open(ctx, filepath.Join(bin, "testplugin"))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		s, r := stageOf(b, c, "noop"), req(b)
		for b.Loop() {
			if err := s.Run(ctx, r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("plugin-start+call", func(b *testing.B) {
		r := req(b)
		for b.Loop() {
			c, err := plugins.Open(ctx, filepath.Join(bin, "testplugin"))
			if err != nil {
				b.Fatal(err)
			}
			if err := stageOf(b, c, "noop").Run(ctx, r); err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
	})
}

func stageOf(tb testing.TB, c *plugins.Client, kind string) stages.Stage {
	tb.Helper()
	for _, s := range c.Stages() {
		if s.Describe().Kind == kind {
			return s
		}
	}
	tb.Fatalf("plugin has no kind %q", kind)
	return nil
}
