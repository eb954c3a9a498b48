// Command testhost plays voxflow for the lifecycle tests: it starts a
// plugin, prints "pid <n>" for it, runs a stage that waits for
// cancellation, and on SIGINT/SIGTERM cancels and closes the plugin the way
// the engine does on Ctrl-C.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/voxflow/voxflow/plugins"
	"github.com/voxflow/voxflow/stages"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "testhost:", err)
		os.Exit(1)
	}
}

func run() error {
	if len(os.Args) != 3 {
		return fmt.Errorf("usage: testhost PLUGIN OUTDIR")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := plugins.Open(ctx, os.Args[1])
	if err != nil {
		return err
	}
	defer c.Close()
	var sleep stages.Stage
	for _, s := range c.Stages() {
		if s.Describe().Kind == "sleep" {
			sleep = s
		}
	}
	if sleep == nil {
		return fmt.Errorf("plugin %s has no kind sleep", os.Args[1])
	}
	// The pid goes out once the stage is running in the plugin, so that the
	// test kills us mid-run.
	var once sync.Once
	progress := stages.ProgressFunc(func(stages.Update) {
		once.Do(func() { fmt.Printf("pid %d\n", c.Pid()) })
	})
	err = sleep.Run(ctx, &stages.Request{Instance: "sleep", OutDir: os.Args[2], Params: stages.Params{}, Progress: progress, Log: os.Stderr})
	fmt.Println("run ended:", err)
	return nil
}
