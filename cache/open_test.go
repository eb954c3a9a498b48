package cache

import (
	"context"
	"sync"
	"testing"
)

// Several runs starting at once on a new cache all open it: the first
// switches the file to WAL while the others wait instead of failing with
// "database is locked".
func TestConcurrentOpenOfAFreshStore(t *testing.T) {
	for round := 0; round < 5; round++ {
		dir := t.TempDir()
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := Open(context.Background(), dir)
				if err == nil {
					_, err = s.Runs(context.Background(), 1)
					s.Close()
				}
				errs[i] = err
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d, opener %d: %v", round, i, err)
			}
		}
	}
}
