package npy

import (
	"bytes"
	"testing"
)

// FuzzReadNPY feeds arbitrary bytes to the reader: it must return an error or
// the declared number of elements, never panic or allocate beyond the input.
func FuzzReadNPY(f *testing.F) {
	f.Add(EncodeHeader(Header{DType: Float32, Shape: []int{2, 2}}))
	f.Add(append(EncodeHeader(Header{DType: Uint8, Shape: []int{3}}), 1, 2, 3))
	f.Add(append(EncodeHeader(Header{DType: Int64, Shape: []int{}}), 1, 0, 0, 0, 0, 0, 0, 0))
	f.Add([]byte("\x93NUMPY\x02\x00\x10\x00\x00\x00{'descr':'>f8'}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data))
		if err != nil {
			return
		}
		// Read in bounded chunks so a huge declared shape costs nothing.
		buf := make([]float64, 1024)
		for r.Remaining() > 0 {
			n := min(len(buf), r.Remaining())
			if err := Read(r, buf[:n]); err != nil {
				return
			}
		}
		h2, err := NewReader(bytes.NewReader(EncodeHeader(r.Header)))
		if err != nil {
			t.Fatalf("re-encoded header unreadable: %v", err)
		}
		if ShapeString(h2.Header.Shape) != ShapeString(r.Header.Shape) || h2.Header.DType != r.Header.DType {
			t.Fatalf("header round trip: %+v -> %+v", r.Header, h2.Header)
		}
	})
}
