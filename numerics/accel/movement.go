package accel

import (
	"fmt"
	"reflect"
	"unsafe"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// reverseParams is the data of a Reverse node: which axes to flip.
type reverseParams struct{ axes []bool }

// padParams is the data of a Pad node.
type padParams struct{ axes []backends.PadAxis }

// words views a buffer's flat slice as unsigned words of its element size,
// so that data-movement ops are written once for every dtype.
type word interface {
	uint8 | uint16 | uint32 | uint64
}

// flatOf returns a buffer's flat slice and shape.
func flatOf(backend *simplego.Backend, buf *simplego.Buffer) (any, shapes.Shape, error) {
	flat, err := backend.BufferData(buf)
	if err != nil {
		return nil, shapes.Shape{}, err
	}
	shape, err := backend.BufferShape(buf)
	if err != nil {
		return nil, shapes.Shape{}, err
	}
	return flat, shape, nil
}

// asWords views a flat slice of any dtype as words of type W.
func asWords[W word](flat any) []W {
	v := reflect.ValueOf(flat)
	n := v.Len()
	if n == 0 {
		return nil
	}
	var w W
	bytes := n * int(v.Type().Elem().Size())
	return unsafe.Slice((*W)(v.UnsafePointer()), bytes/int(unsafe.Sizeof(w)))
}

// byWordSize runs fn on src and dst viewed as words of the dtype's size.
func byWordSize(dtypeSize int, src, dst any, fn func(src, dst any)) error {
	switch dtypeSize {
	case 1:
		fn(asWords[uint8](src), asWords[uint8](dst))
	case 2:
		fn(asWords[uint16](src), asWords[uint16](dst))
	case 4:
		fn(asWords[uint32](src), asWords[uint32](dst))
	case 8:
		fn(asWords[uint64](src), asWords[uint64](dst))
	default:
		return fmt.Errorf("element size %d bytes not supported", dtypeSize)
	}
	return nil
}

func execReverse(backend *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, _ []bool) (*simplego.Buffer, error) {
	p := mirror(node).data.(*reverseParams)
	src, shape, err := flatOf(backend, inputs[0])
	if err != nil {
		return nil, fmt.Errorf("accel Reverse: %w", err)
	}
	out := backend.NewBuffer(shape)
	dst, _, err := flatOf(backend, out)
	if err != nil {
		return nil, fmt.Errorf("accel Reverse: %w", err)
	}
	if shape.Size() == 0 {
		return out, nil
	}
	dims, strides := shape.Dimensions, shape.Strides()
	// Walk the output in order; the source offset moves by -stride along
	// reversed axes, starting from the far end.
	start := 0
	steps := make([]int, len(dims))
	for i := range dims {
		steps[i] = strides[i]
		if p.axes[i] {
			start += (dims[i] - 1) * strides[i]
			steps[i] = -strides[i]
		}
	}
	err = byWordSize(shape.DType.Size(), src, dst, func(s, d any) {
		switch s := s.(type) {
		case []uint8:
			gatherStrided(s, d.([]uint8), dims, steps, start)
		case []uint16:
			gatherStrided(s, d.([]uint16), dims, steps, start)
		case []uint32:
			gatherStrided(s, d.([]uint32), dims, steps, start)
		case []uint64:
			gatherStrided(s, d.([]uint64), dims, steps, start)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("accel Reverse of %s: %w", shape, err)
	}
	return out, nil
}

// gatherStrided fills dst in row-major order of dims from src, where moving
// one step along axis i moves steps[i] in src.
func gatherStrided[W word](src, dst []W, dims, steps []int, start int) {
	if len(dims) == 0 {
		dst[0] = src[start]
		return
	}
	pos := 0
	var rec func(axis, off int)
	rec = func(axis, off int) {
		if axis == len(dims)-1 {
			step := steps[axis]
			for i := range dims[axis] {
				dst[pos+i] = src[off+i*step]
			}
			pos += dims[axis]
			return
		}
		for i := range dims[axis] {
			rec(axis+1, off+i*steps[axis])
		}
	}
	rec(0, start)
}

func execPad(backend *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, _ []bool) (*simplego.Buffer, error) {
	p := mirror(node).data.(*padParams)
	src, inShape, err := flatOf(backend, inputs[0])
	if err != nil {
		return nil, fmt.Errorf("accel Pad: %w", err)
	}
	fill, _, err := flatOf(backend, inputs[1])
	if err != nil {
		return nil, fmt.Errorf("accel Pad: %w", err)
	}
	outShape := mirror(node).shape
	out := backend.NewBuffer(outShape)
	dst, _, err := flatOf(backend, out)
	if err != nil {
		return nil, fmt.Errorf("accel Pad: %w", err)
	}
	if outShape.Size() == 0 {
		return out, nil
	}
	// For each input axis: where each input index lands in the output (or
	// -1 when cropped away).
	outStrides := outShape.Strides()
	land := make([][]int, inShape.Rank())
	for i, d := range inShape.Dimensions {
		land[i] = make([]int, d)
		for j := range d {
			o := p.axes[i].Start + j*(p.axes[i].Interior+1)
			if o < 0 || o >= outShape.Dimensions[i] {
				land[i][j] = -1
			} else {
				land[i][j] = o * outStrides[i]
			}
		}
	}
	err = byWordSize(inShape.DType.Size(), src, dst, func(s, d any) {
		switch s := s.(type) {
		case []uint8:
			padWords(s, d.([]uint8), asWords[uint8](fill)[0], inShape.Dimensions, land)
		case []uint16:
			padWords(s, d.([]uint16), asWords[uint16](fill)[0], inShape.Dimensions, land)
		case []uint32:
			padWords(s, d.([]uint32), asWords[uint32](fill)[0], inShape.Dimensions, land)
		case []uint64:
			padWords(s, d.([]uint64), asWords[uint64](fill)[0], inShape.Dimensions, land)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("accel Pad of %s: %w", inShape, err)
	}
	return out, nil
}

func padWords[W word](src, dst []W, fill W, dims []int, land [][]int) {
	for i := range dst {
		dst[i] = fill
	}
	if len(dims) == 0 {
		dst[0] = src[0]
		return
	}
	pos := 0
	var rec func(axis, off int)
	rec = func(axis, off int) {
		l := land[axis]
		if axis == len(dims)-1 {
			for i, o := range l {
				if o >= 0 {
					dst[off+o] = src[pos+i]
				}
			}
			pos += dims[axis]
			return
		}
		inner := 1
		for _, d := range dims[axis+1:] {
			inner *= d
		}
		for _, o := range l {
			if o < 0 {
				pos += inner
				continue
			}
			rec(axis+1, off+o)
		}
	}
	rec(0, 0)
}
