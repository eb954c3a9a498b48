package slurm

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// follower reads what a process on another host appended to a file since
// the last call. It tolerates the file not existing yet.
type follower struct {
	path    string
	off     int64
	partial []byte // an incomplete last line, held until its newline arrives
}

// next returns the complete lines appended since the last call, each with
// its newline, or everything new when all is set (the writer has ended).
func (f *follower) next(all bool) ([]byte, error) {
	file, err := os.Open(f.path)
	if err != nil {
		if isNotExist(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("follow %s: %w", f.path, err)
	}
	defer file.Close()
	st, err := file.Stat()
	if err != nil {
		return nil, fmt.Errorf("follow %s: %w", f.path, err)
	}
	if st.Size() < f.off {
		// Rewritten by a new attempt: start over.
		f.off, f.partial = 0, nil
	}
	b, err := io.ReadAll(io.NewSectionReader(file, f.off, st.Size()-f.off))
	if err != nil {
		return nil, fmt.Errorf("follow %s: %w", f.path, err)
	}
	f.off += int64(len(b))
	b = append(f.partial, b...)
	f.partial = nil
	if all {
		return b, nil
	}
	i := bytes.LastIndexByte(b, '\n')
	if i < len(b)-1 {
		f.partial = append([]byte(nil), b[i+1:]...)
		b = b[:i+1]
	}
	return b, nil
}
