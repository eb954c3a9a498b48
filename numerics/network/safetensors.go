package network

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"

	"github.com/x448/float16"
)

// Tensor is a dense float32 host array in C order.
type Tensor struct {
	Shape []int
	Data  []float32
}

// NewTensor allocates a zero tensor of the given shape.
func NewTensor(shape ...int) Tensor {
	return Tensor{Shape: append([]int(nil), shape...), Data: make([]float32, numel(shape))}
}

// Clone returns a deep copy.
func (t Tensor) Clone() Tensor {
	return Tensor{Shape: append([]int(nil), t.Shape...), Data: append([]float32(nil), t.Data...)}
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

func sameShape(a, b []int) bool {
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

// Weights maps parameter names (torch state_dict keys) to tensors.
type Weights map[string]Tensor

// Clone deep-copies every tensor.
func (w Weights) Clone() Weights {
	out := make(Weights, len(w))
	for k, v := range w {
		out[k] = v.Clone()
	}
	return out
}

type stEntry struct {
	DType       string   `json:"dtype"`
	Shape       []int    `json:"shape"`
	DataOffsets [2]int64 `json:"data_offsets"`
}

// maxHeader bounds the JSON header so a corrupt length cannot make us
// allocate gigabytes.
const maxHeader = 100 << 20

// ReadSafetensors reads every tensor of a safetensors file, converting
// F16, BF16 and F64 to float32. The format is small enough (an 8-byte
// little-endian header length, a JSON header, raw data) that a dependency
// would add more than it saves; this also gives us the writer.
func ReadSafetensors(path string) (Weights, map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read safetensors: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("read safetensors %s: %w", path, err)
	}
	var n uint64
	if err := binary.Read(f, binary.LittleEndian, &n); err != nil {
		return nil, nil, fmt.Errorf("read safetensors %s: header length: %w", path, err)
	}
	if n > maxHeader || int64(n)+8 > st.Size() {
		return nil, nil, fmt.Errorf("read safetensors %s: header length %d out of range (file %d bytes)", path, n, st.Size())
	}
	hb := make([]byte, n)
	if _, err := io.ReadFull(f, hb); err != nil {
		return nil, nil, fmt.Errorf("read safetensors %s: header: %w", path, err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(hb, &raw); err != nil {
		return nil, nil, fmt.Errorf("read safetensors %s: header JSON: %w", path, err)
	}
	base := int64(8 + n)
	dataLen := st.Size() - base
	w := Weights{}
	var meta map[string]string
	for name, msg := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &meta); err != nil {
				return nil, nil, fmt.Errorf("read safetensors %s: __metadata__: %w", path, err)
			}
			continue
		}
		var e stEntry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, nil, fmt.Errorf("read safetensors %s: tensor %q: %w", path, name, err)
		}
		size := map[string]int64{"F32": 4, "F16": 2, "BF16": 2, "F64": 8}[e.DType]
		if size == 0 {
			return nil, nil, fmt.Errorf("read safetensors %s: tensor %q: dtype %s, want F32, F16, BF16 or F64", path, name, e.DType)
		}
		count := int64(numel(e.Shape))
		lo, hi := e.DataOffsets[0], e.DataOffsets[1]
		if lo < 0 || hi > dataLen || hi-lo != count*size {
			return nil, nil, fmt.Errorf("read safetensors %s: tensor %q: offsets [%d,%d] do not hold %d x %s in %d data bytes", path, name, lo, hi, count, e.DType, dataLen)
		}
		buf := make([]byte, hi-lo)
		if _, err := f.ReadAt(buf, base+lo); err != nil {
			return nil, nil, fmt.Errorf("read safetensors %s: tensor %q: %w", path, name, err)
		}
		t := Tensor{Shape: append([]int{}, e.Shape...), Data: make([]float32, count)}
		for i := range t.Data {
			switch e.DType {
			case "F32":
				t.Data[i] = math.Float32frombits(binary.LittleEndian.Uint32(buf[4*i:]))
			case "F64":
				t.Data[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(buf[8*i:])))
			case "F16":
				t.Data[i] = float16.Frombits(binary.LittleEndian.Uint16(buf[2*i:])).Float32()
			case "BF16":
				t.Data[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(buf[2*i:])) << 16)
			}
		}
		w[name] = t
	}
	return w, meta, nil
}

// WriteSafetensors writes w as F32 tensors in name order, with optional
// string metadata, to path (via a temporary file renamed into place).
func WriteSafetensors(path string, w Weights, meta map[string]string) error {
	names := make([]string, 0, len(w))
	for k := range w {
		names = append(names, k)
	}
	sort.Strings(names)
	header := map[string]any{}
	if len(meta) > 0 {
		header["__metadata__"] = meta
	}
	var off int64
	for _, k := range names {
		t := w[k]
		if numel(t.Shape) != len(t.Data) {
			return fmt.Errorf("write safetensors %s: tensor %q: shape %v does not hold %d values", path, k, t.Shape, len(t.Data))
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		n := int64(4 * len(t.Data))
		header[k] = stEntry{DType: "F32", Shape: shape, DataOffsets: [2]int64{off, off + n}}
		off += n
	}
	hb, err := json.Marshal(header)
	if err != nil {
		return fmt.Errorf("write safetensors %s: header: %w", path, err)
	}
	// The reference implementation pads the header with spaces to a multiple
	// of 8 so the data is aligned for zero-copy loaders.
	for len(hb)%8 != 0 {
		hb = append(hb, ' ')
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("write safetensors: %w", err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	werr := binary.Write(bw, binary.LittleEndian, uint64(len(hb)))
	if werr == nil {
		_, werr = bw.Write(hb)
	}
	var b4 [4]byte
	for _, k := range names {
		for _, v := range w[k].Data {
			if werr != nil {
				break
			}
			binary.LittleEndian.PutUint32(b4[:], math.Float32bits(v))
			_, werr = bw.Write(b4[:])
		}
	}
	if werr == nil {
		werr = bw.Flush()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(tmp)
		return fmt.Errorf("write safetensors %s: %w", path, werr)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write safetensors %s: %w", path, err)
	}
	return nil
}
