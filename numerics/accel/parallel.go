package accel

import "sync"

// minParallel is the element count below which a split across goroutines
// costs more than it saves.
const minParallel = 1 << 15

// splitRange runs fn over [0, n) in up to threads contiguous parts.
func splitRange(threads, n int, fn func(lo, hi int)) {
	parts := min(threads, n)
	if parts <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	for p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(n*p/parts, n*(p+1)/parts)
		}()
	}
	wg.Wait()
}
