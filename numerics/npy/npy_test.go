package npy

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// python is the reference implementation: Debian's numpy.
const python = "/usr/bin/python3"

func TestRoundTripAllTypes(t *testing.T) {
	dir := t.TempDir()
	check := func(name string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	f32 := []float32{1.5, -2, 3.25, 0, 1e-8, -7}
	check("f32", WriteFile(filepath.Join(dir, "f32.npy"), []int{2, 3}, f32))
	check("f64", WriteFile(filepath.Join(dir, "f64.npy"), []int{3}, []float64{1, 2.5, -3}))
	check("u8", WriteFile(filepath.Join(dir, "u8.npy"), []int{1, 2, 2}, []uint8{0, 1, 254, 255}))
	check("i32", WriteFile(filepath.Join(dir, "i32.npy"), []int{4}, []int32{-1, 0, 1, 1 << 30}))
	check("i64", WriteFile(filepath.Join(dir, "i64.npy"), []int{2}, []int64{-1 << 40, 7}))

	a, err := ReadFileExact[float32](filepath.Join(dir, "f32.npy"))
	check("read f32", err)
	if ShapeString(a.Shape) != "(2, 3)" || !equal(a.Data, f32) {
		t.Fatalf("f32 round trip: shape %v data %v", a.Shape, a.Data)
	}
	if r := a.Row(1); !equal(r, f32[3:]) {
		t.Fatalf("Row(1) = %v", r)
	}
	// Conversion on read: int32 file read as float64.
	c, err := ReadFile[float64](filepath.Join(dir, "i32.npy"))
	check("read i32 as f64", err)
	if !equal(c.Data, []float64{-1, 0, 1, 1 << 30}) {
		t.Fatalf("converted = %v", c.Data)
	}
	if _, err := ReadFileExact[float32](filepath.Join(dir, "f64.npy")); err == nil || !strings.Contains(err.Error(), "dtype float64, expected float32") {
		t.Fatalf("exact dtype mismatch error = %v", err)
	}

	// numpy must read what we wrote, byte for byte in value.
	out, err := exec.Command(python, "-c", `
import numpy as np, sys
d = sys.argv[1]
for n in ["f32", "f64", "u8", "i32", "i64"]:
    a = np.load(d + "/" + n + ".npy")
    print(n, a.dtype.str, a.shape, a.flatten().tolist())
`, dir).CombinedOutput()
	check("numpy load: "+string(out), err)
	want := `f32 <f4 (2, 3) [1.5, -2.0, 3.25, 0.0, 9.99999993922529e-09, -7.0]
f64 <f8 (3,) [1.0, 2.5, -3.0]
u8 |u1 (1, 2, 2) [0, 1, 254, 255]
i32 <i4 (4,) [-1, 0, 1, 1073741824]
i64 <i8 (2,) [-1099511627776, 7]
`
	if string(out) != want {
		t.Fatalf("numpy read:\n%s\nwant:\n%s", out, want)
	}
}

func TestReadsNumpyWrittenFiles(t *testing.T) {
	dir := t.TempDir()
	// Version 2 and 3 headers, big-endian, scalars, empty arrays, Fortran order.
	out, err := exec.Command(python, "-c", `
import numpy as np, sys
from numpy.lib import format as f
d = sys.argv[1]
a = np.arange(12, dtype='<f4').reshape(3, 4)
with open(d + "/v2.npy", "wb") as fh: f.write_array(fh, a, version=(2, 0))
with open(d + "/v3.npy", "wb") as fh: f.write_array(fh, a, version=(3, 0))
np.save(d + "/be.npy", np.arange(5, dtype='>i4'))
np.save(d + "/scalar.npy", np.float64(2.5))
np.save(d + "/empty.npy", np.zeros((0, 7), dtype=np.uint8))
np.save(d + "/fortran.npy", np.asfortranarray(a))
np.save(d + "/complex.npy", np.zeros(3, dtype=np.complex64))
`, dir).CombinedOutput()
	if err != nil {
		t.Fatalf("numpy: %v\n%s", err, out)
	}
	for _, n := range []string{"v2", "v3"} {
		a, err := ReadFileExact[float32](filepath.Join(dir, n+".npy"))
		if err != nil || ShapeString(a.Shape) != "(3, 4)" || a.Data[11] != 11 || a.Data[5] != 5 {
			t.Fatalf("%s: %v %v", n, a, err)
		}
	}
	be, err := ReadFile[int64](filepath.Join(dir, "be.npy"))
	if err != nil || !equal(be.Data, []int64{0, 1, 2, 3, 4}) {
		t.Fatalf("big-endian: %v %v", be, err)
	}
	sc, err := ReadFile[float64](filepath.Join(dir, "scalar.npy"))
	if err != nil || len(sc.Shape) != 0 || len(sc.Data) != 1 || sc.Data[0] != 2.5 {
		t.Fatalf("scalar: %+v %v", sc, err)
	}
	em, err := ReadFile[uint8](filepath.Join(dir, "empty.npy"))
	if err != nil || ShapeString(em.Shape) != "(0, 7)" || len(em.Data) != 0 {
		t.Fatalf("empty: %+v %v", em, err)
	}
	if _, err := ReadFile[float32](filepath.Join(dir, "fortran.npy")); err == nil || !strings.Contains(err.Error(), "fortran_order is True") || !strings.Contains(err.Error(), "fortran.npy") {
		t.Fatalf("fortran error = %v", err)
	}
	if _, err := ReadFile[float32](filepath.Join(dir, "complex.npy")); err == nil || !strings.Contains(err.Error(), "unsupported .npy dtype \"<c8\"") {
		t.Fatalf("complex error = %v", err)
	}
}

func TestTruncatedAndGarbage(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.npy")
	if err := WriteFile(p, []int{10, 10}, make([]float32, 100)); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(p)
	cut := filepath.Join(dir, "cut.npy")
	os.WriteFile(cut, raw[:len(raw)-9], 0o644)
	_, err := ReadFile[float32](cut)
	if err == nil || !strings.Contains(err.Error(), "cut.npy") || !strings.Contains(err.Error(), "truncated") || !strings.Contains(err.Error(), "(10, 10)") {
		t.Fatalf("truncated data error = %v", err)
	}
	// Truncation inside the header, and the streaming reader without Stat.
	_, err = NewReader(bytes.NewReader(raw[:30]))
	if err == nil || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated header error = %v", err)
	}
	r, err := NewReader(bytes.NewReader(raw[:len(raw)-9]))
	if err != nil {
		t.Fatal(err)
	}
	if err := Read(r, make([]float32, 100)); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("streamed truncated error = %v", err)
	}
	png := filepath.Join(dir, "x.npy")
	os.WriteFile(png, []byte("\x89PNG\r\n\x1a\n-------"), 0o644)
	if _, err := ReadFile[float32](png); err == nil || !strings.Contains(err.Error(), "not a .npy file") || !strings.Contains(err.Error(), "x.npy") {
		t.Fatalf("garbage error = %v", err)
	}
	if _, err := ReadFile[float32](filepath.Join(dir, "missing.npy")); err == nil || !strings.Contains(err.Error(), "missing.npy") {
		t.Fatalf("missing error = %v", err)
	}
}

func TestStreamingWriter(t *testing.T) {
	p := filepath.Join(t.TempDir(), "s.npy")
	w, err := Create[uint8](p, []int{3, 2, 2})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := w.Write([]uint8{uint8(i), 1, 2, 3}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Write([]uint8{9}); err == nil {
		t.Fatal("writing past the shape succeeded")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	a, err := ReadFileExact[uint8](p)
	if err != nil || a.Data[8] != 2 || a.Data[9] != 1 {
		t.Fatalf("%+v %v", a, err)
	}
	// A short write is an error at Close.
	w2, _ := Create[float32](p, []int{4})
	w2.Write([]float32{1})
	if err := w2.Close(); err == nil || !strings.Contains(err.Error(), "3 elements missing") {
		t.Fatalf("short close error = %v", err)
	}
	// Headers are 64-byte aligned as numpy requires.
	if n := len(EncodeHeader(Header{DType: Float32, Shape: []int{123456, 7}})); n%64 != 0 {
		t.Fatalf("header length %d not aligned", n)
	}
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
