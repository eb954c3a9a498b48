package engine

import (
	"time"

	"github.com/voxflow/voxflow/stages"
)

// Display is the sink for a run's events: Runner reports each instance's
// way through the run to it, and the CLI decides how they look (the
// terminal displays live in cmd/voxflow/internal/display). Implementations
// must be safe for concurrent use, because stages report progress from
// their own goroutines.
type Display interface {
	// Cached reports an instance whose output the cache answered.
	Cached(instance string)
	// Started reports an instance the run is about to execute.
	Started(instance string)
	// Waiting reports a started instance held up by something outside
	// this run, such as another run computing the same key.
	Waiting(instance, why string)
	// Progress relays a stage's progress update.
	Progress(instance string, u stages.Update)
	// Finished reports an instance's end: status is one of the Status
	// constants, err says why it did not succeed, and logTail holds the
	// last lines of its log when it failed.
	Finished(instance string, status string, d time.Duration, err error, logTail []string)
	// Close is called once, after the last event of the run: by Run's
	// caller once Run has returned (Run itself never calls it; no event
	// comes after it returns).
	Close()
}
