// Package npy reads and writes NumPy .npy files for the element types voxflow
// artifacts use: float32, float64, uint8, int32 and int64, C order.
//
// It is hand-written rather than wrapping codeberg.org/sbinet/npyio or
// gomlx's numpy package because both read and write whole arrays only;
// voxflow streams arrays larger than memory row by row (an NSD subject's
// fMRI is ~1.6 GB, its images more), which needs the header and the data
// handled separately. Reading accepts format versions 1, 2 and 3 and either
// byte order; writing emits version 1 (version 2 when the header needs it),
// little-endian, as numpy.save does.
package npy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// Magic is the six bytes every .npy file starts with.
const Magic = "\x93NUMPY"

// DType names an element type by its little-endian NumPy descr.
type DType string

// Element types voxflow reads and writes.
const (
	Float32 DType = "<f4"
	Float64 DType = "<f8"
	Uint8   DType = "|u1"
	Int32   DType = "<i4"
	Int64   DType = "<i8"
)

// String names the type as numpy does (float32, uint8, ...).
func (d DType) String() string {
	switch d {
	case Float32:
		return "float32"
	case Float64:
		return "float64"
	case Uint8:
		return "uint8"
	case Int32:
		return "int32"
	case Int64:
		return "int64"
	}
	return string(d)
}

// Size is the number of bytes of one element.
func (d DType) Size() int {
	switch d {
	case Float32, Int32:
		return 4
	case Float64, Int64:
		return 8
	case Uint8:
		return 1
	}
	return 0
}

// Elem is the set of Go element types an array may hold.
type Elem interface {
	float32 | float64 | uint8 | int32 | int64
}

// DTypeOf returns the DType matching T.
func DTypeOf[T Elem]() DType {
	var z T
	switch any(z).(type) {
	case float32:
		return Float32
	case float64:
		return Float64
	case uint8:
		return Uint8
	case int32:
		return Int32
	case int64:
		return Int64
	}
	panic("unreachable: Elem is a closed set")
}

// Header describes an array: its element type and shape. Shape nil or empty
// is a scalar (one element).
type Header struct {
	DType DType
	Shape []int
	// bigEndian is set when the file stores multi-byte elements big-endian;
	// DType always reports the little-endian name.
	bigEndian bool
}

// Len is the number of elements.
func (h Header) Len() int {
	n := 1
	for _, d := range h.Shape {
		n *= d
	}
	return n
}

// RowLen is the number of elements in one row (the product of all but the
// first dimension); 1 for vectors and scalars.
func (h Header) RowLen() int {
	if len(h.Shape) <= 1 {
		return 1
	}
	n := 1
	for _, d := range h.Shape[1:] {
		n *= d
	}
	return n
}

// Rows is the first dimension (1 for a scalar).
func (h Header) Rows() int {
	if len(h.Shape) == 0 {
		return 1
	}
	return h.Shape[0]
}

// ShapeString formats the shape as NumPy does, e.g. "(3, 4)" or "(5,)".
func ShapeString(shape []int) string {
	var b strings.Builder
	b.WriteByte('(')
	for i, d := range shape {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(d))
	}
	if len(shape) == 1 {
		b.WriteByte(',')
	}
	b.WriteByte(')')
	return b.String()
}

// maxHeaderLen bounds the header we are willing to parse, so that a corrupt
// length field cannot make us allocate gigabytes.
const maxHeaderLen = 1 << 20

// maxElems bounds the element count a header may declare (2^40), so that
// products of corrupt dimensions cannot overflow.
const maxElems = 1 << 40

// ReadHeader reads the magic, version and header dict from r and leaves r
// positioned at the first data byte.
func ReadHeader(r io.Reader) (Header, error) {
	var pre [8]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return Header{}, fmt.Errorf("read .npy preamble: %w (file shorter than 8 bytes: truncated or not a .npy file)", noEOF(err))
	}
	if string(pre[:6]) != Magic {
		return Header{}, fmt.Errorf("not a .npy file: expected magic %q, found %q", Magic, pre[:6])
	}
	major := pre[6]
	var hlen int
	switch major {
	case 1:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return Header{}, fmt.Errorf("read .npy header length: %w (truncated)", noEOF(err))
		}
		hlen = int(binary.LittleEndian.Uint16(b[:]))
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return Header{}, fmt.Errorf("read .npy header length: %w (truncated)", noEOF(err))
		}
		hlen = int(binary.LittleEndian.Uint32(b[:]))
	default:
		return Header{}, fmt.Errorf("unsupported .npy format version %d.%d: expected 1.0, 2.0 or 3.0", major, pre[7])
	}
	if hlen > maxHeaderLen {
		return Header{}, fmt.Errorf(".npy header length %d exceeds %d bytes: corrupt file", hlen, maxHeaderLen)
	}
	buf := make([]byte, hlen)
	if _, err := io.ReadFull(r, buf); err != nil {
		return Header{}, fmt.Errorf("read .npy header (%d bytes): %w (truncated)", hlen, noEOF(err))
	}
	return parseDict(string(buf))
}

// noEOF turns a bare io.EOF into io.ErrUnexpectedEOF: whenever we ask for
// bytes, running out is a truncation.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// parseDict parses the Python dict literal of a .npy header, e.g.
// {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }.
func parseDict(s string) (Header, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "{") || !strings.HasSuffix(s, "}") {
		return Header{}, fmt.Errorf("bad .npy header %q: expected a {...} dict", clip(s))
	}
	body := s[1 : len(s)-1]
	var h Header
	var haveDescr, haveOrder, haveShape bool
	for {
		body = strings.TrimLeft(body, " ,\t\n")
		if body == "" {
			break
		}
		key, rest, err := pyString(body)
		if err != nil {
			return Header{}, fmt.Errorf("bad .npy header %q: key: %w", clip(s), err)
		}
		rest = strings.TrimLeft(rest, " ")
		if !strings.HasPrefix(rest, ":") {
			return Header{}, fmt.Errorf("bad .npy header %q: expected ':' after key %q", clip(s), key)
		}
		rest = strings.TrimLeft(rest[1:], " ")
		switch key {
		case "descr":
			d, r2, err := pyString(rest)
			if err != nil {
				return Header{}, fmt.Errorf("bad .npy header %q: descr: %w (structured dtypes are not supported)", clip(s), err)
			}
			h.DType, h.bigEndian, err = parseDescr(d)
			if err != nil {
				return Header{}, err
			}
			rest, haveDescr = r2, true
		case "fortran_order":
			switch {
			case strings.HasPrefix(rest, "False"):
				rest = rest[5:]
			case strings.HasPrefix(rest, "True"):
				return Header{}, fmt.Errorf("unsupported .npy file: fortran_order is True, expected C order (save with numpy.ascontiguousarray)")
			default:
				return Header{}, fmt.Errorf("bad .npy header %q: fortran_order: expected True or False", clip(s))
			}
			haveOrder = true
		case "shape":
			shape, r2, err := pyTuple(rest)
			if err != nil {
				return Header{}, fmt.Errorf("bad .npy header %q: shape: %w", clip(s), err)
			}
			h.Shape, rest, haveShape = shape, r2, true
		default:
			return Header{}, fmt.Errorf("bad .npy header %q: unexpected key %q", clip(s), key)
		}
		body = rest
	}
	if !haveDescr || !haveOrder || !haveShape {
		return Header{}, fmt.Errorf("bad .npy header %q: expected keys 'descr', 'fortran_order' and 'shape'", clip(s))
	}
	return h, nil
}

func clip(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}

// parseDescr maps a NumPy type string to a DType.
func parseDescr(d string) (DType, bool, error) {
	if len(d) < 2 {
		return "", false, fmt.Errorf("unsupported .npy dtype %q: expected one of float32 (<f4), float64 (<f8), uint8 (|u1), int32 (<i4), int64 (<i8)", d)
	}
	order, code := d[0], d[1:]
	var dt DType
	switch code {
	case "f4":
		dt = Float32
	case "f8":
		dt = Float64
	case "u1":
		dt = Uint8
	case "i4":
		dt = Int32
	case "i8":
		dt = Int64
	}
	big := false
	switch {
	case dt == "":
	case order == '<' || order == '|' || order == '=':
	case order == '>':
		big = dt.Size() > 1
	default:
		dt = ""
	}
	if dt == "" {
		return "", false, fmt.Errorf("unsupported .npy dtype %q: expected one of float32 (<f4), float64 (<f8), uint8 (|u1), int32 (<i4), int64 (<i8)", d)
	}
	return dt, big, nil
}

// pyString parses a leading single- or double-quoted Python string.
func pyString(s string) (string, string, error) {
	if s == "" || (s[0] != '\'' && s[0] != '"') {
		return "", s, fmt.Errorf("expected a quoted string at %q", clip(s))
	}
	end := strings.IndexByte(s[1:], s[0])
	if end < 0 {
		return "", s, fmt.Errorf("unterminated string at %q", clip(s))
	}
	return s[1 : end+1], s[end+2:], nil
}

// pyTuple parses a leading tuple of non-negative ints, e.g. "(3, 4)", "(5,)", "()".
func pyTuple(s string) ([]int, string, error) {
	if !strings.HasPrefix(s, "(") {
		return nil, s, fmt.Errorf("expected a tuple at %q", clip(s))
	}
	end := strings.IndexByte(s, ')')
	if end < 0 {
		return nil, s, fmt.Errorf("unterminated tuple at %q", clip(s))
	}
	shape := []int{}
	total := 1
	for _, f := range strings.Split(s[1:end], ",") {
		f = strings.TrimSpace(f)
		f = strings.TrimSuffix(f, "L") // Python 2 longs
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 {
			return nil, s, fmt.Errorf("bad dimension %q: expected a non-negative integer", f)
		}
		if n > 0 && total > maxElems/n {
			return nil, s, fmt.Errorf("shape %s has more than 2^40 elements", s[:end+1])
		}
		total *= n
		shape = append(shape, n)
	}
	return shape, s[end+1:], nil
}

// EncodeHeader returns the complete preamble + header bytes for h, padded so
// that the data starts on a 64-byte boundary as NumPy requires.
func EncodeHeader(h Header) []byte {
	shape := h.Shape
	if shape == nil {
		shape = []int{}
	}
	dict := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", string(h.DType), ShapeString(shape))
	// Version 1 has a 2-byte length; fall back to version 2 for huge dicts.
	pre := 10
	major := byte(1)
	if len(dict)+pre+64 > math.MaxUint16 {
		pre, major = 12, 2
	}
	total := pre + len(dict) + 1
	pad := (64 - total%64) % 64
	hlen := len(dict) + pad + 1
	var b bytes.Buffer
	b.WriteString(Magic)
	b.WriteByte(major)
	b.WriteByte(0)
	if major == 1 {
		_ = binary.Write(&b, binary.LittleEndian, uint16(hlen))
	} else {
		_ = binary.Write(&b, binary.LittleEndian, uint32(hlen))
	}
	b.WriteString(dict)
	b.WriteString(strings.Repeat(" ", pad))
	b.WriteByte('\n')
	return b.Bytes()
}

// Reader streams the elements of one .npy file after its header.
type Reader struct {
	Header Header
	r      io.Reader
	left   int // elements not yet read
	buf    []byte
}

// NewReader reads the header from r and returns a Reader positioned at the
// first element.
func NewReader(r io.Reader) (*Reader, error) {
	h, err := ReadHeader(r)
	if err != nil {
		return nil, err
	}
	return &Reader{Header: h, r: r, left: h.Len()}, nil
}

// Remaining is the number of elements not yet read.
func (r *Reader) Remaining() int { return r.left }

// Read fills dst with the next len(dst) elements, converting from the file's
// element type to T. It fails if fewer remain, or the data ends early.
func Read[T Elem](r *Reader, dst []T) error {
	if len(dst) > r.left {
		return fmt.Errorf("read %d elements: only %d of %d left in array of shape %s", len(dst), r.left, r.Header.Len(), ShapeString(r.Header.Shape))
	}
	size := r.Header.DType.Size()
	const chunk = 1 << 16 // elements per read, to bound the scratch buffer
	for off := 0; off < len(dst); off += chunk {
		n := min(chunk, len(dst)-off)
		if cap(r.buf) < n*size {
			r.buf = make([]byte, n*size)
		}
		b := r.buf[:n*size]
		if _, err := io.ReadFull(r.r, b); err != nil {
			done := r.Header.Len() - r.left + off
			return fmt.Errorf("read .npy data: %w (truncated: expected %d elements of %s for shape %s, data ends near element %d)",
				noEOF(err), r.Header.Len(), r.Header.DType, ShapeString(r.Header.Shape), done)
		}
		decode(r.Header, b, dst[off:off+n])
	}
	r.left -= len(dst)
	return nil
}

// decode converts raw element bytes to T.
func decode[T Elem](h Header, b []byte, dst []T) {
	var bo binary.ByteOrder = binary.LittleEndian
	if h.bigEndian {
		bo = binary.BigEndian
	}
	switch h.DType {
	case Float32:
		for i := range dst {
			dst[i] = T(math.Float32frombits(bo.Uint32(b[4*i:])))
		}
	case Float64:
		for i := range dst {
			dst[i] = T(math.Float64frombits(bo.Uint64(b[8*i:])))
		}
	case Uint8:
		for i := range dst {
			dst[i] = T(b[i])
		}
	case Int32:
		for i := range dst {
			dst[i] = T(int32(bo.Uint32(b[4*i:])))
		}
	case Int64:
		for i := range dst {
			dst[i] = T(int64(bo.Uint64(b[8*i:])))
		}
	}
}

// Array is a whole array in memory, C order.
type Array[T Elem] struct {
	Shape []int
	Data  []T
}

// Rows is the first dimension.
func (a *Array[T]) Rows() int { return Header{Shape: a.Shape}.Rows() }

// RowLen is the element count of one row.
func (a *Array[T]) RowLen() int { return Header{Shape: a.Shape}.RowLen() }

// Row returns row i as a sub-slice of Data.
func (a *Array[T]) Row(i int) []T {
	n := a.RowLen()
	return a.Data[i*n : (i+1)*n]
}

// File is an open .npy file being read.
type File struct {
	*Reader
	f    *os.File
	path string
}

// Open opens path and reads its header. Errors name the path.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	r, err := NewReader(bufio.NewReaderSize(f, 1<<16))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if st, err := f.Stat(); err == nil {
		hdr := EncodedHeaderLen(f)
		want := int64(r.Header.Len()) * int64(r.Header.DType.Size())
		if hdr > 0 && st.Size()-hdr < want {
			f.Close()
			return nil, fmt.Errorf("%s: truncated .npy file: header says %s %s (%d data bytes) but only %d bytes follow the header",
				path, r.Header.DType, ShapeString(r.Header.Shape), want, st.Size()-hdr)
		}
	}
	return &File{Reader: r, f: f, path: path}, nil
}

// EncodedHeaderLen returns the byte offset of the first data element in the
// .npy file f, or -1 if it cannot be determined. It reads with ReadAt and
// leaves f's offset unchanged.
func EncodedHeaderLen(f io.ReaderAt) int64 {
	var pre [12]byte
	if _, err := f.ReadAt(pre[:], 0); err != nil {
		return -1
	}
	switch pre[6] {
	case 1:
		return 10 + int64(binary.LittleEndian.Uint16(pre[8:]))
	case 2, 3:
		return 12 + int64(binary.LittleEndian.Uint32(pre[8:]))
	}
	return -1
}

// Path is the file's path.
func (f *File) Path() string { return f.path }

// Close closes the file.
func (f *File) Close() error { return f.f.Close() }

// ReadRows reads the next len(dst)/RowLen rows into dst, naming the file in
// errors.
func ReadRows[T Elem](f *File, dst []T) error {
	if err := Read(f.Reader, dst); err != nil {
		return fmt.Errorf("%s: %w", f.path, err)
	}
	return nil
}

// ReadFile reads a whole .npy file, converting elements to T. Use it for
// arrays that fit in memory; stream larger ones with Open and ReadRows.
func ReadFile[T Elem](path string) (*Array[T], error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	a := &Array[T]{Shape: f.Header.Shape, Data: make([]T, f.Header.Len())}
	if err := ReadRows(f, a.Data); err != nil {
		return nil, err
	}
	return a, nil
}

// ReadFileExact is ReadFile that also requires the stored element type to be
// exactly T, for artifacts whose type is part of the contract.
func ReadFileExact[T Elem](path string) (*Array[T], error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if want := DTypeOf[T](); f.Header.DType != want {
		return nil, fmt.Errorf("%s: dtype %s, expected %s", path, f.Header.DType, want)
	}
	a := &Array[T]{Shape: f.Header.Shape, Data: make([]T, f.Header.Len())}
	if err := ReadRows(f, a.Data); err != nil {
		return nil, err
	}
	return a, nil
}

// Writer streams elements of a declared shape to a .npy file. The header is
// written first, so the total shape must be known up front; Close checks
// that exactly that many elements arrived.
type Writer[T Elem] struct {
	path   string
	f      *os.File
	w      *bufio.Writer
	header Header
	left   int
	buf    []byte
}

// Create creates path (truncating it) and writes the header for an array of
// T with the given shape.
func Create[T Elem](path string, shape []int) (*Writer[T], error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	h := Header{DType: DTypeOf[T](), Shape: append([]int{}, shape...)}
	w := &Writer[T]{path: path, f: f, w: bufio.NewWriterSize(f, 1<<16), header: h, left: h.Len()}
	if _, err := w.w.Write(EncodeHeader(h)); err != nil {
		f.Close()
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return w, nil
}

// Write appends elements (typically one or more whole rows).
func (w *Writer[T]) Write(data []T) error {
	if len(data) > w.left {
		return fmt.Errorf("write %s: %d more elements than shape %s holds", w.path, len(data)-w.left, ShapeString(w.header.Shape))
	}
	size := w.header.DType.Size()
	if cap(w.buf) < len(data)*size {
		w.buf = make([]byte, len(data)*size)
	}
	b := w.buf[:len(data)*size]
	encode(data, b)
	if _, err := w.w.Write(b); err != nil {
		return fmt.Errorf("write %s: %w", w.path, err)
	}
	w.left -= len(data)
	return nil
}

// Close flushes and closes the file. It fails if fewer elements were
// written than the shape declares, so a half-written array is never
// mistaken for a complete one.
func (w *Writer[T]) Close() error {
	ferr := w.w.Flush()
	cerr := w.f.Close()
	switch {
	case ferr != nil:
		return fmt.Errorf("write %s: %w", w.path, ferr)
	case cerr != nil:
		return fmt.Errorf("close %s: %w", w.path, cerr)
	case w.left != 0:
		return fmt.Errorf("write %s: %d elements missing for shape %s", w.path, w.left, ShapeString(w.header.Shape))
	}
	return nil
}

// Abort closes and removes a partially written file.
func (w *Writer[T]) Abort() {
	w.f.Close()
	os.Remove(w.path)
}

func encode[T Elem](data []T, b []byte) {
	switch d := any(data).(type) {
	case []float32:
		for i, v := range d {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
		}
	case []float64:
		for i, v := range d {
			binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(v))
		}
	case []uint8:
		copy(b, d)
	case []int32:
		for i, v := range d {
			binary.LittleEndian.PutUint32(b[4*i:], uint32(v))
		}
	case []int64:
		for i, v := range d {
			binary.LittleEndian.PutUint64(b[8*i:], uint64(v))
		}
	}
}

// WriteFile writes a whole array to path. len(data) must equal the shape's
// element count.
func WriteFile[T Elem](path string, shape []int, data []T) error {
	if n := (Header{Shape: shape}).Len(); n != len(data) {
		return fmt.Errorf("write %s: shape %s needs %d elements, have %d", path, ShapeString(shape), n, len(data))
	}
	w, err := Create[T](path, shape)
	if err != nil {
		return err
	}
	if err := w.Write(data); err != nil {
		w.Abort()
		return err
	}
	return w.Close()
}
