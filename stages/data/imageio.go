package data

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
	"sync"

	"golang.org/x/image/draw"
)

// Resampling methods for resizing images to the network input.
const (
	ResampleArea     = "area"     // box filter with fractional coverage: best for shrinking
	ResampleBilinear = "bilinear" // golang.org/x/image/draw.BiLinear
)

// rgbImage is a decoded image as packed 8-bit RGB, row-major (H x W x 3).
type rgbImage struct {
	W, H int
	Pix  []uint8
}

// toRGB flattens any decoded image to packed RGB. Alpha is dropped: the
// fast paths keep the stored colour, the generic path composites on black.
func toRGB(img image.Image) rgbImage {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	out := rgbImage{W: w, H: h, Pix: make([]uint8, w*h*3)}
	switch m := img.(type) {
	case *rgbImage:
		return *m
	case *image.RGBA:
		for y := range h {
			row := m.Pix[(y)*m.Stride:]
			for x := range w {
				copy(out.Pix[(y*w+x)*3:(y*w+x)*3+3], row[x*4:x*4+3])
			}
		}
	case *image.NRGBA:
		for y := range h {
			row := m.Pix[(y)*m.Stride:]
			for x := range w {
				copy(out.Pix[(y*w+x)*3:(y*w+x)*3+3], row[x*4:x*4+3])
			}
		}
	case *image.Gray:
		for y := range h {
			row := m.Pix[y*m.Stride:]
			for x := range w {
				v := row[x]
				o := (y*w + x) * 3
				out.Pix[o], out.Pix[o+1], out.Pix[o+2] = v, v, v
			}
		}
	default:
		for y := range h {
			for x := range w {
				r, g, bb, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
				o := (y*w + x) * 3
				out.Pix[o], out.Pix[o+1], out.Pix[o+2] = uint8(r>>8), uint8(g>>8), uint8(bb>>8)
			}
		}
	}
	return out
}

// decodeImageFile decodes a PNG (or, for imagefolder, JPEG) file, naming the
// file in errors.
func decodeImageFile(path string) (image.Image, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read image %s: %w", path, err)
	}
	if isJPEG(b) {
		m, err := decodeJPEG(path, b)
		if err != nil {
			return nil, err
		}
		return m, nil
	}
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("decode image %s: truncated file (%w)", path, err)
		}
		return nil, fmt.Errorf("decode image %s: %w (expected a PNG or JPEG image)", path, err)
	}
	return img, nil
}

// decodePNG decodes a PNG file only.
func decodePNG(path string) (image.Image, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read image: %w", err)
	}
	return decodePNGBytes(path, b)
}

// decodePNGBytes decodes PNG bytes read from path, naming it in errors.
func decodePNGBytes(path string, b []byte) (image.Image, error) {
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("decode PNG %s: truncated file (%w)", path, err)
		}
		return nil, fmt.Errorf("decode PNG %s: %w (expected a PNG image)", path, err)
	}
	return img, nil
}

// resizeCHW resizes img to size x size and writes it channel-first into dst
// (len 3*size*size).
func resizeCHW(img image.Image, size int, method string, dst []uint8) {
	plane := size * size
	if method == ResampleBilinear {
		if m, ok := img.(*rgbImage); ok {
			// x/image/draw's fast paths take *image.RGBA, not ours.
			img = rgbToImage(m)
		}
		b := img.Bounds()
		var rgba *image.RGBA
		if b.Dx() == size && b.Dy() == size {
			rgba = image.NewRGBA(image.Rect(0, 0, size, size))
			draw.Draw(rgba, rgba.Bounds(), img, b.Min, draw.Src)
		} else {
			rgba = image.NewRGBA(image.Rect(0, 0, size, size))
			draw.BiLinear.Scale(rgba, rgba.Bounds(), img, b, draw.Src, nil)
		}
		for y := range size {
			for x := range size {
				p := rgba.Pix[y*rgba.Stride+x*4:]
				i := y*size + x
				dst[i], dst[plane+i], dst[2*plane+i] = p[0], p[1], p[2]
			}
		}
		return
	}
	areaCHW(toRGB(img), size, dst)
}

// tap is one source pixel's weight in an output pixel.
type tap struct {
	idx int
	w   float32
}

// areaTaps returns, for each output index, the source indices it covers and
// their coverage fractions (summing to 1).
func areaTaps(in, out int) [][]tap {
	taps := make([][]tap, out)
	scale := float64(in) / float64(out)
	for o := range out {
		lo, hi := float64(o)*scale, float64(o+1)*scale
		for j := int(lo); j < in && float64(j) < hi; j++ {
			cover := min(hi, float64(j+1)) - max(lo, float64(j))
			if cover > 1e-9 {
				taps[o] = append(taps[o], tap{j, float32(cover / scale)})
			}
		}
	}
	return taps
}

// areaCHW resamples with a box filter (OpenCV's INTER_AREA when shrinking),
// separably: rows first, then columns. Equal sizes copy exactly.
func areaCHW(src rgbImage, size int, dst []uint8) {
	plane := size * size
	if src.W == size && src.H == size {
		for i := range plane {
			dst[i], dst[plane+i], dst[2*plane+i] = src.Pix[3*i], src.Pix[3*i+1], src.Pix[3*i+2]
		}
		return
	}
	xt, yt := areaTaps(src.W, size), areaTaps(src.H, size)
	tmp := make([]float32, src.H*size*3)
	for y := range src.H {
		row := src.Pix[y*src.W*3:]
		for ox, ts := range xt {
			var r, g, b float32
			for _, t := range ts {
				p := row[t.idx*3:]
				r += t.w * float32(p[0])
				g += t.w * float32(p[1])
				b += t.w * float32(p[2])
			}
			o := (y*size + ox) * 3
			tmp[o], tmp[o+1], tmp[o+2] = r, g, b
		}
	}
	for oy, ts := range yt {
		for ox := range size {
			var r, g, b float32
			for _, t := range ts {
				p := tmp[(t.idx*size+ox)*3:]
				r += t.w * p[0]
				g += t.w * p[1]
				b += t.w * p[2]
			}
			i := oy*size + ox
			dst[i], dst[plane+i], dst[2*plane+i] = clamp8(r), clamp8(g), clamp8(b)
		}
	}
}

func clamp8(v float32) uint8 {
	v += 0.5
	if v <= 0 {
		return 0
	}
	if v >= 255 {
		return 255
	}
	return uint8(v)
}

// produceOrdered runs produce(i, buf) for i in [0, n) on workers goroutines
// and hands each filled buffer to consume in index order. At most 2*workers
// buffers exist at once, so memory stays bounded however large n is: this
// is how thousands of PNGs stream into one images.npy.
func produceOrdered(ctx context.Context, n, workers, bufLen int,
	produce func(i int, buf []uint8) error, consume func(i int, buf []uint8) error) error {
	if n == 0 {
		return nil
	}
	workers = max(1, min(workers, n))
	window := 2 * workers
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	free := make(chan []uint8, window)
	for range window {
		free <- make([]uint8, bufLen)
	}
	type result struct {
		i   int
		buf []uint8
		err error
	}
	results := make(chan result, window)
	var mu sync.Mutex
	next := 0
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				// Take a buffer before an index, so the lowest unfinished
				// index always owns a buffer and the window cannot deadlock.
				var buf []uint8
				select {
				case buf = <-free:
				case <-ctx.Done():
					return
				}
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n {
					return
				}
				err := produce(i, buf)
				select {
				case results <- result{i, buf, err}:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(results) }()
	pending := map[int]result{}
	want := 0
	for want < n {
		var r result
		var ok bool
		select {
		case r, ok = <-results:
		case <-ctx.Done():
			return ctx.Err()
		}
		if !ok {
			if err := ctx.Err(); err != nil {
				return err
			}
			return fmt.Errorf("image pipeline stopped at %d of %d", want, n)
		}
		if r.err != nil {
			return r.err
		}
		pending[r.i] = r
		for {
			p, ok := pending[want]
			if !ok {
				break
			}
			delete(pending, want)
			if err := consume(p.i, p.buf); err != nil {
				return err
			}
			free <- p.buf
			want++
		}
	}
	return nil
}
