package engine

import (
	"time"

	"github.com/voxflow/voxflow/stages"
)

// discardDisplay drops a run's events, for tests that look at results and
// the cache rather than at what a user would see.
type discardDisplay struct{}

func (discardDisplay) Cached(string)                                           {}
func (discardDisplay) Started(string)                                          {}
func (discardDisplay) Waiting(string, string)                                  {}
func (discardDisplay) Progress(string, stages.Update)                          {}
func (discardDisplay) Finished(string, string, time.Duration, error, []string) {}
func (discardDisplay) Close()                                                  {}
